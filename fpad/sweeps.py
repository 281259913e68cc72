"""The analyses a researcher reads: precision and width sweeps, tightness, counterexamples, AD maps.

Every function here returns an :class:`Analysis`: table rows (exact counts, densities as exact
fraction strings with a float beside them for plotting), per-row provenance (format, network
spec hash, method, seed, elapsed time) and the data its figure needs. No function plots or
writes files: :mod:`fpad.plots` draws, :mod:`fpad.reproduce` writes. Counting goes through
:func:`fpad.engine.count` (structured when it applies, else the compiled exhaustive kernels), so
every number is exact unless its row says ``method = sample`` (a labelled estimate with its
Clopper-Pearson interval).

Built-in networks (``*_spec`` functions) return network dicts in the docs/DESIGN.md schema. Fixed
parameters are given explicitly as +-1 (in every format here), never drawn at random, so the same
network is compared across formats.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from fpad import __version__
from fpad.errors import FpadError
from fpad.examples import EXAMPLES
from fpad.formats import get_format
from fpad.network import NetworkSpec

# Where a sweep would take longer than this (estimated before any work), it is refused.
DEFAULT_BUDGET_S = 1800.0
# Sampled points per two-hidden-layer network of the width sweep (decided by the kernels); the
# quick run (the README's first command) takes a tenth: 10^6 cost it about 75 s of its time.
DEEP_SAMPLES = 10**6
QUICK_DEEP_SAMPLES = 10**5
# Inputs of the minibatch sweep: distinct exact dyadics (sample s gets BATCH_INPUTS[s]).
BATCH_INPUTS = ["1", "-1/2", "3/4", "3", "-2", "3/2", "-1/4", "5/2", "-3", "1/8", "-3/4", "6", "-5/4",
                "7/4", "-6", "1/4"]
ACTIVATIONS = ("relu", "leaky_relu:1/64", "relu6", "hardtanh", "hardsigmoid", "abs")


@dataclass
class Analysis:
    """The result of one analysis: a table, notes, and what its figures need."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # figure data (lists of floats, grids)
    provenance: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    display: tuple | None = None  # (columns, rows) for the report when ``rows`` is too long to read

    def to_json(self) -> dict:
        return {
            "name": self.name, "title": self.title, "columns": self.columns, "rows": self.rows,
            "notes": self.notes, "provenance": self.provenance, "elapsed_s": round(self.elapsed_s, 3),
            "data": {k: v for k, v in self.data.items() if k != "codes"},
        }


