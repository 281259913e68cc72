"""Tests of fpad.exact: exact linear algebra, certified cone emptiness and hull membership.

Every verdict is checked two ways: its certificate is re-verified here with plain Fraction sums
(independently of the module's own checks), and the verdict is compared with an independent
decision procedure (Fourier-Motzkin elimination for cones, direct geometry for 1-D/2-D hulls,
minors for ranks). Ground-truth cases cite paper_iclr2024.md section 6.2.
"""

from decimal import Decimal
from fractions import Fraction as F
from itertools import combinations, permutations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpad.errors import FpadError
from fpad.exact import (
    PATHS,
    cone_interior_point,
    frac_matrix,
    frac_vector,
    hull_membership,
    nullspace,
    rank,
    solve,
    to_fraction,
)

METHODS = ("auto", "highs", "simplex")
TINY, HUGE = F(1, 2**130), F(2**120)
HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ independent checkers
def dot(a, d):
    return sum((F(x) * F(y) for x, y in zip(a, d)), F(0))


def point_ok(rows, d):
    return all(dot(a, d) > 0 for a in rows)


def farkas_ok(rows, y, n):
    if len(y) != len(rows) or any(v < 0 for v in y) or sum(y) != 1:
        return False
    return all(sum((yk * F(a[j]) for yk, a in zip(y, rows)), F(0)) == 0 for j in range(n))


def assert_certified(rows, n, res):
    """The returned certificate proves the verdict (Gordan: exactly one of the two can exist)."""
    assert res.path in PATHS
    if res.nonempty:
        assert res.farkas is None and len(res.point) == n and point_ok(rows, res.point)
    else:
        assert res.point is None and farkas_ok(rows, res.farkas, n)
    assert res.certificate is (res.point if res.nonempty else res.farkas)


def fm_nonempty(rows, n):
    """Fourier-Motzkin for the strict homogeneous system <a, d> > 0: eliminate d_j by pairing
    each a_j > 0 row with each a_j < 0 row (positive combination cancelling d_j). Once all
    variables are gone, every remaining row reads 0 > 0, so the cone is non-empty iff none remain."""
    cur = {tuple(F(x) for x in r) for r in rows}
    for j in range(n):
        pos = [r for r in cur if r[j] > 0]
        neg = [r for r in cur if r[j] < 0]
        nxt = {r for r in cur if r[j] == 0}
        for p in pos:
            for q in neg:
                c = tuple(-q[j] * x + p[j] * y for x, y in zip(p, q))
                m = max(abs(x) for x in c)
                nxt.add(tuple(x / m for x in c) if m else c)  # normalise to keep the set small
        cur = nxt
    return not cur


def hull_1d(points, t):
    return bool(points) and min(points) <= t <= max(points)


def orient(a, b, c):
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def on_segment(a, b, t):
    return orient(a, b, t) == 0 and all(min(a[i], b[i]) <= t[i] <= max(a[i], b[i]) for i in (0, 1))


def hull_2d(points, t):
    """Caratheodory in the plane: t is in conv(P) iff it is a point of P, on a segment of two
    points, or in a non-degenerate triangle of three (collinear triples reduce to segments)."""
    P = [tuple(F(x) for x in p) for p in points]
    if t in P or any(on_segment(a, b, t) for a, b in combinations(P, 2)):
        return True
    for a, b, c in combinations(P, 3):
        o = orient(a, b, c)
        if o:
            s = [orient(a, b, t), orient(b, c, t), orient(c, a, t)]
            if all(v * o >= 0 for v in s):
                return True
    return False


def assert_hull_certified(points, t, res):
    if res.member:
        w = res.weights
        assert res.separator is None and len(w) == len(points)
        assert all(v >= 0 for v in w) and sum(w) == 1
        assert all(sum((wi * F(p[j]) for wi, p in zip(w, points)), F(0)) == F(t[j]) for j in range(len(t)))
    else:
        h = res.separator
        assert res.weights is None and len(h) == len(t)
        assert all(dot(h, t) > dot(h, p) for p in points)


