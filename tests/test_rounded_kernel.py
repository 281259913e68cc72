"""The compiled rounded kernel (fpad.rounded._kernels) against its slow twin
(fpad.rounded.count.classify_rounded): every point of small grids, random small nets, and the
exact rounding primitives against fpad.rounded.arith.Rounding."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.rounded import _kernels as rk
from fpad.rounded.arith import Rounding, parse_arith
from fpad.rounded.count import _live_nodes, classify_rounded, count_rounded
from fpad.sweeps import one_hidden_spec


def _compare(problem, arith, digits, vals):
    """Kernel flags == slow verdicts at every row; returns (per-key totals, deferred)."""
    a = parse_arith(arith)
    data = rk.prepare(problem, a, vals)
    assert not isinstance(data, str), data
    flags = rk.flags(data, np.asarray(digits, dtype=np.int64), np.array([float(v) for v in vals]))
    nodes = _live_nodes(problem)
    tot, deferred = np.zeros(4, int), 0
    for row, f in zip(np.asarray(digits).tolist(), flags.tolist()):
        v = classify_rounded(problem, [vals[d] for d in row], a, nodes)
        assert bool(f & rk.DEFER) == v.exact.is_touched  # deferred = the exact model's touched points
        if f & rk.DEFER:
            deferred += 1
            continue
        want = (v.nonfinite, v.touched_rounded, v.flips, v.ad_branch_wrong)
        assert (bool(f & 1), bool(f & 2), bool(f & 4), bool(f & 8)) == want, (row, want, f)
        tot += np.array(want)
    return tot, deferred


W3 = ["L1.W", "L1.b", "L2.W"]  # three free parameters (L2.b fixed at 0): 15^3 = 3375 points of e2m1

CASES = [  # arith, activation, inputs, which of (nonfinite, touched_rounded, flips, ad_branch_wrong) occur
    # e2m1 is a finite format: overflow saturates, never nonfinite; 0.3 -> 1/2 and 1/2 * 1/2 -> 0 (tie to
    # even) underflows below e2m1's smallest subnormal 1/2
    ("rounded:e2m1", "relu", (("0.3",),), (0, 1, 1, 1)),
    # fn family: 0.3 -> 1/4; 6 * 1/4 + 6 -> 8 and 6 * 8 = 48 overflows e3m1fn's max 16 to NaN; 6 * 1/4 - 3/2 = 0
    # is rounded onto the kink where the exact 6 * 0.3 - 3/2 = 0.3 is not; slopes 1/100 by the ratio rule
    ("rounded:e3m1fn", "leaky_relu", (("0.3",),), (1, 1, 1, 1)),
    # ieee family: 20000 -> 20480 in e5m2, 3 * 20480 rounds past e5m2's max 57344 to inf
    ("rounded:mul=e5m2,acc=fp16,out=e5m2", "abs", (("0.3",), ("-20000",)), (1, 1, 1, 1)),
    # products exact, fp32 sums; hardsigmoid's 1/6 rounded by the ratio rule
    ("rounded:e4m3fn/fp32", "hardsigmoid", (("2.2",), ("-3",)), (0, 1, 1, 1)),
    # kinks -1/3, 1/3 that are not floats: 0.3333 -> 0.333984375 in bf16 crosses 1/3
    ("rounded:bf16", "hardtanh:-1/3:1/3", (("0.3333",), ("0.9",)), (0, 0, 1, 1)),
    # a wider accumulator than the products and outputs; relu6's kink at 6 = e2m1's max
    ("rounded:mul=e2m1,acc=e3m2,out=e2m1", "relu6", (("1.25",),), (0, 1, 1, 1)),
]


@pytest.mark.parametrize("arith,act,inputs,occur", CASES)
def test_kernel_equals_slow_twin_on_whole_grids(arith, act, inputs, occur):
    p = NetworkSpec.from_dict(one_hidden_spec(1, act=act, inputs=inputs, free=W3, fixed={"L2.b": ["0"]})
                              ).build(get_format("e2m1"))
    vals = p.fmt.values_fraction()
    digits = list(itertools.product(range(len(vals)), repeat=len(p.free)))
    assert len(digits) == 15**3
    tot, deferred = _compare(p, arith, digits, vals)
    assert deferred < len(digits) // 4  # most points decided by the kernel
    assert tuple(int(t > 0) for t in tot) == occur


def _flags_at(p, arith, point):
    vals = [Fraction(v) for v in point]
    assert set(vals) <= set(p.fmt.values_fraction())
    data = rk.prepare(p, parse_arith(arith), vals)
    row = np.arange(len(vals), dtype=np.int64).reshape(1, -1)  # the point itself: value j of parameter j
    return int(rk.flags(data, row, np.array([float(v) for v in vals]))[0])


def test_underflow_and_overflow_points_by_hand():
    """Points whose verdicts are derived by hand (free order: w, b, v, c)."""
    x03 = NetworkSpec.from_dict(one_hidden_spec(1, inputs=(("0.3",),))).build(get_format("e2m1"))
    # 0.3 -> 1/2; 1/2 * 1/2 = 1/4, a tie between 0 and 1/2 -> 0: the rounded pre-activation sits on relu's
    # kink (exact: 0.15 > 0), so touched_rounded and flips; AD takes relu'(0) = 0, DP(w) = v x = 0.3
    assert _flags_at(x03, "rounded:e2m1", ("0.5", "0", "1", "0")) == rk.TOUCHED | rk.FLIPS | rk.WRONG
    # the same with v = 0: the branch still flips, but the gradient w.r.t. w and b is 0 either way
    assert _flags_at(x03, "rounded:e2m1", ("0.5", "0", "0", "0")) == rk.TOUCHED | rk.FLIPS
    x20 = NetworkSpec.from_dict(one_hidden_spec(1, inputs=(("20",),))).build(get_format("e2m1"))
    # e4m3fn (max 448): 6 * 20 + 6 = 126 -> 128, then 6 * 128 = 768 overflows to NaN
    assert _flags_at(x20, "rounded:e4m3fn", ("6", "6", "6", "0")) == rk.NONFINITE
    assert _flags_at(x20, "rounded:e4m3fn", ("1", "0", "1", "0")) == 0
    # e2m1 saturates: the input 20 -> 6, 6 * 6 -> 6, every sum -> 6; nothing is nonfinite
    assert _flags_at(x20, "rounded:e2m1", ("6", "6", "6", "6")) == 0
    # an fp32 overflow on the output bias add (2^127 + 2^127) is inf, and stays inf through out = e2m1
    x1 = NetworkSpec.from_dict(one_hidden_spec(1, inputs=(("1",),))).build(get_format("bf16"))
    assert _flags_at(x1, "rounded:mul=bf16,acc=fp32,out=e2m1", ("0", "1", str(2**127), str(2**127))) == rk.NONFINITE
    # the exact model's touched points (w x + b = 1.5 - 1.5 = 0) are deferred to the slow path
    x15 = NetworkSpec.from_dict(one_hidden_spec(1, inputs=(("1.5",),))).build(get_format("e2m1"))
    assert _flags_at(x15, "rounded:e4m3fn", ("1", "-1.5", "1", "0")) == rk.DEFER
    assert _flags_at(x15, "rounded:e4m3fn", ("1", "-1", "1", "0")) == 0


def test_kernel_equals_slow_twin_near_fp32_overflow():
    """Every point of a grid of huge bf16 values: fp32 sums overflow to inf in the loop and on the bias."""
    p = NetworkSpec.from_dict(one_hidden_spec(1, inputs=(("1",),))).build(get_format("bf16"))
    vals = [Fraction(0), Fraction(1), Fraction(-1), Fraction(2**127), Fraction(3 * 2**126), -Fraction(2**127)]
    assert set(vals) <= set(p.fmt.values_fraction())
    tot, _ = _compare(p, "rounded:mul=bf16,acc=fp32,out=e2m1", list(itertools.product(range(6), repeat=4)), vals)
    assert tot[0] > 0


@pytest.mark.parametrize("grid,arith", [("e4m3fn", "rounded:e4m3fn"), ("bf16", "rounded:bf16"),
                                        ("e4m3fn", "rounded:e4m3fn/fp32"), ("e5m2", "rounded:e5m2"),
                                        ("e4m3fn", "rounded:fp16")])
def test_count_rounded_kernel_equals_slow_path(grid, arith):
    p = NetworkSpec.from_dict(one_hidden_spec(3, inputs=(("0.3", "-1.7", "2.2", "0.9"), ("1", "0.5", "-2", "3")))
                              ).build(get_format(grid))
    a = parse_arith(arith)
    fast = count_rounded(p, a, sample=150, seed=3, max_seconds=None, value_range=Fraction(1))
    slow = count_rounded(p, a, sample=150, seed=3, max_seconds=None, value_range=Fraction(1), kernel=False)
    keys = ("touched", "ndf", "inc", "points")
    assert {k: getattr(fast, k) for k in keys} == {k: getattr(slow, k) for k in keys}
    fr, sr = fast.extra["rounded"], slow.extra["rounded"]
    assert fr["method"] == "kernel" and sr["method"] == "slow exact path"
    assert {k: fr[k] for k in ("nonfinite", "touched_rounded", "flips", "ad_branch_wrong", "ci")} == \
           {k: sr[k] for k in ("nonfinite", "touched_rounded", "flips", "ad_branch_wrong", "ci")}


def test_kernel_declines_out_of_scope_problems():
    from fpad.sweeps import two_hidden_spec

    p = NetworkSpec.from_dict(two_hidden_spec(1)).build(get_format("e2m1"))
    assert "dense hidden layer" in rk.prepare(p, parse_arith("rounded:e2m1"), p.fmt.values_fraction())
    q = NetworkSpec.from_dict(one_hidden_spec(1)).build(get_format("e2m1"))
    assert "acc" in rk.prepare(q, parse_arith("rounded:mul=e2m1,acc=exact,out=e2m1"), q.fmt.values_fraction())
    r = count_rounded(p, parse_arith("rounded:e2m1"), sample=20, max_seconds=None)  # 15^6 points in all
    assert r.extra["rounded"]["method"] == "slow exact path" and r.extra["rounded"]["deferred"] == 0


@pytest.mark.parametrize("kernel", [True, False])
def test_budget_refusal_names_the_measured_rate(kernel):
    from fpad.errors import FpadError

    p = NetworkSpec.from_dict(one_hidden_spec(1)).build(get_format("e2m1"))
    with pytest.raises(FpadError, match=r"grid of 15\^4 points under --arith .* would take about .* use --sample N"):
        count_rounded(p, parse_arith("rounded:e2m1"), max_seconds=1e-9, kernel=kernel)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.sampled_from(["relu", "relu6", "hardsigmoid", "leaky_relu", "abs", "hardtanh:-1/3:1/3"]),
       st.sampled_from(["rounded:e2m1", "rounded:e4m3fn", "rounded:bf16", "rounded:e4m3fn/fp32", "rounded:e3m2",
                        "rounded:e3m1fn", "rounded:mul=e5m2,acc=fp16,out=e5m2", "rounded:mul=exact,acc=e3m2,out=e2m1"]),
       st.lists(st.fractions(-4, 4, max_denominator=20), min_size=1, max_size=4), st.integers(1, 2),
       st.integers(0, 2**31))
def test_kernel_equals_slow_twin_on_random_nets(width, act, arith, xs, batch, seed):
    n_in = max(1, len(xs) // batch)
    inputs = [[str(xs[(b * n_in + j) % len(xs)]) for j in range(n_in)] for b in range(batch)]
    p = NetworkSpec.from_dict(one_hidden_spec(width, act=act, inputs=inputs)).build(get_format("e3m2"))
    vals = p.fmt.values_fraction()
    rng = np.random.default_rng(seed)
    _compare(p, arith, rng.integers(0, len(vals), size=(30, len(p.free))), vals)


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "bf16", "fp16", "fp32", "fp64", "e2m1", "e3m1fn", "e4m3fnuz"])
def test_round_pair_and_ratio_equal_exact_rounding(name):
    """rk.round_pair on TwoSum pairs and rk._rn_ratio on quotients equal the Fraction rounding,
    at midpoints, next to them, at overflow, in subnormals, and at random."""
    r = Rounding(name)
    row = np.array([rk._rnd_row(r, 53)], dtype=np.float64).repeat(3, axis=0)
    p, emin = int(row[0, 1]), int(row[0, 2])
    rng = random.Random(1)
    vals = [Fraction(v) for v in (get_format(name).values_fraction() if name not in ("fp32", "fp64") else [])][:2000]
    base = [Fraction(rng.randrange(1, 2**30), 2**rng.randrange(20, 60)) * rng.choice([1, -1]) for _ in range(300)]
    for a, b in zip(vals, vals[1:]):
        m = (a + b) / 2
        base += [m, m + Fraction(1, 2**80), m - Fraction(1, 2**80)]
    buf = np.zeros(8)
    for q in base:
        for tail in (Fraction(0), Fraction(1, 2**70), -Fraction(1, 2**70)):
            x = q + tail
            h = float(x)  # RN53
            lo = float(x - Fraction(h))
            if Fraction(h) + Fraction(lo) != x:
                continue  # not a float pair
            want, got = r(x), rk.round_pair(h, lo, row, 2)
            assert got == want or (math.isnan(got) and math.isnan(want)), (name, x, got, want)
        if p <= 24:  # the kernel's ratio rounding (odd divisor 3), for formats it allows as out
            x = q * 3 + Fraction(1, 2**75) * rng.choice([0, 1, -1])
            nh = float(x)
            nl = float(x - Fraction(nh))
            if Fraction(nh) + Fraction(nl) == x:
                got = rk._finish(rk._rn_ratio(nh, nl, 3.0, p, emin, buf), row[0, 3], row[0, 4])
                want = r(x / 3)
                assert got == want or (math.isnan(got) and math.isnan(want)), (name, x, got, want)
