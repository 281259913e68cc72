"""Exact counts faster than brute force, by the structure of the program (method ``"structured"``).

:func:`structured_count` returns the same integers as classifying every point of M^k with
:func:`fpad.oracle.classify` (tests/test_structured.py checks it on every point of small grids),
but visits far fewer points. It combines four exact reductions, each proven below:

1. **Affine expansion.** Walking back from the output through affine nodes only (``LIN``, kink-free
   ``ACT``, ``MUL`` with a side that depends on no free parameter), P is written
   ``P(w) = c_0 + sum_t c_t * leaf_t(w)``: the *leaves* are free ``PARAM`` nodes and non-affine
   nodes (kinked ``ACT``, ``MAX``, ``MUL`` of two free-dependent nodes). The coefficients c_t are
   exact constants (the reverse-mode adjoint restricted to affine nodes), so the adjoint of a leaf
   in the whole program is c_t at every point.

2. **Factor-out and separable blocks (Lemma S).** Group the leaves into *blocks*: leaves whose sets
   of free parameters intersect are in the same block (union-find). Then
   ``P(w) = c_0 + sum_j T_j(theta_j) + sum_{p in L} c_p p`` with the theta_j disjoint and L the
   free parameters that reach the output only through affine nodes (no ACT/MAX/MUL downstream).
   *Proof.* (i) P is differentiable at w iff every T_j is differentiable at theta_j: "if" is the
   sum rule; "only if": fixing the other coordinates, T_j(theta) = P(theta, rest) - const, and the
   restriction of a differentiable function to a coordinate slice is differentiable. Then DP is the
   concatenation of the DT_j and of the constants c_p. (ii) A node that depends on theta_j is only
   consumed by nodes of block j or by affine nodes on the way to the output, so reverse-mode AD's
   adjoint of every node of block j equals its adjoint in the program of T_j alone: AD(P) is the
   concatenation of AD(T_j) and of the c_p (for a parameter in L both AD and DP give c_p). (iii)
   The touched set: a kink node depends on the free parameters of one block only (or on none: a
   *constant* node, touched at every point or at none). (iv) First-order pieces (DESIGN.md): a
   touched node's linear form involves only its block's coordinates, so the open cone of a choice
   of sides is the product of the blocks' cones, the realisable pieces are the products of the
   blocks' pieces, their gradients are concatenations, and conv of a product set is the product of
   the convs; so AD(P) lies in conv{g_s} iff every AD(T_j) lies in its block's hull. (At a
   differentiable block the hull is {DT_j}.) Hence with F = |M|^|L| and per block the numbers
   ``untouched_j``, ``diff_j``, ``correct_j`` (differentiable and AD right) and ``hull_j``
   (AD in the hull: correct or ndf-with-clarke_ok):
   ``touched = N - F prod untouched_j`` (N if a constant node is touched), ``ndf = N - F prod
   diff_j``, ``inc = F (prod diff_j - prod correct_j)``, ``clarke_ok = F (prod hull_j - prod
   correct_j)``. Blocks with identical structure and constants (e.g. the neurons of a layer with all
   parameters free) are counted once (a cache keyed by the block's canonical form).

3. **Output weight (Lemma V).** If every leaf of a block is ``v * g_t`` for one free parameter v
   that no g_t depends on, then ``T(theta, v) = v * S(theta)`` with ``S = sum c_t g_t``. For v != 0:
   the touched nodes, their linear forms and hence the cones are those of S (v is not upstream of
   any kink); every piece gradient is (v g_s, S(theta)) and AD is (v AD_S, S(theta)) (the adjoint
   of g_t is v c_t), so differentiable/correct/in-hull are S's verdicts (scaling by v != 0
   preserves equality and convex hulls). For v = 0: T(theta + e, dv) - T(theta, 0) =
   dv S(theta) + dv (S(theta + e) - S(theta)) = dv S(theta) + O(|dv| |e|) since S is Lipschitz, so
   T is differentiable with gradient (0, S(theta)), which is also what AD returns (every adjoint
   into theta is multiplied by v = 0). So with Z = [0 in M]: touched_T = |M| touched_S,
   ndf_T = (|M| - Z) ndf_S, inc_T = (|M| - Z) inc_S, clarke_T = (|M| - Z) clarke_S.

4. **Bias solving (Lemma B).** A block whose leaves are kinked ACT nodes z_s = rho_s(y_s) (plus
   linear parameter leaves), with every pre-activation affine in the free parameters,
   ``y_s = f_s(rest) + beta_s * b`` with one free parameter b ("the bias") whose coefficient
   beta_s != 0 in every y_s, and no MAX node. For fixed ``rest``, node s is on kink kappa iff
   ``b = (kappa - f_s(rest)) / beta_s``: at most (number of kinks) values of b per node, tested for
   membership in M exactly. Every other b is untouched: differentiable, AD exact. At a b hit by
   exactly one node s (K = 1, no ties): the two one-sided pieces are g_+- = g_0 + sigma D^+-rho a
   with a = grad y_s != 0 (its b entry is beta_s) and sigma = c_s (the leaf's constant coefficient,
   item 1). So the point is ndf iff c_s != 0; it is never inc (if c_s = 0 both pieces and AD are
   g_0); and at an ndf point AD = g_0 + sigma p a lies in the segment [g_-, g_+] iff the proxy p
   lies between D^- and D^+ (inclusive). Points hit by a set T of two or more nodes go to the
   oracle (:func:`fpad.oracle.classify_program`) on the program of those nodes alone,
   P_T = sum_{s in T} c_s z_s, over the same free parameters: near the point every other leaf
   is affine (its pre-activation is off its kinks; a parameter leaf is linear), so P - P_T is
   affine there with gradient g_0. Hence P and P_T are differentiable at the same points, with
   derivatives differing by g_0; AD's outputs differ by g_0 too (AD sends the constant adjoint
   c_t into every leaf, and off a kink AD's factor is the derivative); and the oracle sees the
   same touched nodes with the same (affine) input forms, so the same cones, and piece
   gradients translated by g_0 (so Clarke(P) = g_0 + Clarke(P_T)). Its verdicts (ndf, inc,
   Clarke and Bouligand membership) are therefore the same on both, and P_T has |T| neurons
   where P may have thousands (the all-grid counterexample: 2|M|). An independent review
   compared the two pointwise at about 30,800 multi-touch points of random networks.
   The work is |M|^(k-1) evaluations instead of |M|^k.
   They run in float64 over all ``rest`` at once (numpy), when every nonzero constant and value
   of M lies in [2^-300, 2^300] (else the rational loop runs). Every value of M is a float64.
   Then no product underflows or overflows (|c x| >= 2^-600), TwoProduct and TwoSum residuals
   are exact, and every rounding is within u = 2^-53 relative (a sum that lands below 2^-1022 is
   exact). Two ways to decide, per point, node and kink:
   *exact floats*: each leaf's equation is first multiplied by the odd part of its constants'
   common denominator (same solutions b; a decimal input 3/10 becomes 3). When every constant is
   then a float and every product and sum, including
   d = kappa - f, has a zero residual, d is exact; a quotient d / beta that is a float (every b
   in M is) comes out of the division exactly, so b in M implies fl(d / beta) = b, and
   conversely v * beta == d with a zero TwoProduct residual means b = v. No rationals are needed.
   When the sum is exact but d is not a float64 (a nonzero TwoSum residual) and beta has at most
   53 - p significant bits (p: M's precision), there is no hit: for b in M, b * beta has at most
   53 significant bits and is 0 or in [2^-600, 2^600], so it is a float64, and d would be one
   (b = 0 gives d = 0, a float). The bound is tight: with 54 - p bits a hit can have d not a
   float. (bf16 HardSigmoid, B = 4: a tiny w x makes 3 - w x inexact at 270,000 rest points,
   each otherwise a rational confirmation.)
   *filter*: otherwise, with n terms (n <= |rest| < 14, since |M|^|rest| <= SOLVE_LIMIT and
   |M| >= 3), |b_float - b| <= (n + 6) u ((|kappa| + sum |terms|) / |beta| + |b_float|)
   (conversions of the rational constants included) + 2^-1075 (a quotient below 2^-1022). The
   filter keeps the values of M within 2^-40 (>= (n + 6) u) times that bracket plus 2^-1000 of
   b_float, and confirms each in exact rationals (a non-finite b_float is solved exactly).
   So no hit is lost and none is invented: the same hits, in the same order, as the rational loop
   (:meth:`_Counter._bias_hits_reference`, the slow twin; tests compare the two).

Blocks that none of 3-4 reduces are counted by brute force: the compiled kernel of
:mod:`fpad.enumerate` (blocks up to :data:`KERNEL_LIMIT` points). :func:`structured_count` returns ``None`` when no reduction applies at all
(one block, nothing factored out, brute force needed) or a block is too large for brute force:
the caller then uses the exhaustive engine, with its budget check, chunks and progress store.

Measured (2-core machine): one hidden layer, input [1], ReLU with bias, all 25 parameters of
width 8 free over e4m3fn (253^25 ~ 1e60 points): 4 ms; width 1024 (3073 parameters): 0.4 s;
bf16 width 1024: 0.6 s (after the one bias-solve over the 65279 values of w: about 1 s).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import time
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

import numpy as np

from fpad import _kernels as K
from fpad.enumerate import _form, count_exhaustive
from fpad import ops
from fpad.graph import Program
from fpad.oracle import classify_program
from fpad.prepare import prepare
from fpad.results import CountResult, count_result

# Bias solving enumerates |M|^(k-1) "rest" points in Python (about 1e5-1e6 per second).
SOLVE_LIMIT = 3_000_000
# Lemma B's float64 filter is proven for constants and values of M in this range (module docstring).
_FILTER_MIN, _FILTER_MAX = Fraction(1, 2**300), Fraction(2**300)


def _in_filter_range(x) -> bool:
    return x == 0 or _FILTER_MIN <= abs(x) <= _FILTER_MAX


@functools.lru_cache(maxsize=64)
def _value_set(fmt) -> frozenset:
    """M as a set of Fractions, once per format (a sweep builds a counter per network)."""
    return frozenset(fmt.values_fraction())


@functools.lru_cache(maxsize=64)  # the precision sweep cycles through about 30 formats per network
def _float_tables(fmt):
    """M as float64 (in values_fraction order), the sorting permutation, M sorted, and whether
    every value of M lies in the filter's range; once per format (the precision and
    counterexample sweeps built them per network: 5 s of the quick run under the profiler)."""
    mvals = fmt.values_fraction()
    mf = np.array([float(v) for v in mvals])
    order = np.argsort(mf, kind="stable")
    tables = (mf, order, mf[order])
    for t in tables:
        t.setflags(write=False)  # shared by every counter of the format
    # the values of M are distinct: a nonzero one below float64's range would be a second zero of
    # mf (one above it is inf); otherwise mf holds them exactly, and 2^-300, 2^300 are floats
    mags = np.abs(mf[mf != 0])
    in_range = (mf == 0).sum() <= 1 and (not len(mags) or (float(_FILTER_MIN) <= mags.min()
                                                            and mags.max() <= float(_FILTER_MAX)))
    return *tables, bool(in_range)


def _odd_scaled(c0, terms, beta, kinks):
    """A leaf's kink equation c0 + sum_j c_j x_j + beta b = kappa multiplied by the odd part D of
    its constants' common denominator: the same solutions b, with constants such as 3/10 (a
    decimal input) turned into floats (3), so that Lemma B's exact-float path decides those hits
    instead of the filter and a rational confirmation per candidate."""
    D = 1
    for v in (c0, beta, *kinks, *(c for _, c in terms)):
        d = Fraction(v).denominator
        d >>= (d & -d).bit_length() - 1  # its odd part
        D = D * d // gcd(D, d)
    if D == 1:
        return c0, terms, beta, kinks
    return c0 * D, [(j, c * D) for j, c in terms], beta * D, [kappa * D for kappa in kinks]


def _solve_b(leaf, k, point) -> Fraction:
    """The bias value putting leaf ``(node, c0, terms, beta, kinks, ...)`` on its kink k at the
    rest point: (kappa - c0 - sum c x) / beta, in exact rationals."""
    _, c0, terms, beta, kinks = leaf[:5]
    return (kinks[k] - c0 - sum(c * point[j] for j, c in terms)) / beta
# Brute force with the compiled kernel inside a structured run (a few seconds at most); larger
# blocks make structured counting decline, so the engine's exhaustive path (with its budget check,
# progress store and chunks) handles them.
KERNEL_LIMIT = 2 * 10**7

_ZERO = Fraction(0)

# Counts of blocks already seen, keyed by (format, proxy, semantics, canonical block form): a block's counts
# depend on nothing else, so sweeps over widths or batch sizes count each distinct block once.
_BLOCK_CACHE: dict[tuple, "BlockCounts"] = {}
_BLOCK_CACHE_MAX = 4096


@dataclass(frozen=True)
class BlockCounts:
    """Counts over one block's own grid M^k_j (all exact ints)."""

    points: int
    touched: int
    ndf: int
    inc: int
    clarke_ok: int
    method: str  # how the block was counted: "bias-solve", "scale(...)", "kernel", "oracle" (joined by +)

    @property
    def untouched(self) -> int:
        return self.points - self.touched

    @property
    def diff(self) -> int:
        return self.points - self.ndf

    @property
    def correct(self) -> int:
        return self.points - self.ndf - self.inc

    @property
    def hull(self) -> int:
        return self.correct + self.clarke_ok


