"""Exact column rank of a matrix of binary floats (float32, bf16 values are dyadic rationals).

Fast path: scale to integers and eliminate modulo the prime p = 2^31 - 1 in numpy int64. The rank
modulo p never exceeds the rank over Q (a minor that is non-zero mod p is a non-zero integer), so
"rank mod p = number of columns" is a proof of full column rank; the pivot rows name the minor.
Otherwise the answer comes from the exact fraction-free elimination of :func:`fpad.exact.rank`
(the slow twin, which tests compare against on random matrices). No tolerance decides anything.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from fpad import exact

P = 2**31 - 1


def _to_int_matrix(A: np.ndarray) -> list[list[int]]:
    """Integer matrix with the same column rank (every entry times one power of two)."""
    m, e = np.frexp(A)  # A = m 2^e, m has <= 53 significant bits
    lo = int(e[A != 0].min()) - 53 if np.any(A != 0) else 0
    return [[int(Fraction(float(x)) * (Fraction(2) ** -lo)) if x else 0 for x in row] for row in A]


def _rank_mod_p(rows: list[list[int]], ncols: int) -> int:
    M = np.array([[v % P for v in r] for r in rows], dtype=np.int64).reshape(len(rows), ncols)
    r = 0
    for c in range(ncols):
        piv = np.nonzero(M[r:, c])[0]
        if piv.size == 0:
            continue
        p = r + int(piv[0])
        M[[r, p]] = M[[p, r]]
        inv = pow(int(M[r, c]), P - 2, P)
        M[r] = (M[r] * inv) % P
        below = np.nonzero(M[r + 1:, c])[0] + r + 1
        if below.size:
            M[below] = (M[below] - (M[below, c:c + 1] * M[r]) % P) % P
        r += 1
        if r == M.shape[0]:
            break
    return r


def column_rank(A) -> tuple[int, str]:
    """(rank of A, how it was decided): ``"mod-p full rank"`` or ``"exact elimination"``."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError("column_rank needs a 2-D matrix")
    n, k = A.shape
    if k == 0:
        return 0, "empty"
    if not np.all(np.isfinite(A)):
        raise ValueError("column_rank: non-finite entries")
    ints = _to_int_matrix(A)
    if k <= n and _rank_mod_p(ints, k) == k:
        return k, "mod-p full rank"
    return exact.rank(ints), "exact elimination"


def full_column_rank(A) -> bool:
    """True iff the columns of A are linearly independent (exact)."""
    A = np.asarray(A, dtype=np.float64)
    return column_rank(A)[0] == A.shape[1]
