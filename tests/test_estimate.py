"""Labelled estimates: exact counts of the sample, intervals that contain the exact density."""

import random
from fractions import Fraction

import numpy as np
import pytest

import fpad.engine as engine
from fpad.errors import FpadError
from fpad.estimate import (clopper_pearson, cluster_interval, digit_block, digit_stride, line_bases,
                           sample_digits)
import fpad.enumerate as kernels
from test_engine import brute, problem


def test_clopper_pearson_reference_values():
    # Closed forms: x = 0 -> hi = 1 - (a/2)^(1/n); x = n -> lo = (a/2)^(1/n).
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** 0.1, rel=1e-12)
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** 0.1, rel=1e-12)
    # Published value (e.g. Newcombe 1998, Table I, 5/10): 0.1871 - 0.8129.
    lo, hi = clopper_pearson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.1871, 0.8129)
    with pytest.raises(FpadError, match="level"):
        clopper_pearson(1, 2, level=1.0)


def test_the_quantiles_are_scipy_stats_ones():
    # the intervals use scipy.special's inverses; they are the distributions' ppf of scipy.stats
    # (a relative tolerance: the two are one computation today, but need not stay bit-identical)
    from scipy.stats import beta, t

    for x, n in ((1, 10), (3, 7), (12.5, 120.25), (1, 10**9)):
        lo, hi = clopper_pearson(x, n)
        assert lo == pytest.approx(beta.ppf(0.025, x, n - x + 1), rel=1e-12)
        assert hi == pytest.approx(beta.ppf(0.975, x + 1, n - x), rel=1e-12)
    counts = [3, 0, 1, 2, 0, 0, 5, 1]
    total, p = 8 * 15, sum(counts) / 120
    var = sum((c / 15 - p) ** 2 for c in counts) / 7 / 8
    n_eff = p * (1 - p) / var * (t.ppf(0.975, total - 1) / t.ppf(0.975, 7)) ** 2
    want = clopper_pearson(p * n_eff, n_eff)
    assert cluster_interval(counts, 15) == pytest.approx(want, rel=1e-12)


def test_cluster_interval_no_spread_uses_one_trial_per_line():
    # No line has a point: the bound is Clopper-Pearson with n = number of lines.
    assert cluster_interval([0] * 20, 15) == clopper_pearson(0, 20)
    lo, hi = cluster_interval([3, 0, 1, 2, 0, 0, 5, 1], 15)
    p = 12 / 120
    assert 0 < lo < p < hi < 1
    # Clustering widens the interval compared with pretending all 120 points independent.
    blo, bhi = clopper_pearson(12, 120)
    assert hi - lo > bhi - blo


def test_sample_digits_reproducible_and_by_coordinates():
    a = sample_digits(253, 9, 5, seed=7)
    assert a.shape == (5, 9) and a.dtype == np.int64
    assert (a == sample_digits(253, 9, 5, seed=7)).all() and not (a == sample_digits(253, 9, 5, seed=8)).all()
    assert a.min() >= 0 and a.max() < 253
    big = sample_digits(65279, 4353, 3, seed=1)  # a two-hidden-layer width-64 network's grid
    assert big.shape == (3, 4353) and big.max() < 65279


def test_sample_digits_do_not_depend_on_chunking():
    k = 40000  # several streams even for a small sample (digit_block(k) rows each)
    rows = digit_block(k)
    assert rows < 1 << 16 and rows * k <= 1 << 22
    n = 3 * rows + 5
    whole = sample_digits(7, k, n, 3)
    parts = np.concatenate([sample_digits(7, k, 100, 3, start) for start in range(0, n, 100)])[:n]
    assert (whole == parts).all()


def test_line_bases_have_the_line_digit_zero():
    m, k = 15, 4
    for j in range(k):
        stride = digit_stride(m, k, j)
        for b in line_bases(m ** k, m, stride, 50, seed=j):
            assert (b // stride) % m == 0 and 0 <= b + (m - 1) * stride < m ** k


def test_sample_estimate_counts_and_interval(tmp_path):
    p = problem()
    n_pts, _, ndf, inc = brute(p)
    exact = Fraction(ndf, n_pts)
    res = engine.count(p, sample=400, seed=0, chunk_size=64, store=tmp_path / "s.sqlite", progress=False)
    assert res.method == "sample" and res.is_estimate and res.to_json()["estimate"] is True
    assert res.points == 400 and res.extra["grid_points"] == "225" and res.extra["seed"] == 0
    # The counts are the exact counts of the drawn points.
    comp = kernels.compile_problem(p)
    want = kernels.classify_points(comp, sample_digits(comp.m, comp.k, 400, 0))
    assert (res.touched, res.ndf, res.inc) == (want.touched, want.ndf, want.inc)
    lo, hi = res.ci["ndf"]
    assert lo <= float(exact) <= hi and res.ci["level"] == 0.95
    assert res.ci["inc"][0] == 0.0  # no inc point in the sample -> lower bound 0
    # Same seed, other chunking: same result.
    again = engine.count(p, sample=400, seed=0, chunk_size=400, progress=False)
    assert (again.ndf, again.touched, again.ci) == (res.ndf, res.touched, res.ci)


@pytest.mark.parametrize("param", ["L1.W[0,0]", "L1.b[0]"])
def test_line_estimate_interval_contains_exact_density(param):
    p = problem()
    n_pts, _, ndf, _ = brute(p)
    res = engine.count(p, line=param, sample=30, seed=1, progress=False)
    assert res.method == "line" and res.is_estimate
    assert res.points == 30 * 15 and res.extra["line"] == param and res.extra["lines"] == 30
    lo, hi = res.ci["ndf"]
    assert lo <= ndf / n_pts <= hi


@pytest.mark.parametrize("param, stride", [("L1.W[0,0]", 15), ("L1.b[0]", 1)])
def test_line_estimate_counts_are_the_lines_exact_counts(param, stride):
    p = problem()
    res = engine.count(p, line=param, sample=5, seed=2, progress=False)
    compiled = kernels.compile_problem(p)
    bases = line_bases(225, 15, stride, 5, 2)
    want = sum(kernels.classify_indices(compiled, [b + v * stride for v in range(15)]).ndf for b in bases)
    assert res.ndf == want and res.points == 75


def test_random_seeds_cover_exact_density_most_of_the_time():
    # 95% intervals: over 20 seeds, at most a few may miss (here: none expected to).
    p = problem()
    n_pts, _, ndf, _ = brute(p)
    misses = 0
    for seed in random.Random(0).sample(range(10**6), 20):
        lo, hi = engine.count(p, sample=60, seed=seed, progress=False).ci["ndf"]
        misses += not lo <= ndf / n_pts <= hi
    assert misses <= 3


def test_line_estimate_resumes_from_its_store(tmp_path):
    p = problem()
    path = tmp_path / "l.sqlite"
    first = engine.count(p, line="L1.b[0]", sample=12, seed=5, chunk_size=45, store=path, progress=False)
    again = engine.count(p, line="L1.b[0]", sample=12, seed=5, chunk_size=45, store=path, progress=False)
    assert first.extra["chunks"] == 4 and again.extra["resumed_chunks"] == 4  # 3 lines per chunk
    assert (again.ndf, again.points, again.ci) == (first.ndf, first.points, first.ci)
