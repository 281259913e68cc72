"""Exact linear algebra and certified decisions about polyhedral cones and convex hulls.

Everything here is decided in :class:`fractions.Fraction` arithmetic. Floating point appears in
exactly one role: ``scipy.optimize.linprog(method="highs")`` *proposes* an answer (a candidate
interior point, or a candidate support for a Gordan multiplier), and the proposal is accepted only
after an exact certificate has been checked in Fractions. A proposal that cannot be certified
(degenerate or ill-conditioned LP, solver failure) is discarded and the question is settled by a
small exact simplex (integer tableau, lexicographic anti-cycling), which always ends with a
certificate. No tolerance ever decides a verdict; the only tolerance in this module picks a
candidate support out of float output, and a wrong pick merely costs the exact fallback.

The one question behind both public decisions is **Gordan's alternative**: for rows
``a_1..a_K`` in ``Q^n`` exactly one of the following holds

* the open cone ``{d : <a_k, d> > 0 for all k}`` contains a (rational) point ``d``;
* ``0`` is a convex combination of the rows: ``y >= 0``, ``sum(y) = 1``, ``sum_k y_k a_k = 0``.

So a verified point proves non-emptiness and a verified ``y`` (a *Farkas/Gordan certificate*)
proves emptiness, whichever way the answer was found. Hull membership is the same question for
the rows ``target - p_i`` (see :func:`hull_membership`).
"""

from __future__ import annotations

import functools

import numbers
from dataclasses import dataclass
from fractions import Fraction
import math
from math import gcd

from fpad.errors import FpadError

__all__ = [
    "ConeResult",
    "HullResult",
    "PATHS",
    "cone_interior_point",
    "float_with_error",
    "frac_matrix",
    "frac_vector",
    "hull_membership",
    "nullspace",
    "rank",
    "solve",
    "to_fraction",
]

#: The ways a cone decision can be reached (``ConeResult.path``); each one ends in a certificate.
#: Shortcuts: ``no-rows`` (empty intersection, d = 0), ``zero-row`` (y = e_k),
#: ``opposite-rows`` (a_i = -c a_j, c > 0: a two-row y), ``one-signed-columns`` (every row was
#: eliminated by a one-signed coordinate), ``solve-ones`` (A d = 1 is solvable).
#: Then ``highs+certificate`` (a HiGHS proposal confirmed exactly) and ``exact-simplex``.
PATHS = (
    "no-rows",
    "zero-row",
    "opposite-rows",
    "one-signed-columns",
    "solve-ones",
    "highs+certificate",
    "exact-simplex",
)
_METHODS = ("auto", "highs", "simplex")
# Systems left after the shortcuts with at most this many entries (rows x columns) go to the
# exact simplex, not HiGHS: on such systems it is 5-50x faster than a HiGHS call (about 2 ms of
# set-up however small the LP), e.g. 4 x 4: 0.05 ms against 1.7-18 ms, 12 x 8: 0.6 against
# 3.2 ms; at 16 x 16 they are even and beyond it HiGHS wins (40 x 20: 94 ms against 10 ms).
# Measured on random dyadic systems by benchmarks/bench_cones.py.
_TINY_ENTRIES = 128

_ZERO = Fraction(0)
_ONE = Fraction(1)


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------
def float_with_error(c: Fraction) -> tuple[float, float]:
    """(float(c), an upper bound of |float(c) - c|): the bound is 0.0 iff c is exactly a float.

    The compiled kernels carry every constant as such a pair (fpad._kernels' arithmetic with
    error bounds), so a constant that is not a binary float is still used exactly."""
    f = float(c)
    d = abs(Fraction(f) - c)
    if d == 0:
        return f, 0.0
    e = float(d)
    if Fraction(e) < d:
        e = math.nextafter(e, math.inf)
    return f, e


