"""Exact classification of every point of a grid M^k by compiled (numba) kernels.

Public API (the orchestration in :mod:`fpad.engine` builds on it):

* :func:`compile_problem` -> :class:`Compiled` (picklable): the program flattened to arrays, the
  value table of M, the exactness analysis, the per-level recomputation lists.
* :func:`count_range` (flat indices ``start..stop-1``), :func:`classify_points` (points given by
  their coordinates, digit rows: samples of grids with any number of free parameters),
  :func:`classify_indices` (arbitrary flat indices) -> :class:`ChunkCounts` (exact Python ints,
  mergeable, JSON round trip).
* :func:`count_exhaustive` -> :class:`fpad.results.CountResult` for a whole (small) grid in one
  process (:func:`fpad.engine.count` in one chunk); :func:`count_exhaustive_reference`: the slow twin, :func:`fpad.oracle.classify` on
  every point; :func:`point_codes`: per-point verdicts (tests, diagnostics).
* :func:`naive_float64_touched` (over :func:`float64_evaluate`): plain float64 evaluation, NOT exact, for the benchmark's
  "how many points does naive float64 get wrong" comparison only.

Point index i <-> digits (d_0, ..., d_{k-1}) in mixed radix |M|, the first free parameter most
significant; digit d means the d-th value of ``fmt.values()`` (sorted, +-0 merged).

Why the verdicts are exact (proof sketch; the kernels carry the local proofs)
----------------------------------------------------------------------------
Let a point w be *touched* at node t when t is an ACT node whose input is exactly a kink, or a
MAX node with tied maximisers (DESIGN.md), counting only nodes the output depends on (as the
oracle does).

1. Constant nodes. A node that depends on no free parameter has one exact value (computed here
   in Fractions). If such a node is touched, it is touched at every point, but it cannot change
   any verdict: its input's derivative w.r.t. the free parameters is identically 0, so its side
   carries no first-order information (the oracle gives it choice "0") and AD's proxy there is
   multiplied by 0. The kernels therefore only look at the varying kink nodes, and count every
   point as touched when some constant node is touched (``base_touched``).
2. K = 0 varying touched nodes: P is analytic near w, AD = DP (oracle step 1).
3. K = 1 varying touched ACT node t on kink c, no tie: with a = grad_free(input of t),
   sigma = dP/dz_t (no other node is touched, so both are given by the ordinary chain rule),
   J = D^+ - D^- != 0 and proxy p: the realisable pieces are g_s = g_0 + sigma D^s a for s in
   {-, +} if a != 0 (both half-spaces {a.d > 0}, {a.d < 0} are open and non-empty), else one
   piece. So g_+ - g_- = sigma J a: ndf iff a != 0 and sigma != 0. AD = g_0 + sigma p a, which
   equals DP whenever the point is differentiable (then sigma a = 0): K = 1 never gives inc. At
   ndf, AD in conv{g_-, g_+} iff p lies between D^- and D^+ (Clarke); precomputed per kink.
4. K >= 2, any tie, and any point where a float filter does not decide: the exact oracle,
   memoised on a key that determines its answer (below).

Float decisions. Node values are computed in float64 together with a rigorous error bound
(:mod:`fpad._kernels`): a kink test says "on" only if the value is exact (bound 0) and equal,
"off" only if the distance provably exceeds the bound; otherwise the point is deferred. The
static *exactness analysis* (:func:`_forms`) proves for most nodes that float64 evaluation is
exact at every grid point, so the kernel skips the bound there: every value of M is m 2^e with
|m| < 2^sig and e in [elo, ehi]; products add sig and the exponent range, sums are bounded by a
window [2^lo, 2^hi) with hi = max(top) + ceil(log2(#terms)) that contains every partial sum in
any order, and a node is exact when its form fits float64 (sig <= 53, 2^-1074 <= 2^elo,
2^(ehi + sig) <= 2^1023). For e4m3fn one- and two-layer networks everything is exact; for bf16
pre-activations of three or more terms the error-bound filter decides almost every point and
the rest go to the oracle.

Speed. Points sharing all digits but the last form a *block*. Per block only the nodes that
depend on the changed digits are recomputed, and the kink nodes not depending on the last
(*inner*) parameter are decided once. When every inner kink node's input is affine in the inner
value v (x = base + c v, c an exact constant: LIN chains are flattened at compile time), each of
its kinks is touched at exactly one real v* = (kink - base)/c, so the kernel checks the one or two
grid values next to fl(v*) and counts the rest of the block in bulk (the *affine path*; B1-B3 of
benchmarks/bench_engine.py). Otherwise every point is evaluated (the *general path*, about 100x
slower per point: each helper call costs a reference-count update per array argument). K = 1
verdicts are cached per block when their derivative data cannot depend on the inner parameter.

Memo key. The oracle decides a point from its first-order local model only (DESIGN.md): which
kink nodes are on which kink, the maximiser sets of MAX nodes, and the local partial derivatives
along edges out of varying nodes -- constant for LIN edges and ACT pieces, the partner's value
for MUL edges. The key lists exactly these (ACT state, MAX maximiser bitmask, MUL partner values
of varying partners); two points with equal keys have the same touched nodes, the same pieces,
the same piece gradients and the same AD, hence the same verdict. A key is used only when every
entry is an exact value; otherwise the oracle runs on the point itself.
"""

from __future__ import annotations

import functools

import json
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numba
import numpy as np

from fpad import _kernels as K
from fpad import ops
from fpad.errors import FpadError
from fpad.exact import float_with_error
from fpad.graph import ACT, CONST, LIN, MAX, MUL, PARAM
from fpad.results import CountResult, count_result

WITNESS_CLASSES = ("touched", "ndf", "inc", "ndf_not_clarke")
_INDEX_LIMIT = 2**62  # ranges of flat indices are int64 in the kernels (points by coordinates are not)
_NO_POINTS = np.zeros((0, 1), np.int64)  # "no rows": the kernels run over a range
# Points are sorted before the kernels only on small grids: there repeated prefixes are common
# and sorting is cheap; on a grid of many parameters random points share no prefix, and sorting
# k columns would cost more than deciding the points (order never changes a count).
_SORT_PARAMS = 16


