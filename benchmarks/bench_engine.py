"""Benchmark of the compiled grid kernels (fpad.enumerate) against the exact oracle and naive float64.

    python benchmarks/bench_engine.py            # B1-B5 (full grids or 2e7-point sub-ranges; minutes)
    python benchmarks/bench_engine.py --quick    # scaled-down grids (seconds)

B1  one hidden ReLU neuron with bias, minibatch x = [1, -0.5, 0.75, 3], sum objective,
    free (w, b, v, c) over e4m3fn: 253^4 = 4.1e9 points.
B2  the same network, free (w, b) over bf16 (v, c drawn with seed 0): 65279^2 = 4.3e9 points.
B3  1-2-2-1 ReLU network with biases, input [0.5], the four second-layer weights free over e4m3fn,
    the other parameters drawn with seed 0: 4.1e9 points.
B3b B3 with a hand-fixed first layer so that both hidden units are active (with seed 0 one is
    dead and B3 touches no point at all).
B4  (general per-point path) the 1-2-2-1 network with the four first-layer parameters free over
    e4m3fn: a sub-range of 2e7 points (the hidden ReLUs feed the second layer's kinks, so every
    point is evaluated; B1-B3 take the affine path, which solves the inner kinks per block).
B5  relu(w0 + w1 - 2^30) over bf16, free (w0, w1): a sub-range of 2e7 points starting at the
    block w0 = 2^-32, where plain float64 cancels catastrophically (the filter + oracle decide).

For each: wall time and points/s of count_range over the grid (one process, numba threads),
the fallback (points decided by the oracle), the oracle's own speed on a sample and the ratio,
and how many points plain vectorised float64 gets wrong (touched set) on sampled blocks. Two
baselines measured in the same run give the ratios of issue 10's targets: a NumPy float64 brute
force (the network by NumPy broadcasting, each node on the grid of the parameters it depends on,
the touched set only, so it does less than fpad) and a trivial numba kernel (one multiply-add and compare per point).
"""

from __future__ import annotations

import argparse
import resource
import time

import numba
import numpy as np

from fpad import enumerate as E
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify

X = [[1], ["-0.5"], ["0.75"], [3]]


def b1(fmt):
    return NetworkSpec.from_dict({
        "inputs": X, "layers": [{"kind": "dense", "width": 1, "activation": "relu"},
                                {"kind": "dense", "width": 1, "activation": "identity"}],
        "params": {"free": ["L1.W", "L1.b", "L2.W", "L2.b"]}}).build(get_format(fmt))


def b2(fmt):
    return NetworkSpec.from_dict({
        "inputs": X, "layers": [{"kind": "dense", "width": 1, "activation": "relu"},
                                {"kind": "dense", "width": 1, "activation": "identity"}],
        "params": {"free": ["L1.W", "L1.b"], "seed": 0}}).build(get_format(fmt))


def _net122(fmt, free, fixed=None):
    return NetworkSpec.from_dict({
        "inputs": [["0.5"]], "layers": [{"kind": "dense", "width": 2, "activation": "relu"},
                                        {"kind": "dense", "width": 2, "activation": "relu"},
                                        {"kind": "dense", "width": 1, "activation": "identity"}],
        "params": {"free": free, "seed": 0, "fixed": fixed or {}}}).build(get_format(fmt))


def b3b(fmt):
    # B3 with a hand-fixed first layer: both hidden units active (h1 = (1, 1)), so the second
    # layer's pre-activations W[i,0] + W[i,1] + b[i] reach their kinks (with seed 0, B3's second
    # hidden unit is dead and no point is touched)
    return _net122(fmt, ["L2.W"], {"L1.W": [[2], [-2]], "L1.b": [0, 2], "L2.b": [-1, "0.5"],
                                   "L3.W": [[1, -1]], "L3.b": [0]})


def b3(fmt):
    return _net122(fmt, ["L2.W"])


def b4(fmt):
    return _net122(fmt, ["L1.W", "L1.b"])


def b5(fmt):
    # relu(w0 + w1 - 2^30): plain float64 rounds -2^30 + w0 to -2^30 for tiny w0, and then
    # w1 = 2^30 looks like a kink although the exact pre-activation is w0 != 0
    return NetworkSpec.from_dict({
        "inputs": [[1, 1]], "layers": [{"kind": "dense", "width": 1, "activation": "relu"},
                                       {"kind": "dense", "width": 1, "activation": "identity"}],
        "params": {"free": ["L1.W"], "seed": 0, "fixed": {"L1.b": [-2**30]}}}).build(get_format(fmt))


FULL = [("B1", b1, "e4m3fn", None), ("B2", b2, "bf16", None), ("B3", b3, "e4m3fn", None),
        ("B3b", b3b, "e4m3fn", None), ("B4", b4, "e4m3fn", 2 * 10**7), ("B5", b5, "bf16", 2 * 10**7)]
QUICK = [("B1", b1, "e3m2", None), ("B2", b2, "e4m3fn", None), ("B3", b3, "e3m2", None),
         ("B3b", b3b, "e3m2", None), ("B4", b4, "e3m2", 2 * 10**6), ("B5", b5, "bf16", 2 * 10**6)]


def oracle_rate(pb, compiled, n, rng):
    idx = rng.integers(0, compiled.n_points, n)
    t0 = time.perf_counter()
    for i in idx:
        classify(pb, compiled.free_values(int(i)))
    return n / (time.perf_counter() - t0)