# ------------------------------------------------------------------ conversions
def test_to_fraction_exact():
    assert to_fraction(3) == 3 and to_fraction(F(1, 3)) == F(1, 3)
    assert to_fraction(0.1) == F(3602879701896397, 36028797018963968)  # the float, exactly
    assert to_fraction("1/3") == F(1, 3) and to_fraction(" 0.1 ") == F(1, 10)
    assert to_fraction(Decimal("0.25")) == F(1, 4)
    assert to_fraction(np.float32(0.1)) == F(13421773, 134217728)
    assert to_fraction(np.int64(-7)) == -7
    assert to_fraction(2.0**-1074) == F(1, 2**1074)
    assert frac_vector([1, "2/4", 0.5]) == [1, F(1, 2), F(1, 2)]
    with pytest.raises(FpadError, match="string"):
        frac_vector("12")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", "1/0", None, [1]])
def test_to_fraction_rejects(bad):
    with pytest.raises(FpadError):
        to_fraction(bad)


def test_bad_shapes_and_arguments():
    with pytest.raises(FpadError, match="row 1"):
        frac_matrix([[1, 2], [3]])
    with pytest.raises(FpadError, match="expected 3"):
        cone_interior_point([[1, 2]], 3)
    with pytest.raises(FpadError, match="pass n="):
        cone_interior_point([])
    with pytest.raises(FpadError, match="method"):
        cone_interior_point([[1]], method="float")
    with pytest.raises(FpadError, match="must match"):
        solve([[1, 2]], [1, 2])


# ------------------------------------------------------------------ linear algebra
def det(M):
    """Leibniz formula: independent of elimination."""
    n = len(M)
    total = F(0)
    for perm in permutations(range(n)):
        inv = sum(1 for i in range(n) for j in range(i + 1, n) if perm[i] > perm[j])
        prod = F(1)
        for i in range(n):
            prod *= M[i][perm[i]]
        total += -prod if inv % 2 else prod
    return total


def rank_by_minors(M, n):
    for k in range(min(len(M), n), 0, -1):
        for rs in combinations(range(len(M)), k):
            for cs in combinations(range(n), k):
                if det([[F(M[r][c]) for c in cs] for r in rs]):
                    return k
    return 0


def test_linear_algebra_known_values():
    assert rank([[1, 2], [2, 4]]) == 1 and rank([[1, 0], [0, "1/3"]]) == 2 and rank([], 3) == 0
    assert solve([[1, 2], [2, 4]], [1, 2]) == [1, 0]
    assert solve([[1, 2], [2, 4]], [1, 3]) is None
    assert solve([[2, 0], [0, 3]], [1, 1]) == [F(1, 2), F(1, 3)]
    assert solve([], [], 2) == [0, 0]
    assert nullspace([[1, 2, 3], [2, 4, 7]]) == [[-2, 1, 0]]
    assert nullspace([], 2) == [[1, 0], [0, 1]]
    # magnitudes far outside float64's comfort zone
    assert solve([[HUGE, TINY], [0, TINY]], [1, 1]) == [0, 1 / TINY]


small_int_matrix = st.integers(1, 4).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), max_size=4))
)


@HYP
@given(small_int_matrix, st.lists(st.integers(-3, 3), min_size=4, max_size=4))
def test_linear_algebra_random(nm, bvals):
    n, M = nm
    r = rank(M, n)
    assert r == rank_by_minors(M, n)
    basis = nullspace(M, n)
    assert len(basis) == n - r
    assert all(dot(row, v) == 0 for v in basis for row in M)
    assert rank(basis, n) == len(basis)  # independent
    b = bvals[: len(M)]
    x = solve(M, b, n)
    if x is None:
        assert rank([row + [bi] for row, bi in zip(M, b)]) == r + 1  # b not in the column space
    else:
        assert [dot(row, x) for row in M] == b