# -- exact helpers --------------------------------------------------------------------------------
def _form(c: Fraction):
    """(sig, elo, ehi) of the single number c, (0, 0, 0) for zero, None if c is not dyadic."""
    if c == 0:
        return (0, 0, 0)
    den = c.denominator
    if den & (den - 1):
        return None
    n = abs(c.numerator)
    e = -(den.bit_length() - 1)
    tz = (n & -n).bit_length() - 1
    n >>= tz
    e += tz
    return (n.bit_length(), e, e)


@functools.lru_cache(maxsize=64)
def _param_form(fmt) -> tuple:
    """The union of the forms of every value of M (the form of a free parameter), once per
    format (bf16: 65,279 values; the width sweep compiles a dozen problems per format)."""
    tform = (0, 0, 0)
    for v in fmt.values_fraction():
        tform = _union(tform, _form(v))
    return tform


def _union(f, g):
    if f is None or g is None:
        return None
    if f[0] == 0:
        return g
    if g[0] == 0:
        return f
    return (max(f[0], g[0]), min(f[1], g[1]), max(f[2], g[2]))


def _fits(f) -> bool:
    return f is not None and (f[0] == 0 or (f[0] <= 53 and f[1] >= -1074 and f[2] + f[0] <= 1023))


def _prod(f, g):
    """Form of a product computed in float64, or None when it may round."""
    if f is None or g is None:
        return None
    if f[0] == 0 or g[0] == 0:
        return (0, 0, 0)
    h = (f[0] + g[0], f[1] + g[1], f[2] + g[2])
    return h if _fits(h) else None


def _sum(forms):
    """Form of a float64 sum of terms with these forms (any order), or None when it may round."""
    if any(f is None for f in forms):
        return None
    forms = [f for f in forms if f[0] != 0]
    if not forms:
        return (0, 0, 0)
    if len(forms) == 1:
        return forms[0]
    lo = min(f[1] for f in forms)
    hi = max(f[2] + f[0] for f in forms) + math.ceil(math.log2(len(forms)))
    h = (hi - lo, lo, lo)
    return h if _fits(h) else None


# -- compiled problem -------------------------------------------------------------------------------
@dataclass
class Compiled:
    """A problem flattened for the kernels (picklable; the memo is per process and not shipped).

    ``P`` (:class:`fpad._kernels.Nodes`): node arrays (op, aptr, aidx, acoef, acoef_err, cst,
    cst_err, pslot, actid, isconst, exact, val0, err0) over the live nodes (ancestors of the
    output, topological order, output last); constant arguments of LIN and MUL are folded into
    exact coefficients. ``A`` (:class:`fpad._kernels.Acts`): activation tables (kptr, kinks,
    kink_err, sptr, slopes, slope_err, icpt, icpt_err, kclarke). ``S``
    (:class:`fpad._kernels.Sweep`): recomputation structure (lvl_pos, lvl_nodes, pt_nodes,
    inner_edge, kn_node, kn_inner, kn_inv, for the inner kink nodes ik_kn, ik_in, ik_c, fast,
    kn_ex, kn_lvl, the highest prefix position a kink node depends on, as lvl_pos, and vec, the
    node-major per-point path applies: see count_kernel). All three are named tuples the kernels read by field.
    ``exact[n]``: the static analysis proved node n exact in float64 at every point.
    """

    problem: object
    k: int
    m: int
    table: np.ndarray
    n_points: int
    P: K.Nodes
    A: K.Acts
    S: K.Sweep
    key_kind: np.ndarray
    key_node: np.ndarray
    node_ids: list[int]  # compiled node -> node of problem.program
    kn_tags: list[str]
    const_touched: list[int]  # program node ids of constant touched nodes
    const_tags: list[str]
    memo: dict = field(default_factory=dict, repr=False)

    @property
    def base_touched(self) -> bool:
        return bool(self.const_touched)

    @property
    def exact(self) -> np.ndarray:
        return self.P.exact

    @property
    def all_exact(self) -> bool:
        """True when every varying node is proven exact in float64 (no error bounds needed)."""
        return bool(np.all(self.P.exact | self.P.isconst))

    def digits(self, index: int) -> list[int]:
        if not 0 <= index < self.n_points:
            raise FpadError(f"point index {index} is outside the grid [0, {self.n_points}); use 0 <= index < |M|^k")
        out = []
        for _ in range(self.k):
            index, d = divmod(index, self.m)
            out.append(d)
        return out[::-1]

    def digits_array(self, indices: np.ndarray) -> np.ndarray:
        """The digit rows (shape (n, k)) of flat indices below 2^63, vectorised."""
        rem = np.asarray(indices, dtype=np.int64).copy()
        out = np.empty((rem.shape[0], self.k), np.int64)
        for j in range(self.k - 1, -1, -1):
            out[:, j] = rem % self.m
            rem //= self.m
        return out

    def index_of(self, row) -> int:
        """The flat index (a Python int of any size) of the point with digits ``row``."""
        return _horner([int(d) for d in row], self.m)

    def values_of(self, row) -> list[Fraction]:
        """The exact free values (in ``problem.free`` order) of the point with digits ``row``."""
        exact = self.exact_table
        return [exact[d] for d in row]

    @functools.cached_property
    def exact_table(self) -> list[Fraction]:
        """M's values as Fractions, in ``table`` order (a deep point has thousands): the format's
        own, built once per format."""
        return self.problem.fmt.values_fraction()

    def free_values(self, index: int) -> list[Fraction]:
        """The exact free values of point ``index`` (in ``problem.free`` order)."""
        return self.values_of(self.digits(index))

    def __getstate__(self):
        d = dict(self.__dict__)
        d["memo"] = {}
        return d