@contextmanager
def long_ints():
    """Exact counts of wide networks have thousands of digits (253^3073): allow printing them."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(old)


def exact_str(x) -> str:
    """str() of an exact int or Fraction, however many digits it has."""
    with long_ints():
        return str(x)


# -- provenance --------------------------------------------------------------------------------------
def git_commit() -> str | None:
    """The commit of the fpad checkout (with ``+dirty`` if it has local changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """Which fpad made a result: version, git commit (None outside a checkout, e.g. a pip
    install) and the code identity (a hash of the counting modules' source, always known)."""
    from fpad.store import code_identity

    return {"fpad_version": __version__, "git_commit": git_commit(), "code_identity": code_identity(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# -- built-in networks ---------------------------------------------------------------------------------
def one_hidden_spec(width: int, inputs=(("1",),), act: str = "relu", bias: bool = True,
                    proxy: str = "pytorch", free=None, fixed=None) -> dict:
    """x -> act(W x + b) -> v . z + c, summed over the minibatch; all parameters free by default."""
    d = {
        "inputs": [list(x) for x in inputs],
        "layers": [
            {"kind": "dense", "width": width, "bias": bias, "activation": act},
            {"kind": "dense", "width": 1, "bias": True, "activation": "identity"},
        ],
        "output": {"reduce": "sum"},
        "ad": {"proxy": proxy},
        "params": {"free": list(free) if free else (["L1.W", "L1.b", "L2.W", "L2.b"] if bias else
                                                     ["L1.W", "L2.W", "L2.b"])},
    }
    if fixed:
        d["params"]["fixed"] = fixed
    return d


def two_hidden_spec(width: int, act: str = "relu", bias: bool = True, proxy: str = "pytorch",
                    free=None, fixed=None, inputs=(("1",),)) -> dict:
    """x -> act(W1 x + b1) -> act(W2 z + b2) -> v . z + c (widths ``width``); all free by default."""
    d = {
        "inputs": [list(x) for x in inputs],
        "layers": [
            {"kind": "dense", "width": width, "bias": bias, "activation": act},
            {"kind": "dense", "width": width, "bias": bias, "activation": act},
            {"kind": "dense", "width": 1, "bias": True, "activation": "identity"},
        ],
        "output": {"reduce": "sum"},
        "ad": {"proxy": proxy},
        "params": {"free": list(free) if free else (["L1.W", "L1.b", "L2.W", "L2.b", "L3.W", "L3.b"] if bias
                                                     else ["L1.W", "L2.W", "L3.W", "L3.b"])},
    }
    if fixed:
        d["params"]["fixed"] = fixed
    return d


def sum_relu_spec(n: int) -> dict:
    """sum_i ReLU(b_i), the biases free: the construction that attains the bound (paper 4.1c)."""
    return {
        "inputs": [["0"]],
        "layers": [{"kind": "dense", "width": n, "weights": [["0"]] * n, "bias": True, "activation": "relu"}],
        "output": {"reduce": "sum"},
        "ad": {"proxy": "pytorch"},
        "params": {"free": ["L1.b"]},
    }


def vrelu_spec() -> dict:
    """v * ReLU(u * 1 + b), (u, b, v) free (paper 4.1c)."""
    return one_hidden_spec(1, free=["L1.W", "L1.b", "L2.W"], fixed={"L2.b": ["0"]})


def precision_networks() -> dict[str, dict]:
    """The fixed small networks with bias parameters of the precision sweep."""
    return {
        "1-3-1 relu, B=2, all free": one_hidden_spec(3, inputs=(("1",), ("-1/2",))),
        "1-2-2-1 relu, L2 unit 0 (w, b) free": two_hidden_spec(
            2, free=["L2.W[0,0]", "L2.b[0]"], inputs=(("1/2",),),
            fixed={"L1.W": [["1"], ["-1"]], "L1.b": ["1", "1"], "L2.W": [["1", "1"], ["1", "-1"]],
                   "L2.b": ["0", "1"], "L3.W": [["1", "-1"]], "L3.b": ["0"]}),
        "1-1-1 hardsigmoid, B=4, all free": one_hidden_spec(1, act="hardsigmoid",
                                                           inputs=tuple((x,) for x in BATCH_INPUTS[:4])),
    }


def generic_formats() -> list[str]:
    """e{E}m{M} for E in 2..5, M in 0..4 that fpad accepts (M = 0 takes the fn suffix, as in OCP)."""
    out = []
    for e in range(2, 6):
        for m in range(0, 5):
            for name in (f"e{e}m{m}",) if m else (f"e{e}m0fn",):
                try:
                    get_format(name)
                except FpadError:
                    continue
                out.append(name)
    return out


# -- counting ------------------------------------------------------------------------------------------
def _count(problem, sample: int | None = None, seed: int = 0, *, budget_checked: bool = False):
    """Every count of the sweeps: :func:`fpad.engine.count` (structured when it applies, else the
    compiled exhaustive kernels; ``sample=N``: a labelled estimate, points drawn per coordinate and
    decided by the kernels whatever the number of free parameters). A cell that cannot finish in
    the budget is refused before it runs: by the engine's measured rate, or, with
    ``budget_checked``, by the sweep's own cost model already applied to the whole sweep (the
    width panel's samples: the engine's calibration cost 6 s of the quick sweep's 29, and its
    probe of a few hundred points, dominated by the oracle's first calls, refused the N = 64
    panel as 4 h at 63 points/s; it runs at 430 points/s)."""
    from fpad import engine

    return engine.count(problem, sample=sample, seed=seed, progress=False, store=None,
                        max_seconds=None if budget_checked else DEFAULT_BUDGET_S)


def result_row(r, problem, **extra) -> dict:
    """One table row for a CountResult (exact strings, floats for plots, provenance)."""
    row = dict(extra)
    s = exact_str
    row.update({
        "format": r.format, "M": r.M, "n": r.kinks_total, "k": len(r.free), "points": s(r.points),
        "touched": s(r.touched), "ndf": s(r.ndf), "inc": s(r.inc), "clarke_ok": s(r.clarke_ok),
        "density": s(r.density), "density_f": float(r.density), "bound": s(r.bound), "bound_f": float(r.bound),
        "ratio": float(r.density / r.bound) if r.bound else None, "bound_holds": r.bound_holds,
        "method": r.method, "seed": (r.extra or {}).get("seed"), "spec_hash": problem.spec_hash,
        "elapsed_s": round(r.elapsed_s, 4),
    })
    if r.ci:
        row["ci_ndf"] = [float(x) for x in r.ci["ndf"]]
        row["ci_inc"] = [float(x) for x in r.ci["inc"]]
    return row


def _build(spec: dict, fmt):
    return NetworkSpec.from_dict(spec).build(fmt)


def _fmt_list(formats) -> list:
    return [get_format(f) for f in formats]


def _done(a: Analysis, t0: float, progress) -> Analysis:
    a.elapsed_s = time.perf_counter() - t0
    a.provenance = provenance()
    if progress:
        progress(f"{a.name}: done in {a.elapsed_s:.1f} s")
    return a


def _say(progress, msg):
    if progress:
        progress(msg)


# -- budget checks (before any work) ------------------------------------------------------------------
def check_width_budget(widths, deep_widths, deep_samples, n_formats: int = 3,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Refuse a width sweep that cannot finish in ``budget_s``: the exact panel costs about 1 ms
    per neuron (decomposition); the sampled panel, decided by the compiled kernels point by point,
    about 20 us + 30 ns per (N^2 + 4N) nodes per sampled point, plus the exact oracle on the
    points the kernels defer (two or more touched neurons): about 1.3% of the points at N = 64 in
    e4m3fn, 0.12 s each, so 1.6 ms per sampled point, growing like N^4. Measured on this 2-core
    machine, with a margin."""
    if any(w < 1 for w in list(widths) + list(deep_widths)):
        raise FpadError("widths must be positive integers")
    per_point = [(w * w + 4 * w) * 3e-8 + 2e-5 + 1.6e-3 * (w / 64) ** 4 for w in deep_widths]
    est = n_formats * (sum(widths) * 1e-3 + deep_samples * sum(per_point))
    if max(widths, default=0) > 65536 or est > budget_s:
        raise FpadError(
            f"width sweep would take about {est:.0f} s (budget {budget_s:.0f} s): use widths up to 65536, "
            f"fewer or smaller --deep-widths, or fewer --samples"
        )


def check_precision_budget(formats, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """The built-in precision networks cost about |M| * 50 us per format (bias solving over one
    rest parameter and the scaled blocks); beyond about 2^17 values per format that is too slow."""
    for f in formats:
        m = get_format(f).n_values
        if m > 1 << 17:
            raise FpadError(f"format {f} has {m} values: the precision sweep enumerates |M| points per block; "
                            f"use formats with at most {1 << 17} values (bf16, fp16 and smaller)")
    est = sum(get_format(f).n_values for f in formats) * 3e-4
    if est > budget_s:
        raise FpadError(f"precision sweep would take about {est:.0f} s (budget {budget_s:.0f} s); use fewer formats")


# Per analysis, the largest |M| it runs within the budget (checked before any work):
#   ad_map          keeps one byte per point of M x M in memory and draws it as an image
#                   (bf16: 4.3 GB, an unreadable picture); 4096^2 is 16 MB, under a second.
#   counterexample  the all-grid network has 2|M| neurons, classified at each of |M| points by
#                   the oracle (about 4e-5 s x |M|^2 per proxy: 1024 values, 2 minutes).
#   inc_table       exhaustive cells of up to |M|^4 points (253^4 = 4.1e9, seconds to minutes).
#   audit           every grid point through PyTorch and fpad's oracle, 2 free parameters.
MAX_VALUES = {"ad_map": 4096, "counterexample": 1024, "inc_table": 253, "audit": 1024}


def check_formats_budget(analysis: str, formats) -> None:
    """Refuse formats too large for ``analysis`` before any work (see :data:`MAX_VALUES`)."""
    limit = MAX_VALUES.get(analysis)
    for f in formats if limit else ():
        m = get_format(f).n_values
        if m > limit:
            name = analysis.replace("_", "-")
            raise FpadError(f"format {f} has {m:,} values; the {name} analysis handles formats with at most "
                            f"{limit} (e4m3fn, e5m2, e3m2, ...); count a single network over {f} with "
                            f"'fpad count NET.toml --format {f}' (or --sample N for a labelled estimate)")


# -- the analyses ----------------------------------------------------------------------------------------
def precision_sweep(formats=None, quick: bool = False, progress=None) -> Analysis:
    """Exact ndf density of the :func:`precision_networks` over formats, with the bound n/|M|."""
    t0 = time.perf_counter()
    if formats is None:
        formats = generic_formats() + [f for f in ("e4m3fn", "e5m2", "e3m2", "e2m3", "e2m1", "bf16", "fp16")
                                       if f not in generic_formats()]
    check_precision_budget(formats)
    rows = []
    for name, spec in precision_networks().items():
        for fmt in _fmt_list(formats):
            _say(progress, f"precision: {name} over {fmt.name}")
            p = _build(spec, fmt)
            rows.append(result_row(_count(p), p, network=name))
    a = Analysis("precision", "ndf density against |M| (exact), networks with bias parameters",
                 ["network", "format", "M", "n", "k", "density_f", "bound_f", "ratio", "inc", "method"], rows)
    a.notes.append("ratio = density / (n/|M|); the bound holds in every row: "
                   + str(all(r["bound_holds"] for r in rows)))
    a.notes.append("n counts every kink of the network (all neurons x samples x kinks), also those whose "
                   "pre-activation cannot move (the 1-2-2-1 row frees one neuron of four), hence its low ratio; "
                   "HardSigmoid's kinks +-3 are hit only when w x + b = +-3 has solutions in M, which depends "
                   "on the format's values, hence the scatter.")
    return _done(a, t0, progress)


def width_sweep(formats=("e4m3fn", "e5m2", "bf16"), widths=None, deep_widths=None, deep_samples=None,
                quick: bool = False, seed: int = 0, progress=None) -> Analysis:
    """ndf density of one-hidden-layer ReLU networks (input [1], bias, all parameters free) against
    width, exact (structured), beside the bound N/|M| and the tight construction 1-(1-1/|M|)^N; and
    of two-hidden-layer networks (all free) by a labelled sampled estimate."""
    t0 = time.perf_counter()
    widths = list(widths or [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
    deep_widths = list(deep_widths if deep_widths is not None else ([1, 2, 4, 8] if quick else [1, 2, 4, 8, 16]))
    deep_samples = deep_samples or (QUICK_DEEP_SAMPLES if quick else DEEP_SAMPLES)
    check_width_budget(widths, deep_widths, deep_samples, len(formats))
    rows = []
    for fmt in _fmt_list(formats):
        M = fmt.n_values
        for w in widths:
            _say(progress, f"width: {fmt.name} N={w} (exact)")
            p = _build(one_hidden_spec(w), fmt)
            r = _count(p)
            tight = 1 - (1 - Fraction(1, M)) ** w
            rows.append(result_row(r, p, layers=1, width=w, tight=exact_str(tight), tight_f=float(tight)))
        for w in deep_widths:
            _say(progress, f"width: {fmt.name} 2 hidden layers N={w} (sample {deep_samples})")
            p = _build(two_hidden_spec(w), fmt)
            r = _count(p, sample=deep_samples, seed=seed, budget_checked=True)
            rows.append(result_row(r, p, layers=2, width=w))
    a = Analysis("width", "ndf density against width (1 hidden layer exact, 2 hidden layers sampled)",
                 ["layers", "width", "format", "n", "density_f", "ci_ndf", "bound_f", "tight_f", "ratio", "inc",
                  "method"], rows)
    a.notes.append("1 hidden layer: x = 1, ReLU, bias, all 3N+1 parameters free; exact by the structured "
                   "method (identical neuron blocks (w, b, v) counted once, block density (|M|-1)/|M|^2).")
    a.notes.append(f"2 hidden layers: 1-N-N-1, all parameters free, {deep_samples:,} uniform points per "
                   f"network (every parameter drawn independently, seed {seed}), each decided exactly by the "
                   "compiled kernels (the exact oracle for the few points where two neurons are touched); the "
                   "interval is Clopper-Pearson 95%.")
    return _done(a, t0, progress)


def batch_sweep(formats=("e4m3fn", "e5m2", "bf16"), batches=None, width: int = 4, quick: bool = False,
                progress=None) -> Analysis:
    """ndf density of a one-hidden-layer ReLU network (width 4, all free) against minibatch size B
    (n = width * B grows with B), exact."""
    t0 = time.perf_counter()
    batches = list(batches or [1, 2, 4, 8, 16])
    if max(batches) > len(BATCH_INPUTS):
        raise FpadError(f"minibatch sizes up to {len(BATCH_INPUTS)} are built in; got {max(batches)}")
    rows = []
    for fmt in _fmt_list(formats):
        for b in batches:
            _say(progress, f"batch: {fmt.name} B={b}")
            p = _build(one_hidden_spec(width, inputs=tuple((x,) for x in BATCH_INPUTS[:b])), fmt)
            rows.append(result_row(_count(p), p, batch=b, width=width))
    a = Analysis("batch", f"ndf density against minibatch size (1 hidden layer of width {width}, exact)",
                 ["batch", "format", "n", "density_f", "bound_f", "ratio", "inc", "method"], rows)
    a.notes.append("inputs: " + ", ".join(BATCH_INPUTS[: max(batches)]) + " (sample s gets the s-th)")
    return _done(a, t0, progress)


def tightness(formats=("e2m1", "e3m2", "e4m3fn", "e5m2", "bf16"), ns=None, progress=None,
              quick: bool = False) -> Analysis:
    """The constructions that (nearly) attain the bound: sum_i ReLU(b_i) (measured against the
    closed form 1-(1-1/|M|)^N) and v * ReLU(u + b) (against (|M|-1)/|M|^2)."""
    t0 = time.perf_counter()
    rows = []
    for fmt in _fmt_list(formats):
        M = fmt.n_values
        vals = fmt.values_fraction()
        symmetric = sorted(-v for v in vals) == vals
        # N = |M| is where density / bound is smallest (1 - 1/e asymptotically); N = 1000 is
        # the example of paper_icml2023.md 4.1c (bf16: 0.015202)
        dense = {1, 4, 16, 64, 256, 1000} | (set() if quick else {1024, 4096})
        grid = ns or sorted(dense | ({M} if M <= max(dense) else set()))
        for n in grid:
            _say(progress, f"tightness: sum ReLU(b_i) N={n} over {fmt.name}")
            p = _build(sum_relu_spec(n), fmt)
            r = _count(p)
            closed = 1 - (1 - Fraction(1, M)) ** n
            rows.append(result_row(r, p, construction=f"sum_i ReLU(b_i), N={n}", closed_form=exact_str(closed),
                                   matches=r.density == closed, symmetric=symmetric,
                                   ratio_capped=float(r.density / min(1, r.bound))))
        p = _build(vrelu_spec(), fmt)
        r = _count(p)
        closed = Fraction(M - 1, M * M)
        rows.append(result_row(r, p, construction="v*ReLU(u+b)", closed_form=exact_str(closed),
                               matches=r.density == closed, symmetric=symmetric,
                               ratio_capped=float(r.density / min(1, r.bound))))
    a = Analysis("tightness", "tight constructions: measured density / bound n/|M|",
                 ["construction", "format", "M", "n", "density_f", "bound_f", "ratio", "ratio_capped", "matches"], rows)
    a.notes.append("matches = the exact density equals the closed form (1-(1-1/|M|)^N, resp. (|M|-1)/|M|^2); "
                   "ratio_capped = density / min(1, n/|M|), the fraction of the best possible bound attained.")
    a.notes.append("v*ReLU(u+b): touched iff b = -u, which lies in M for every u because M = -M; ndf iff also "
                   "v != 0, so density (|M|-1)/|M|^2 = (1 - 1/|M|) * bound.")
    return _done(a, t0, progress)


def counterexample(formats=("e2m1", "e3m2", "e4m3fn", "e5m2"), progress=None, quick: bool = False) -> Analysis:
    """The all-grid counterexample P(x) = (1/|M|) sum_c (ReLU(x-c) - ReLU(c-x)) = x (paper 5a):
    inc = |M| for proxies 0 and 1, inc = 0 for 1/2."""
    t0 = time.perf_counter()
    rows = []
    for fmt in _fmt_list(formats):
        for ex, r_val in (("allgrid", "0"), ("allgrid-const1", "1"), ("allgrid-mix", "1/2")):
            _say(progress, f"counterexample: {fmt.name} ReLU'(0) = {r_val}")
            p = _build(EXAMPLES[ex].build(fmt), fmt)
            r = _count(p)
            rows.append(result_row(r, p, proxy=f"ReLU'(0) = {r_val}",
                                   expected_inc=fmt.n_values if r_val != "1/2" else 0,
                                   ad_value=str(Fraction(fmt.n_values - 1 + 2 * Fraction(r_val), fmt.n_values))))
    a = Analysis("counterexample", "all-grid counterexample: AD wrong at every point without bias parameters",
                 ["format", "M", "proxy", "points", "ndf", "inc", "expected_inc", "ad_value", "method"], rows)
    a.notes.append("P is affine (= x, since mean(M) = 0), so DP = 1 everywhere; AD returns (|M| - 1 + 2r)/|M| "
                   "at every grid point (column ad_value). bf16 is not computed (2|M| = 130558 neurons at each "
                   "of 65279 points); its closed form is inc = 65279 for r in {0, 1}.")
    return _done(a, t0, progress)


def _inc_architectures() -> dict[str, tuple]:
    """name -> (builder(act, proxy, bias) -> spec dict). Fixed parameters are +-1."""
    return {
        "1-2-1 dense": lambda act, proxy, bias: one_hidden_spec(
            2, act=act, bias=bias, proxy=proxy, free=["L1.W", "L1.b"] if bias else ["L1.W"],
            fixed={"L2.W": [["1", "-1"]], "L2.b": ["0"]}),
        "1-1-1-1 deep": lambda act, proxy, bias: two_hidden_spec(
            1, act=act, bias=bias, proxy=proxy, free=["L1.W", "L2.W"] + (["L1.b", "L2.b"] if bias else []),
            fixed={"L3.W": [["1"]], "L3.b": ["0"]}),
        "B=2 neuron x=(3,-3)": lambda act, proxy, bias: one_hidden_spec(
            1, act=act, bias=bias, proxy=proxy, inputs=(("3",), ("-3",)),
            free=["L1.b", "L2.W"] if bias else ["L1.W", "L2.W"],
            fixed={"L1.W": [["1"]], "L2.b": ["0"]} if bias else {"L2.b": ["0"]}),
    }


def inc_table(formats=("e2m1", "e3m2"), activations=ACTIVATIONS, proxies=("pytorch", "right", "mix:1/2"),
              quick: bool = False, progress=None) -> Analysis:
    """Exhaustive inc counts of the same networks with and without bias parameters."""
    t0 = time.perf_counter()
    rows = []
    for arch, build in _inc_architectures().items():
        for fmt in _fmt_list(formats):
            if arch == "1-1-1-1 deep" and fmt.n_values > 15 and quick:
                continue  # 63^4 points per cell (about 30 s each): the full run only, PyTorch's proxy
            for act in activations:
                for proxy in proxies:
                    if arch == "1-1-1-1 deep" and fmt.n_values > 15 and proxy != "pytorch":
                        continue
                    for bias in (True, False):
                        _say(progress, f"inc table: {arch} {act} {proxy} bias={bias} {fmt.name}")
                        p = _build(build(act, proxy, bias), fmt)
                        r = _count(p)
                        rows.append(result_row(r, p, architecture=arch, activation=act, proxy=proxy, bias=bias))
    a = Analysis("inc_table", "inc with and without bias parameters (exhaustive / structured, exact)",
                 ["architecture", "format", "activation", "proxy", "bias", "k", "points", "ndf", "inc", "method"], rows)
    a.display = _pivot_inc(rows, proxies)
    with_bias = [r for r in rows if r["bias"] and r["inc"] != "0"]
    a.notes.append(f"cells with bias parameters and inc != 0: {len(with_bias)} "
                   + "(" + "; ".join(sorted({f"{r['architecture']} {r['activation']} {r['proxy']}" for r in with_bias}))
                   + ")" if with_bias else "every network with bias parameters has inc = 0")
    a.notes.append("'B=2 neuron x=(3,-3)' with bias: weight fixed to 1, (b, v) free -- ICLR 2024 Lemma 3's "
                   "mechanism (two samples on kinks at once with parallel forms); 'right' = D^+ at every kink.")
    return _done(a, t0, progress)


def _pivot_inc(rows, proxies) -> tuple[list, list]:
    """One line per (architecture, format, activation): inc with / without bias per proxy."""
    cols = ["architecture", "format", "activation"] + [f"inc {'bias' if b else 'no bias'} {p}"
                                                       for b in (True, False) for p in proxies]
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (r["architecture"], r["format"], r["activation"])
        line = out.setdefault(key, dict(zip(cols[:3], key)))
        line[f"inc {'bias' if r['bias'] else 'no bias'} {r['proxy']}"] = f"{r['inc']} / {r['points']}"
    return cols, list(out.values())


def ad_map_networks() -> dict[str, dict]:
    """Two-parameter networks whose AD breaks somewhere: name -> spec (free parameters: x, y axes)."""
    return {
        "v HS(w x + b) summed over B=2 x=(3,-3), w=1, (b, v) free": one_hidden_spec(
            1, act="hardsigmoid", inputs=(("3",), ("-3",)), free=["L1.b", "L2.W"],
            fixed={"L1.W": [["1"]], "L2.b": ["0"]}),
        "no bias: ReLU(a ReLU(u)), proxy ReLU'(0)=1, (u, a) free": two_hidden_spec(
            1, bias=False, proxy="right", free=["L1.W", "L2.W"], fixed={"L3.W": [["1"]], "L3.b": ["0"]}),
    }


# The names the titles above give the two free parameters (x axis, y axis), for the axis labels.
AD_MAP_SYMBOLS = {"v HS(w x + b) summed over B=2 x=(3,-3), w=1, (b, v) free": ("b", "v"),
                  "no bias: ReLU(a ReLU(u)), proxy ReLU'(0)=1, (u, a) free": ("u", "a")}


def ad_map(network: str, fmt_name: str = "e4m3fn", progress=None) -> Analysis:
    """Every point of M x M classified: 0 clean, 1 touched (AD right), 2/3 ndf, 5 inc."""
    import numpy as np

    from fpad import engine

    t0 = time.perf_counter()
    specs = ad_map_networks()
    if network not in specs:
        raise FpadError(f"unknown AD-map network {network!r}; built in: {', '.join(specs)}")
    fmt = get_format(fmt_name)
    p = _build(specs[network], fmt)
    if len(p.free) != 2:
        raise FpadError("an AD map needs exactly two free parameters")
    _say(progress, f"ad map: {network} over {fmt.name}")
    M = fmt.n_values
    codes = engine.count(p, codes=True, progress=False, max_seconds=None).codes.reshape(M, M)  # [x, y index]
    vals = fmt.values()
    counts = {name: int(np.sum(np.isin(codes, cs))) for name, cs in
              (("clean", [0]), ("touched_ok", [1]), ("ndf", [2, 3]), ("inc", [5]))}
    row = {"network": network, "format": fmt.name, "M": M, "x": p.free_names[0], "y": p.free_names[1],
           "points": M * M, **counts, "spec_hash": p.spec_hash, "method": "exhaustive"}
    a = Analysis("ad_map", f"where AD breaks: {network}", list(row), [row])
    sym = AD_MAP_SYMBOLS.get(network)
    x, y = (f"{sym[0]} = {p.free_names[0]}", f"{sym[1]} = {p.free_names[1]}") if sym else p.free_names
    a.data = {"codes": codes, "values": vals.tolist(), "x": x, "y": y,
              "network": network, "format": fmt.name}
    return _done(a, t0, progress)


def ad_maps(formats=("e4m3fn", "e3m2"), networks=None, quick: bool = False, progress=None) -> Analysis:
    """:func:`ad_map` for every built-in network and format: one row and one map each."""
    t0 = time.perf_counter()
    maps = [ad_map(net, f, progress) for net in (networks or list(ad_map_networks())) for f in formats]
    a = Analysis("ad_map", "where AD breaks: every point of M x M", maps[0].columns,
                 [m.rows[0] for m in maps])
    a.data = {"maps": [m.data for m in maps]}
    a.notes.append("codes: clean = no activation input on a kink; ndf = not differentiable; inc = "
                   "differentiable but AD wrong (exact, every point).")
    return _done(a, t0, progress)