def to_fraction(x) -> Fraction:
    """``x`` as an exact Fraction.

    Accepts ints, Fractions, floats and numpy scalars (taken exactly: ``0.1`` is
    3602879701896397/36028797018963968), Decimals, and strings such as ``"1/3"`` or ``"0.1"``
    (a decimal string is the exact decimal rational 1/10). NaN and infinities are rejected.
    """
    if isinstance(x, Fraction):
        return x
    if isinstance(x, str):
        try:
            return Fraction(x.strip())
        except (ValueError, ZeroDivisionError):
            raise FpadError(f"cannot read {x!r} as a number; write e.g. 3, -0.25, 1/3 or 1e-3") from None
    if isinstance(x, numbers.Integral):
        return Fraction(int(x))
    if isinstance(x, numbers.Rational):
        return Fraction(x.numerator, x.denominator)
    ratio = getattr(x, "as_integer_ratio", None)  # float, Decimal, numpy floats incl. longdouble
    if ratio is not None:
        try:
            return Fraction(*ratio())
        except (ValueError, OverflowError):
            raise FpadError(f"{x!r} is not a finite number; only finite reals are accepted") from None
    if isinstance(x, numbers.Real):  # e.g. ml_dtypes scalars, mpmath mpf: accept only if float-exact
        f = float(x)
        if f == x and f - f == 0:
            return Fraction(f)
        raise FpadError(f"cannot convert {x!r} ({type(x).__name__}) to a Fraction exactly; pass a Fraction")
    raise FpadError(f"expected a number, got {x!r} ({type(x).__name__}); pass an int, float, Fraction or 'p/q' string")


def frac_vector(v) -> list[Fraction]:
    """A sequence of numbers as a list of Fractions (see :func:`to_fraction`)."""
    if isinstance(v, (str, bytes)):
        raise FpadError(f"expected a sequence of numbers, got the string {v!r}; pass a list")
    try:
        v = list(v)
        if all(type(x) is Fraction for x in v):  # the common case (the oracle's vectors): no conversion
            return v
        return [to_fraction(x) for x in v]
    except TypeError:
        raise FpadError(f"expected a sequence of numbers, got {type(v).__name__}") from None


def frac_matrix(A, n: int | None = None) -> list[list[Fraction]]:
    """A sequence of rows as a list of Fraction lists; all rows must have one length (``n`` if given)."""
    M = [frac_vector(row) for row in A]
    width = len(M[0]) if M and n is None else n
    for i, row in enumerate(M):
        if len(row) != width:
            raise FpadError(f"matrix row {i} has {len(row)} entries, expected {width}; all rows need equal length")
    return M


def _width(M: list[list[Fraction]], n: int | None, what: str) -> int:
    if M:
        return len(M[0])
    if n is None:
        raise FpadError(f"{what}: no rows and no dimension; pass n=<number of columns>")
    return n


def _dot(a, d) -> Fraction:
    return sum((x * y for x, y in zip(a, d) if x and y), _ZERO)


# --------------------------------------------------------------------------------------------
# exact Gaussian elimination
# --------------------------------------------------------------------------------------------
def _denominator_lcm(row: list[Fraction]) -> int:
    """The lcm of the row's denominators: the least positive L making L * row integral."""
    L = 1
    for x in row:
        L = L * x.denominator // gcd(L, x.denominator)
    return L


