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
  (Veltkamp split) when ``2^-900 <= |p|`` and ``|a|, |b| < 2^995`` (no overflow in the split, every
  partial product and the error term are representable: their lowest bits are >= 2^-1006);
  otherwise it is bounded by ``2^-952 >= u |ab| + 2^-1075`` (|p| < 2^-900), or ``inf`` (huge:
  undecided). Propagated error: ``|AB - ab| <= |a| eb + |b| ea + ea eb``.
* Sums and products of the (non-negative) error terms are rounded *up* with ``_up``:
  ``nextafter(fl(t), +inf) >= t`` for every real ``t >= 0`` under round-to-nearest (t lies between
  the float below and the float above fl(t)). ``_up(0) = 0`` is used only where 0 is exact
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

import numpy as np
from numba import njit, prange

# op codes (same numbering as fpad.graph)
PARAM, CONST, LIN, MUL, ACT, MAX = range(6)

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
N_COUNTERS = 6
# witness classes, in kernel order
W_TOUCHED, W_NDF, W_INC, W_NOT_CLARKE = range(4)
N_WCLASSES = 4

_SMALL_PROD = 2.0**-900
_SMALL_PROD_ERR = 2.0**-952
_BIG_FACTOR = 2.0**995
_SPLITTER = 134217729.0  # 2^27 + 1
_LOWER = 1.0 - 2.0**-50


@njit(cache=True, inline="always")
def _up(x):
    """An upper bound of the exact non-negative real whose round-to-nearest result is x."""
    if x == 0.0:
        return 0.0
    return np.nextafter(x, np.inf)


@njit(cache=True, inline="always")
def _prod_rerr(a, b, p):
    """|a*b - p| for p = fl(a*b): exact (TwoProduct) in range, else a proven upper bound."""
    if a == 0.0 or b == 0.0:
        return 0.0
    ap = abs(p)
    if ap >= _SMALL_PROD and abs(a) < _BIG_FACTOR and abs(b) < _BIG_FACTOR:
        c = _SPLITTER * a
        ah = c - (c - a)
        al = a - ah
        c = _SPLITTER * b
        bh = c - (c - b)
        bl = b - bh
        return abs(((ah * bh - p) + ah * bl + al * bh) + al * bl)
    if ap < _SMALL_PROD:
        return _SMALL_PROD_ERR
    return np.inf


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _add(a, ea, b, eb):
    s = a + b
    bb = s - a
    r = abs((a - (s - bb)) + (b - bb))
    if ea == 0.0 and eb == 0.0:
        return s, r
    return s, _up(_up(ea + eb) + r)


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _zero_test(x, ex):
    """1 if X != 0, 0 if X == 0, 2 undecided."""
    if ex == 0.0:
        return 0 if x == 0.0 else 1
    if abs(x) * _LOWER > ex:
        return 1
    return 2


@njit(cache=True)
def _locate(x, ex, aid, A):
    """Where x lies for activation aid: (0, i) strictly inside piece i, (1, i) on kink i,
    (2, i) undecided (i: the float guess of the piece, used only to keep computing)."""
    kptr, kinks, kerr = A[0], A[1], A[2]
    k0 = kptr[aid]
    nk = kptr[aid + 1] - k0
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
def _act_value(x, ex, piece, aid, exact, A):
    sptr, slopes, serr, icpt, ierr = A[3], A[4], A[5], A[6], A[7]
    j = sptr[aid] + piece
    if exact:
        return slopes[j] * x + icpt[j], 0.0
    p, ep = _mul(slopes[j], serr[j], x, ex)
    return _add(p, ep, icpt[j], ierr[j])