def compile_problem(problem, semantics=ops.EXACT) -> Compiled:
    """Flatten ``problem`` (a :class:`fpad.network.Problem`) for the kernels; see :class:`Compiled`.
    The kernels implement the ``exact`` arithmetic semantics (:mod:`fpad.ops`) only.

    Stages: the activation tables (:func:`_act_tables`), the folded node arrays
    (:func:`_fold_nodes`), the static exactness analysis (:func:`_forms`), the kink nodes, the
    recomputation lists (:func:`_recompute_lists`), the invariance of the K = 1 data
    (:func:`_k1_invariant`), the affine inner structure (:func:`_affine_inner`) and the memo key
    (:func:`_memo_key`)."""
    _check_compilable(problem, semantics)
    prog = problem.program
    nodes = prog.nodes
    free = list(problem.free)
    k = len(free)
    table = np.ascontiguousarray(problem.fmt.values(), dtype=np.float64)
    inner = 1 << (k - 1)
    order = prog.ancestors([prog.output])  # live nodes: ancestors of the output (the oracle ignores the rest)

    acts, A = _act_tables(problem, [nodes[old] for old in order])
    f = _fold_nodes(problem, order, {p: j for j, p in enumerate(free)}, {a: i for i, a in enumerate(acts)})
    exact = _forms(f, acts, problem.fmt)

    # constant touched nodes (touched at every point)
    cvals = {old: f.exactval[i] for i, old in enumerate(order) if f.isconst[i]}
    const_touched = [old for old in cvals if ops.OPS[nodes[old].op].touched(nodes[old], cvals)]

    # varying kink nodes: kinked activations, MAX nodes of two or more varying arguments
    kn = [i for i in range(f.N) if not f.isconst[i] and (
        (f.op[i] == ACT and acts[f.actid[i]].n_kinks > 0) or (f.op[i] == MAX and f.aptr[i + 1] - f.aptr[i] > 1))]
    lvl_pos, lvl_nodes, pt_nodes, inner_edge = _recompute_lists(f, kn, inner)
    kn_inner = np.array([bool(f.dep[i] & inner) for i in kn], dtype=np.bool_)
    ik_kn, ik_in, ik_c, fast = _affine_inner(f, kn, kn_inner, pt_nodes, inner_edge, A)
    kn_ex = [f.op[i] == ACT and exact[f.args(i)[0]] and not A.kink_err[A.kptr[f.actid[i]]:A.kptr[f.actid[i] + 1]].any()
             for i in kn]
    key_kind, key_node = _memo_key(f, set(kn))

    P = K.Nodes(f.op, f.aptr, f.aidx, *_floats(f.acoef_q), *_floats(f.cst_q), f.pslot, f.actid, f.isconst, exact,
                f.val0, f.err0)
    S = K.Sweep(np.array(lvl_pos, np.int64), np.array(lvl_nodes, np.int64), np.array(pt_nodes, np.int64),
                inner_edge, np.array(kn, np.int64), kn_inner, _k1_invariant(f, kn, inner),
                np.array(ik_kn, np.int64), np.array(ik_in, np.int64), np.array(ik_c, np.float64),
                np.array([fast], np.bool_), np.array(kn_ex, np.bool_),
                np.array([f.dep[i].bit_length() - 1 for i in kn], np.int64),
                np.array([all(f.op[n] in (PARAM, LIN, ACT) or (f.op[n] == MUL and exact[n]) for n in pt_nodes)
                          and all(f.op[i] == ACT for i, inn in zip(kn, kn_inner) if inn)], np.bool_))
    return Compiled(problem=problem, k=k, m=int(table.shape[0]), table=table, n_points=int(table.shape[0])**k,
                    P=P, A=A, S=S, key_kind=np.array(key_kind, np.int64), key_node=np.array(key_node, np.int64),
                    node_ids=order, kn_tags=[nodes[order[i]].tag for i in kn], const_touched=const_touched,
                    const_tags=[nodes[old].tag for old in const_touched])


def _check_compilable(problem, semantics) -> None:
    if ops.get_semantics(semantics) is not ops.EXACT:
        raise FpadError(f"the compiled kernels implement exact arithmetic only, not {semantics!r}")
    if getattr(problem, "wrt_all", False):
        raise FpadError("the compiled kernels differentiate w.r.t. the free parameters only; "
                        "drop wrt_all, or classify single points with fpad.oracle (fpad check)")
    if not problem.free:
        raise FpadError("no free parameters: nothing to enumerate; list some in [params].free")


def _act_tables(problem, live) -> tuple[list, K.Acts]:
    """The distinct activations of the live nodes and their kernel tables (kinks, pieces, and
    whether the proxy at each kink lies in the Clarke interval)."""
    acts: list = []
    for nd in live:
        if nd.op == ACT and nd.act not in acts:
            acts.append(nd.act)
    kptr, sptr = [0], [0]
    cols: tuple[list, ...] = ([], [], [], [], [], [])  # kinks, kink_err, slopes, slope_err, icpt, icpt_err
    kclarke = []
    for act in acts:
        for dest, arr in zip(cols, act.kernel_arrays()):
            dest.extend(arr.tolist())
        kclarke += [problem.proxy.in_clarke(act, i) for i in range(act.n_kinks)]
        kptr.append(len(cols[0]))
        sptr.append(len(cols[2]))
    kinks, kerr, slopes, serr, icpt, ierr = (np.array(c, np.float64) for c in cols)
    return acts, K.Acts(np.array(kptr, np.int64), kinks, kerr, np.array(sptr, np.int64), slopes, serr, icpt, ierr,
                        np.array(kclarke, np.bool_))


@dataclass
class _Folded:
    """The live nodes after folding constants (compiled index i = position in ``order``).

    ``dep[i]``: bitmask of the free parameters reaching node i through the folded edges (0:
    constant, with exact value ``exactval[i]``); edges aptr/aidx with exact coefficients
    ``acoef_q`` (float64 value and error bound in acoef/acoef_err); ``cst_q``: a LIN node's exact
    constant term."""

    op: np.ndarray
    aptr: np.ndarray
    aidx: np.ndarray
    acoef_q: list
    cst_q: list
    pslot: np.ndarray
    actid: np.ndarray
    dep: list
    exactval: list
    val0: np.ndarray
    err0: np.ndarray

    @property
    def N(self) -> int:
        return len(self.dep)

    @functools.cached_property
    def isconst(self) -> np.ndarray:  # cached: compile_problem reads it per node (quadratic otherwise)
        return np.array([d == 0 for d in self.dep], dtype=np.bool_)

    def args(self, i):
        return self.aidx[self.aptr[i]:self.aptr[i + 1]]


def _horner(digits: list[int], m: int) -> int:
    """sum_j digits[j] m^(k-1-j), split in halves: a digit-by-digit loop is quadratic in k (4 ms per
    index of a 4,353-parameter network), halves multiply by Karatsuba."""
    if len(digits) <= 64:
        index = 0
        for d in digits:
            index = index * m + d
        return index
    h = len(digits) // 2
    return _horner(digits[:h], m) * m ** (len(digits) - h) + _horner(digits[h:], m)


