"""``fpad count``: exact counts of ndf / inc points over the whole free-parameter grid M^k.

    fpad count NET.toml --format e4m3fn [--free L1.W L1.b] [--json]
    fpad count NET.toml --format bf16 --sample 100000 --seed 1        # labelled estimate
    fpad count NET.toml --format bf16 --line "L1.b[0]" --sample 2000   # labelled estimate
    fpad count --example lemma3 --format e5m2 --dask local

Long exact runs are cut into chunks committed to a progress store (``./fpad-runs/<run
key>.sqlite`` by default): interrupt the command at any time and run it again to resume. A grid
that cannot finish within ``--max-seconds`` is refused up front with its size, the estimated time
and the options that fit. See :mod:`fpad.engine`.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

from fpad.engine import DASK_TIMEOUT_S, DEFAULT_MAX_SECONDS, check_dask_timeout, count
from fpad.errors import FpadError
from fpad.network import split_names
from fpad.results import scientific
from fpad.rounded.arith import parse_arith
from fpad.rounded.count import ROUNDED_KEYS, count_rounded
from fpad.sweeps import long_ints


HELP = "count ndf / inc points exactly over the free-parameter grid (or a labelled estimate)"
DESCRIPTION = ("Count, exactly, the points of the free-parameter grid M^k where the network is not "
               "differentiable (ndf) or where AD returns a wrong derivative (inc); or, for grids too large, "
               "a clearly labelled estimate (--sample, --line).")


def arguments(p) -> None:
    from fpad.cli.check import network_arguments

    network_arguments(p, "number format, e.g. e4m3fn, e5m2, bf16, e2m1")
    p.add_argument("--free", nargs="*", metavar="NAME",
                   help='free parameters, replacing [params].free: "L1.W" "L1.b[0]" or "L1.W,L1.b"')
    p.add_argument("--method", choices=["auto", "exhaustive", "structured"], default="auto",
                   help="exact method: structured (fast exact reductions), exhaustive (every point), "
                   "auto = structured when it applies, else exhaustive (default)")
    est = p.add_argument_group("estimates (labelled as such in the output)")
    est.add_argument("--sample", type=int, metavar="N",
                     help="classify N uniformly drawn points exactly; 95%% Clopper-Pearson interval. "
                     "With --line: the number of lines (default 1000)")
    est.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of --sample/--line, an integer >= 0 (default 0)")
    est.add_argument("--line", metavar="PARAM",
                     help="enumerate every value of free parameter PARAM along N lines whose other "
                     "parameters are drawn; interval treats lines as clusters")
    est.add_argument("--level", type=float, default=0.95, help="confidence level of the interval (default 0.95)")
    run = p.add_argument_group("long runs")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="PATH",
                       help="progress store (sqlite); default ./fpad-runs/<run key>.sqlite. Re-running "
                       "the same command resumes from it")
    where.add_argument("--no-store", action="store_true", help="keep progress in memory only (no resume)")
    run.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, metavar="S",
                     help=f"refuse up front a run estimated to take longer (default {DEFAULT_MAX_SECONDS:g}; inf = no limit)")
    run.add_argument("--chunk-size", type=int, metavar="N",
                     help="points per chunk (default: about 1/1000 of the work, 65536..4194304)")
    run.add_argument("--dask", metavar="ADDR",
                     help="run chunks on Dask: 'local' (2 worker processes here) or tcp://HOST:PORT "
                     '(needs pip install "fpad[dask]")')
    run.add_argument("--dask-timeout", type=float, default=DASK_TIMEOUT_S, metavar="S",
                     help=f"seconds to wait for the Dask scheduler (default {DASK_TIMEOUT_S:g})")
    p.add_argument("--arith", metavar="A", default="exact",
                   help="arithmetic of the forward pass: exact (default, the papers' model) or rounded:"
                   "mul=F1,acc=F2,out=F3 (products, partial sums, stored values; each F a format, fp32, "
                   "fp64 or exact), rounded:bf16, rounded:e4m3fn/fp32; adds touched_rounded, flips, "
                   "ad_branch_wrong and nonfinite (decided point by point: small grids, or --sample N)")
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")


def _check_numbers(args) -> None:
    """Refuse, before any work, numbers that argparse's types let through."""
    if not args.max_seconds > 0:  # also nan and -inf
        raise FpadError(f"--max-seconds must be a positive number of seconds (or inf for no limit), "
                        f"got {args.max_seconds:g}")
    if args.seed < 0:
        # random.Random(-7) is random.Random(7): a negative seed would draw 7's sample under
        # another label.
        raise FpadError(f"--seed must be an integer >= 0, got {args.seed}")
    check_dask_timeout(args.dask_timeout)