@njit(cache=True)
def _max_state(n, val, err, P):
    """(r, status) for MAX node n: r = first float maximiser; status ST_OFF (unique maximiser,
    decided), ST_TIE (exact tie), ST_UNDECIDED."""
    aptr, aidx = P[1], P[2]
    a0, a1 = aptr[n], aptr[n + 1]
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
def _eval_node(n, val, err, P, A):
    """Value and error of node n from its arguments' (val, err); also the ACT/MAX state
    (ACT: piece index or -1 when undecided; MAX: the maximiser node, -1 on a tie/undecided)."""
    op, aptr, aidx, acoef, acerr, cst, cerr, pslot, actid = P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[8]
    exact = P[10]
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
        st, i = _locate(val[x], err[x], actid[n], A)
        piece = i + 1 if st == 1 else i
        v, ev = _act_value(val[x], err[x], piece, actid[n], exact[n], A)
        return v, ev, (piece if st != 2 else -1)
    if o == MAX:
        r, st = _max_state(n, val, err, P)
        return val[r], err[r], (r if st == ST_OFF else -1)
    return val[n], err[n], 0  # PARAM / CONST: set by the caller


@njit(cache=True)
def _kink_status(t, val, err, P, A):
    """(status, kink index) of kink node t from its inputs' values."""
    op, aptr, aidx, actid = P[0], P[1], P[2], P[8]
    if op[t] == ACT:
        x = aidx[aptr[t]]
        st, i = _locate(val[x], err[x], actid[t], A)
        if st == 1:
            return ST_KINK, i
        if st == 2:
            return ST_UNDECIDED, -1
        return ST_OFF, -1
    r, st = _max_state(t, val, err, P)
    return st, -1


@njit(cache=True)
def _full_eval(digits, table, fv, fe, pst, P, A):
    """Every live node's (val, err) at the point with the given digits; pst[n]: ACT piece / MAX
    maximiser (-1: on a kink, tie or undecided)."""
    op, pslot, isconst, val0, err0 = P[0], P[7], P[9], P[11], P[12]
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
            v, e, s = _eval_node(n, fv, fe, P, A)
            fv[n] = v
            fe[n] = e
            pst[n] = s


@njit(cache=True)
def _partial(n, e, fv, fe, pst, P, A):
    """Local partial derivative (with error) of node n w.r.t. argument slot e, at a point where n
    is not touched (pst[n] >= 0: ACT strictly inside piece pst[n], MAX with unique maximiser)."""
    op, aptr, aidx, acoef, acerr, actid = P[0], P[1], P[2], P[3], P[4], P[8]
    o = op[n]
    if o == LIN:
        return acoef[e], acerr[e]
    if o == MUL:  # d(ab)/da = b; for a * a both slots contribute a, giving 2a
        other = aidx[aptr[n] + 1] if e == aptr[n] else aidx[aptr[n]]
        return fv[other], fe[other]
    if o == ACT:
        sptr, slopes, serr = A[3], A[4], A[5]
        j = sptr[actid[n]] + pst[n]
        return slopes[j], serr[j]
    return (1.0 if aidx[e] == pst[n] else 0.0), 0.0  # MAX: the unique maximiser gets 1


@njit(cache=True)
def _sweep(root, lo, adj, adje, fv, fe, pst, P, A):
    """Reverse sweep: adj[n] = d root / d node_n for lo <= n <= root, propagating from the
    non-constant nodes lo < n <= root reached with a non-zero adjoint. Returns False when such a
    node is an ACT/MAX node without a decided local derivative (on a kink, tie, undecided): the
    caller defers the point."""
    op, aptr, aidx, isconst = P[0], P[1], P[2], P[9]
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
            c, ce = _partial(n, e, fv, fe, pst, P, A)
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
    op, aptr, aidx, pslot, isconst = P[0], P[1], P[2], P[7], P[9]
    kptr, kclarke = A[0], A[8]
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
    for j in range(k):
        s = 0.0
        es = 0.0
        for n in range(x + 1):
            if op[n] == PARAM and not isconst[n] and pslot[n] == j and (adj[n] != 0.0 or adje[n] != 0.0):
                s, es = _add(s, es, adj[n], adje[n])
        z = _zero_test(s, es)
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
    if kclarke[kptr[P[8][t]] + kink]:
        return NDF_CLARKE
    return NDF_NOT_CLARKE


