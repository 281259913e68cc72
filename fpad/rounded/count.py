"""Per-point classification under rounded arithmetic, beside the exact model (DESIGN.md).

At a grid point w (parameters in M), the rounded forward pass (:mod:`fpad.rounded.forward`) is a
deterministic function of w. Counted, each exactly:

* ``touched_rounded``: some rounded pre-activation lies on a kink, or some max-pool window's
  stored values tie for the maximum;
* ``flips``: the rounded pass's branch pattern (for each kinked activation: the piece of its
  pre-activation, and whether it sits on a kink; for each max-pool: the first maximiser) differs
  from the exact pass's;
* ``ad_branch_wrong``: P (exact arithmetic) is differentiable at w, but AD run on the rounded
  pass's branch decisions differs from DP(w). That AD takes, at each activation, the proxy value
  if the *rounded* pre-activation is on a kink and the slope of its piece otherwise, and routes
  each max to the rounded pass's first maximiser; its chain-rule factors are exact (weights and
  exact node values), so rounding noise is separated from branch errors. Where rounding changes
  no branch this is the exact model's AD, so the exact model's inc points are counted too;
* ``nonfinite``: the rounded pass overflows to inf/NaN; such points are excluded from the three
  counts above (they are still classified by the exact model).

The exact-model counts (touched, ndf, inc, clarke_ok) of the same points come from the exact
oracle (:func:`fpad.oracle.classify`). Everything in this module is the slow exact path, a point at a time.
The compiled twin, :mod:`fpad.rounded._kernels`, decides the points of one-hidden-layer dense
networks and defers the exact model's touched points here.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace

import numpy as np

from fpad import interrupt, ops, oracle
from fpad.errors import FpadError
from fpad.rounded.arith import EXACT, Arith
from fpad.rounded import _kernels as _rk
from fpad.rounded.forward import Pass, forward

ROUNDED_KEYS = ("touched_rounded", "flips", "ad_branch_wrong", "nonfinite")


@dataclass
class PointVerdict:
    exact: oracle.PointResult
    nonfinite: bool
    touched_rounded: bool
    flips: bool
    ad_branch_wrong: bool


def _live_nodes(problem):
    """The program's kinked ACT and multi-argument MAX nodes that P depends on, as (index, node)."""
    prog = problem.program
    live = prog.live_nodes()
    return [(i, n) for i, n in enumerate(prog.nodes) if i in live and (ops.is_kinked_act(n) or ops.is_tie_node(n))]


def _pattern(nodes, p: Pass) -> tuple:
    out = []
    for _, n in nodes:
        if ops.is_kinked_act(n):
            z = p.pre[n.tag]
            out.append((n.act.piece(z), n.act.kink_index(z) >= 0))
        else:
            out.append(p.winner(n.tag))
    return tuple(out)


def _touched(nodes, p: Pass) -> bool:
    for _, n in nodes:
        if ops.is_kinked_act(n):
            if n.act.kink_index(p.pre[n.tag]) >= 0:
                return True
        else:
            vals = p.windows[n.tag]
            if sum(v == max(vals) for v in vals) > 1:
                return True
    return False


class RoundedBranches(ops.Rules):
    """AD's rules with the branch decisions of a rounded pass: at each activation the proxy if
    the *rounded* pre-activation is on a kink, else the slope of its piece; each max routed to the
    rounded pass's first maximiser. The chain-rule factors stay exact (the caller's values)."""

    def __init__(self, proxy, p: Pass):
        self.proxy, self.p = proxy, p

    def act_slope(self, i, node, x, dx=None):
        return self.proxy.derivative(node.act, self.p.pre[node.tag])

    def max_winner(self, i, node, values, dots=None):
        return self.p.winner(node.tag)


def ad_on_branches(problem, values, p: Pass) -> tuple[Fraction, ...]:
    """AD's gradient (w.r.t. ``problem.wrt``) with the branch decisions of pass ``p`` and exact
    chain-rule factors (``values``: the exact node values of the program)."""
    _, grad = ops.backward(problem.program, values, RoundedBranches(problem.proxy, p))
    return tuple(grad.get(k, Fraction(0)) for k in problem.wrt)