def handler(args) -> int:
    from fpad.cli.check import load_spec

    _check_numbers(args)
    spec, fmt, _ = load_spec(args.network, args.example, args.format)
    free = None if args.free is None else [n for item in args.free for n in split_names(item)]
    problem = spec.build(fmt, free=free)
    store = None if args.no_store else (args.store or True)
    max_s = None if math.isinf(args.max_seconds) else args.max_seconds
    arith = parse_arith(args.arith)
    if arith.exact:
        res = count(problem, args.method, sample=args.sample, line=args.line, seed=args.seed,
                    level=args.level, chunk_size=args.chunk_size, store=store, dask=args.dask,
                    dask_timeout=args.dask_timeout, max_seconds=max_s,
                    progress=False if args.json else None)
    else:
        res = _count_rounded(problem, arith, args, max_s)
    if args.json:
        with long_ints():  # a width-1024 grid has 253^3073 points: JSON integers of any size
            out = res.to_json()
            out["arith"] = arith.spec
            out.update({k: v for k, v in res.extra.get("rounded", {}).items() if k in ROUNDED_KEYS})
            out["network"] = spec.source
            out["spec_hash"] = problem.spec_hash
            out["drawn_fixed"] = {"seed": problem.seed, "values": {k: str(v) for k, v in problem.drawn.items()}}
            print(json.dumps(out, indent=2))
    else:
        print(render(res, spec.source, _drawn_text(problem)))
    return 0


def _count_rounded(problem, arith, args, max_s):
    """--arith rounded:...: every point decided exactly, one at a time (no store): by the compiled
    kernel (fpad.rounded._kernels) for one-hidden-layer dense nets with an identity output and
    reduce "sum", the exact model's touched points deferred to the slow exact path; by the slow
    path alone otherwise (the result's extra["rounded"] says which, and why)."""
    if args.line or args.dask or args.method != "auto":
        raise FpadError("--arith rounded:... counts every grid point, or --sample N points, one at a time; "
                        "it takes no --line, --dask or --method")
    return count_rounded(problem, arith, sample=args.sample, seed=args.seed, level=args.level,
                         max_seconds=max_s)


def _pct(x) -> str:
    return f"{100 * float(x):.4g}%"


def _int(n: int, width: int = 22) -> str:
    """An exact count for a person: with thousands separators, or, past 20 digits, as a
    mantissa and exponent (the exact integer is in --json)."""
    return f"{n:>{width},}" if n < 10**20 else scientific(n, 5).rjust(width)


def _frac(q) -> str:
    """An exact fraction, or its decimal value when numerator or denominator is too long to read."""
    if q.denominator < 10**20 and abs(q.numerator) < 10**20:
        return f"{q} (~{float(q):.4g})"
    return f"~{float(q):.6g} (exact fraction in --json)"


def _names(names: list[str], show: int = 12) -> str:
    if len(names) <= show:
        return ", ".join(names)
    return ", ".join(names[:show]) + f", ... ({len(names) - show} more; all in --json)"


def _drawn_text(problem) -> str | None:
    drawn = problem.drawn
    if not drawn:
        return None
    shown = ", ".join(f"{k}={v}" for k, v in list(drawn.items())[:8])
    more = f", ... ({len(drawn) - 8} more in --json)" if len(drawn) > 8 else ""
    return f"drawn    {shown}{more} (fixed parameters drawn from {problem.fmt.name} with seed {problem.seed})"


