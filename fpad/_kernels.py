"""Numba kernels of :mod:`fpad.enumerate`: flat loops over grid points, exact by construction.

Everything here works on the arrays built by :func:`fpad.enumerate.compile_problem` (see there for
their meaning). The proofs that each float decision is exact sit next to the code; the module
docstring of :mod:`fpad.enumerate` gives the overall argument.

Arithmetic with error bounds
----------------------------
Every computed quantity is a pair ``(v, e)``: a float64 ``v`` and a float64 ``e >= 0`` with
``|V - v| <= e``, where V is the exact real value (node value, tangent or adjoint). ``e == 0``
means ``v`` IS the exact value. ``e`` may be ``inf`` or ``nan`` (overflow): every decision below is
written so that a ``nan``/``inf`` bound makes it *undecided*, never wrong. Rounding to nearest
(IEEE 754 default, what numba emits; no fastmath anywhere) is assumed throughout.

* ``_add``: ``s = fl(a + b)``. TwoSum (Knuth) returns ``r`` with ``s + r = a + b`` exactly unless
  ``s`` overflows (then r is nan, which poisons the bound: undecided). So the error of ``s`` is
  ``ea + eb + |r|``; when ``ea = eb = 0`` that is ``|r|``, exactly 0 iff the addition was exact.
* ``_mul``: ``p = fl(a * b)``. The rounding error is computed exactly by Dekker's TwoProduct
  (Veltkamp split) when ``2^-900 <= |p|`` and ``2^-969 <= |a|, |b| < 2^995`` (normal factors, no
  overflow in the split, every partial product and the error term representable: their lowest
  bits are >= 2^-1006); otherwise it is bounded by ``2^-52 |p| + 2^-1074`` (finite p), or is
  ``inf`` (overflow: undecided). Propagated error: ``|AB - ab| <= |a| eb + |b| ea + ea eb``.
* Sums and products of the (non-negative) error terms are rounded *up* with ``_up``: the float
  after fl(t) is >= t for every real ``t >= 0`` under round-to-nearest (t lies between the float
  below and the float above fl(t)). ``_up(0) = 0`` is used only where 0 is exact
  (a sum of non-negative floats is 0 iff all are 0; a product is taken as 0 only when a factor is 0).

Decisions
---------
``x`` versus a kink ``k`` (``(x, ex)``, ``(k, ek)``):
* on the kink iff ``ex == ek == 0 and x == k`` (both exact floats: equal as reals iff equal);
* off the kink if ``_lower(|fl(x - k)|) > _up(ex + ek)``, where ``_lower(d) = fl(d (1 - 2^-50))``
  is a lower bound of the exact ``|x - k|`` (fl(x - k) has relative error <= u, and
  d (1 - 2^-50)(1 + u) < d (1 - u)); then |X - K| >= |x - k| - ex - ek > 0;
* otherwise undecided: the point goes to the exact slow path. NaN compares false: undecided.
The same rule decides ties of MAX arguments and the zero tests of the K = 1 derivative data.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange, vectorize

# op codes (same numbering as fpad.graph)
PARAM, CONST, LIN, MUL, ACT, MAX = range(6)

# The kernel data, built by fpad.enumerate.compile_problem (named tuples of arrays: numba passes
# them as typed records, so the kernels read fields by name, never by position).
#: node arrays over the live nodes (topological, output last); ``exact[n]``: proven exact in float64
Nodes = namedtuple("Nodes", "op aptr aidx acoef acoef_err cst cst_err pslot actid isconst exact val0 err0")
#: activation tables: kinks, slopes and intercepts with error bounds, kclarke per kink
Acts = namedtuple("Acts", "kptr kinks kink_err sptr slopes slope_err icpt icpt_err kclarke")
#: recomputation structure of count_kernel (prefix nodes, per-point nodes, kink nodes, affine path)
Sweep = namedtuple("Sweep", "lvl_pos lvl_nodes pt_nodes inner_edge kn_node kn_inner kn_inv ik_kn ik_in ik_c fast kn_ex "
                             "kn_lvl vec")

# per-point verdict codes
UNTOUCHED = 0  # no kink touched: differentiable, AD exact
TOUCHED_OK = 1  # touched, differentiable, AD = DP
NDF_CLARKE = 2  # not differentiable, AD in the Clarke set
NDF_NOT_CLARKE = 3  # not differentiable, AD outside the Clarke set
DEFER = 4  # the kernel does not decide: exact slow path (fpad.oracle)
INC = 5  # touched, differentiable, AD != DP (only from the slow path)

# kink-node status
ST_OFF, ST_KINK, ST_TIE, ST_UNDECIDED = 0, 1, 2, 3

# counters of ChunkCounts, in kernel order
C_POINTS, C_TOUCHED, C_NDF, C_INC, C_CLARKE, C_DEFER = range(6)
TILE = 256  # inner digits per tile of the node-major per-point path
N_COUNTERS = 6
# witness classes, in kernel order
W_TOUCHED, W_NDF, W_INC, W_NOT_CLARKE = range(4)
N_WCLASSES = 4

_SMALL_PROD = 2.0**-900
_TINY = 2.0**-969
_BIG_FACTOR = 2.0**995
_SPLITTER = 134217729.0  # 2^27 + 1
_LOWER = 1.0 - 2.0**-50


@njit(cache=True)
def _up(x):
    """A float >= every real t >= 0 with fl(t) = x (x >= 0; 0 maps to 0, see the module docstring).

    Under round-to-nearest t <= succ(x), the next float above x. y = max(x 2^-52, 2^-1074) >=
    ulp(x) (x 2^-52 is exact for x >= 2^-1022 and >= 2^-1074 = ulp(x) below), so fl(x + y) >=
    x + ulp(x) = succ(x) by monotonicity of rounding. inf and nan stay inf and nan."""
    if x == 0.0:
        return 0.0
    return x + max(x * 2.0**-52, 2.0**-1074)


@njit(cache=True)
def _prod_rerr(a, b, p):
    """|a*b - p| for p = fl(a*b): exact (TwoProduct) in range, else a proven upper bound."""
    if a == 0.0 or b == 0.0:
        return 0.0
    aa, ab_, ap = abs(a), abs(b), abs(p)
    if ap >= _SMALL_PROD and _TINY <= aa < _BIG_FACTOR and _TINY <= ab_ < _BIG_FACTOR:
        c = _SPLITTER * a
        ah = c - (c - a)
        al = a - ah
        c = _SPLITTER * b
        bh = c - (c - b)
        bl = b - bh
        return abs(((ah * bh - p) + ah * bl + al * bh) + al * bl)
    if ap < np.inf:
        # |ab - p| <= 2^-53 |ab| + 2^-1075 and |ab| <= |p| + |ab - p|, so
        # |ab - p| <= 2^-52 |p| + 2^-1074
        return _up(_up(ap * 2.0**-52) + 2.0**-1074)
    return np.inf


@njit(cache=True)
def _mul(a, ea, b, eb):
    p = a * b
    r = _prod_rerr(a, b, p)
    if ea == 0.0 and eb == 0.0:
        return p, r
    t = 0.0
    if eb != 0.0 and a != 0.0:
        t = _up(abs(a) * eb)
    if ea != 0.0 and b != 0.0:
        t = _up(t + _up(abs(b) * ea))
    if ea != 0.0 and eb != 0.0:
        t = _up(t + _up(ea * eb))
    return p, _up(t + r)


@njit(cache=True)
def _add(a, ea, b, eb):
    s = a + b
    bb = s - a
    r = abs((a - (s - bb)) + (b - bb))
    if ea == 0.0 and eb == 0.0:
        return s, r
    return s, _up(_up(ea + eb) + r)


@vectorize(["float64(float64, float64, float64)"], cache=True)
def prod_residual(a, b, p):
    """|a*b - p| for p = fl(a*b), elementwise (:func:`_prod_rerr`: exact in its range)."""
    return _prod_rerr(a, b, p)


@vectorize(["float64(float64, float64)"], cache=True)
def sum_residual(a, b):
    """|a + b - fl(a + b)|, elementwise, exact (TwoSum, :func:`_add`)."""
    return _add(a, 0.0, b, 0.0)[1]


@njit(cache=True)
def _rel(x, ex, k, ek):
    """Relation of X to K: -1 (X < K), 0 (X == K), +1 (X > K), 2 (undecided)."""
    if ex == 0.0 and ek == 0.0:
        if x == k:
            return 0
        return 1 if x > k else -1
    d = x - k
    if abs(d) * _LOWER > _up(ex + ek):
        return 1 if d > 0 else -1
    return 2


@njit(cache=True)
def _zero_test(x, ex):
    """1 if X != 0, 0 if X == 0, 2 undecided."""
    if ex == 0.0:
        return 0 if x == 0.0 else 1
    if abs(x) * _LOWER > ex:
        return 1
    return 2


@njit(cache=True)
def _locate(x, ex, k0, nk, kinks, kerr):
    """Where x lies among the kinks kinks[k0:k0+nk]: (0, i) strictly inside piece i, (1, i) on
    kink i, (2, i) undecided (i: the float guess of the piece, used only to keep computing)."""
    for i in range(nk):
        r = _rel(x, ex, kinks[k0 + i], kerr[k0 + i])
        if r == 0:
            return 1, i
        if r == -1:
            return 0, i
        if r == 2:
            g = i
            while g < nk and x >= kinks[k0 + g]:
                g += 1
            return 2, g
    return 0, nk


@njit(cache=True)
def _max_state(a0, a1, aidx, val, err):
    """(r, status) for a MAX node with arguments aidx[a0:a1]: r = first float maximiser; status
    ST_OFF (unique maximiser, decided), ST_TIE (exact tie), ST_UNDECIDED."""
    r = aidx[a0]
    for e in range(a0 + 1, a1):
        if val[aidx[e]] > val[r]:
            r = aidx[e]
    st = ST_OFF
    for e in range(a0, a1):
        a = aidx[e]
        if a == r:
            continue
        rel = _rel(val[a], err[a], val[r], err[r])
        if rel == 0:
            st = ST_TIE
        elif rel != -1:
            return r, ST_UNDECIDED
    return r, st


@njit(cache=True)
def _eval_x(n, val, err, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr, kinks, kerr, sptr, slopes,
            serr, icpt, ierr):
    """Value and error of node n from its arguments' (val, err); also the ACT/MAX state
    (ACT: piece index or -1 when undecided; MAX: the maximiser node, -1 on a tie/undecided).
    Explicit arrays (no tuples): called per point on the general path."""
    o = op[n]
    if o == LIN:
        s = cst[n]
        if exact[n]:
            for e in range(aptr[n], aptr[n + 1]):
                s += acoef[e] * val[aidx[e]]
            return s, 0.0, 0
        es = cerr[n]
        for e in range(aptr[n], aptr[n + 1]):
            t, et = _mul(acoef[e], acerr[e], val[aidx[e]], err[aidx[e]])
            s, es = _add(s, es, t, et)
        return s, es, 0
    if o == MUL:
        a, b = aidx[aptr[n]], aidx[aptr[n] + 1]
        if exact[n]:
            return val[a] * val[b], 0.0, 0
        p, ep = _mul(val[a], err[a], val[b], err[b])
        return p, ep, 0
    if o == ACT:
        x = aidx[aptr[n]]
        aid = actid[n]
        st, i = _locate(val[x], err[x], kptr[aid], kptr[aid + 1] - kptr[aid], kinks, kerr)
        piece = i + 1 if st == 1 else i  # on a kink both pieces give the same value
        j = sptr[aid] + piece
        if exact[n]:
            v, ev = slopes[j] * val[x] + icpt[j], 0.0
        else:
            p, ep = _mul(slopes[j], serr[j], val[x], err[x])
            v, ev = _add(p, ep, icpt[j], ierr[j])
        return v, ev, (piece if st != 2 else -1)
    if o == MAX:
        r, st = _max_state(aptr[n], aptr[n + 1], aidx, val, err)
        return val[r], err[r], (r if st == ST_OFF else -1)
    return val[n], err[n], 0  # PARAM / CONST: set by the caller


@njit(inline="always")
def _store_x(n, val, err, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr, kinks, kerr, sptr,
             slopes, serr, icpt, ierr):
    """:func:`_eval_x` written into val[n], err[n]; returns the node's state."""
    v, e, s = _eval_x(n, val, err, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr, kinks, kerr,
                      sptr, slopes, serr, icpt, ierr)
    val[n] = v
    err[n] = e
    return s