def classify_rounded(problem, free_values, arith: Arith, nodes=None) -> PointVerdict:
    """Classify one grid point (free values in ``problem.free`` order) in both arithmetics."""
    from fpad.ad import forward as exact_forward

    nodes = _live_nodes(problem) if nodes is None else nodes
    w = problem.full_point(free_values)
    ex = oracle.classify(problem, free_values)
    r = forward(problem.spec, w, arith)
    if r.nonfinite:
        return PointVerdict(ex, True, False, False, False)
    e = forward(problem.spec, w, EXACT)
    wrong = False
    if ex.differentiable:
        wrong = ad_on_branches(problem, exact_forward(problem.program, w), r) != tuple(ex.dp)
    return PointVerdict(ex, False, _touched(nodes, r), _pattern(nodes, r) != _pattern(nodes, e), wrong)


def _grid_digits(m: int, k: int, start: int, size: int) -> np.ndarray:
    """Rows ``start .. start + size - 1`` of the grid in itertools.product order (first parameter
    the most significant digit), as value indices."""
    if m ** k >= 2**62:
        raise FpadError(f"a grid of {m}^{k} points cannot be enumerated; use --sample N")
    idx = np.arange(start, start + size, dtype=np.int64)
    out = np.empty((size, k), dtype=np.int64)
    for j in range(k - 1, -1, -1):
        idx, out[:, j] = np.divmod(idx, m)
    return out