# ------------------------------------------------------------------ cone: ground truth (paper 6.2)
GROUND_TRUTH = [
    ("LP sanity: (1,0),(0,1)", [[1, 0], [0, 1]], 2, True),
    ("LP sanity: (1,1),(-1,0),(0,-1)", [[1, 1], [-1, 0], [0, -1]], 2, False),
    ("repo sign-shortcut bug: (1),(-1)", [[1], [-1]], 1, False),
    ("Lemma 2: -x > 0 and +x > 0", [[-1], [1]], 1, False),
    ("Lemma 3: +x > 0 at 3, -x > 0 at -3", [[1], [-1]], 1, False),
    ("Lemma 7 joint: x_u > 0 and -x_u > 0 over (u, b)", [[1, 0], [-1, 0]], 2, False),
    ("Lemma 7 window 1 alone", [[1, 0]], 2, True),
    ("Lemma 7 window 2 alone", [[-1, 0]], 2, True),
    ("no rows", [], 3, True),
    ("zero row", [[1, 2], [0, 0]], 2, False),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,rows,n,expected", GROUND_TRUTH, ids=[g[0] for g in GROUND_TRUTH])
def test_cone_ground_truth(name, rows, n, expected, method):
    res = cone_interior_point(rows, n, method=method)
    assert res.nonempty is expected
    assert_certified(rows, n, res)


@pytest.mark.parametrize(
    "rows,n,path,expected",
    [
        ([], 2, "no-rows", True),
        ([[1, 2], [0, 0]], 2, "zero-row", False),
        ([[1, 1], [-3, -3], [0, 1]], 2, "opposite-rows", False),
        ([[1, 0], [0, 1]], 2, "one-signed-columns", True),
        # mixed-sign columns, full row rank: A d = 1 is solved exactly
        ([[F(1, 3), 1], [-1, F(-1, 2)]], 2, "solve-ones", True),
        # one-signed column 0 has a zero entry (the paper's "nonzero entries" reading): dropping it
        # leaves (1,1),(-1,0),(0,-1) in coordinates 1,2, which is empty, so the whole cone is empty
        ([[1, 0, 0], [0, 1, 1], [0, -1, 0], [0, 0, -1]], 3, None, False),
        # same but the rest is non-empty: the eliminated coordinate must be set large enough
        ([[1, -5, 0], [0, 1, 1], [2, 0, -1], [3, -1, 1]], 3, None, True),
    ],
)
def test_cone_shortcuts(rows, n, path, expected):
    res = cone_interior_point(rows, n)
    assert res.nonempty is expected
    if path is not None:
        assert res.path == path
    assert_certified(rows, n, res)


def test_no_rows_point_is_zero():
    res = cone_interior_point([], 3)
    assert res.nonempty and res.point == [0, 0, 0] and res.path == "no-rows"


# ------------------------------------------------------------------ cone: degenerate and ill-conditioned
DELTA = F(1, 2**60)
HARD = [
    # d1 + d2 > 0 and -d1 + (-1 + delta) d2 > 0: non-empty with margin ~delta; a float LP sees c* = 0
    ("thin cone", [[1, 1], [-1, -1 + DELTA], [0, 1]], 2, True),
    # rows of size 2^120 differing by 2^-130: in float64 the first two rows are exactly opposite
    ("huge rows, tiny gap", [[HUGE, HUGE], [-HUGE, -HUGE + TINY], [0, 1]], 2, True),
    # empty, but the Gordan weight of the third row is ~2^-130, below any float support cut
    ("tiny Gordan weight", [[1, TINY], [-1, TINY], [0, -1]], 2, False),
    ("mixed magnitudes, empty", [[TINY, HUGE], [-TINY, 0], [0, -HUGE]], 2, False),
    ("mixed magnitudes, empty 2", [[TINY, -HUGE], [-TINY, 0], [TINY, 3 * HUGE]], 2, False),
    ("mixed magnitudes, non-empty 2", [[TINY, -HUGE], [-TINY, HUGE + 1], [0, 1]], 2, True),
    ("duplicates and positive multiples", [[1, -1], [1, -1], [2, -2], [-1, 3], [F(1, 7), F(-1, 7)]], 2, True),
    ("duplicates, empty", [[1, -1], [2, -2], [-1, 3], [-5, 15], [0, -1]], 2, False),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,rows,n,expected", HARD, ids=[h[0] for h in HARD])
def test_cone_hard_cases(name, rows, n, expected, method):
    assert fm_nonempty(rows, n) is expected  # the expected verdicts themselves, independently
    res = cone_interior_point(rows, n, method=method)
    assert res.nonempty is expected
    assert_certified(rows, n, res)


def test_float_collapse_needs_exact_fallback():
    # float64 rounds -2^120 + 2^-130 to -2^120, so both HiGHS proposals are for the wrong problem
    # and cannot be certified: the exact simplex must decide (and it says non-empty).
    rows = [[HUGE, HUGE], [-HUGE, -HUGE + TINY], [0, 1]]
    assert float(rows[1][1]) == -float(HUGE)
    res = cone_interior_point(rows, 2, method="highs")
    assert res.nonempty and res.path == "exact-simplex"
    assert_certified(rows, 2, res)


# ------------------------------------------------------------------ cone: random, against Fourier-Motzkin
def cone_case(max_rows=6, max_dim=3, lo=-3, hi=3):
    return st.integers(1, max_dim).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.lists(st.integers(lo, hi), min_size=n, max_size=n), max_size=max_rows)
        )
    )