def render(res, source: str, drawn: str | None = None) -> str:
    """A plain-text table of a :class:`~fpad.results.CountResult`; estimates say so loudly."""
    lines = []
    if res.is_estimate:
        how = (f"{res.points:,} points drawn uniformly (seed {res.extra.get('seed')})"
               if res.method == "sample" else
               f"{res.extra.get('lines'):,} lines along {res.extra.get('line')}, each all {res.M} values "
               f"(seed {res.extra.get('seed')})")
        lines += ["*" * 78,
                  f"*** ESTIMATE ({res.method}): {how}",
                  f"*** of a grid of {int(res.extra.get('grid_points', 0)):,} points. Counts below are exact for",
                  f"*** the points examined; densities are estimates with {res.ci['level']:.0%} intervals.",
                  "*" * 78]
    else:
        lines.append(f"EXACT ({res.method}): every one of the {res.M}^{len(res.free)} grid points")
    lines.append(f"network  {source}")
    lines.append(f"format   {res.format} (|M| = {res.M}); n (kinks) = {res.kinks_total}")
    lines.append(f"free     {len(res.free)}: {_names(res.free)}")
    if drawn:
        lines.append(drawn)
    lines.append("")
    rows = [("points", res.points, None), ("touched", res.touched, None), ("ndf", res.ndf, "ndf"),
            ("inc", res.inc, "inc"), ("clarke_ok", res.clarke_ok, None)]
    for name, n, ci_key in rows:
        row = f"  {name:<10}{_int(n)}"
        if name != "points" and res.points:
            row += f"   {_pct(Fraction(n, res.points)):>10} of points"
        if name == "clarke_ok":
            row += "  (ndf points where AD is in the Clarke set)"
        if ci_key and res.ci:
            lo, hi = res.ci[ci_key]
            row += f"   {res.ci['level']:.0%} interval [{_pct(lo)}, {_pct(hi)}]"
        lines.append(row)
    rounded = res.extra.get("rounded")
    if rounded:
        lines.append(f"  under --arith {rounded['arith']} (inputs {rounded['inputs']}):")
        for key in ROUNDED_KEYS:
            row = f"  {key:<16}{_int(rounded[key], 16)}"
            if res.points:
                row += f"   {_pct(Fraction(rounded[key], res.points)):>10} of points"
            if key in rounded.get("ci", {}):
                lo, hi = rounded["ci"][key]
                row += f"   {res.ci['level']:.0%} interval [{_pct(lo)}, {_pct(hi)}]"
            lines.append(row)
    lines.append("")
    lines.append(f"  ndf density {'(ESTIMATE) ' if res.is_estimate else ''}{_frac(res.density)};  "
                 f"bound n/|M| = {_frac(res.bound)};  bound holds: {'yes' if res.bound_holds else 'NO'}")
    for kind, points in sorted(res.witnesses.items()):
        for w in points:
            lines.append(f"  witness {kind}: " + ", ".join(f"{n}={v}" for n, v in zip(res.free, w)))
    if res.per_neuron:
        keys = sorted({k for v in res.per_neuron.values() for k in v})
        lines.append("")
        lines.append("  per neuron: " + "  ".join(f"{k:>10}" for k in keys))
        for tag, v in res.per_neuron.items():
            lines.append(f"  {tag:<12}" + "  ".join(_int(v.get(k, 0), 10) for k in keys))
    lines.append("")
    tail = f"elapsed {res.elapsed_s:.3g} s"
    if "run_key" in res.extra:
        tail += f"; run key {res.extra['run_key']}"
    if "store" in res.extra:
        tail += f"; store {res.extra['store']} ({res.extra.get('resumed_chunks', 0)} of {res.extra['chunks']} chunks resumed)"
    lines.append(tail)
    if res.is_estimate:
        lines.append("*** ESTIMATE: not an exact count of the grid.")
    return "\n".join(lines)