def _int_row(row: list[Fraction]) -> list[int]:
    """The row times the lcm of its denominators: integers, same signs."""
    L = _denominator_lcm(row)
    return [x.numerator * (L // x.denominator) for x in row]


def _ff_pivot(T: list[list[int]], D: int, p: int, q: int) -> int:
    """One integer-preserving (Bareiss / Edmonds) Gauss-Jordan pivot on T[p][q]; returns the new D.

    Invariant: the matrix that rational Gauss-Jordan would hold is T / D, with every entry of T
    an integer (entries are minors of the start matrix, so the division by the previous pivot D
    is exact). Row p stays as it is and becomes the pivot row of the new denominator T[p][q];
    every other row i becomes (T[p][q] T[i] - T[i][q] T[p]) / D. Python ints are several times
    faster than Fractions here because no gcd is taken per entry.
    """
    Tp = T[p]
    piv = Tp[q]
    for i, row in enumerate(T):
        if i == p:
            continue
        f = row[q]
        if f:
            T[i] = [(x * piv - f * y) // D for x, y in zip(row, Tp)]
        elif piv != D:
            T[i] = [x * piv // D if x else 0 for x in row]
    return piv


def _rref(M: list[list[Fraction]], ncols: int) -> tuple[list[list[Fraction]], list[int]]:
    """Reduced row echelon form of M, pivoting on the first ``ncols`` columns only.

    Returns (R, pivots): R lists the pivot rows in pivot order, then the remaining rows (zero in
    the first ``ncols`` columns). Row scaling to integers keeps the row space, so it is exact.
    """
    T = [_int_row(row) for row in M]
    D = 1
    free_rows = list(range(len(T)))
    order: list[int] = []
    pivots: list[int] = []
    for c in range(ncols):
        if not free_rows:
            break
        p = next((i for i in free_rows if T[i][c]), None)
        if p is None:
            continue
        D = _ff_pivot(T, D, p, c)
        free_rows.remove(p)
        order.append(p)
        pivots.append(c)
    R = [[Fraction(x, D) for x in T[i]] for i in order + free_rows]
    return R, pivots


def rank(A, n: int | None = None) -> int:
    """Exact rank of the matrix A (rows of numbers)."""
    M = frac_matrix(A, n)
    if not M:
        return 0
    return len(_rref(M, len(M[0]))[1])


def solve(A, b, n: int | None = None) -> list[Fraction] | None:
    """One exact solution x of A x = b (free variables set to 0), or None if there is none.

    ``n`` (the number of unknowns) is needed only when A has no rows; then x = 0.
    """
    M = frac_matrix(A, n)
    rhs = frac_vector(b)
    if len(rhs) != len(M):
        raise FpadError(f"solve: A has {len(M)} rows but b has {len(rhs)} entries; they must match")
    width = _width(M, n, "solve")
    return _solve(M, rhs, width)


def _solve(M: list[list[Fraction]], rhs: list[Fraction], width: int) -> list[Fraction] | None:
    R, pivots = _rref([row + [v] for row, v in zip(M, rhs)], width)
    for row in R[len(pivots):]:
        if row[width]:
            return None  # a row 0 = nonzero: inconsistent
    x = [_ZERO] * width
    for row, c in zip(R, pivots):
        x[c] = row[width]
    return x


def nullspace(A, n: int | None = None) -> list[list[Fraction]]:
    """A basis of {x : A x = 0} (one vector per free column of the RREF), exact."""
    M = frac_matrix(A, n)
    width = _width(M, n, "nullspace")
    if not M:
        return [[_ONE if i == j else _ZERO for i in range(width)] for j in range(width)]
    R, pivots = _rref(M, width)
    basis = []
    for f in sorted(set(range(width)) - set(pivots)):
        x = [_ZERO] * width
        x[f] = _ONE
        for row, c in zip(R, pivots):
            x[c] = -row[f]
        basis.append(x)
    return basis


# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------
def _is_point(A, d) -> bool:
    """Exact check: <a_k, d> > 0 for every row."""
    return all(_dot(a, d) > 0 for a in A)


def _is_farkas(A, y, n) -> bool:
    """Exact check: y >= 0, sum(y) = 1, sum_k y_k a_k = 0 (Gordan's alternative)."""
    if len(y) != len(A) or any(v < 0 for v in y) or sum(y, _ZERO) != 1:
        return False
    return all(sum((yk * a[j] for yk, a in zip(y, A) if yk), _ZERO) == 0 for j in range(n))


class _Certified:
    """A verdict with its two exact certificates, one for each answer. ``_names``: the attributes
    holding the verdict, the certificate of yes and the certificate of no."""

    _names: tuple[str, str, str]

    @property
    def certificate(self) -> list[Fraction]:
        """The certificate of the verdict (``point`` or ``farkas``; ``weights`` or ``separator``)."""
        verdict, yes, no = self._names
        return getattr(self, yes) if getattr(self, verdict) else getattr(self, no)


@dataclass(frozen=True)
class ConeResult(_Certified):
    """Verdict on the open cone {d : <a_k, d> > 0 for all k}, with its exact certificate.

    ``nonempty``: the verdict. ``point``: when non-empty, a rational d with every <a_k, d> > 0
    (checked exactly). ``farkas``: when empty, y >= 0 with sum(y) = 1 and sum_k y_k a_k = 0
    (checked exactly), one weight per input row. ``path``: which of :data:`PATHS` decided.
    """

    nonempty: bool
    point: list[Fraction] | None
    farkas: list[Fraction] | None
    path: str
    _names = ("nonempty", "point", "farkas")


@dataclass(frozen=True)
class HullResult(_Certified):
    """Verdict on ``target in conv(points)``, with its exact certificate.

    ``member``: the verdict. ``weights``: when a member, w >= 0 with sum(w) = 1 and
    sum_i w_i p_i = target exactly. ``separator``: when not, h with <h, target> > <h, p_i> for
    every point p_i, exactly. ``path``: which of :data:`PATHS` decided (for the cone of
    :func:`hull_membership`).
    """

    member: bool
    weights: list[Fraction] | None
    separator: list[Fraction] | None
    path: str
    _names = ("member", "weights", "separator")


# --------------------------------------------------------------------------------------------
# the cone decision
# --------------------------------------------------------------------------------------------
def cone_interior_point(rows, n: int | None = None, *, method: str = "auto") -> ConeResult:
    """Decide whether the open cone {d in R^n : <a_k, d> > 0 for every row a_k} is non-empty.

    ``rows``: sequences of numbers (see :func:`to_fraction`); ``n``: the dimension, required when
    ``rows`` may be empty (no rows: the cone is all of R^n, point = 0).

    ``method="auto"`` (default) applies the exact shortcuts below, then a HiGHS proposal
    confirmed by an exact certificate, then the exact simplex. ``"highs"`` skips the shortcuts
    (HiGHS, then the exact simplex if the proposal is not certified); ``"simplex"`` uses the exact
    simplex alone (:func:`_simplex_gordan`). All methods return the same verdict, each with a
    verified certificate; the choice exists to test and measure each path.

    Shortcuts (each exact, each ends in a certificate):

    * a zero row: <0, d> > 0 is impossible; y = e_k.
    * rows are scaled to max-abs 1 (a positive row scaling leaves the cone unchanged) and
      positive multiples merged. If a_i = -c a_j with c > 0, the cone is empty:
      y_i a_i + y_j a_j = 0 for y ∝ (1/|a_i|, 1/|a_j|) after scaling. This is the common
      "x > 0 and -x > 0" conflict of the oracle (Lemmas 2 and 7).
    * one-signed coordinates: if coordinate j is nonzero in some rows and all those entries have
      one strict sign s, drop coordinate j and those rows. The smaller cone is non-empty iff the
      original is: a point d' of the smaller cone extends by d_j = s t, t large, since the dropped
      rows gain |a_kj| t > 0 and the kept rows have a_kj = 0; a certificate y' of the smaller
      cone is one of the original (the kept rows vanish in coordinate j). Repeated to a fixed
      point. When every row is dropped the cone is non-empty. (The reference repository's
      version accepted a column with mixed signs; rows (1) and (-1) are the counterexample.)
      This includes "some coordinate is strictly positive (negative) in every row".
    * if there are at most n remaining rows and A d = 1 is solvable (in particular if A has full
      row rank), that d is a point.
    * a remaining system of at most :data:`_TINY_ENTRIES` entries: the exact simplex alone.
    """
    if method not in _METHODS:
        raise FpadError(f"unknown cone method {method!r}; use one of {', '.join(_METHODS)}")
    A = frac_matrix(rows, n)
    width = _width(A, n, "cone_interior_point")
    if not A:
        return ConeResult(True, [_ZERO] * width, None, "no-rows")
    if method == "simplex":
        return _certified(A, width, *_simplex_gordan(A, width), "exact-simplex")
    if method == "highs":
        return _certified(A, width, *_propose_and_certify(A, width))
    r = _auto_memo(tuple(map(tuple, A)), width)
    # a fresh result: the cached certificate lists are never handed out to be mutated
    return ConeResult(r.nonempty, None if r.point is None else list(r.point),
                      None if r.farkas is None else list(r.farkas), r.path)


@functools.lru_cache(maxsize=1 << 14)
def _auto_memo(rows: tuple, width: int) -> ConeResult:
    """:func:`_auto` memoised on the exact rows: the oracle meets the same few cones at every point
    of a grid (a one-neuron network: the same 12 cones at all 253 points of e4m3fn), and a
    verdict with its certificate is a function of the rows alone."""
    return _auto([list(r) for r in rows], width)


def _certified(A, n, point, farkas, path) -> ConeResult:
    """Final exact check on the ORIGINAL rows: every returned answer carries a verified certificate."""
    if point is not None:
        if not _is_point(A, point):
            raise AssertionError(f"fpad.exact internal error: {path} produced an invalid interior point")
        return ConeResult(True, point, None, path)
    if not _is_farkas(A, farkas, n):
        raise AssertionError(f"fpad.exact internal error: {path} produced an invalid Gordan certificate")
    return ConeResult(False, None, farkas, path)


def _unit(K: int, weights: dict[int, Fraction]) -> list[Fraction]:
    y = [_ZERO] * K
    for k, v in weights.items():
        y[k] = v
    return y


def _auto(A, n) -> ConeResult:
    K = len(A)
    scale = []
    for k, a in enumerate(A):
        s = max((abs(x) for x in a), default=_ZERO)
        if s == 0:
            return _certified(A, n, None, _unit(K, {k: _ONE}), "zero-row")
        scale.append(s)

    # Merge positive multiples; an opposite pair decides "empty".
    reps: list[int] = []
    R: list[list[Fraction]] = []
    seen: dict[tuple, int] = {}
    for k, a in enumerate(A):
        r = tuple(x / scale[k] for x in a)
        if r in seen:
            continue
        opp = seen.get(tuple(-x for x in r))
        if opp is not None:
            si, sk = scale[opp], scale[k]
            y = _unit(K, {opp: sk / (si + sk), k: si / (si + sk)})
            return _certified(A, n, None, y, "opposite-rows")
        seen[r] = k
        reps.append(k)
        R.append(list(r))

    # One-signed-coordinate elimination (see the docstring for the proof).
    sign = [[(x > 0) - (x < 0) for x in r] for r in R]
    live_rows = set(range(len(R)))
    live_cols = list(range(n))
    stack: list[tuple[int, int, list[int]]] = []  # (column, sign, rows dropped with it)
    changed = True
    while changed and live_rows:
        changed = False
        for j in list(live_cols):
            signs = {sign[k][j] for k in live_rows} - {0}
            if len(signs) <= 1:
                dropped = [k for k in live_rows if sign[k][j]]
                stack.append((j, signs.pop() if signs else 0, dropped))
                live_rows.difference_update(dropped)
                live_cols.remove(j)
                changed = True

    path = "one-signed-columns"
    if live_rows:
        sub_rows = sorted(live_rows)
        S = [[R[k][j] for j in live_cols] for k in sub_rows]
        # A d = 1 is tried only when full row rank is possible (K <= n): for taller systems the
        # elimination costs more than the LP (0.4 s of 0.7 s at 200 x 60) and rarely succeeds.
        ds = _solve(S, [_ONE] * len(S), len(live_cols)) if len(S) <= len(live_cols) else None
        if ds is not None:
            point, farkas, path = ds, None, "solve-ones"
        elif len(S) * len(live_cols) <= _TINY_ENTRIES:
            point, farkas = _simplex_gordan(S, len(live_cols))
            path = "exact-simplex"
        else:
            point, farkas, path = _propose_and_certify(S, len(live_cols))
        if farkas is not None:
            # y' on the merged, scaled rows R -> y on A: R_k = A_rep(k) / scale, so weight y'/scale.
            w = {reps[k]: yk / scale[reps[k]] for k, yk in zip(sub_rows, farkas) if yk}
            total = sum(w.values(), _ZERO)
            return _certified(A, n, None, _unit(K, {k: v / total for k, v in w.items()}), path)
        sub_point = point
    else:
        sub_point = []

    d = [_ZERO] * n
    for j, v in zip(live_cols, sub_point):
        d[j] = v
    for j, s, dropped in reversed(stack):
        # Rows dropped with column j are zero in every column dropped before j; all other
        # coordinates they use are already set, so t > max(-<r, d>/|r_j|) makes them positive.
        t = _ZERO
        for k in dropped:
            t = max(t, -_dot(R[k], d) / abs(R[k][j]))
        d[j] = s * (t + 1)
    return _certified(A, n, d, None, path)


# --------------------------------------------------------------------------------------------
# HiGHS proposals, exactly confirmed
# --------------------------------------------------------------------------------------------
def _log2(v: Fraction) -> int:
    """floor-ish binary exponent of a nonzero Fraction (exact to within 1)."""
    return v.numerator.bit_length() - v.denominator.bit_length()


def _balance_exponents(A, n) -> tuple[list[int], list[int]]:
    """Power-of-two row and column shifts r_i, c_j making |a_ij| 2^(r_i + c_j) close to 1.

    Geometric scaling: alternately set each row's and each column's shift to minus the mean
    binary exponent of its nonzero entries. A matrix R_i C_j x_ij with small x (the shape of the
    mixed-magnitude problems that break float LPs) is balanced after one row and one column pass;
    a few passes settle the rest. Powers of two are exact, so the scaled problem is the same
    problem; this only makes HiGHS's proposals better.
    """
    E = [[(j, _log2(x)) for j, x in enumerate(a) if x] for a in A]
    r, c = [0] * len(A), [0] * n
    for _ in range(3):
        for i, row in enumerate(E):
            if row:
                r[i] = -round(sum(e + c[j] for j, e in row) / len(row))
        tot, cnt = [0] * n, [0] * n
        for i, row in enumerate(E):
            for j, e in row:
                tot[j] += e + r[i]
                cnt[j] += 1
        c = [-round(t / k) if k else 0 for t, k in zip(tot, cnt)]
    for i, row in enumerate(E):  # finally cap every row at |entry| <= 2 (no float overflow)
        if row:
            r[i] = -max(e + c[j] for j, e in row)
    return r, c


def _propose_and_certify(A, n):
    """(point, farkas, path): HiGHS proposals confirmed exactly, else the exact simplex."""
    import numpy as np
    from scipy.optimize import linprog

    K = len(A)
    # Exact power-of-two scaling for HiGHS only: a column scaling D maps a point x of the scaled
    # cone to d = D x; a row scaling changes neither the cone nor the support of a Gordan
    # multiplier. Certificates are always checked on A itself.
    row_shift, col_shift = _balance_exponents(A, n)
    col = [Fraction(2) ** c for c in col_shift]
    F = np.array(
        [[float(a[j] * col[j] * Fraction(2) ** s) if a[j] else 0.0 for j in range(n)] for a, s in zip(A, row_shift)],
        dtype=np.float64,
    ).reshape(K, n)

    # Primal proposal: maximise c subject to F x >= c, |x_j| <= 1, c <= 1.
    res = linprog(
        np.r_[np.zeros(n), -1.0],
        A_ub=np.c_[-F, np.ones(K)],
        b_ub=np.zeros(K),
        bounds=[(-1.0, 1.0)] * n + [(None, 1.0)],
        method="highs",
    )
    if res.status == 0 and res.x[-1] > 0:
        exact_x = [Fraction(float(x)) for x in res.x[:n]]
        # Try a short rational near x first (a readable point), then x itself taken exactly.
        for cand in ([x.limit_denominator(1024) for x in exact_x], exact_x):
            d = [x * cj for x, cj in zip(cand, col)]
            if _is_point(A, d):
                return d, None, "highs+certificate"

    # Gordan proposal: y >= 0, sum y = 1, F^T y = 0. Its support picks the rows; the weights on
    # that support are then solved for exactly and must come out >= 0.
    res = linprog(
        np.zeros(K),
        A_eq=np.r_[F.T, np.ones((1, K))],
        b_eq=np.r_[np.zeros(n), 1.0],
        bounds=[(0.0, None)] * K,
        method="highs",
    )
    if res.status == 0:
        y = res.x
        top = float(np.max(y))
        tried = set()
        for cut in (1e-9 * top, 0.0):  # the only tolerance: it just picks a candidate support
            support = tuple(k for k in range(K) if y[k] > cut)
            if not support or support in tried:
                continue
            tried.add(support)
            M = [[A[k][j] for k in support] for j in range(n)] + [[_ONE] * len(support)]
            ys = _solve(M, [_ZERO] * n + [_ONE], len(support))
            if ys is not None and all(v >= 0 for v in ys):
                full = [_ZERO] * K
                for k, v in zip(support, ys):
                    full[k] = v
                return None, full, "highs+certificate"

    return _simplex_gordan(A, n) + ("exact-simplex",)


# --------------------------------------------------------------------------------------------
# exact simplex (phase 1, integer tableau, lexicographic ratio test)
# --------------------------------------------------------------------------------------------
def _lex_less(Ti, Tp, q, width, K) -> bool:
    """Lexicographic ratio test: is (b_i, B^-1 row i) / T[i][q] lex-smaller than row p's?

    Rows of [b | B^-1] are lexicographically positive and stay so under this rule, and the
    cost row's lex vector strictly improves at every pivot, so no basis repeats (no cycling)
    whatever column enters. Integers share the positive denominator D, so compare cross products.
    """
    a, c = Ti[q], Tp[q]
    for j in (width, *range(K, width)):
        lhs, rhs = Ti[j] * c, Tp[j] * a
        if lhs != rhs:
            return lhs < rhs
    raise AssertionError("fpad.exact internal error: two tableau rows with equal lex ratios")


def _simplex_gordan(A, n):
    """(point, farkas): phase 1 of the simplex method on the Gordan system, exactly.

    Minimise the sum of artificials s subject to [A^T; 1^T] y + s = (0, ..., 0, 1), y, s >= 0.
    Optimum 0: y is a Gordan certificate (cone empty). Optimum > 0: the optimal simplex
    multipliers pi satisfy pi^T [A^T; 1^T] <= 0 (reduced costs of y >= 0) and pi_{n+1} =
    pi^T b > 0, so u = -pi[:n] has <a_k, u> >= pi_{n+1} > 0: an interior point (Farkas' lemma).
    Pivoting: Dantzig's entering rule (most negative reduced cost among the y columns;
    artificials never re-enter) with the lexicographic ratio test (:func:`_lex_less`), which
    rules out cycling for any entering rule, so the method is finite. The Gordan system is highly
    degenerate (b = e_{n+1}); Bland's rule, tried first, needed ~6600 pivots on a random
    200 x 60 instance, this rule 235. The tableau is kept in integers (:func:`_ff_pivot`).
    """
    K = len(A)
    m = n + 1
    width = K + m
    # Gordan columns scaled to integers: y'_k for c_k a_k is y_k = c_k y'_k up to normalisation,
    # and scaling a row does not change the sign of <a_k, d>.
    scale = [_denominator_lcm(a) for a in A]
    cols = [[x.numerator * (L // x.denominator) for x in a] for a, L in zip(A, scale)]
    # Integer tableau rows [M | I | b] with M = [A^T; 1^T], b = e_{n+1}; basis = artificials.
    T = [[cols[k][i] for k in range(K)] + [int(c == i) for c in range(m)] + [0] for i in range(n)]
    T.append([1] * K + [int(c == n) for c in range(m)] + [1])
    # Reduced costs of the phase-1 cost (0 on y, 1 on s); the last entry is -objective.
    T.append([-sum(T[i][j] for i in range(m)) for j in range(K)] + [0] * m + [-1])
    z = m  # index of the cost row; T / D is the rational tableau, D > 0 throughout
    D = 1
    basis = [K + i for i in range(m)]

    while True:
        cost = T[z]
        q = min(range(K), key=cost.__getitem__, default=None)
        if q is None or cost[q] >= 0:
            break
        p = None
        for i in range(m):
            if T[i][q] > 0 and (p is None or _lex_less(T[i], T[p], q, width, K)):
                p = i
        if p is None:  # cannot happen: phase 1 is bounded below by 0
            raise AssertionError("fpad.exact internal error: unbounded phase-1 simplex")
        D = _ff_pivot(T, D, p, q)  # T[p][q] > 0, so D stays positive
        basis[p] = q

    if T[z][width] == 0:
        y = [_ZERO] * K
        for i, b in enumerate(basis):
            if b < K:
                y[b] = Fraction(T[i][width], D)
        # back to the unscaled rows: sum y'_k L_k a_k = 0, so weight a_k by y'_k L_k
        w = [yk * L for yk, L in zip(y, scale)]
        total = sum(w, _ZERO)
        return None, [v / total for v in w]
    # Reduced cost of artificial i is 1 - pi_i.
    pi = [_ONE - Fraction(T[z][K + i], D) for i in range(m)]
    return [-v for v in pi[:n]], None


# --------------------------------------------------------------------------------------------
# convex hull membership
# --------------------------------------------------------------------------------------------
def hull_membership(points, target, *, method: str = "auto") -> HullResult:
    """Decide whether ``target`` lies in the convex hull of ``points``, exactly, with a certificate.

    By Gordan's alternative on the rows a_i = target - p_i: target = sum w_i p_i with w a
    probability vector iff sum w_i a_i = 0 (cone empty, w = the Gordan certificate), and otherwise
    an interior point h has <h, target> > <h, p_i> for every i (a strict separator). No points:
    not a member, separator 0. ``method`` as in :func:`cone_interior_point`.
    """
    t = frac_vector(target)
    P = frac_matrix(points, len(t))
    # Coordinates where the target and every point agree are zero in every row: the cone is
    # decided without them (a separator is 0 there, the weights do not change). The oracle's
    # gradients differ in a handful of a network's thousands of parameters. (All agree: keep
    # every coordinate, so the zero rows still say "member".)
    cols = [j for j, c in enumerate(zip(t, *P)) if c.count(c[0]) != len(c)] or list(range(len(t)))
    res = cone_interior_point([[t[j] - p[j] for j in cols] for p in P], len(cols), method=method)
    if res.nonempty:
        h = [_ZERO] * len(t)
        for j, v in zip(cols, res.point):
            h[j] = v
        return HullResult(False, None, h, res.path)
    return HullResult(True, res.farkas, None, res.path)
