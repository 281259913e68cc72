"""One table per operation: what every node kind of :mod:`fpad.graph` means, in one place.

Each op (``PARAM CONST LIN MUL ACT MAX``) is one :class:`Op` entry of :data:`OPS` that defines

* ``value``: its exact value from its arguments' values (the arithmetic semantics);
* ``tangent``: its first-order form, forward mode, over a linear space chosen by the caller
  (scalars for the directional derivative P'(w; d), vectors over the free directions for the
  oracle's linear forms);
* ``backward``: its reverse-mode step, pushing the adjoint to its arguments;
* ``affine``: its expression as ``offset + sum coef * arg`` when it is affine in the free
  parameters (structured counting's affine expansion), else ``None``;
* ``touched``: whether it is on a kink (ACT) or has tied maximisers (MAX) at given values.

What is *not* fixed by the op -- the one-sided derivative an activation uses at a kink and which
argument of a tied MAX receives the adjoint -- is asked from a :class:`Rules` object: AD's rules
(the proxy of a :class:`fpad.proxies.ProxyConvention` at an exact kink, the first maximiser at a
tie), the true directional derivative's rules (the side the direction moves to), or the oracle's
one-sided choices. The activation's own numbers (kinks, slopes, one-sided derivatives, kernel
arrays) live in :class:`fpad.activations.Activation`, the proxy values in
:mod:`fpad.proxies`. The evaluators (:mod:`fpad.ad`, :mod:`fpad.oracle`, :mod:`fpad.structured`)
walk a program and call these entries; only the compiled kernels (:mod:`fpad.enumerate`,
:mod:`fpad._kernels`) carry their own float64 copy of the same rules, and tests compare them with
this table on every point of small grids. Adding an op (say min or average pooling) is one entry
here, one op code in :mod:`fpad.graph`, and the kernels' case.

The arithmetic semantics is the explicit :class:`Semantics` object every evaluator receives
(:func:`get_semantics`; ``"exact"``, real arithmetic on Fractions, is the only one today).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import lcm

from fpad.errors import FpadError
from fpad.graph import ACT, CONST, LIN, MAX, MUL, PARAM, Node

_ZERO = Fraction(0)
_ONE = Fraction(1)


# -- rules: the choices an op leaves to its caller ----------------------------------------------
class Rules:
    """The local choices of one derivative computation.

    ``act_slope(i, node, x, dx)``: the derivative of ACT node ``i`` (input value ``x``; ``dx`` its
    input's tangent in forward mode, ``None`` in reverse mode). ``max_winner(i, node, values,
    dots)``: the position in ``node.args`` that carries MAX node ``i``'s derivative. The defaults
    are the ordinary chain rule at an untouched point: the slope of the piece containing ``x`` and
    the first maximiser."""

    def act_slope(self, i: int, node: Node, x: Fraction, dx=None) -> Fraction:
        act = node.act
        return act.slopes[act.piece(x)]

    def max_winner(self, i: int, node: Node, values: Sequence[Fraction], dots=None) -> int:
        return first_maximiser(node, values)


class ProxyRules(Rules):
    """AD's rules: the proxy at an exact kink, the true slope elsewhere, the first maximiser."""

    def __init__(self, proxy):
        self.proxy = proxy

    def act_slope(self, i, node, x, dx=None):
        # = proxy.derivative(act, x), with one piece lookup instead of three kink searches
        act = node.act
        p = act.piece(x)
        if p and x == act.kinks[p - 1]:
            return self.proxy.value(act, p - 1)
        return act.slopes[p]


class DirectionalRules(Rules):
    """The true one-sided directional derivative: the side the tangent moves to (rho'(x; dx)), and
    for a MAX the tied maximiser with the largest tangent (the max of directionally
    differentiable functions equal at w has that directional derivative)."""

    def act_slope(self, i, node, x, dx=None):
        if dx > 0:
            return node.act.d_right(x)
        if dx < 0:
            return node.act.d_left(x)
        return _ZERO

    def max_winner(self, i, node, values, dots=None):
        m = max(values[a] for a in node.args)
        tied = [pos for pos, a in enumerate(node.args) if values[a] == m]
        return max(tied, key=lambda pos: dots[node.args[pos]])


def first_maximiser(node: Node, values: Sequence[Fraction]) -> int:
    """Position in ``node.args`` of the first argument attaining the max (AD's tie rule)."""
    m = values[node.args[0]]
    best = 0
    for pos in range(1, len(node.args)):
        v = values[node.args[pos]]
        if v > m:  # strict: an equal later argument never displaces an earlier one
            m, best = v, pos
    return best


# -- linear spaces for forward mode -------------------------------------------------------------
class Scalars:
    """Tangents that are numbers: P'(w; d) for one direction (``dparam[p]`` = d's entry of p)."""

    zero = _ZERO

    def __init__(self, dparam: dict[int, Fraction]):
        self.dparam = dparam

    def param(self, p: int):
        return self.dparam.get(p, _ZERO)

    @staticmethod
    def comb(pairs):
        return sum((c * d for c, d in pairs), _ZERO)