@njit(cache=True)
def _kink_status(t, val, err, op, aptr, aidx, actid, kptr, kinks, kerr):
    """(status, kink index) of kink node t from its inputs' values (explicit arrays, no tuples:
    this runs per block and per point)."""
    if op[t] == ACT:
        x = aidx[aptr[t]]
        aid = actid[t]
        st, i = _locate(val[x], err[x], kptr[aid], kptr[aid + 1] - kptr[aid], kinks, kerr)
        if st == 1:
            return ST_KINK, i
        if st == 2:
            return ST_UNDECIDED, -1
        return ST_OFF, -1
    r, st = _max_state(aptr[t], aptr[t + 1], aidx, val, err)
    return st, -1


@njit(inline="always")
def _exact_kink(x, aid, kptr, kinks):
    """The kink test of a kink node whose input and kinks are proven exact floats (``kn_ex``):
    float equality IS the exact test. Index of the kink equal to x, or -1. Inlined by numba into
    the block-level and per-point loops (a call there costs more than the test)."""
    ki = -1
    for i in range(kptr[aid + 1] - kptr[aid]):
        if x == kinks[kptr[aid] + i]:
            ki = i
    return ki


@njit(cache=True)
def _full_eval(digits, table, fv, fe, pst, P, A):
    """Every live node's (val, err) at the point with the given digits; pst[n]: ACT piece / MAX
    maximiser (-1: on a kink, tie or undecided)."""
    op, aptr, aidx, acoef, acerr, cst, cerr = P.op, P.aptr, P.aidx, P.acoef, P.acoef_err, P.cst, P.cst_err
    pslot, actid, isconst, exact, val0, err0 = P.pslot, P.actid, P.isconst, P.exact, P.val0, P.err0
    kptr, kinks, kerr, sptr = A.kptr, A.kinks, A.kink_err, A.sptr
    slopes, serr, icpt, ierr = A.slopes, A.slope_err, A.icpt, A.icpt_err
    for n in range(op.shape[0]):
        if isconst[n]:
            fv[n] = val0[n]
            fe[n] = err0[n]
            pst[n] = 0
        elif op[n] == PARAM:
            fv[n] = table[digits[pslot[n]]]
            fe[n] = 0.0
            pst[n] = 0
        else:
            v, e, s = _eval_x(n, fv, fe, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr, kinks, kerr,
                              sptr, slopes, serr, icpt, ierr)
            fv[n] = v
            fe[n] = e
            pst[n] = s