class _NotReducible(Exception):
    """A block needs brute force beyond the limits: structured counting does not apply."""


# -- the graph analysis ----------------------------------------------------------------------------
def _expand(nodes, root: int, sup, values) -> tuple[Fraction, dict[int, Fraction]]:
    """Affine expansion of node ``root`` (item 1 of the module docstring).

    Returns (c_0, {leaf: c_t}); nodes with no free dependence fold into c_0 (``values`` holds their
    exact value). Each node's affine form is :mod:`fpad.ops`' ``affine`` entry; reverse
    topological accumulation, so shared sub-expressions are visited once.
    """

    def is_const(i):
        return not sup[i]

    def affine(i):
        n = nodes[i]
        return ops.OPS[n.op].affine(n, is_const, values) if sup[i] else None

    coef: dict[int, Fraction] = {root: Fraction(1)}
    const = _ZERO
    leaves: dict[int, Fraction] = {}
    pending = [root]
    forms: dict[int, tuple | None] = {}
    while pending:  # collect the affine region below root
        i = pending.pop()
        if i in forms:
            continue
        forms[i] = affine(i)
        if forms[i] is not None:
            pending.extend(nodes[i].args)
    for i in sorted(forms, reverse=True):  # args have smaller indices: reverse topological order
        c = coef.pop(i, None)
        if c is None:
            continue
        if not sup[i]:
            const += c * values[i]
        elif forms[i] is None:
            leaves[i] = leaves.get(i, _ZERO) + c
        else:
            offset, terms = forms[i]
            const += c * offset
            for a, k in terms:
                coef[a] = coef.get(a, _ZERO) + c * k
    return const, leaves