class Forms:
    """Tangents that are linear forms on the free directions, stored sparsely: a dict from
    direction index to its non-zero Fraction coefficient, or ``None`` for the zero form (no zero
    entries are stored, so "identically zero" and "equal forms" are exact tests). Sparse because
    a node of a network depends on few parameters: dense forms made the oracle's cost grow as
    nodes x parameters (0.3 s per two-touch point of a 1-32-32-1 network)."""

    zero = None

    def __init__(self, columns: dict[int, list[int]]):
        self.columns = columns  # parameter -> the direction indices it is (usually one)
        self.unit: dict[int, dict] = {}  # built on first use: a point's forms read few parameters

    def param(self, p: int):
        f = self.unit.get(p)
        if f is None and p in self.columns:
            f = self.unit[p] = {j: _ONE for j in self.columns[p]}
        return f

    @staticmethod
    def comb(pairs):
        acc: dict = {}
        for c, f in pairs:
            if f is None or not c:
                continue
            if c == 1:
                for j, x in f.items():
                    acc[j] = acc.get(j, _ZERO) + x
            else:
                for j, x in f.items():
                    acc[j] = acc.get(j, _ZERO) + c * x
        return {j: x for j, x in acc.items() if x} or None


# -- the table ----------------------------------------------------------------------------------
class Op:
    """One node kind. ``value(node, vals, w)``, ``tangent(i, node, vals, dots, rules, space)``,
    ``backward(i, node, a, vals, rules, push, grad)``, ``affine(node, is_const, vals)``,
    ``touched(node, vals)`` (see the module docstring). Kink-free kinds inherit the defaults."""

    name = ""

    def touched(self, node: Node, vals) -> bool:
        return False

    def affine(self, node: Node, is_const, vals):
        return None


class _Param(Op):
    name = "param"

    def value(self, node, vals, w):
        v = w[node.param]
        return v if isinstance(v, Fraction) else Fraction(v)

    def tangent(self, i, node, vals, dots, rules, space):
        return space.param(node.param)

    def backward(self, i, node, a, vals, rules, push, grad):
        grad[node.param] = grad.get(node.param, _ZERO) + a

    def affine(self, node, is_const, vals):
        return None  # a leaf of the expansion


class _Const(Op):
    name = "const"

    def value(self, node, vals, w):
        return node.const

    def tangent(self, i, node, vals, dots, rules, space):
        return space.zero

    def backward(self, i, node, a, vals, rules, push, grad):
        pass