@njit(parallel=True, cache=True)
def count_kernel(start, stop, idx, ngroups, cap, record, maxw, base_touched, table, k, P, A, S):
    """Classify the points start..stop-1 (``idx`` empty) or the sorted flat indices ``idx``.

    The grid is cut into *blocks*: all points sharing the first k-1 digits (the last free
    parameter varies inside a block). Groups of consecutive blocks (or indices) run in parallel;
    each group keeps its own node values and recomputes, when the prefix digits change from L on,
    only the needed nodes depending on free parameters L..k-2 (level lists), and per point only
    the needed nodes depending on the last one (``pt_nodes``; LIN nodes there add the inner terms
    to a per-block base). Counts are integers summed per group: the totals do not depend on the
    number of threads or groups.

    Returns (counts[g, c], per-kink-node counts pk[g, kn, 0=touched, 1=ndf], witnesses
    wit[g, class, i], deferred-point buffer dbuf[g, i], codes (per point, when ``record``)).
    """
    op = P[0]
    aptr, aidx, pslot, isconst, exact, val0, err0 = P[1], P[2], P[7], P[9], P[10], P[11], P[12]
    lvl_ptr, lvl_nodes, pt_nodes, inner_edge, kn_node, kn_inner, kn_inv = S[0], S[1], S[2], S[3], S[4], S[5], S[6]
    N = op.shape[0]
    nK = kn_node.shape[0]
    m = table.shape[0]
    use_idx = idx.shape[0] > 0
    if use_idx:
        n_items = idx.shape[0]
    else:
        b_first = start // m
        n_items = (stop - 1) // m - b_first + 1
    ngroups = max(1, min(ngroups, n_items))
    counts = np.zeros((ngroups, N_COUNTERS), np.int64)
    pk = np.zeros((ngroups, nK, 2), np.int64)
    wit = np.full((ngroups, N_WCLASSES, maxw), -1, np.int64)
    dbuf = np.full((ngroups, cap), -1, np.int64)
    n_codes = (idx.shape[0] if use_idx else stop - start) if record else 0
    codes = np.zeros(n_codes, np.int8)
    for g in prange(ngroups):
        i0 = g * n_items // ngroups
        i1 = (g + 1) * n_items // ngroups
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
        nw = np.zeros(N_WCLASSES, np.int64)
        for it in range(i0, i1):
            if use_idx:
                p0 = idx[it]
                p1 = p0 + 1
                blk = p0 // m
            else:
                blk = b_first + it
                p0 = max(start, blk * m)
                p1 = min(stop, (blk + 1) * m)
            # prefix digits (first free parameter most significant)
            rem = blk
            for j in range(k - 2, -1, -1):
                digits[j] = rem % m
                rem //= m
            L = k - 1
            if it == i0:
                L = 0
            for j in range(k - 1):
                if digits[j] != prev[j]:
                    L = j
                    break
            for j in range(k - 1):
                prev[j] = digits[j]
            if it == i0 or L < k - 1:
                for q in range(lvl_ptr[L], lvl_ptr[L + 1] if L < k - 1 else lvl_ptr[L]):
                    n = lvl_nodes[q]
                    if op[n] == PARAM:
                        val[n] = table[digits[pslot[n]]]
                        err[n] = 0.0
                    else:
                        v, e, s = _eval_node(n, val, err, P, A)
                        val[n] = v
                        err[n] = e
                # per-block bases of the per-point LIN nodes (terms not depending on the inner param);
                # any summation order is exact for exact nodes (window analysis bounds every partial sum)
                for q in range(pt_nodes.shape[0]):
                    n = pt_nodes[q]
                    if op[n] == LIN:
                        s = P[5][n]
                        es = P[6][n]
                        for e in range(aptr[n], aptr[n + 1]):
                            if not inner_edge[e]:
                                if exact[n]:
                                    s += P[3][e] * val[aidx[e]]
                                else:
                                    t, et = _mul(P[3][e], P[4][e], val[aidx[e]], err[aidx[e]])
                                    s, es = _add(s, es, t, et)
                        base[n] = s
                        base_e[n] = es
                # block-level kink nodes (not depending on the inner parameter)
                for t in range(nK):
                    if not kn_inner[t]:
                        st, ki = _kink_status(kn_node[t], val, err, P, A)
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
            for p in range(p0, p1):
                d = p - blk * m
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
                                    s += P[3][e] * val[aidx[e]]
                            val[n] = s
                            err[n] = 0.0
                        else:
                            es = base_e[n]
                            for e in range(aptr[n], aptr[n + 1]):
                                if inner_edge[e]:
                                    tt, et = _mul(P[3][e], P[4][e], val[aidx[e]], err[aidx[e]])
                                    s, es = _add(s, es, tt, et)
                            val[n] = s
                            err[n] = es
                    else:
                        v, e, s_ = _eval_node(n, val, err, P, A)
                        val[n] = v
                        err[n] = e
                K = kb
                tt = tb
                und = und_b
                for t in range(nK):
                    if kn_inner[t]:
                        st, ki = _kink_status(kn_node[t], val, err, P, A)
                        kst[t] = st
                        kix[t] = ki
                        if st == ST_UNDECIDED or st == ST_TIE:
                            und = True
                        elif st == ST_KINK:
                            K += 1
                            tt = t
                if und or K >= 2:
                    code = DEFER
                elif K == 0:
                    code = TOUCHED_OK if base_touched else UNTOUCHED
                else:
                    ki = kix[tt]
                    if kn_inv[tt] and c_blk[tt] == blk and c_kink[tt] == ki:
                        code = c_code[tt]
                    else:
                        code = _k1_verdict(kn_node[tt], ki, digits, table, k, fv, fe, pst, adj, adje, P, A)
                        c_blk[tt] = blk
                        c_kink[tt] = ki
                        c_code[tt] = code
                if record:
                    codes[(it if use_idx else p - start)] = code
                if code == DEFER:
                    nd = counts[g, C_DEFER]
                    if nd < cap:
                        dbuf[g, nd] = p
                    counts[g, C_DEFER] = nd + 1
                    continue
                counts[g, C_POINTS] += 1
                if code == UNTOUCHED:
                    continue
                counts[g, C_TOUCHED] += 1
                if nw[W_TOUCHED] < maxw:
                    wit[g, W_TOUCHED, nw[W_TOUCHED]] = p
                    nw[W_TOUCHED] += 1
                if K == 1:
                    pk[g, tt, 0] += 1
                if code == NDF_CLARKE or code == NDF_NOT_CLARKE:
                    counts[g, C_NDF] += 1
                    pk[g, tt, 1] += 1
                    if nw[W_NDF] < maxw:
                        wit[g, W_NDF, nw[W_NDF]] = p
                        nw[W_NDF] += 1
                    if code == NDF_CLARKE:
                        counts[g, C_CLARKE] += 1
                    elif nw[W_NOT_CLARKE] < maxw:
                        wit[g, W_NOT_CLARKE, nw[W_NOT_CLARKE]] = p
                        nw[W_NOT_CLARKE] += 1
    return counts, pk, wit, dbuf, codes