@dataclass
class _Block:
    """One block: a program T_j over its own free parameters (in canonical order)."""

    program: Program
    free: list[int]  # original parameter indices, canonical order
    key: tuple  # canonical form: equal keys => equal counts
    leaves: dict[int, Fraction]  # leaf node (index in ``program``) -> coefficient
    kinks: int  # kinks of the block's live ACT nodes (its share of n)


def _cut_program(src: Program, values, sup, leaves: dict[int, Fraction]) -> tuple[Program, dict[int, int], list[int]]:
    """Program with the ancestors of ``leaves`` and output ``sum c_t leaf_t``; nodes without free
    dependence become CONST nodes (their value). Returns (program, old->new index, free order)."""
    nodes = src.nodes
    needed = set()
    stack = list(leaves)
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        if sup[i]:
            stack.extend(nodes[i].args)
    prog = Program(src.param_names)  # shared, not copied: a copy per block was quadratic in width
    remap: dict[int, int] = {}
    free_order: list[int] = []
    for i in sorted(needed):
        n = nodes[i]
        if not sup[i]:
            remap[i] = prog.const(values[i])
        else:
            p = ops.param_of(n)
            if p is not None and p not in free_order:
                free_order.append(p)
            remap[i] = prog._add(dataclasses.replace(n, args=tuple(remap[a] for a in n.args)))
    out = prog.lin([(c, remap[i]) for i, c in sorted(leaves.items())])
    prog.set_output(out)
    return prog, remap, free_order