@njit(cache=True)
def _partial(n, e, fv, fe, pst, op, aptr, aidx, acoef, acerr, actid, sptr, slopes, serr):
    """Local partial derivative (with error) of node n w.r.t. argument slot e, at a point where n
    is not touched (pst[n] >= 0: ACT strictly inside piece pst[n], MAX with unique maximiser)."""
    o = op[n]
    if o == LIN:
        return acoef[e], acerr[e]
    if o == MUL:  # d(ab)/da = b; for a * a both slots contribute a, giving 2a
        other = aidx[aptr[n] + 1] if e == aptr[n] else aidx[aptr[n]]
        return fv[other], fe[other]
    if o == ACT:
        j = sptr[actid[n]] + pst[n]
        return slopes[j], serr[j]
    return (1.0 if aidx[e] == pst[n] else 0.0), 0.0  # MAX: the unique maximiser gets 1


@njit(cache=True)
def _sweep(root, lo, adj, adje, fv, fe, pst, P, A):
    """Reverse sweep: adj[n] = d root / d node_n for lo <= n <= root, propagating from the
    non-constant nodes lo < n <= root reached with a non-zero adjoint. Returns False when such a
    node is an ACT/MAX node without a decided local derivative (on a kink, tie, undecided): the
    caller defers the point."""
    op, aptr, aidx, acoef, acerr, actid, isconst = P.op, P.aptr, P.aidx, P.acoef, P.acoef_err, P.actid, P.isconst
    sptr, slopes, serr = A.sptr, A.slopes, A.slope_err
    for n in range(lo, root + 1):
        adj[n] = 0.0
        adje[n] = 0.0
    adj[root] = 1.0
    for n in range(root, lo, -1):
        if isconst[n] or (adj[n] == 0.0 and adje[n] == 0.0) or op[n] == PARAM:
            continue
        if (op[n] == ACT or op[n] == MAX) and pst[n] < 0:
            return False
        for e in range(aptr[n], aptr[n + 1]):
            a = aidx[e]
            if a < lo or isconst[a]:
                continue
            c, ce = _partial(n, e, fv, fe, pst, op, aptr, aidx, acoef, acerr, actid, sptr, slopes, serr)
            if c == 0.0 and ce == 0.0:
                continue
            p, ep = _mul(c, ce, adj[n], adje[n])
            s, es = _add(adj[a], adje[a], p, ep)
            adj[a] = s
            adje[a] = es
    return True


@njit(cache=True)
def _k1_verdict(t, kink, digits, table, k, fv, fe, pst, adj, adje, P, A):
    """Verdict at a point where kink node t is the only touched node (no tie, nothing undecided).

    Engine notes / enumerate docstring: with a = grad_free(input of t) and sigma = dP/dz_t, the
    point is ndf iff a != 0 and sigma != 0; otherwise differentiable with AD = DP (K = 1 never
    gives inc). At ndf, AD is in the Clarke set iff the proxy lies between D^- and D^+ (kclarke).
    Both are computed by reverse sweeps with error bounds; an undecided zero test (or a node on
    the sweeps whose local derivative is undecided in this evaluation order) returns DEFER.
    """
    op, aptr, aidx, pslot, isconst = P.op, P.aptr, P.aidx, P.pslot, P.isconst
    kptr, kclarke = A.kptr, A.kclarke
    _full_eval(digits, table, fv, fe, pst, P, A)
    N = op.shape[0]
    x = aidx[aptr[t]]
    # a_j = sum of the adjoints (w.r.t. t's input) of the PARAM nodes of free parameter j
    if isconst[x]:
        return TOUCHED_OK
    if not _sweep(x, 0, adj, adje, fv, fe, pst, P, A):
        return DEFER
    a_nonzero = False
    a_undecided = False
    # one pass over the nodes (each a_j sums its PARAM nodes in node order, as a per-j loop
    # would): k passes cost k * N, quadratic for networks with thousands of free parameters
    sa = np.zeros(k)
    sae = np.zeros(k)
    for n in range(x + 1):
        if op[n] == PARAM and not isconst[n] and (adj[n] != 0.0 or adje[n] != 0.0):
            j = pslot[n]
            sa[j], sae[j] = _add(sa[j], sae[j], adj[n], adje[n])
    for j in range(k):
        z = _zero_test(sa[j], sae[j])
        if z == 1:
            a_nonzero = True
        elif z == 2:
            a_undecided = True
    if not a_nonzero:
        return DEFER if a_undecided else TOUCHED_OK  # a == 0: the proxy term is multiplied by 0
    # sigma = dP/dz_t: reverse sweep from the output (the last node) down to t
    if not _sweep(N - 1, t, adj, adje, fv, fe, pst, P, A):
        return DEFER
    z = _zero_test(adj[t], adje[t])
    if z == 2:
        return DEFER
    if z == 0:
        return TOUCHED_OK  # sigma == 0: the jump is invisible in P
    if kclarke[kptr[P.actid[t]] + kink]:
        return NDF_CLARKE
    return NDF_NOT_CLARKE