class _Lin(Op):
    name = "lin"

    def value(self, node, vals, w):
        # integer numerators over a common denominator, normalised once (one Fraction per node
        # instead of one per term)
        num, den = node.const.numerator, node.const.denominator
        for c, a in zip(node.coefs, node.args):
            v = vals[a]
            vn = v.numerator
            if not vn:
                continue
            p = c.numerator * vn
            q = c.denominator * v.denominator
            if q == den:
                num += p
            elif den % q == 0:
                num += p * (den // q)
            else:
                m = lcm(den, q)
                num = num * (m // den) + p * (m // q)
                den = m
        return Fraction(num, den)

    def tangent(self, i, node, vals, dots, rules, space):
        return space.comb(zip(node.coefs, (dots[a] for a in node.args)))

    def backward(self, i, node, a, vals, rules, push, grad):
        neg = -a
        for c, x in zip(node.coefs, node.args):
            push(x, a if c == 1 else (neg if c == -1 else c * a))  # +-1 coefficients are common

    def affine(self, node, is_const, vals):
        return node.const, list(zip(node.args, node.coefs))


class _Mul(Op):
    name = "mul"

    def value(self, node, vals, w):
        return vals[node.args[0]] * vals[node.args[1]]

    def tangent(self, i, node, vals, dots, rules, space):
        x, y = node.args
        return space.comb(((vals[x], dots[y]), (vals[y], dots[x])))

    def backward(self, i, node, a, vals, rules, push, grad):
        x, y = node.args
        push(x, vals[y] * a)
        push(y, vals[x] * a)

    def affine(self, node, is_const, vals):
        x, y = node.args
        if is_const(x):
            return _ZERO, [(y, vals[x])]
        if is_const(y):
            return _ZERO, [(x, vals[y])]
        return None


class _Act(Op):
    name = "act"

    def value(self, node, vals, w):
        x = vals[node.args[0]]
        act = node.act
        i = act.piece(x)
        s, b = act.slopes[i], act.intercepts[i]
        return b if not s else (x if s == 1 and not b else s * x + b)

    def tangent(self, i, node, vals, dots, rules, space):
        x = node.args[0]
        dx = dots[x]
        return space.comb(((rules.act_slope(i, node, vals[x], dx), dx),))

    def backward(self, i, node, a, vals, rules, push, grad):
        x = node.args[0]
        s = rules.act_slope(i, node, vals[x])
        if s:
            push(x, a if s == 1 else s * a)

    def affine(self, node, is_const, vals):
        act = node.act
        if act.n_kinks:
            return None
        return act.intercepts[0], [(node.args[0], act.slopes[0])]

    def touched(self, node, vals):
        return node.act.n_kinks > 0 and node.act.kink_index(vals[node.args[0]]) >= 0


class _Max(Op):
    name = "max"

    def value(self, node, vals, w):
        return max(vals[a] for a in node.args)

    def tangent(self, i, node, vals, dots, rules, space):
        return dots[node.args[rules.max_winner(i, node, vals, dots)]]

    def backward(self, i, node, a, vals, rules, push, grad):
        push(node.args[rules.max_winner(i, node, vals)], a)

    def touched(self, node, vals):
        return len(tied_positions(node, vals)) > 1


def tied_positions(node: Node, vals) -> tuple[int, ...]:
    """Positions in a MAX node's args that attain its maximum."""
    m = max(vals[a] for a in node.args)
    return tuple(pos for pos, a in enumerate(node.args) if vals[a] == m)


#: op code -> its entry (indexed by the codes of :mod:`fpad.graph`)
OPS: tuple[Op, ...] = tuple({PARAM: _Param(), CONST: _Const(), LIN: _Lin(), MUL: _Mul(), ACT: _Act(),
                             MAX: _Max()}[code] for code in range(6))


# -- node-kind queries (structural pattern matching reads these, never op codes) ----------------
def param_of(node: Node) -> int | None:
    """The parameter index a PARAM node reads, else None."""
    return node.param if node.op == PARAM else None


def is_product(node: Node) -> bool:
    """A MUL node (a product of two node values)."""
    return node.op == MUL


def is_kinked_act(node: Node) -> bool:
    """An ACT node whose activation has a kink."""
    return node.op == ACT and node.act.n_kinks > 0


def is_tie_node(node: Node) -> bool:
    """A MAX node of two or more arguments (it can have tied maximisers)."""
    return node.op == MAX and len(node.args) > 1


def kinks_total(nodes) -> int:
    """Kinks of the ACT nodes among ``nodes`` (the papers' n, before multiplying out ties)."""
    return sum(node.act.n_kinks for node in nodes if node.op == ACT)


# -- the arithmetic semantics -----------------------------------------------------------------
@dataclass(frozen=True)
class Semantics:
    """How node values are computed. ``exact``: real arithmetic on rationals (the papers'
    model). A rounded semantics will be a second instance with its own ``value`` rules."""

    name: str

    def evaluate(self, program, w_full: Sequence) -> list[Fraction]:
        """The value of every node of ``program`` at the full parameter vector ``w_full``."""
        if len(w_full) != program.n_params:
            raise FpadError(f"need a value for each of the {program.n_params} parameters, got {len(w_full)}")
        vals: list[Fraction] = []
        push = vals.append
        for n in program.nodes:
            push(OPS[n.op].value(n, vals, w_full))
        return vals


EXACT = Semantics("exact")
SEMANTICS = {"exact": EXACT}


def get_semantics(spec="exact") -> Semantics:
    """``"exact"`` (or a :class:`Semantics`) -> the semantics object every evaluator receives."""
    if isinstance(spec, Semantics):
        return spec
    if spec not in SEMANTICS:
        raise FpadError(f"unknown arithmetic semantics {spec!r}; accepted: {', '.join(SEMANTICS)}")
    return SEMANTICS[spec]


# -- the walks over a program -----------------------------------------------------------------
def backward(program, values: Sequence[Fraction], rules: Rules) -> tuple[list, dict[int, Fraction]]:
    """Reverse-mode chain rule with ``rules``' local choices. Returns ``(adjoints, grad)``: the
    adjoint dP/d(node) of every node (0 where nothing flows) and the gradient per parameter index
    (parameters that receive nothing are absent). Nodes with a zero adjoint are skipped: they
    contribute nothing whatever their local rule."""
    nodes = program.nodes
    adj: list = [None] * len(nodes)  # None: nothing has flowed into the node (yet)
    adj[program.output] = _ONE
    grad: dict[int, Fraction] = {}

    def push(x: int, t: Fraction) -> None:
        cur = adj[x]
        adj[x] = t if cur is None else cur + t

    for i in range(program.output, -1, -1):
        a = adj[i]
        if a is None or not a:
            continue
        n = nodes[i]
        OPS[n.op].backward(i, n, a, values, rules, push, grad)
    return [_ZERO if a is None else a for a in adj], grad


def tangents(program, values: Sequence[Fraction], rules: Rules, space, nodes=None, dots=None) -> list:
    """Forward mode: every node's tangent in ``space`` (or only those listed in ``nodes``, in
    topological order, writing into ``dots``). Returns the list of tangents."""
    if dots is None:
        dots = [space.zero] * len(program.nodes)
    prog_nodes = program.nodes
    for i in range(len(prog_nodes)) if nodes is None else nodes:
        n = prog_nodes[i]
        dots[i] = OPS[n.op].tangent(i, n, values, dots, rules, space)
    return dots