@HYP
@given(cone_case())
def test_cone_random_vs_fourier_motzkin(case):
    n, rows = case
    expected = fm_nonempty(rows, n)
    for method in METHODS:
        res = cone_interior_point(rows, n, method=method)
        assert res.nonempty is expected, method
        assert_certified(rows, n, res)


@HYP
@given(cone_case(max_rows=5), st.data())
def test_cone_random_rescaled(case, data):
    """Positive row scalings and power-of-two column scalings by 2^-130 .. 2^120 keep the verdict
    (the cone is mapped by a positive diagonal matrix); float LPs struggle, certificates must not."""
    n, rows = case
    expected = fm_nonempty(rows, n)
    exps = st.sampled_from([-130, -60, 0, 60, 120])
    rs = [F(2) ** data.draw(exps) * data.draw(st.sampled_from([1, 3, F(1, 7)])) for _ in rows]
    cs = [F(2) ** data.draw(exps) for _ in range(n)]
    scaled = [[r * x * c for x, c in zip(row, cs)] for r, row in zip(rs, rows)]
    for method in METHODS:
        res = cone_interior_point(scaled, n, method=method)
        assert res.nonempty is expected, method
        assert_certified(scaled, n, res)


@settings(max_examples=60, deadline=None)
@given(cone_case(max_rows=14, max_dim=6, lo=-4, hi=4))
def test_exact_simplex_matches_highs_path(case):
    """The forced exact simplex and the HiGHS+certificate path agree on larger random cases."""
    n, rows = case
    a = cone_interior_point(rows, n, method="simplex")
    b = cone_interior_point(rows, n, method="highs")
    c = cone_interior_point(rows, n, method="auto")
    assert a.path in ("exact-simplex", "no-rows")
    assert a.nonempty is b.nonempty is c.nonempty
    for res in (a, b, c):
        assert_certified(rows, n, res)


def test_exact_simplex_planted_instances():
    """Larger planted cases for the forced simplex: rows with <a, d*> > 0 for a planted d*
    (non-empty), and the same rows plus minus their sum (0 = sum of all rows: empty)."""
    rng = np.random.default_rng(7)
    for K, n in [(20, 8), (40, 12)]:
        d_star = rng.integers(-3, 4, size=n)
        rows = []
        while len(rows) < K:
            a = rng.integers(-4, 5, size=n)
            if a @ d_star > 0:
                rows.append([int(x) for x in a])
        res = cone_interior_point(rows, n, method="simplex")
        assert res.nonempty and point_ok(rows, res.point)
        closed = rows + [[-sum(r[j] for r in rows) for j in range(n)]]
        res = cone_interior_point(closed, n, method="simplex")
        assert not res.nonempty and farkas_ok(closed, res.farkas, n)