@njit(cache=True)
def _wit(wit, g, cls, p, maxw):
    """Keep wit[g, cls, :] = the smallest distinct indices seen (ascending, -1 = empty)."""
    for j in range(maxw):
        if wit[g, cls, j] == p:
            return
    last = wit[g, cls, maxw - 1]
    if last >= 0 and p > last:
        return
    j = maxw - 1
    while j > 0:
        prev = wit[g, cls, j - 1]
        if prev >= 0 and prev < p:
            break
        wit[g, cls, j] = prev
        j -= 1
    wit[g, cls, j] = p


@njit(cache=True)
def _tally(g, p, code, tt, n, counts, pk, wit, maxw, dbuf, cap):
    """Add n points with verdict ``code`` (tt: the single touched kink node, or -1); p: the
    smallest of their indices (a witness). DEFER points are added one at a time (n = 1)."""
    if code == DEFER:
        nd = counts[g, C_DEFER]
        if nd < cap:
            dbuf[g, nd] = p
        counts[g, C_DEFER] = nd + 1
        return
    counts[g, C_POINTS] += n
    if code == UNTOUCHED:
        return
    counts[g, C_TOUCHED] += n
    _wit(wit, g, W_TOUCHED, p, maxw)
    if tt >= 0:
        pk[g, tt, 0] += n
    if code == NDF_CLARKE or code == NDF_NOT_CLARKE:
        counts[g, C_NDF] += n
        if tt >= 0:
            pk[g, tt, 1] += n
        _wit(wit, g, W_NDF, p, maxw)
        if code == NDF_CLARKE:
            counts[g, C_CLARKE] += n
        else:
            _wit(wit, g, W_NOT_CLARKE, p, maxw)