def _floats(qs) -> tuple[np.ndarray, np.ndarray]:
    """The float64 nearest each rational of ``qs`` and a bound on its error (float_with_error)."""
    pairs = np.array([float_with_error(q) for q in qs], dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _fold_nodes(problem, order, slot, act_index) -> _Folded:
    """Node arrays in one topological pass: constant arguments of LIN/MUL are folded into exact
    coefficients, zero coefficients dropped, varying LIN arguments flattened into their own terms
    (so every LIN combines PARAM/MUL/ACT/MAX nodes directly: the affine inner path needs this); a
    node no free parameter reaches gets its exact value."""
    nodes = problem.program.nodes
    new = {old: i for i, old in enumerate(order)}
    N = len(order)
    op = np.zeros(N, np.int64)
    aptr, aidx, acoef_q = [0], [], []
    cst_q = [Fraction(0)] * N
    pslot = np.full(N, -1, np.int64)
    actid = np.full(N, -1, np.int64)
    dep = [0] * N
    exactval: list[Fraction | None] = [None] * N
    val0 = np.zeros(N)
    err0 = np.zeros(N)
    for i, old in enumerate(order):
        nd = nodes[old]
        o = nd.op
        args = [new[a] for a in nd.args]
        edges: list = []
        if o == PARAM:
            if nd.param in slot:
                pslot[i] = slot[nd.param]
                dep[i] = 1 << slot[nd.param]
            else:
                exactval[i] = ops.OPS[o].value(nd, None, problem.values)
        elif o == CONST:
            exactval[i] = nd.const
        elif o == MUL and dep[args[0]] and dep[args[1]]:
            edges = [(args[0], Fraction(1)), (args[1], Fraction(1))]  # coefficients unused
        elif o in (LIN, MUL):
            if o == LIN:
                terms, c = list(zip(nd.coefs, args)), Fraction(nd.const)
            else:  # a product with a constant factor is a LIN node
                a, b = args
                terms, c = ([(exactval[b], a)], Fraction(0)) if dep[a] else ([(exactval[a], b)], Fraction(0))
                o = LIN
            acc: dict = {}
            for cf, j in terms:
                if not dep[j]:
                    c += cf * exactval[j]
                elif op[j] == LIN:
                    c += cf * cst_q[j]
                    for e in range(aptr[j], aptr[j + 1]):
                        acc[aidx[e]] = acc.get(aidx[e], Fraction(0)) + cf * acoef_q[e]
                else:
                    acc[j] = acc.get(j, Fraction(0)) + Fraction(cf)
            edges = [(j, cf) for j, cf in acc.items() if cf != 0]
            cst_q[i] = c
            if not edges:
                exactval[i] = c
        elif o == ACT:
            actid[i] = act_index[nd.act]
            if dep[args[0]]:
                edges = [(args[0], Fraction(1))]
            else:
                exactval[i] = ops.OPS[o].value(nd, {nd.args[0]: exactval[args[0]]}, None)
        else:  # MAX
            if any(dep[j] for j in args):
                edges = [(j, Fraction(1)) for j in args]
            else:
                exactval[i] = ops.OPS[o].value(nd, {a: exactval[j] for a, j in zip(nd.args, args)}, None)
        for j, cf in edges:
            dep[i] |= dep[j]
            aidx.append(j)
            acoef_q.append(cf)
        if not dep[i]:
            val0[i], err0[i] = float_with_error(exactval[i])
        op[i] = o if dep[i] else CONST
        aptr.append(len(aidx))
    return _Folded(op, np.array(aptr, np.int64), np.array(aidx, np.int64), acoef_q, cst_q, pslot, actid, dep,
                   exactval, val0, err0)


def _recompute_lists(f: _Folded, kn, inner):
    """What count_kernel recomputes: the varying ancestors of kink inputs (the *needed* nodes),
    split into prefix nodes (not depending on the inner parameter), each with the highest prefix
    position it depends on -- when the prefix changes first at position L exactly the nodes with
    lvl_pos >= L are recomputed (one list, not one per level: k lists of ~N nodes each would be
    quadratic for thousands of free parameters) -- and per-point nodes; plus which edges come
    from the inner parameter."""
    needed = np.zeros(f.N, np.bool_)
    stack = [int(a) for i in kn for a in f.args(i) if f.dep[a]]
    while stack:
        n = stack.pop()
        if not needed[n]:
            needed[n] = True
            stack.extend(int(a) for a in f.args(n) if f.dep[a])
    lvl_nodes = [i for i in range(f.N) if needed[i] and not f.dep[i] & inner and f.dep[i]]
    lvl_pos = [f.dep[i].bit_length() - 1 for i in lvl_nodes]
    pt_nodes = [i for i in range(f.N) if needed[i] and f.dep[i] & inner]
    inner_edge = np.array([bool(f.dep[a] & inner) for a in f.aidx], dtype=np.bool_)
    return lvl_pos, lvl_nodes, pt_nodes, inner_edge


def _k1_invariant(f: _Folded, kn, inner) -> np.ndarray:
    """Per kink node: its K = 1 derivative data (a, sigma) cannot change with the inner parameter,
    because no node on its sweeps has a local partial that depends on it (MUL partner, ACT piece,
    MAX winner); then the K = 1 verdict is cached per block."""
    def pd(i):
        if f.op[i] == MUL:
            a, b = f.args(i)
            return bool(f.dep[a] & inner or f.dep[b] & inner)
        if f.op[i] in (ACT, MAX):
            return bool(f.dep[i] & inner)
        return False

    anc_pd = [False] * f.N
    for i in range(f.N):
        if f.dep[i]:
            anc_pd[i] = pd(i) or any(anc_pd[a] for a in f.args(i) if f.dep[a])
    desc_pd = [False] * f.N
    for i in range(f.N - 1, -1, -1):
        for a in f.args(i):
            if pd(i) or desc_pd[i]:
                desc_pd[a] = True
    return np.array([not anc_pd[f.args(i)[0]] and not desc_pd[i] if f.op[i] == ACT else False for i in kn],
                    dtype=np.bool_)


def _affine_inner(f: _Folded, kn, kn_inner, pt_nodes, inner_edge, A: K.Acts):
    """The affine inner structure (:func:`fpad._kernels.count_kernel`): every per-point node is an
    inner PARAM or a LIN whose inner terms are inner PARAMs, every inner kink node an ACT whose
    input is one of them, with an exact non-zero total coefficient c of the inner parameter.
    Returns the inner kink nodes, their input LIN node (-1: the parameter itself), c, and whether
    the structure holds."""
    ik_kn = [t for t in range(len(kn)) if kn_inner[t]]
    ik_in, ik_c = [], []
    fast = True
    for n in pt_nodes:
        if f.op[n] == LIN:
            fast &= all(f.op[a] == PARAM for a, inn in zip(f.args(n), inner_edge[f.aptr[n]:f.aptr[n + 1]]) if inn)
        elif f.op[n] != PARAM:
            fast = False
    for t in ik_kn:
        i = kn[t]
        x = int(f.args(i)[0])
        if f.op[i] != ACT or f.op[x] not in (PARAM, LIN):
            fast = False
            ik_in.append(-1)
            ik_c.append(0.0)
            continue
        if f.op[x] == PARAM:
            c = Fraction(1)
        else:
            c = sum((f.acoef_q[e] for e in range(f.aptr[x], f.aptr[x + 1]) if inner_edge[e]), Fraction(0))
        cf, ce = float_with_error(c)
        fast &= c != 0 and ce == 0
        ik_in.append(-1 if f.op[x] == PARAM else x)
        ik_c.append(cf)
    return ik_kn, ik_in, ik_c, fast


def _memo_key(f: _Folded, kn_set):
    """The oracle memo key's entries (module docstring): the state of each varying kink node
    (kind 0: ACT, 1: MAX) and the value of each varying MUL argument (kind 2)."""
    key_kind, key_node, seen = [], [], set()
    for i in range(f.N):
        if not f.dep[i]:
            continue
        ents = [(0 if f.op[i] == ACT else 1, i)] if i in kn_set else []
        if f.op[i] == MUL:
            ents += [(2, int(a)) for a in f.args(i)]
        for ent in ents:
            if ent not in seen:
                seen.add(ent)
                key_kind.append(ent[0])
                key_node.append(ent[1])
    return key_kind, key_node


def _forms(f: "_Folded", acts, fmt) -> np.ndarray:
    """The static exactness analysis (module docstring): exact[n] iff every float64 operation
    of node n, in any summation order, is exact at every grid point."""
    N, op, aptr, aidx, acoef_q, cst_q, actid = f.N, f.op, f.aptr, f.aidx, f.acoef_q, f.cst_q, f.actid
    isconst, err0, exactval = f.isconst, f.err0, f.exactval
    tform = _param_form(fmt)
    forms: list = [None] * N
    exact = np.zeros(N, np.bool_)
    for i in range(N):
        o = op[i]
        if isconst[i]:
            forms[i] = _form(exactval[i])  # None unless dyadic (then float(c) == c: err0 == 0)
            exact[i] = err0[i] == 0
            continue
        args = aidx[aptr[i]:aptr[i + 1]]
        if o == PARAM:
            fm = tform
        elif o == LIN:
            terms = []
            for e in range(aptr[i], aptr[i + 1]):
                c = acoef_q[e]
                fa = forms[args[e - aptr[i]]]
                terms.append(fa if abs(c) == 1 else _prod(_form(c), fa))
            terms.append(_form(cst_q[i]))
            fm = _sum(terms)
        elif o == MUL:
            fm = _prod(forms[args[0]], forms[args[1]])
        elif o == ACT:
            act = acts[actid[i]]
            # kinks must be floats too: the kernels pick the piece by float comparisons
            fx = forms[args[0]] if all(float_with_error(k)[1] == 0 for k in act.kinks) else None
            fm = (0, 0, 0)
            for s, c in zip(act.slopes, act.intercepts):
                t = fx if abs(s) == 1 else _prod(_form(s), fx)
                fm = _union(fm, _sum([t, _form(c)]))
        else:  # MAX: the value is one of the arguments
            fm = (0, 0, 0)
            for a in args:
                fm = _union(fm, forms[a])
        forms[i] = fm if _fits(fm) else None
        exact[i] = forms[i] is not None
    return exact


# -- counts -------------------------------------------------------------------------------------------
@dataclass
class ChunkCounts:
    """Exact counts over a set of grid points (a chunk of a range, or sampled indices).

    ``per_neuron[tag] = {"touched", "ndf", "inc"}``: the points where that node is touched, and
    among them the ndf and the inc points. ``witnesses[class]``: the free values (exact rational
    strings) of the points with the smallest flat indices in the class (classes
    :data:`WITNESS_CLASSES`), ``witness_index[class]`` their flat indices; merging keeps the
    smallest, so the result does not depend on chunking. ``fallback``: points decided by the
    exact slow path (fpad.oracle) instead of the compiled kernel.
    """

    points: int = 0
    touched: int = 0
    ndf: int = 0
    inc: int = 0
    clarke_ok: int = 0
    per_neuron: dict = field(default_factory=dict)
    witnesses: dict = field(default_factory=dict)
    witness_index: dict = field(default_factory=dict)
    fallback: int = 0
    max_witnesses: int = 3

    def merge(self, other: "ChunkCounts") -> "ChunkCounts":
        """The counts of the union of two disjoint point sets (a new object)."""
        per = {t: dict(v) for t, v in self.per_neuron.items()}
        for tag, v in other.per_neuron.items():
            d = per.setdefault(tag, {"touched": 0, "ndf": 0, "inc": 0})
            for key in d:
                d[key] += v.get(key, 0)
        mw = max(self.max_witnesses, other.max_witnesses)
        wit, widx = {}, {}
        for cls in set(self.witness_index) | set(other.witness_index):
            pairs = sorted(set(zip(self.witness_index.get(cls, []), map(tuple, self.witnesses.get(cls, []))))
                           | set(zip(other.witness_index.get(cls, []), map(tuple, other.witnesses.get(cls, [])))))[:mw]
            widx[cls] = [i for i, _ in pairs]
            wit[cls] = [list(w) for _, w in pairs]
        return ChunkCounts(
            points=self.points + other.points, touched=self.touched + other.touched,
            ndf=self.ndf + other.ndf, inc=self.inc + other.inc, clarke_ok=self.clarke_ok + other.clarke_ok,
            per_neuron=per, witnesses=wit, witness_index=widx, fallback=self.fallback + other.fallback,
            max_witnesses=mw)

    def to_json(self) -> dict:
        return {"points": self.points, "touched": self.touched, "ndf": self.ndf, "inc": self.inc,
                "clarke_ok": self.clarke_ok, "per_neuron": self.per_neuron, "witnesses": self.witnesses,
                "witness_index": {c: [_index_str(i) for i in v] for c, v in self.witness_index.items()},
                "fallback": self.fallback, "max_witnesses": self.max_witnesses}

    @classmethod
    def from_json(cls, d: dict) -> "ChunkCounts":
        d = json.loads(d) if isinstance(d, str) else d
        return cls(points=int(d["points"]), touched=int(d["touched"]), ndf=int(d["ndf"]), inc=int(d["inc"]),
                   clarke_ok=int(d["clarke_ok"]),
                   per_neuron={t: {k: int(v) for k, v in c.items()} for t, c in d.get("per_neuron", {}).items()},
                   witnesses={c: [list(map(str, w)) for w in v] for c, v in d.get("witnesses", {}).items()},
                   witness_index={c: [_index_int(i) for i in v] for c, v in d.get("witness_index", {}).items()},
                   fallback=int(d.get("fallback", 0)), max_witnesses=int(d.get("max_witnesses", 3)))


def _index_str(i: int) -> str:
    """A flat index as JSON text: decimal, or hexadecimal ("0x...") beyond 10^3000 (points of
    grids with thousands of free parameters; Python refuses decimal strings of 4300+ digits)."""
    return str(i) if i.bit_length() < 10000 else hex(i)


def _index_int(s) -> int:
    return int(s, 16) if isinstance(s, str) and s.startswith("0x") else int(s)


def _oracle_code(res) -> int:
    if not res.touched:
        return K.UNTOUCHED
    if res.ndf:
        return K.NDF_CLARKE if res.clarke_ok else K.NDF_NOT_CLARKE
    return K.INC if res.inc else K.TOUCHED_OK


def _slow_verdict(compiled: Compiled, row, key):
    """(code, tags of the varying touched nodes) of the point with digits ``row`` by
    fpad.oracle.classify, memoised on the exact key (module docstring) when there is one."""
    if key is not None and key in compiled.memo:
        return compiled.memo[key]
    from fpad.oracle import classify

    res = classify(compiled.problem, compiled.values_of(row))
    const = set(compiled.const_touched)
    out = (_oracle_code(res), tuple(t.tag for t in res.touched if t.node not in const))
    if key is not None:
        compiled.memo[key] = out
    return out


def _resolve(compiled: Compiled, rows: np.ndarray):
    """Exact verdicts of deferred points (digit rows): list of (code, tags) in row order."""
    if rows.shape[0] == 0:
        return []
    keys, valid = K.key_kernel(rows, compiled.table, compiled.k, compiled.key_kind, compiled.key_node,
                               compiled.P, compiled.A)
    out = [None] * rows.shape[0]
    ok = np.flatnonzero(valid)
    if ok.size:
        # one verdict per distinct key (the memo's: same key, same verdict), looked up once
        if keys.shape[1]:
            kb = np.ascontiguousarray(keys[ok]).view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1])))
            uniq, first, inverse = np.unique(kb.ravel(), return_index=True, return_inverse=True)
            per_key = [_slow_verdict(compiled, rows[ok[f]], u.tobytes()) for u, f in zip(uniq, first)]
        else:  # no key entries: one local structure everywhere
            inverse = np.zeros(ok.size, np.int64)
            per_key = [_slow_verdict(compiled, rows[ok[0]], b"")]
        for i, j in zip(ok.tolist(), inverse.ravel().tolist()):
            out[i] = per_key[j]
    for i in np.flatnonzero(~valid).tolist():
        out[i] = _slow_verdict(compiled, rows[i], None)
    return out