def _canonical_key(prog: Program, free_order: list[int]) -> tuple:
    local = {p: j for j, p in enumerate(free_order)}
    sig = []
    for n in prog.nodes:
        sig.append((
            n.op, n.args, n.coefs, n.const,
            local.get(ops.param_of(n)),
            n.act,  # the Activation itself (frozen, hashable): its name alone could collide
        ))
    return tuple(sig)


def _make_block(src: Program, values, sup, leaves: dict[int, Fraction]) -> _Block:
    prog, remap, free_order = _cut_program(src, values, sup, leaves)
    new_leaves = {remap[i]: c for i, c in leaves.items()}
    kinks = ops.kinks_total(prog.nodes)
    return _Block(prog, free_order, _canonical_key(prog, free_order), new_leaves, kinks)


def _decompose(program: Program, values, free: list[int], semantics):
    """Items 1-2: (constant-touched flag, factored-out parameters, blocks)."""
    nodes = program.nodes
    prep = prepare(program, values, free, semantics)
    sup, vals = prep.support, prep.constants  # only nodes without free dependence are read from vals
    const_touched = bool(prep.const_touched)
    _, leaves = _expand(nodes, program.output, sup, vals)
    # union-find over free parameters, linked by the leaves' supports
    parent = {p: p for p in free}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for leaf in leaves:
        ps = list(sup[leaf])
        for q in ps[1:]:
            parent[find(q)] = find(ps[0])
    groups: dict[int, dict[int, Fraction]] = {}
    nonlinear_roots = set()
    for leaf, c in leaves.items():
        r = find(next(iter(sup[leaf])))
        groups.setdefault(r, {})[leaf] = c
        if ops.param_of(nodes[leaf]) is None:
            nonlinear_roots.add(r)
    factored = [p for p in free if find(p) not in nonlinear_roots]
    blocks = [_make_block(program, vals, sup, lv) for r, lv in groups.items() if r in nonlinear_roots]
    return const_touched, factored, blocks