@njit(cache=True)
def _run_group(g, i0, i1, start, stop, pts, use_pts, b_first, cap, record, maxw, base_touched, table, k,
               P, A, S, counts, pk, wit, dbuf, codes):
    """One group of :func:`count_kernel`: items i0..i1-1 (blocks, or rows of pts), sequentially.
    A plain function (not a prange body) so numba's parfor analysis stays out of it.

    A point is named by ``p = off + d`` (d its inner digit): its flat index in a range (off =
    block * m), its row in ``pts`` otherwise (off = row - d); counts, witnesses, deferred points
    and codes use that name.

    One loop body on purpose (stages marked by comments): cut into numba-inlined stage functions
    (taking P/A/S, or explicit arrays), un-inlined ones, or closures, it measured 12% to 10x
    slower on B1-B5 (reference-count updates for every array argument per call; commits
    4f2cb4c, b35e589 and their reverts)."""
    op = P.op
    aptr, aidx, acoef, acerr, cst, cerr = P.aptr, P.aidx, P.acoef, P.acoef_err, P.cst, P.cst_err
    pslot, actid, exact, val0, err0 = P.pslot, P.actid, P.exact, P.val0, P.err0
    kptr, kinks, kerr, sptr = A.kptr, A.kinks, A.kink_err, A.sptr
    slopes, serr, icpt, ierr = A.slopes, A.slope_err, A.icpt, A.icpt_err
    lvl_pos, lvl_nodes, pt_nodes, inner_edge = S.lvl_pos, S.lvl_nodes, S.pt_nodes, S.inner_edge
    kn_node, kn_inner, kn_inv = S.kn_node, S.kn_inner, S.kn_inv
    ik_kn, ik_in, ik_c, fast, kn_ex, kn_lvl = S.ik_kn, S.ik_in, S.ik_c, S.fast[0], S.kn_ex, S.kn_lvl
    N = op.shape[0]
    nK = kn_node.shape[0]
    nik = ik_kn.shape[0]
    m = table.shape[0]
    max_spec = 3 * (kinks.shape[0] + 1) * (nik + 1)
    val = val0.copy()
    err = err0.copy()
    base = np.zeros(N)
    base_e = np.zeros(N)
    fv = np.zeros(N)
    fe = np.zeros(N)
    pst = np.zeros(N, np.int64)
    adj = np.zeros(N)
    adje = np.zeros(N)
    kst = np.zeros(nK, np.int64)
    kix = np.zeros(nK, np.int64)
    c_blk = np.full(nK, -1, np.int64)
    c_kink = np.full(nK, -1, np.int64)
    c_code = np.zeros(nK, np.int64)
    digits = np.zeros(max(k, 1), np.int64)
    prev = np.full(max(k, 1), -1, np.int64)
    sp_d = np.zeros(max_spec, np.int64)  # candidate digits of the affine path
    sp_t = np.zeros(max_spec, np.int64)  # kink node touched there (-1: undecided there)
    sp_i = np.zeros(max_spec, np.int64)  # kink index
    # the node-major per-point path (S.vec): per-point node values for a tile of inner digits,
    # the row of each per-point node, the input row of each inner kink node
    vec = S.vec[0]
    npt = pt_nodes.shape[0]
    vb = np.zeros((npt if vec else 0, TILE))
    # their error bounds: written only for inexact LIN/ACT nodes; the rows of exact nodes are never
    # written and stay 0, which is what their readers (_mul, _locate) must see
    eb = np.zeros((npt if vec else 0, TILE))
    ptrow = np.full(N, -1, np.int64)
    for q in range(npt):
        ptrow[pt_nodes[q]] = q
    kin_row = np.zeros(nik, np.int64)
    hm = np.zeros(TILE, np.bool_)
    for q in range(nik):
        kin_row[q] = ptrow[aidx[aptr[kn_node[ik_kn[q]]]]]
    blk = -1
    for it in range(i0, i1):
        if use_pts:
            # the point's coordinates (any number of free parameters: no flat index)
            for j in range(k - 1):
                digits[j] = pts[it, j]
            p0 = it
            p1 = it + 1
            off = it - pts[it, k - 1]
        else:
            blk = b_first + it
            p0 = max(start, blk * m)
            p1 = min(stop, (blk + 1) * m)
            off = blk * m
            # prefix digits (first free parameter most significant): divided out for the first
            # block, then counted up (blocks are consecutive; a division per digit and block
            # cost B1 and B3 12-17% of the kernel time)
            if it == i0:
                rem = blk
                for j in range(k - 2, -1, -1):
                    digits[j] = rem % m
                    rem //= m
            else:
                j = k - 2
                while j >= 0:
                    digits[j] += 1
                    if digits[j] < m:
                        break
                    digits[j] = 0
                    j -= 1
        L = k - 1
        if it == i0:
            L = 0
        for j in range(k - 1):
            if digits[j] != prev[j]:
                L = j
                break
        for j in range(k - 1):
            prev[j] = digits[j]
        if use_pts and (it == i0 or L < k - 1):
            blk = it  # a new prefix: rows are sorted, so a block is a run of rows (the K = 1 cache key)
        if it == i0 or L < k - 1:
            for q in range(lvl_nodes.shape[0]):
                if lvl_pos[q] < L:
                    continue  # depends only on prefix digits that did not change
                n = lvl_nodes[q]
                if op[n] == PARAM:
                    val[n] = table[digits[pslot[n]]]
                    err[n] = 0.0
                elif op[n] == LIN and exact[n]:
                    s = cst[n]
                    for e in range(aptr[n], aptr[n + 1]):
                        s += acoef[e] * val[aidx[e]]
                    val[n] = s
                    err[n] = 0.0
                elif op[n] == MUL and exact[n]:  # in line: most nodes of an all-free deep net
                    val[n] = val[aidx[aptr[n]]] * val[aidx[aptr[n] + 1]]
                    err[n] = 0.0
                else:
                    v, e, s = _eval_x(n, val, err, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr,
                                      kinks, kerr, sptr, slopes, serr, icpt, ierr)
                    val[n] = v
                    err[n] = e
            # per-block bases of the per-point LIN nodes (terms not depending on the inner
            # parameter); any summation order is exact for exact nodes (window analysis)
            for q in range(pt_nodes.shape[0]):
                n = pt_nodes[q]
                if op[n] == LIN:
                    s = cst[n]
                    es = cerr[n]
                    for e in range(aptr[n], aptr[n + 1]):
                        if not inner_edge[e]:
                            if exact[n]:
                                s += acoef[e] * val[aidx[e]]
                            else:
                                t, et = _mul(acoef[e], acerr[e], val[aidx[e]], err[aidx[e]])
                                s, es = _add(s, es, t, et)
                    base[n] = s
                    base_e[n] = es
            # block-level kink nodes (not depending on the inner parameter) whose input changed
            for t in range(nK):
                if not kn_inner[t] and kn_lvl[t] >= L:
                    if kn_ex[t]:
                        ki = _exact_kink(val[aidx[aptr[kn_node[t]]]], actid[kn_node[t]], kptr, kinks)
                        st = ST_KINK if ki >= 0 else ST_OFF
                    else:
                        st, ki = _kink_status(kn_node[t], val, err, op, aptr, aidx, actid, kptr, kinks, kerr)
                    kst[t] = st
                    kix[t] = ki
        kb = 0
        tb = -1
        und_b = False
        for t in range(nK):
            if not kn_inner[t]:
                if kst[t] == ST_UNDECIDED or kst[t] == ST_TIE:
                    und_b = True
                elif kst[t] == ST_KINK:
                    kb += 1
                    tb = t
        d0 = p0 - off
        d1 = p1 - off
        affine = fast
        ns = 0
        if affine:
            for q in range(nik):
                if ik_in[q] >= 0 and base_e[ik_in[q]] != 0.0:
                    affine = False
        if affine:
            # candidate digits of the inner kink nodes (see the docstring)
            for q in range(nik):
                t = ik_kn[q]
                xin = ik_in[q]
                b = base[xin] if xin >= 0 else 0.0
                c = ik_c[q]
                aid = actid[kn_node[t]]
                for i in range(kptr[aid + 1] - kptr[aid]):
                    kap = kinks[kptr[aid] + i]
                    qv = (kap - b) / c
                    if not np.isfinite(qv) or kerr[kptr[aid] + i] != 0.0:
                        affine = False  # the candidate argument needs kappa, base, c exact
                    j0 = np.searchsorted(table, qv)
                    for jj in range(j0 - 1, j0 + 2):
                        if jj < d0 or jj >= d1:
                            continue
                        if xin < 0 or exact[xin]:
                            x = b + c * table[jj]
                            ex = 0.0
                        else:
                            tt_, et = _mul(c, 0.0, table[jj], 0.0)
                            x, ex = _add(b, 0.0, tt_, et)
                        r = _rel(x, ex, kap, kerr[kptr[aid] + i])
                        if r == 0 or r == 2:
                            sp_d[ns] = jj
                            sp_t[ns] = t if r == 0 else -1
                            sp_i[ns] = i
                            ns += 1
        if affine:
            # sort the candidates by digit (few: insertion sort)
            for a_ in range(1, ns):
                j = a_
                while j > 0 and sp_d[j - 1] > sp_d[j]:
                    sp_d[j - 1], sp_d[j] = sp_d[j], sp_d[j - 1]
                    sp_t[j - 1], sp_t[j] = sp_t[j], sp_t[j - 1]
                    sp_i[j - 1], sp_i[j] = sp_i[j], sp_i[j - 1]
                    j -= 1
            # candidate digits: the inner kink nodes listed there are touched (or undecided)
            q = 0
            n_spec = 0
            while q < ns:
                d = sp_d[q]
                K = kb
                tt = tb
                und = und_b
                while q < ns and sp_d[q] == d:
                    if sp_t[q] < 0:
                        und = True
                    else:
                        K += 1
                        tt = sp_t[q]
                        kix[tt] = sp_i[q]
                    q += 1
                n_spec += 1
                digits[k - 1] = d
                code = _decide(K, und, tt, blk, base_touched, kix, kn_inv, kn_node, c_blk, c_kink,
                               c_code, digits, table, k, fv, fe, pst, adj, adje, P, A)
                p = off + d
                _tally(g, p, code, tt if K == 1 else -1, 1, counts, pk, wit, maxw, dbuf, cap)
                if record:
                    codes[(it if use_pts else p - start)] = code
            # every other digit: all inner kink nodes off their kinks, K = kb
            n_uni = (d1 - d0) - n_spec
            if n_uni == 0:
                continue
            if und_b or kb >= 2:
                ucode = DEFER
            elif kb == 0:
                ucode = TOUCHED_OK if base_touched else UNTOUCHED
            else:
                ucode = -1  # K = 1 at tb
            one_by_one = ucode == DEFER or (ucode == -1 and not kn_inv[tb]) or record
            if ucode == UNTOUCHED and not one_by_one:
                counts[g, C_POINTS] += n_uni  # the common case, without helper calls
                continue
            q = 0
            seen = 0
            for d in range(d0, d1):
                while q < ns and sp_d[q] < d:
                    q += 1
                if q < ns and sp_d[q] == d:
                    continue
                p = off + d
                if seen == 0 or one_by_one:
                    digits[k - 1] = d
                    code = _decide(kb, und_b, tb, blk, base_touched, kix, kn_inv, kn_node, c_blk, c_kink,
                                   c_code, digits, table, k, fv, fe, pst, adj, adje, P, A)
                    if code == DEFER:
                        # an undecided verdict cannot be bulk-counted: every deferred point goes to
                        # the exact slow path by its own index (found by the review: bulk-counting
                        # a DEFER silently dropped the block's other points)
                        one_by_one = True
                if one_by_one:
                    _tally(g, p, code, tb if kb == 1 else -1, 1, counts, pk, wit, maxw, dbuf, cap)
                    if record:
                        codes[(it if use_pts else p - start)] = code
                elif seen == 0:
                    # one verdict for all n_uni points (the K = 1 data of tb is invariant)
                    _tally(g, p, code, tb if kb == 1 else -1, n_uni, counts, pk, wit, maxw, dbuf, cap)
                    if code == UNTOUCHED:
                        break
                else:
                    # the next few uniform indices may be among the smallest witnesses
                    _tally(g, p, code, -1, 0, counts, pk, wit, maxw, dbuf, cap)
                    if seen >= maxw:
                        break
                seen += 1
            continue
        if vec:
            # node-major: every per-point node over a tile of inner digits (loops the compiler
            # vectorises), then the kink tests per digit, with the same operations in the same
            # order as the point loop below. S.vec: MUL nodes exact; LIN and ACT nodes exact, or
            # error-bounded exactly as there (_mul, _add, _locate); inner kink nodes ACT.
            for t0 in range(d0, d1, TILE):
                nt = min(TILE, d1 - t0)
                for q in range(npt):
                    n = pt_nodes[q]
                    o = op[n]
                    if o == PARAM:
                        for j in range(nt):
                            vb[q, j] = table[t0 + j]
                    elif o == LIN and exact[n]:
                        b = base[n]
                        for j in range(nt):
                            vb[q, j] = b
                        for e in range(aptr[n], aptr[n + 1]):
                            if inner_edge[e]:
                                c = acoef[e]
                                ra = ptrow[aidx[e]]
                                for j in range(nt):
                                    vb[q, j] += c * vb[ra, j]
                    elif o == LIN:
                        b = base[n]
                        be = base_e[n]
                        for j in range(nt):
                            vb[q, j] = b
                            eb[q, j] = be
                        for e in range(aptr[n], aptr[n + 1]):
                            if inner_edge[e]:
                                c = acoef[e]
                                ce = acerr[e]
                                ra = ptrow[aidx[e]]
                                for j in range(nt):
                                    tt_, et = _mul(c, ce, vb[ra, j], eb[ra, j])
                                    sv, se = _add(vb[q, j], eb[q, j], tt_, et)
                                    vb[q, j] = sv
                                    eb[q, j] = se
                    elif o == MUL:
                        a0 = aidx[aptr[n]]
                        a1 = aidx[aptr[n] + 1]
                        r0 = ptrow[a0]
                        r1 = ptrow[a1]
                        if r0 >= 0 and r1 >= 0:
                            for j in range(nt):
                                vb[q, j] = vb[r0, j] * vb[r1, j]
                        elif r0 >= 0:
                            c = val[a1]
                            for j in range(nt):
                                vb[q, j] = vb[r0, j] * c
                        else:
                            c = val[a0]
                            for j in range(nt):
                                vb[q, j] = c * vb[r1, j]
                    elif not exact[n]:  # ACT, error-bounded as in _eval_x (an undecided piece
                        # is a kink node's undecided status below, so the guess never decides)
                        ra = ptrow[aidx[aptr[n]]]
                        aid = actid[n]
                        for j in range(nt):
                            st, i = _locate(vb[ra, j], eb[ra, j], kptr[aid], kptr[aid + 1] - kptr[aid], kinks, kerr)
                            jj = sptr[aid] + (i + 1 if st == 1 else i)
                            tt_, et = _mul(slopes[jj], serr[jj], vb[ra, j], eb[ra, j])
                            sv, se = _add(tt_, et, icpt[jj], ierr[jj])
                            vb[q, j] = sv
                            eb[q, j] = se
                    else:  # ACT, exact
                        ra = ptrow[aidx[aptr[n]]]
                        aid = actid[n]
                        k0 = kptr[aid]
                        nk = kptr[aid + 1] - k0
                        s0 = sptr[aid]
                        if nk == 1:  # one kink (ReLU, leaky, abs): a select the compiler vectorises
                            kap = kinks[k0]
                            sl0, sl1, ic0, ic1 = slopes[s0], slopes[s0 + 1], icpt[s0], icpt[s0 + 1]
                            for j in range(nt):
                                x = vb[ra, j]
                                vb[q, j] = sl1 * x + ic1 if x >= kap else sl0 * x + ic0
                        else:
                            for j in range(nt):
                                x = vb[ra, j]
                                piece = 0
                                while piece < nk and x >= kinks[k0 + piece]:
                                    piece += 1
                                vb[q, j] = slopes[s0 + piece] * x + icpt[s0 + piece]
                # any inner kink hit (or undecided), per digit (vectorised compares where exact);
                # the details only there
                for j in range(nt):
                    hm[j] = False
                for q in range(nik):
                    aid = actid[kn_node[ik_kn[q]]]
                    r = kin_row[q]
                    if kn_ex[ik_kn[q]]:
                        for i in range(kptr[aid], kptr[aid + 1]):
                            kap = kinks[i]
                            for j in range(nt):
                                hm[j] |= vb[r, j] == kap
                    else:
                        for j in range(nt):
                            st, _ = _locate(vb[r, j], eb[r, j], kptr[aid], kptr[aid + 1] - kptr[aid], kinks, kerr)
                            hm[j] |= st != 0
                quiet = kb == 0 and not und_b and not base_touched
                n_unt = 0
                for j in range(nt):
                    if quiet and not hm[j]:
                        n_unt += 1
                        if record:
                            codes[(it if use_pts else off + t0 + j - start)] = UNTOUCHED
                        continue
                    K = kb
                    tt = tb
                    und = und_b
                    for q in range(nik):
                        t = ik_kn[q]
                        aid = actid[kn_node[t]]
                        x = vb[kin_row[q], j]
                        if kn_ex[t]:
                            for i in range(kptr[aid + 1] - kptr[aid]):
                                if x == kinks[kptr[aid] + i]:
                                    K += 1
                                    tt = t
                                    kix[t] = i
                        else:
                            st, i = _locate(x, eb[kin_row[q], j], kptr[aid], kptr[aid + 1] - kptr[aid], kinks, kerr)
                            if st == 1:
                                K += 1
                                tt = t
                                kix[t] = i
                            elif st == 2:
                                und = True
                    d = t0 + j
                    p = off + d
                    if K == 0 and not und and not base_touched:
                        n_unt += 1
                        if record:
                            codes[(it if use_pts else p - start)] = UNTOUCHED
                        continue
                    digits[k - 1] = d
                    code = _decide(K, und, tt, blk, base_touched, kix, kn_inv, kn_node, c_blk, c_kink, c_code,
                                   digits, table, k, fv, fe, pst, adj, adje, P, A)
                    _tally(g, p, code, tt if K == 1 else -1, 1, counts, pk, wit, maxw, dbuf, cap)
                    if record:
                        codes[(it if use_pts else p - start)] = code
                counts[g, C_POINTS] += n_unt
            continue
        for p in range(p0, p1):
            d = p - off
            digits[k - 1] = d
            # per-point nodes
            for q in range(pt_nodes.shape[0]):
                n = pt_nodes[q]
                o = op[n]
                if o == PARAM:
                    val[n] = table[d]
                    err[n] = 0.0
                elif o == LIN:
                    s = base[n]
                    if exact[n]:
                        for e in range(aptr[n], aptr[n + 1]):
                            if inner_edge[e]:
                                s += acoef[e] * val[aidx[e]]
                        val[n] = s
                        err[n] = 0.0
                    else:
                        es = base_e[n]
                        for e in range(aptr[n], aptr[n + 1]):
                            if inner_edge[e]:
                                tt_, et = _mul(acoef[e], acerr[e], val[aidx[e]], err[aidx[e]])
                                s, es = _add(s, es, tt_, et)
                        val[n] = s
                        err[n] = es
                elif exact[n] and o == MUL:
                    val[n] = val[aidx[aptr[n]]] * val[aidx[aptr[n] + 1]]
                    err[n] = 0.0
                elif exact[n] and o == ACT:
                    # exact node: exact input and kinks (static analysis), so the float piece
                    # search is the exact one; on a kink both pieces give the same value
                    x = val[aidx[aptr[n]]]
                    aid = actid[n]
                    piece = 0
                    while piece < kptr[aid + 1] - kptr[aid] and x >= kinks[kptr[aid] + piece]:
                        piece += 1
                    val[n] = slopes[sptr[aid] + piece] * x + icpt[sptr[aid] + piece]
                    err[n] = 0.0
                else:
                    _store_x(n, val, err, op, aptr, aidx, acoef, acerr, cst, cerr, actid, exact, kptr, kinks, kerr,
                             sptr, slopes, serr, icpt, ierr)
            K = kb
            tt = tb
            und = und_b
            for q in range(nik):
                t = ik_kn[q]
                # the kink test is written out here and at the block level: an inlined helper
                # returning (state, index) measured 25-35% slower on B4 (2.4e6 vs 3.3e6 points/s)
                if kn_ex[t]:
                    ki = _exact_kink(val[aidx[aptr[kn_node[t]]]], actid[kn_node[t]], kptr, kinks)
                    st = ST_KINK if ki >= 0 else ST_OFF
                else:
                    st, ki = _kink_status(kn_node[t], val, err, op, aptr, aidx, actid, kptr, kinks, kerr)
                kix[t] = ki
                if st == ST_UNDECIDED or st == ST_TIE:
                    und = True
                elif st == ST_KINK:
                    K += 1
                    tt = t
            if K == 0 and not und and not base_touched:
                # no kink touched (nearly every point): what _decide and _tally would do, without
                # the two calls (each passes P or A, a reference-count update per member array):
                # B4 1.0e7 -> 3.1e7 points/s
                counts[g, C_POINTS] += 1
                if record:
                    codes[(it if use_pts else p - start)] = UNTOUCHED
                continue
            code = _decide(K, und, tt, blk, base_touched, kix, kn_inv, kn_node, c_blk, c_kink, c_code,
                           digits, table, k, fv, fe, pst, adj, adje, P, A)
            _tally(g, p, code, tt if K == 1 else -1, 1, counts, pk, wit, maxw, dbuf, cap)
            if record:
                codes[(it if use_pts else p - start)] = code