@numba.njit(parallel=True)
def _trivial(table, n_blocks, a):
    """The speed of light: one multiply-add and one compare per point (x = a v + b, v the inner
    value, b the block's value), counted; no verdict, no exactness."""
    m = table.shape[0]
    ngroups = 8 * numba.get_num_threads()
    hits = np.zeros(ngroups, np.int64)
    for g in numba.prange(ngroups):
        c = 0
        for blk in range(g * n_blocks // ngroups, (g + 1) * n_blocks // ngroups):
            b = table[blk % m]
            for d in range(m):
                c += table[d] * a + b == 0.0
        hits[g] = c
    return hits.sum()


def trivial_rate(compiled, n_points):
    """Points/s of :func:`_trivial` over n_points (whole blocks), best of 3 (compiled first)."""
    n_blocks = max(1, n_points // compiled.m)
    _trivial(compiled.table, 1, -0.5)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        _trivial(compiled.table, n_blocks, -0.5)
        best = min(best, time.perf_counter() - t0)
    return n_blocks * compiled.m / best


def numpy_touched(compiled, outer):
    """Touched points among those whose first free parameter has digit ``outer``: the network in
    plain float64 NumPy (fpad.enumerate.float64_evaluate) over the other free parameters by
    broadcasting (each node on the grid of the parameters it depends on, as NumPy users write it),
    kink tests by ==. NOT exact in general; it matches the exact count on the exact-float
    workloads (checked in the output)."""
    k, m = compiled.k, compiled.m

    def param(j):
        if j == 0:
            return compiled.table[outer]
        axes = [1] * (k - 1)
        axes[j - 1] = m
        return compiled.table.reshape(axes)

    touched, out = E.float64_evaluate(compiled, param)
    np.broadcast_to(out, (m,) * (k - 1)).sum()  # the output at every point, as a user's loop computes it
    return int(np.broadcast_to(touched, (m,) * (k - 1)).sum())


def numpy_rate(compiled, seconds=2.0):
    """(points/s, points, touched) of :func:`numpy_touched` over the first outer digits, for
    about ``seconds``."""
    t0 = time.perf_counter()
    done = touched = outer = 0
    while outer < compiled.m and (outer == 0 or time.perf_counter() - t0 < seconds):
        touched += numpy_touched(compiled, outer)
        done += compiled.m ** (compiled.k - 1)
        outer += 1
    return done / (time.perf_counter() - t0), done, touched


def naive_wrong(compiled, rng, max_points):
    """Points of randomly chosen blocks (all values of the last free parameter) where plain
    float64 disagrees with the exact kernel about being touched."""
    m = compiled.m
    n_blocks = max(1, min(compiled.n_points // m, max_points // m))
    wrong = checked = 0
    for blk in rng.choice(compiled.n_points // m, n_blocks, replace=False):
        a, b = int(blk) * m, (int(blk) + 1) * m
        naive = E.naive_float64_touched(compiled, a, b)
        exact = E.point_codes(compiled, a, b) != 0
        wrong += int((naive != exact).sum())
        checked += b - a
    return wrong, checked


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="scaled-down grids (a few seconds)")
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B3")
    ap.add_argument("--oracle-sample", type=int, default=300)
    ap.add_argument("--naive-points", type=int, default=2 * 10**7, help="points of sampled blocks for naive float64")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"numba threads: {numba.get_num_threads()}")
    for name, make, fmt, limit in QUICK if args.quick else FULL:
        if args.only and name not in args.only.split(","):
            continue
        pb = make(fmt)
        compiled = E.compile_problem(pb)
        E.count_range(compiled, 0, min(compiled.n_points, 10**4))  # warm-up (numba cache)
        start = 0
        if name == "B5":
            start = int(np.searchsorted(compiled.table, 2.0**-32)) * compiled.m
        stop = compiled.n_points if limit is None else min(start + limit, compiled.n_points)
        t0 = time.perf_counter()
        c = E.count_range(compiled, start, stop)
        wall = time.perf_counter() - t0
        rate = c.points / wall
        orate = oracle_rate(pb, compiled, args.oracle_sample if not args.quick else 60, rng)
        wrong, checked = naive_wrong(compiled, rng, args.naive_points if not args.quick else 2 * 10**4)
        np_rate, np_points, np_touched = numpy_rate(compiled, 0.5 if args.quick else 2.0)
        fp_touched = E.count_range(compiled, 0, np_points).touched
        triv = trivial_rate(compiled, stop - start)
        print(f"{name} {fmt:7s} free={len(pb.free)} points={c.points:,}{'' if limit is None else ' (sub-range)'} "
              f"wall={wall:.2f}s rate={rate:.3g} pts/s touched={c.touched:,} ndf={c.ndf:,} inc={c.inc:,} "
              f"fallback={c.fallback:,} exact-float={compiled.all_exact} affine={bool(compiled.S.fast[0])} | "
              f"oracle {orate:.3g} pts/s, ratio {rate / orate:.3g}x | naive float64 wrong on touched: "
              f"{wrong} of {checked:,} sampled points")
        print(f"    same run: NumPy float64 brute force {np_rate:.3g} pts/s (touched {np_touched:,} of its first "
              f"{np_points:,} points, exact {fp_touched:,}), fpad/NumPy {rate / np_rate:.3g}x | trivial kernel "
              f"{triv:.3g} pts/s, fpad/trivial {rate / triv:.3g}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