# -- counting one block ----------------------------------------------------------------------------
class _Counter:
    """Counts blocks of one format and proxy, with the cache of identical blocks."""

    def __init__(self, fmt, proxy, problem, semantics):
        self.fmt, self.proxy, self.problem, self.semantics = fmt, proxy, problem, semantics
        self.M = fmt.n_values
        self.Mvals = fmt.values_fraction()
        self.Mset = _value_set(fmt)
        self.cache: dict[tuple, BlockCounts] = {}  # canonical key -> counts, for this problem

    def program_counts(self, program: Program, values, free: list[int], decomposed=None) -> tuple[BlockCounts, bool]:
        """Lemma S on a whole program; returns (counts, whether anything was reduced). ``decomposed``:
        :func:`_decompose`'s result when the caller has it already."""
        const_touched, factored, blocks = decomposed or _decompose(program, values, free, self.semantics)
        F = self.M ** len(factored)
        N = self.M ** len(free)
        parts = [self.block_counts(b, values) for b in blocks]
        prod = {k: 1 for k in ("untouched", "diff", "correct", "hull")}
        for bc in parts:
            for k in prod:
                prod[k] *= getattr(bc, k)
        touched = N if const_touched else N - F * prod["untouched"]
        counts = BlockCounts(
            points=N,
            touched=touched,
            ndf=N - F * prod["diff"],
            inc=F * (prod["diff"] - prod["correct"]),
            clarke_ok=F * (prod["hull"] - prod["correct"]),
            method="+".join(sorted({bc.method for bc in parts})) or "factor-out",
        )
        reduced = bool(factored) or len(blocks) > 1 or any(bc.method not in ("kernel", "oracle") for bc in parts)
        return counts, reduced

    def block_counts(self, block: _Block, values, brute: bool = True) -> BlockCounts | None:
        """The block's counts; with ``brute=False`` None when only brute force would apply."""
        if block.key in self.cache:
            return self.cache[block.key]
        gkey = (self.fmt, self.proxy, self.semantics, block.key)
        bc = _BLOCK_CACHE.get(gkey)
        if bc is None:
            bc = self._scaled(block, values) or self._bias_solve(block, values)
            if bc is None:
                if not brute:
                    return None
                bc = self._brute(block, values)
            if len(_BLOCK_CACHE) >= _BLOCK_CACHE_MAX:
                _BLOCK_CACHE.clear()
            _BLOCK_CACHE[gkey] = bc
        self.cache[block.key] = bc
        return bc

    # Lemma V
    def _scaled(self, block: _Block, values) -> BlockCounts | None:
        nodes = block.program.nodes
        if not all(ops.is_product(nodes[leaf]) for leaf in block.leaves):
            return None
        sup = prepare(block.program, values, block.free, self.semantics).support
        v = None
        inner: dict[int, Fraction] = {}
        for leaf, c in block.leaves.items():
            n = nodes[leaf]
            split = None
            for a, g in ((n.args[0], n.args[1]), (n.args[1], n.args[0])):
                p = ops.param_of(nodes[a])
                if p is not None and v in (None, p) and p not in sup[g]:
                    split = (p, g)
                    break
            if split is None:
                return None
            v, g = split
            inner[g] = inner.get(g, _ZERO) + c
        if v is None:
            return None
        prog = Program(list(block.program.param_names), list(block.program.nodes))
        prog.set_output(prog.lin([(c, g) for g, c in sorted(inner.items())]))
        rest = [p for p in block.free if p != v]
        s, _ = self.program_counts(prog, values, rest)
        nz = self.M - (1 if _ZERO in self.Mset else 0)
        return BlockCounts(self.M * s.points, self.M * s.touched, nz * s.ndf, nz * s.inc, nz * s.clarke_ok,
                           f"scale({s.method})")

    # Lemma B
    def _bias_solve(self, block: _Block, values) -> BlockCounts | None:
        prog = block.program
        nodes = prog.nodes
        prep = prepare(prog, values, block.free, self.semantics)
        sup, vals = prep.support, prep.constants
        if any(ops.is_tie_node(nodes[i]) for i in prep.live):
            return None
        acts = [i for i in block.leaves if ops.is_kinked_act(nodes[i])]  # (a kink-free ACT is affine)
        if not acts or any(i not in acts and ops.param_of(nodes[i]) is None for i in block.leaves):
            return None
        forms = []
        for i in acts:
            c0, lv = _expand(nodes, nodes[i].args[0], sup, vals)
            if any(ops.param_of(nodes[j]) is None for j in lv):
                return None  # a pre-activation that is not affine in the free parameters
            forms.append((c0, {nodes[j].param: c for j, c in lv.items()}))
        biases = [p for p in block.free if all(f[1].get(p, _ZERO) != 0 for f in forms)]
        if not biases:
            return None
        b = biases[0]
        rest = [p for p in block.free if p != b]
        if self.M ** len(rest) > SOLVE_LIMIT:
            return None
        # per ACT leaf: (node, const, [(rest position, coef)], beta, kinks, sigma, ndf-hull flags)
        leaf_data = []
        for i, (c0, lin) in zip(acts, forms):
            act = nodes[i].act
            hull_ok = [self.proxy.in_clarke(act, k) for k in range(act.n_kinks)]
            terms = [(j, lin[p]) for j, p in enumerate(rest) if lin.get(p, _ZERO) != 0]
            leaf_data.append((i, c0, terms, lin[b], act.kinks, block.leaves[i], hull_ok))
        touched = ndf = inc = clarke = 0
        w = list(values)
        for point, hits in self._bias_hits(leaf_data, len(rest)):
            if point is None:  # rest points with a single exact hit, counted in bulk: K = 1
                for (li, k), n in hits.items():
                    touched += n
                    if leaf_data[li][5] != 0:
                        ndf += n
                        clarke += n * leaf_data[li][6][k]
                continue
            for bb, hs in hits.items():
                touched += 1
                if len(hs) == 1:  # K = 1: decided by Lemma B
                    sigma, ok, _ = hs[0]
                    if sigma != 0:
                        ndf += 1
                        clarke += ok
                    continue
                for p, x in zip(rest, point):
                    w[p] = x
                w[b] = bb
                sub, _, _ = _cut_program(prog, vals, sup, {leaf_data[li][0]: leaf_data[li][5] for _, _, li in hs})
                r = classify_program(sub, w, block.free, self.proxy, semantics=self.semantics)
                ndf += r.ndf
                inc += r.inc
                clarke += r.ndf and r.clarke_ok
        N = self.M ** len(block.free)
        return BlockCounts(N, touched, ndf, inc, clarke, "bias-solve")

    def _bias_hits_reference(self, leaf_data, n_rest):
        """(rest point, {b: [(sigma, hull_ok, leaf position) per node on a kink there]}) for every
        rest point with a hit, in exact rationals: the slow twin of :meth:`_bias_hits`."""
        for point in itertools.product(self.Mvals, repeat=n_rest):
            hits: dict[Fraction, list] = {}
            for li, leaf in enumerate(leaf_data):
                for k in range(len(leaf[4])):
                    bb = _solve_b(leaf, k, point)
                    if bb in self.Mset:
                        hits.setdefault(bb, []).append((leaf[5], leaf[6][k], li))
            if hits:
                yield point, hits

    def _bias_hits(self, leaf_data, n_rest, chunk: int = 1 << 18):
        """:meth:`_bias_hits_reference`'s hits, found by the float64 filter of Lemma B (module
        docstring) over chunks of rest points and confirmed exactly; rest points in the same order,
        except that the rest points whose hits are all exact-float ones (no filter candidate) at
        distinct values of b, each a K = 1 point, are counted per chunk, not listed: an item
        ``(None, {(leaf position, kink): count})`` (the common case, left to numpy instead of a
        Python step per point)."""
        eqs = [_odd_scaled(c0, terms, beta, kinks) for _, c0, terms, beta, kinks, _, _ in leaf_data]
        consts = [(c0, beta, *kinks, *(c for _, c in terms)) for c0, terms, beta, kinks in eqs]
        if not _float_tables(self.fmt)[3] or any(not _in_filter_range(x) for xs in consts for x in xs):
            yield from self._bias_hits_reference(leaf_data, n_rest)  # outside the filter's proven range
            return
        mf, order, sorted_mf, _ = _float_tables(self.fmt)
        # exact path possible for a leaf: every constant a float
        dyadic = [all(Fraction(float(x)) == x for x in xs) for xs in consts]
        # beta's significant bits (enumerate._form of a dyadic); every value of M has at most p
        thin = [dyadic[li] and self.fmt.p + _form(Fraction(beta))[0] <= 53 for li, (_, _, beta, _) in enumerate(eqs)]
        n_pts = self.M ** n_rest
        for start in range(0, n_pts, chunk):
            idx = np.arange(start, min(n_pts, start + chunk), dtype=np.int64)
            digits = [(idx // self.M ** (n_rest - 1 - j)) % self.M for j in range(n_rest)]
            found: dict[int, list] = {}  # chunk row -> [(leaf, kink, b when proven exactly, else None)]
            exact_hits = []  # (leaf, kink, rows on that kink exactly, positions of b in sorted M)
            n_cand = np.zeros(idx.shape, dtype=np.int64)  # filter candidates per row
            for li, (c0, terms, beta, kinks) in enumerate(eqs):
                # exact: every constant a float and every operation error-free (residual 0)
                f = np.full(idx.shape, float(c0))
                mag = np.full(idx.shape, abs(float(c0)))
                exact = np.full(idx.shape, dyadic[li])
                for j, c in terms:
                    x = mf[digits[j]]
                    t = float(c) * x
                    exact &= (K.prod_residual(float(c), x, t) == 0) & (K.sum_residual(f, t) == 0)
                    f += t
                    mag += np.abs(t)
                bf = float(beta)
                for k, kappa in enumerate(kinks):
                    kf = float(kappa)
                    with np.errstate(all="ignore"):
                        d = kf - f
                        b_fl = d / bf
                        err = 2.0**-40 * ((abs(kf) + mag) / abs(bf) + np.abs(b_fl)) + 2.0**-1000
                    bad = ~np.isfinite(b_fl) | ~np.isfinite(err)
                    # d = kappa - f exactly: a quotient d / beta that is a float (every v in M is)
                    # comes out of the division exactly, so b is in M iff b_fl is, with
                    # b_fl * beta == d exactly (a product with a nonzero residual is not a float)
                    res0 = K.sum_residual(kf, -f) == 0
                    ex = exact & ~bad & res0
                    # beta with few bits: every b * beta (b in M) is a float64, so where d = kappa - f
                    # is exact-but-not-a-float64 (a nonzero residual) no b in M solves the equation
                    miss = exact & ~bad & ~res0 & thin[li]
                    pos = np.minimum(np.searchsorted(sorted_mf, np.where(bad, 0.0, b_fl)), self.M - 1)
                    v = sorted_mf[pos]
                    with np.errstate(all="ignore"):
                        on = ex & (v == b_fl) & (v * bf == d) & (K.prod_residual(v, bf, v * bf) == 0)
                    exact_hits.append((li, k, on, pos))
                    # otherwise the filter: the values of M within err of b_fl, confirmed in rationals
                    lo = np.searchsorted(sorted_mf, np.where(bad, 0.0, b_fl - err), "left")
                    hi = np.searchsorted(sorted_mf, np.where(bad, 0.0, b_fl + err), "right")
                    cand = ~ex & ~miss & (bad | (hi > lo))
                    n_cand += cand
                    for r in np.flatnonzero(cand).tolist():
                        found.setdefault(r, []).append((li, k, None))
            # rows whose hits are all exact and at distinct values of b: each hit is a K = 1 point
            single = n_cand == 0
            for i, (_, _, on_i, pos_i) in enumerate(exact_hits):
                for _, _, on_j, pos_j in exact_hits[:i]:
                    single &= ~(on_i & on_j & (pos_i == pos_j))
            bulk = {}
            for li, k, on, pos in exact_hits:
                n = int(np.count_nonzero(on & single))
                if n:
                    bulk[(li, k)] = n
                for r in np.flatnonzero(on & ~single).tolist():
                    found.setdefault(r, []).append((li, k, self.Mvals[order[pos[r]]]))
            if bulk:
                yield None, bulk
            for r in sorted(found):
                point = tuple(self.Mvals[d[r]] for d in digits)
                hits: dict[Fraction, list] = {}
                for li, k, bb in sorted(found[r], key=lambda e: e[:2]):  # leaf, then kink order
                    if bb is None:
                        bb = _solve_b(leaf_data[li], k, point)
                        if bb not in self.Mset:
                            continue
                    hits.setdefault(bb, []).append((leaf_data[li][5], leaf_data[li][6][k], li))
                if hits:
                    yield point, hits

    # brute force
    def _brute(self, block: _Block, values) -> BlockCounts:
        N = self.M ** len(block.free)
        if N > KERNEL_LIMIT:
            raise _NotReducible(f"a block of {len(block.free)} parameters ({N} points) needs brute force")
        r = count_exhaustive(_sub_problem(self.problem, block))
        return BlockCounts(r.points, r.touched, r.ndf, r.inc, r.clarke_ok, "kernel")


def _sub_problem(problem, block: _Block):
    """The problem of one block: its own program and free parameters, and a spec hash of its own
    (the parent's hash plus the block's canonical form), so nothing keyed by the hash mixes the two."""
    digest = hashlib.sha256(f"{problem.spec_hash}|{block.free}|{block.key!r}".encode()).hexdigest()
    return dataclasses.replace(problem, program=block.program, free=list(block.free), kinks_total=block.kinks,
                               wrt_all=False, spec_hash=digest)


# -- public entry point ----------------------------------------------------------------------------
def structured_count(problem, semantics=ops.EXACT) -> CountResult | None:
    """Exact counts of ``problem`` over M^k by the reductions of the module docstring.

    Returns a :class:`CountResult` with ``method="structured"`` (``extra["blocks"]`` says how each
    distinct block was counted and how many times it occurs, ``extra["factored_out"]`` lists the
    parameters that only contribute the multiplier |M|), or ``None`` when no reduction applies
    (the whole problem would be brute-forced as one block), when a block is too large for brute
    force, or when derivatives are taken w.r.t. all parameters (``wrt_all``).
    """
    if getattr(problem, "wrt_all", False):
        return None
    t0 = time.perf_counter()
    counter = _Counter(problem.fmt, problem.proxy, problem, ops.get_semantics(semantics))
    free = list(problem.free)
    try:
        decomposed = _decompose(problem.program, problem.values, free, counter.semantics)
        const_touched, factored, blocks = decomposed
        if not factored and len(blocks) == 1 and counter.block_counts(blocks[0], problem.values, brute=False) is None:
            return None  # one block that only brute force can count: the engine's exhaustive path
        counts, reduced = counter.program_counts(problem.program, problem.values, free, decomposed)
    except _NotReducible:
        return None
    if not reduced:
        return None
    occurrences: dict[tuple, int] = {}
    for b in blocks:
        occurrences[b.key] = occurrences.get(b.key, 0) + 1
    block_info = []
    seen = set()
    for b in blocks:
        if b.key in seen:
            continue
        seen.add(b.key)
        bc = counter.cache[b.key]
        block_info.append({
            "params": [problem.param_names[p] for p in b.free],
            "times": occurrences[b.key],
            "method": bc.method,
            "points": bc.points, "touched": bc.touched, "ndf": bc.ndf, "inc": bc.inc, "clarke_ok": bc.clarke_ok,
        })
    return count_result(problem, counts, "structured", elapsed_s=time.perf_counter() - t0, extra={
        "blocks": block_info,
        "factored_out": [problem.param_names[p] for p in factored],
        "constant_touched": const_touched,
    })