def count_rounded(problem, arith: Arith, *, sample: int | None = None, seed: int = 0, level: float = 0.95,
                  max_seconds: float | None = 3600.0, progress=None, value_range: Fraction | None = None,
                  kernel: bool | None = None):
    """Exact-model and rounded counts over the whole grid, or over ``sample`` uniform points (a
    labelled estimate). Returns a :class:`fpad.results.CountResult` whose ``extra["rounded"]``
    holds the rounded counts and ``arith``. ``value_range=r`` restricts every free parameter to
    the format's values in [-r, r] (``M`` itself otherwise; the restriction is recorded): uniform
    draws from all of M put most points beyond any trained network's scale, where the rounded pass
    simply overflows. ``kernel``: None uses the compiled kernel (:mod:`fpad.rounded._kernels`)
    where it applies and the slow path otherwise, False the slow path only, True the kernel or an
    error; ``extra["rounded"]`` records the ``method`` and how many points the kernel ``deferred``
    to the slow path (the exact model's touched points)."""
    from fpad.estimate import clopper_pearson, sample_digits, sample_interval
    from fpad.results import count_result
    from fpad.sweeps import exact_str

    if arith.exact:
        raise FpadError("count_rounded needs a rounded arithmetic (exact counts go through fpad.engine.count)")
    t0 = time.perf_counter()
    vals = problem.fmt.values_fraction()
    if value_range is not None:
        vals = [v for v in vals if abs(v) <= value_range]
    m, k = len(vals), len(problem.free)
    n_points = m ** k
    n = n_points if sample is None else sample
    if n < 1:
        raise FpadError(f"--sample needs a positive number of points, got {n}")
    nodes = _live_nodes(problem)
    data = _rk.prepare(problem, arith, vals) if kernel is not False else "slow path asked for"
    if isinstance(data, str) and kernel:
        raise FpadError(f"the rounded kernel does not apply: {data}")
    if max_seconds is not None:  # the budget: time a few points first (slow path: exact
        # classifications; kernel: a block of points, the exact-model touched ones among them
        # decided by the slow path)
        probe = [[(7 * j + 3 * i) % m for j in range(k)] for i in range(min(n, 8 if isinstance(data, str) else 2048))]
        if not isinstance(data, str):
            _rk.flags(data, np.array(probe[:1], dtype=np.int64), np.array([float(v) for v in vals]))  # compile / load
        tp = time.perf_counter()
        if isinstance(data, str):
            for row in probe:
                classify_rounded(problem, [vals[d] for d in row], arith, nodes)
        else:
            f = _rk.flags(data, np.array(probe, dtype=np.int64), np.array([float(v) for v in vals]))
            for row in np.array(probe)[(f & _rk.DEFER) != 0].tolist():
                classify_rounded(problem, [vals[d] for d in row], arith, nodes)
        rate = len(probe) / max(time.perf_counter() - tp, 1e-9)
        if n / rate > max_seconds:
            what = f"grid of {m}^{k} points" if sample is None else f"sample of {n:,} points"
            raise FpadError(f"{what} under --arith {arith.spec} would take about {n / rate:,.0f} s at the measured "
                            f"{rate:,.0f} points/s (every point decided exactly), over "
                            f"--max-seconds {max_seconds:g}; use --sample N with N up to about "
                            f"{max(1, int(rate * max_seconds)):,}, or a larger --max-seconds")
    if sample is None:
        points = itertools.product(vals, repeat=k)
    else:
        # the engine's sampling by coordinates: each parameter an independent uniform digit
        points = ([vals[d] for d in row] for row in sample_digits(m, k, n, seed).tolist())
    c = dict(touched=0, ndf=0, inc=0, clarke_ok=0, **{key: 0 for key in ROUNDED_KEYS})

    def add(v: PointVerdict):
        ex = v.exact
        c["touched"] += ex.is_touched
        c["ndf"] += ex.ndf
        c["inc"] += ex.inc
        c["clarke_ok"] += bool(ex.ndf and ex.clarke_ok)
        c["nonfinite"] += v.nonfinite
        c["touched_rounded"] += v.touched_rounded
        c["flips"] += v.flips
        c["ad_branch_wrong"] += v.ad_branch_wrong

    deferred = 0
    if isinstance(data, str):
        for j, pt in enumerate(points):
            if j % 256 == 0:
                interrupt.check()
            add(classify_rounded(problem, list(pt), arith, nodes))
            if progress and j % 1000 == 999:
                progress(j + 1, n)
    else:
        fvals = np.array([float(v) for v in vals])  # exact: values of a format
        chunk = 1 << 16
        for start in range(0, n, chunk):
            interrupt.check()
            size = min(chunk, n - start)
            digits = (_grid_digits(m, k, start, size) if sample is None else sample_digits(m, k, size, seed, start))
            f = _rk.flags(data, digits, fvals)
            done = (f & _rk.DEFER) == 0
            for key, bit in (("nonfinite", _rk.NONFINITE), ("touched_rounded", _rk.TOUCHED), ("flips", _rk.FLIPS),
                             ("ad_branch_wrong", _rk.WRONG)):
                c[key] += int(np.count_nonzero(done & ((f & bit) != 0)))
            for row in digits[~done].tolist():  # exact-model touched points: the oracle decides
                add(classify_rounded(problem, [vals[d] for d in row], arith, nodes))
                deferred += 1
            if progress:
                progress(start + size, n)
    rounded = {"arith": arith.spec, "inputs": f"rounded to {arith.out.name} first",
               "values": "all of M" if value_range is None else f"M in [-{value_range}, {value_range}] ({m} values)",
               **{key: c[key] for key in ROUNDED_KEYS},
               "method": "slow exact path" if isinstance(data, str) else "kernel", "deferred": deferred}
    if isinstance(data, str):
        rounded["kernel_not_used"] = data
    ci = None
    extra = {"rounded": rounded}
    if sample is not None:
        ci = sample_interval(c["ndf"], c["inc"], n, level)
        finite = n - c["nonfinite"]
        rounded["ci"] = {key: list(clopper_pearson(c[key], finite, level)) for key in ROUNDED_KEYS[:3]}
        extra.update(grid_points=exact_str(n_points), seed=seed, sample=n)
    res = count_result(problem, SimpleNamespace(points=n, **c), "exhaustive" if sample is None else "sample",
                       elapsed_s=time.perf_counter() - t0, ci=ci, extra=extra)
    res.M = m  # the values each parameter ranged over (fewer than the format's with value_range)
    return res