def _tally_verdicts(compiled: Compiled, out: ChunkCounts, per: dict, widx: dict, pts: list[int], verdicts,
                    max_witnesses: int) -> None:
    """Add the exactly decided points ``pts`` (verdicts ``(code, tags)`` from :func:`_slow_verdict`)
    to ``out``, then finish it: constant touched nodes (touched at every point), per-neuron counts
    (never-touched tags left out) and the smallest-index witnesses of each class."""
    out.fallback += len(verdicts)
    out.points += len(verdicts)
    by_verdict: dict = {}  # deferred points share few verdicts (B1: 64,009 points, 2 verdicts)
    for p, v in zip(pts, verdicts):
        by_verdict.setdefault(v, []).append(p)
    for (code, tags), ps in by_verdict.items():
        if code == K.UNTOUCHED:
            continue
        n = len(ps)
        ndf = code in (K.NDF_CLARKE, K.NDF_NOT_CLARKE)
        inc = code == K.INC
        out.touched += n
        out.ndf += n * ndf
        out.inc += n * inc
        out.clarke_ok += n * (code == K.NDF_CLARKE)
        first = sorted(set(ps))[:max_witnesses]  # the only ones that can be among the smallest
        for cls, hit in (("touched", True), ("ndf", ndf), ("inc", inc), ("ndf_not_clarke", code == K.NDF_NOT_CLARKE)):
            if hit:
                widx[cls].extend(first)
        for tag in set(tags):
            d = per.setdefault(tag, {"touched": 0, "ndf": 0, "inc": 0})
            d["touched"] += n
            d["ndf"] += n * ndf
            d["inc"] += n * inc
    if compiled.base_touched:
        for tag in set(compiled.const_tags):
            d = per.setdefault(tag, {"touched": 0, "ndf": 0, "inc": 0})
            d["touched"] += out.points
            d["ndf"] += out.ndf
            d["inc"] += out.inc
    out.per_neuron = {tag: d for tag, d in per.items() if d["touched"]}  # never-touched tags are left out
    for cls in WITNESS_CLASSES:
        chosen = sorted(set(widx[cls]))[:max_witnesses]
        if chosen:
            out.witness_index[cls] = chosen
            out.witnesses[cls] = [[str(v) for v in compiled.values_of(compiled.digits(i))] for i in chosen]