@njit(parallel=True, cache=True)
def key_kernel(points, table, k, key_kind, key_node, P, A):
    """Exact memo keys of the local first-order structure at the given points (see
    :func:`fpad.enumerate._resolve`): row i is valid only if every entry is an exact value."""
    N = P[0].shape[0]
    aptr, aidx = P[1], P[2]
    m = table.shape[0]
    n = points.shape[0]
    KL = key_kind.shape[0]
    keys = np.zeros((n, KL))
    valid = np.ones(n, np.bool_)
    for i in prange(n):
        fv = np.zeros(N)
        fe = np.zeros(N)
        pst = np.zeros(N, np.int64)
        digits = np.zeros(max(k, 1), np.int64)
        rem = points[i]
        for j in range(k - 1, -1, -1):
            digits[j] = rem % m
            rem //= m
        _full_eval(digits, table, fv, fe, pst, P, A)
        for q in range(KL):
            nd = key_node[q]
            kind = key_kind[q]
            if kind == 0:  # ACT: 2*piece inside a piece, 2*kink+1 on a kink
                st, ki = _locate(fv[aidx[aptr[nd]]], fe[aidx[aptr[nd]]], P[8][nd], A)
                if st == 2:
                    valid[i] = False
                keys[i, q] = 2 * ki + 1 if st == 1 else 2 * ki
            elif kind == 1:  # MAX: bitmask of the maximiser positions
                a0 = aptr[nd]
                na = aptr[nd + 1] - a0
                r, st = _max_state(nd, fv, fe, P)
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