@njit(parallel=True, cache=True)
def count_kernel(start, stop, pts, ngroups, cap, record, maxw, base_touched, table, k, P, A, S):
    """Classify the points start..stop-1 (``pts`` empty) or the points whose digits are the rows of
    ``pts`` (shape (n, k), sorted lexicographically so that rows sharing a prefix are adjacent).

    The grid is cut into *blocks*: all points sharing the first k-1 digits (the last, *inner*,
    free parameter varies inside a block). Groups of consecutive blocks (or indices) run in
    parallel; each group keeps its own node values and recomputes, when the prefix digits change
    from position L on, only the needed nodes depending on free parameters L..k-2 (level lists);
    per block, the kink nodes not depending on the inner parameter are decided once.

    Inside a block, two ways:
    * *affine* (``fast``, compile-time structure, and every inner kink input's block base exact):
      each inner kink node's input is x(v) = base + c v with c != 0 exact, v the inner value. Its
      kink kappa is touched only at v* = (kappa - base)/c, a single real. With kappa, base and c
      exact floats (else the block goes per point), the float quotient q = fl(fl(kappa - base)/c)
      is within 3u relative of v* (0 exactly when v* = 0), far closer than M's relative spacing
      (>= 2^-p, p <= 24 for every format here), so if v* is in M it is among the table entries
      next to searchsorted(table, q); those candidates are checked with the exact/error-bounded
      rule (a non-finite q also sends the block per point). Every other inner value is off that
      kink as a mathematical fact. So only the few candidate digits are looked at; the rest of
      the block shares one verdict, counted in bulk.
    * otherwise per point: the per-point nodes (``pt_nodes``; LIN nodes add the inner terms to a
      per-block base) and the inner kink nodes are evaluated at every point. When every per-point
      node is exact and every inner kink node an exact ACT (``vec``), node by node over a tile of
      inner digits and with the kink compares vectorised; else point by point, error-bounded.
    A point with no kink touched (nearly all) is counted without a call to _decide and _tally.
    Counts are integers summed per group: the totals do not depend on the number of threads or
    groups. Returns (counts[g, c], per-kink-node counts pk[g, kn, 0=touched, 1=ndf], witnesses
    wit[g, class, i], deferred points dbuf[g, i], codes (per point, when ``record``)).
    """
    m = table.shape[0]
    nK = S.kn_node.shape[0]
    use_pts = pts.shape[0] > 0
    b_first = 0
    if use_pts:
        n_items = pts.shape[0]
    else:
        b_first = start // m
        n_items = (stop - 1) // m - b_first + 1
    ngroups = max(1, min(ngroups, n_items))
    counts = np.zeros((ngroups, N_COUNTERS), np.int64)
    pk = np.zeros((ngroups, nK, 2), np.int64)
    wit = np.full((ngroups, N_WCLASSES, maxw), -1, np.int64)
    dbuf = np.empty((ngroups, cap), np.int64)  # only the first counts[g, C_DEFER] entries are read
    n_codes = (pts.shape[0] if use_pts else stop - start) if record else 0
    codes = np.zeros(n_codes, np.int8)
    for g in prange(ngroups):
        _run_group(g, g * n_items // ngroups, (g + 1) * n_items // ngroups, start, stop, pts, use_pts, b_first,
                   cap, record, maxw, base_touched, table, k, P, A, S, counts, pk, wit, dbuf, codes)
    return counts, pk, wit, dbuf, codes