#: deferred points per group of count_kernel: a group deferring more is rerun alone with a buffer
#: of the exact size. The buffer is allocated, not filled, so only the entries written cost
#: anything and a large one is free until used (B1's 64,009 points at w = b = 0 fall in two
#: groups of 32K, which were rerun whole, serially, with the former 1,024). Tests lower it to
#: exercise the rerun.
_DEFER_CAP = 1 << 16


def _groups():
    return 8 * numba.get_num_threads()


def _run(compiled: Compiled, start: int, stop: int, pts: np.ndarray, record: bool, max_witnesses: int):
    """Kernel over a range (``pts`` empty) or over the points whose digits are the (sorted) rows
    of ``pts``; returns a ChunkCounts and, when ``record``, the per-point codes with deferred
    points resolved (in range order, or in row order)."""
    m = compiled.m
    use_pts = pts.shape[0] > 0
    n_items = pts.shape[0] if use_pts else (stop - 1) // m - start // m + 1
    ngroups = max(1, min(_groups(), n_items))
    cap = _DEFER_CAP
    maxw = max(1, max_witnesses)
    kernel_args = (record, maxw, compiled.base_touched, compiled.table, compiled.k, compiled.P, compiled.A,
                   compiled.S)
    counts, pk, wit, dbuf, codes = K.count_kernel(start, stop, pts, ngroups, cap, *kernel_args)
    deferred = []
    over = [g for g in range(ngroups) if counts[g, K.C_DEFER] > cap]
    for g in over:
        # a group deferred more points than its buffer holds: rerun that group alone with a
        # buffer of the exact size (its counts replace the group's, so both come from one run)
        i0, i1 = g * n_items // ngroups, (g + 1) * n_items // ngroups
        if use_pts:  # rows i0..i1-1, named by their row in the sub-array: shift back by i0
            c2, pk2, wit2, dbuf2, codes2 = K.count_kernel(0, 0, pts[i0:i1], 1, int(counts[g, K.C_DEFER]), *kernel_args)
            shift, lo = i0, i0
        else:
            sub0, sub1 = max(start, (start // m + i0) * m), min(stop, (start // m + i1) * m)
            c2, pk2, wit2, dbuf2, codes2 = K.count_kernel(sub0, sub1, pts, 1, int(counts[g, K.C_DEFER]), *kernel_args)
            shift, lo = 0, sub0 - start
        counts[g] = c2[0]
        pk[g] = pk2[0]
        wit[g] = np.where(wit2[0] >= 0, wit2[0] + shift, -1)
        if record:
            codes[lo:lo + codes2.size] = codes2
        deferred.append(dbuf2[0, :int(c2[0, K.C_DEFER])] + shift)
    for g in range(ngroups):
        if g not in over:
            deferred.append(dbuf[g, :int(counts[g, K.C_DEFER])])
    tot = counts.sum(axis=0)
    out = ChunkCounts(points=int(tot[K.C_POINTS]), touched=int(tot[K.C_TOUCHED]), ndf=int(tot[K.C_NDF]),
                      inc=int(tot[K.C_INC]), clarke_ok=int(tot[K.C_CLARKE]), max_witnesses=max_witnesses)
    per: dict = {}
    pks = pk.sum(axis=0)
    for t, tag in enumerate(compiled.kn_tags):
        d = per.setdefault(tag, {"touched": 0, "ndf": 0, "inc": 0})
        d["touched"] += int(pks[t, 0])
        d["ndf"] += int(pks[t, 1])
    name = (lambda p: compiled.index_of(pts[p])) if use_pts else int  # kernel name -> flat index
    widx = {cls: sorted(name(int(x)) for x in wit[:, c, :].ravel() if x >= 0)
            for c, cls in enumerate(WITNESS_CLASSES)}
    ids = np.sort(np.concatenate(deferred)) if deferred else np.zeros(0, np.int64)
    rows = pts[ids] if use_pts else compiled.digits_array(ids)
    verdicts = _resolve(compiled, rows)
    _tally_verdicts(compiled, out, per, widx, [name(int(p)) for p in ids], verdicts, max_witnesses)
    if record:  # deferred points' codes, in place
        for p, (code, _) in zip(ids.tolist(), verdicts):
            codes[p if use_pts else p - start] = code
    expected = pts.shape[0] if use_pts else stop - start
    if out.points != expected:  # every point is counted exactly once, or the kernel has a bug
        raise RuntimeError(f"internal error: the kernel counted {out.points} of {expected} points "
                           f"in [{start}, {stop}); please report this network")
    return out, codes


def _check_range(compiled: Compiled, start: int, stop: int) -> tuple[int, int]:
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop <= compiled.n_points:
        raise FpadError(f"range [{start}, {stop}) is not inside the grid [0, {compiled.n_points}); "
                        "use 0 <= start <= stop <= |M|^k")
    if stop > _INDEX_LIMIT:
        raise FpadError(f"flat index {stop} exceeds 2^62, the kernels' index range; enumerate fewer "
                        "free parameters or use --sample/--line on a smaller grid")
    return start, stop


def count_range(compiled: Compiled, start: int, stop: int, *, max_witnesses: int = 3) -> ChunkCounts:
    """Exact counts over the points with flat index start..stop-1."""
    start, stop = _check_range(compiled, start, stop)
    if start == stop:
        return ChunkCounts(max_witnesses=max_witnesses)
    return _run(compiled, start, stop, _NO_POINTS, False, max_witnesses)[0]


def classify_points(compiled: Compiled, rows, *, max_witnesses: int = 3) -> ChunkCounts:
    """Exact counts over the points whose digits are the rows of ``rows`` (shape (n, k); digit d
    of parameter j is the d-th value of M; repeats count repeatedly). Any number of free
    parameters: a point is its coordinates, never a flat index."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, compiled.k)
    if rows.size and (rows.min() < 0 or rows.max() >= compiled.m):
        raise FpadError(f"point digits must lie in [0, {compiled.m}): one per value of {compiled.problem.fmt.name}")
    if rows.shape[0] == 0:
        return ChunkCounts(max_witnesses=max_witnesses)
    if compiled.k <= _SORT_PARAMS:  # rows sharing a prefix side by side: the kernel reuses it
        rows = rows[np.lexsort(rows.T[::-1])]
    return _run(compiled, 0, 0, np.ascontiguousarray(rows), False, max_witnesses)[0]


def classify_indices(compiled: Compiled, indices, *, max_witnesses: int = 3) -> ChunkCounts:
    """Exact counts over the points at the given flat indices (repeats count repeatedly), by
    their coordinates (:func:`classify_points`), so indices of any size are decided by the kernels."""
    indices = [int(i) for i in indices]
    for i in indices:
        if not 0 <= i < compiled.n_points:
            raise FpadError(f"point index {i} is not inside the grid [0, {compiled.n_points})")
    return classify_points(compiled, [compiled.digits(i) for i in indices], max_witnesses=max_witnesses)


def count_range_codes(compiled: Compiled, start: int, stop: int) -> tuple[ChunkCounts, np.ndarray]:
    """:func:`count_range` (one witness per class) and the per-point verdict codes (int8) of
    start..stop-1, deferred points resolved by the oracle: 0 untouched, 1 touched and AD right,
    2 ndf with AD in the Clarke set, 3 ndf otherwise, 5 inc."""
    start, stop = _check_range(compiled, start, stop)
    if start == stop:
        return ChunkCounts(max_witnesses=1), np.zeros(0, np.int8)
    return _run(compiled, start, stop, _NO_POINTS, True, 1)


def point_codes(compiled: Compiled, start: int, stop: int) -> np.ndarray:
    """The per-point verdict codes of :func:`count_range_codes`."""
    return count_range_codes(compiled, start, stop)[1]


def count_exhaustive(problem, *, compiled: Compiled | None = None) -> CountResult:
    """Classify every point of M^k in this process, in one chunk: :func:`fpad.engine.count`
    with the exhaustive method, no store and no time limit (tests, small grids, structured
    counting's brute-force blocks)."""
    from fpad import engine

    compiled = compiled or compile_problem(problem)
    return engine.count(problem, "exhaustive", compiled=compiled, chunk_size=max(1, compiled.n_points),
                        store=None, progress=False, max_seconds=None)


def count_exhaustive_reference(problem, *, max_witnesses: int = 3, codes: list | None = None) -> CountResult:
    """The slow exact twin: :func:`fpad.oracle.classify` on every point (small grids only).
    If ``codes`` is a list, every point's verdict code (as in :func:`point_codes`) is appended."""
    from itertools import product

    from fpad.oracle import classify

    t0 = time.perf_counter()
    values = [Fraction(float(v)) for v in problem.fmt.values()]
    out = ChunkCounts(max_witnesses=max_witnesses)
    for i, point in enumerate(product(values, repeat=len(problem.free))):
        res = classify(problem, list(point))
        code = _oracle_code(res)
        if codes is not None:
            codes.append(code)
        one = ChunkCounts(points=1, touched=int(code != K.UNTOUCHED), ndf=int(res.ndf), inc=int(res.inc),
                          clarke_ok=int(res.ndf and res.clarke_ok), max_witnesses=max_witnesses)
        for tag in {t.tag for t in res.touched}:
            one.per_neuron[tag] = {"touched": 1, "ndf": int(res.ndf), "inc": int(res.inc)}
        for cls, hit in (("touched", code != K.UNTOUCHED), ("ndf", res.ndf), ("inc", res.inc),
                         ("ndf_not_clarke", code == K.NDF_NOT_CLARKE)):
            if hit:
                one.witness_index[cls] = [i]
                one.witnesses[cls] = [[str(v) for v in point]]
        out = out.merge(one)
    return count_result(problem, out, "exhaustive", elapsed_s=time.perf_counter() - t0, extra={"reference": True})


# -- naive float64 (NOT exact; benchmark comparison only) -----------------------------------------------
def float64_evaluate(compiled: Compiled, param):
    """The network in plain float64 NumPy (constants rounded to float, every operation rounded,
    kink tests by ==): ``param(j)`` gives the values of free parameter j, as arrays that broadcast
    together (per-point digits, or the axes of a grid). Returns (touched, output), each of the
    broadcast shape of what it depends on. NOT exact (see :func:`naive_float64_touched`)."""
    op, aptr, aidx, acoef, _, cst, _, pslot, actid, isconst, _, val0, _ = compiled.P
    kptr, kinks, _, sptr, slopes, _, icpt, _, _ = compiled.A
    vals = []
    touched = np.zeros((), bool)
    for i in range(op.shape[0]):
        args = aidx[aptr[i]:aptr[i + 1]]
        o = op[i]
        if isconst[i]:
            v = val0[i]
        elif o == PARAM:
            v = param(pslot[i])
        elif o == LIN:
            v = cst[i]
            for e, a in zip(range(aptr[i], aptr[i + 1]), args):
                v = v + acoef[e] * vals[a]
        elif o == MUL:
            v = vals[args[0]] * vals[args[1]]
        elif o == ACT:
            x = np.asarray(vals[args[0]])
            a = actid[i]
            ks = kinks[kptr[a]:kptr[a + 1]]
            piece = np.searchsorted(ks, x, side="right")
            v = slopes[sptr[a] + piece] * x + icpt[sptr[a] + piece]
            for kk in ks:
                touched = touched | (x == kk)
        else:
            v = vals[args[0]]
            for a in args[1:]:
                v = np.maximum(v, vals[a])
            if len(args) > 1:
                touched = touched | (sum((vals[a] == v).astype(np.int64) for a in args) > 1)
        vals.append(v)
    if compiled.base_touched:
        touched = np.ones((), bool)
    return touched, vals[-1]


def naive_float64_touched(compiled: Compiled, start: int, stop: int) -> np.ndarray:
    """Touched-or-not of points start..stop-1 by plain vectorised float64 evaluation
    (:func:`float64_evaluate` at every point). NOT exact: it exists to measure how often plain
    float64 gets the touched set wrong. Compare with :func:`point_codes` != 0."""
    start, stop = _check_range(compiled, start, stop)
    idx = np.arange(start, stop, dtype=np.int64)
    k, m = compiled.k, compiled.m
    digits = []
    for _ in range(k):
        digits.append(idx % m)
        idx = idx // m
    digits = digits[::-1]
    touched, _ = float64_evaluate(compiled, lambda j: compiled.table[digits[j]])
    return np.broadcast_to(touched, (stop - start,)).copy()