# ------------------------------------------------------------------ hull membership
def test_hull_known():
    tri = [[0, 0], [2, 0], [0, 2]]
    res = hull_membership(tri, [1, 1])  # on an edge
    assert res.member and res.weights == [0, F(1, 2), F(1, 2)]
    res = hull_membership(tri, [1, "3/2"])
    assert not res.member
    assert_hull_certified(tri, [F(1), F(3, 2)], res)
    res = hull_membership([], [0, 0])
    assert not res.member and res.separator == [0, 0]
    # Lemma 7: AD output (2, 0) vs the Clarke set {(1, 0)}
    assert not hull_membership([[1, 0]], [2, 0]).member
    # App. H f1: Clarke {1}, AD 0: not in; Thm-5 |a| example: Clarke [-1, 1] contains AD 0
    assert not hull_membership([[1]], [0]).member
    assert hull_membership([[-1], [1]], [0]).member


@HYP
@given(
    st.lists(st.fractions(min_value=-4, max_value=4, max_denominator=4), max_size=5),
    st.fractions(min_value=-5, max_value=5, max_denominator=4),
)
def test_hull_1d_random(pts, t):
    points = [[p] for p in pts]
    for method in METHODS:
        res = hull_membership(points, [t], method=method)
        assert res.member is hull_1d(pts, t)
        assert_hull_certified(points, [t], res)


@HYP
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), max_size=6),
    st.tuples(st.fractions(-3, 3, max_denominator=3), st.fractions(-3, 3, max_denominator=3)),
)
def test_hull_2d_random(pts, t):
    for method in METHODS:
        res = hull_membership(pts, t, method=method)
        assert res.member is hull_2d(pts, t), method
        assert_hull_certified(pts, t, res)


def test_hull_drops_shared_coordinates():
    """Coordinates where the target and every point agree are left out of the cone (the oracle's
    gradients differ in a few of thousands of parameters); the verdicts and the full-length
    certificates are those of the whole space."""
    pad = [F(7)] * 50
    tri = [[0, 0] + pad, [2, 0] + pad, [0, 2] + pad]
    res = hull_membership(tri, [1, 1] + pad)
    assert res.member and res.weights == [0, F(1, 2), F(1, 2)]
    res = hull_membership(tri, [1, 2] + pad)
    assert not res.member and len(res.separator) == 52 and res.separator[2:] == [0] * 50
    assert_hull_certified(tri, [F(1), F(2)] + pad, res)
    # a shared coordinate the target does not share decides alone
    res = hull_membership(tri, [1, 1, F(8)] + pad[1:])
    assert not res.member
    assert_hull_certified(tri, [F(1), F(1), F(8)] + pad[1:], res)
    # everything shared: a member (the zero-row path), not the "no rows" answer
    assert hull_membership([pad, pad], pad).member


def test_hull_huge_and_tiny():
    # a segment from (0, 0) to (2^120, 2^-130): its midpoint is in, a point 2^-131 off it is not
    pts = [[0, 0], [HUGE, TINY]]
    assert hull_membership(pts, [HUGE / 2, TINY / 2]).member
    off = [HUGE / 2, TINY / 2 + TINY / 2]
    res = hull_membership(pts, off)
    assert not res.member
    assert_hull_certified(pts, off, res)


def test_cone_memo_returns_fresh_certificates():
    """cone_interior_point is memoised on its exact rows (issue 10: the oracle meets the same cones
    at every grid point); the caller's copy of a certificate can be changed without touching it."""
    from fractions import Fraction

    from fpad import exact

    rows = [[Fraction(1), Fraction(-2)], [Fraction(3), Fraction(1)]]
    a = exact.cone_interior_point(rows)
    a.point[0] = Fraction(-99)
    b = exact.cone_interior_point([list(r) for r in rows])
    assert b.nonempty and b.point[0] != -99 and all(sum(x * y for x, y in zip(r, b.point)) > 0 for r in rows)
    empty = exact.cone_interior_point([[Fraction(1)], [Fraction(-2)]])
    assert not empty.nonempty and empty.farkas == exact.cone_interior_point([[1], [-2]]).farkas