@njit(cache=True)
def _decide(K, und, tt, blk, base_touched, kix, kn_inv, kn_node, c_blk, c_kink, c_code, digits, table, k,
            fv, fe, pst, adj, adje, P, A):
    """The verdict code of one point from its count K of touched varying kink nodes (tt: one of
    them), with the per-block cache of K = 1 verdicts for invariant nodes (kn_inv)."""
    if und or K >= 2:
        return DEFER
    if K == 0:
        return TOUCHED_OK if base_touched else UNTOUCHED
    ki = kix[tt]
    if kn_inv[tt] and c_blk[tt] == blk and c_kink[tt] == ki:
        return c_code[tt]
    code = _k1_verdict(kn_node[tt], ki, digits, table, k, fv, fe, pst, adj, adje, P, A)
    c_blk[tt] = blk
    c_kink[tt] = ki
    c_code[tt] = code
    return code


@njit(parallel=True, cache=True)
def key_kernel(points, table, k, key_kind, key_node, P, A):
    """Exact memo keys of the local first-order structure at the points whose digits are the rows
    of ``points`` (see :func:`fpad.enumerate._resolve`): row i is valid only if every entry is an
    exact value."""
    N = P.op.shape[0]
    aptr, aidx = P.aptr, P.aidx
    n = points.shape[0]
    KL = key_kind.shape[0]
    keys = np.zeros((n, KL))
    valid = np.ones(n, np.bool_)
    for i in prange(n):
        fv = np.zeros(N)
        fe = np.zeros(N)
        pst = np.zeros(N, np.int64)
        digits = points[i]
        _full_eval(digits, table, fv, fe, pst, P, A)
        for q in range(KL):
            nd = key_node[q]
            kind = key_kind[q]
            if kind == 0:  # ACT: 2*piece inside a piece, 2*kink+1 on a kink
                aid = P.actid[nd]
                kptr = A.kptr
                st, ki = _locate(fv[aidx[aptr[nd]]], fe[aidx[aptr[nd]]], kptr[aid], kptr[aid + 1] - kptr[aid],
                                 A.kinks, A.kink_err)
                if st == 2:
                    valid[i] = False
                keys[i, q] = 2 * ki + 1 if st == 1 else 2 * ki
            elif kind == 1:  # MAX: bitmask of the maximiser positions
                a0 = aptr[nd]
                na = aptr[nd + 1] - a0
                r, st = _max_state(a0, a0 + na, aidx, fv, fe)
                if st == ST_UNDECIDED or na > 52:
                    valid[i] = False
                mask = 0.0
                w = 1.0
                for e in range(a0, a0 + na):
                    if _rel(fv[aidx[e]], fe[aidx[e]], fv[r], fe[r]) == 0:
                        mask += w
                    w *= 2.0
                keys[i, q] = mask
            else:  # a MUL partner value (the local partial along an edge from a varying node)
                if fe[nd] != 0.0:
                    valid[i] = False
                keys[i, q] = fv[nd] + 0.0  # + 0.0 maps -0 to +0: keys compare values
    return keys, valid
