"""Automatic differentiation of a :class:`fpad.graph.Program`, exactly as a framework would do it.

Three things live here, all exact (Fractions):

* :func:`forward` -- the value of every node. This is the *one* place where the arithmetic
  semantics is chosen (``semantics="exact"``: real arithmetic on rationals, the papers' model).
  A later rounded mode plugs in here; every other function takes the node values it produces.
* :func:`ad_gradient` -- what reverse-mode AD returns: the chain rule where an activation whose
  input is *exactly* one of its kinks uses the proxy value of a
  :class:`fpad.proxies.ProxyConvention` (``proxy.value(act, kink_index)``), the true derivative
  elsewhere, and a MAX node routes its whole adjoint to the *first* maximiser in argument order
  (PyTorch's pooling rule). The generic engine :func:`backward` takes the local rules as
  callables, so the oracle computes the gradient of every one-sided piece with the same loop.
* :func:`directional` -- the true one-sided directional derivative P'(w; d), by forward mode:
  ``rho'(x; dx)`` from :meth:`fpad.activations.Activation.directional`, and for a MAX the largest
  directional derivative among the tied maximisers. This chain rule is valid because every node is
  a locally Lipschitz, directionally differentiable map (Shapiro 1990, Prop. 3.5), so it is the
  independent reference the oracle and the tests compare against.

Parameters are addressed by their index in ``program.param_names``; ``w_full`` gives a value for
every parameter and ``free`` lists the indices the derivative is taken with respect to (one
parameter may feed several PARAM nodes; their contributions add up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from math import lcm

from fpad.errors import FpadError
from fpad.graph import ACT, CONST, LIN, MAX, MUL, PARAM, Node, Program

SEMANTICS = ("exact",)

_ZERO = Fraction(0)


def forward(program: Program, w_full: Sequence, semantics: str = "exact") -> list[Fraction]:
    """Exact value of every node of ``program`` at the full parameter vector ``w_full``.

    Same numbers as :meth:`fpad.graph.Program.evaluate` (the reference; tests compare them on
    random programs), computed faster: a LIN node accumulates integer numerators over a common
    denominator and normalises once, instead of one Fraction operation per term.
    """
    if semantics != "exact":
        raise FpadError(f"unknown arithmetic semantics {semantics!r}; accepted: {', '.join(SEMANTICS)}")
    if len(w_full) != program.n_params:
        raise FpadError(f"need a value for each of the {program.n_params} parameters, got {len(w_full)}")
    return _exact_values(program, w_full)


def _exact_values(program: Program, w_full: Sequence) -> list[Fraction]:
    vals: list[Fraction] = []
    push = vals.append
    for n in program.nodes:
        op = n.op
        if op == LIN:
            num, den = n.const.numerator, n.const.denominator
            for c, a in zip(n.coefs, n.args):
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
            push(Fraction(num, den))
        elif op == ACT:
            x = vals[n.args[0]]
            act = n.act
            i = act.piece(x)
            s, b = act.slopes[i], act.intercepts[i]
            push(b if not s else (x if s == 1 and not b else s * x + b))
        elif op == PARAM:
            v = w_full[n.param]
            push(v if isinstance(v, Fraction) else Fraction(v))
        elif op == CONST:
            push(n.const)
        elif op == MUL:
            push(vals[n.args[0]] * vals[n.args[1]])
        elif op == MAX:
            push(max(vals[a] for a in n.args))
        else:  # pragma: no cover
            raise ValueError(f"unknown op {op}")
    return vals


def first_maximiser(node: Node, values: Sequence[Fraction]) -> int:
    """Position in ``node.args`` of the first argument attaining the max (AD's tie rule)."""
    m = values[node.args[0]]
    best = 0
    for pos in range(1, len(node.args)):
        v = values[node.args[pos]]
        if v > m:  # strict: an equal later argument never displaces an earlier one
            m, best = v, pos
    return best


def backward(
    program: Program,
    values: Sequence[Fraction],
    act_derivative: Callable[[int, Node, Fraction], Fraction],
    max_winner: Callable[[int, Node], int],
) -> tuple[list, dict[int, Fraction]]:
    """Reverse-mode chain rule with caller-supplied local derivatives.

    ``act_derivative(i, node, x)`` is the derivative used at ACT node ``i`` whose input is ``x``;
    ``max_winner(i, node)`` the position in ``node.args`` that receives MAX node ``i``'s adjoint.
    Returns ``(adjoints, grad)``: the adjoint dP/d(node) of every node (0 where nothing flows) and
    the gradient per parameter index (parameters that receive nothing are absent).
    Nodes with a zero adjoint are skipped: they contribute nothing whatever their local rule.
    """
    nodes = program.nodes
    adj: list = [None] * len(nodes)  # None: nothing has flowed into the node (yet)
    adj[program.output] = Fraction(1)
    grad: dict[int, Fraction] = {}

    def push(x: int, t: Fraction) -> None:
        cur = adj[x]
        adj[x] = t if cur is None else cur + t

    for i in range(program.output, -1, -1):
        a = adj[i]
        if a is None or not a:
            continue
        n = nodes[i]
        op = n.op
        if op == LIN:
            neg = -a
            for c, x in zip(n.coefs, n.args):
                t = a if c == 1 else (neg if c == -1 else c * a)  # +-1 coefficients are common
                cur = adj[x]
                adj[x] = t if cur is None else cur + t
        elif op == ACT:
            x = n.args[0]
            s = act_derivative(i, n, values[x])
            if s:
                push(x, a if s == 1 else s * a)
        elif op == PARAM:
            grad[n.param] = grad.get(n.param, _ZERO) + a
        elif op == MUL:
            x, y = n.args
            push(x, values[y] * a)
            push(y, values[x] * a)
        elif op == MAX:
            push(n.args[max_winner(i, n)], a)
        # CONST: nothing to propagate
    return [_ZERO if a is None else a for a in adj], grad


def proxy_rules(proxy, values: Sequence[Fraction]):
    """The local rules of AD with ``proxy``: (act_derivative, max_winner) for :func:`backward`."""

    def act_derivative(i: int, node: Node, x: Fraction) -> Fraction:
        # = proxy.derivative(act, x), with one piece lookup instead of three kink searches
        act = node.act
        p = act.piece(x)
        if p and x == act.kinks[p - 1]:
            return proxy.value(act, p - 1)
        return act.slopes[p]

    def max_winner(i: int, node: Node) -> int:
        return first_maximiser(node, values)

    return act_derivative, max_winner


def ad_backward(program: Program, values: Sequence[Fraction], proxy) -> tuple[list, dict[int, Fraction]]:
    """:func:`backward` with AD's rules (proxy at exact kinks, first maximiser at ties)."""
    return backward(program, values, *proxy_rules(proxy, values))


def ad_gradient(program: Program, w_full: Sequence, free: Sequence[int], proxy, *, values=None) -> list[Fraction]:
    """What reverse-mode AD with ``proxy`` returns for dP/dw[free] at ``w_full`` (exact).

    ``values`` may pass the node values from :func:`forward` to avoid recomputing them.
    """
    if values is None:
        values = forward(program, w_full)
    _, grad = ad_backward(program, values, proxy)
    return [grad.get(p, _ZERO) for p in free]


def directional(program: Program, w_full: Sequence, free: Sequence[int], d: Sequence, *, values=None) -> Fraction:
    """The exact one-sided directional derivative P'(w; d) along ``d`` in the free coordinates.

    Forward mode: every node carries ``node'(w; d)``. A MAX node takes the largest directional
    derivative among its *tied* maximisers (the max of directionally differentiable functions that
    are equal at w has that directional derivative); an ACT node uses ``rho'(x; x')``.
    """
    if len(d) != len(free):
        raise FpadError(f"direction has {len(d)} entries but there are {len(free)} free parameters")
    if values is None:
        values = forward(program, w_full)
    dparam: dict[int, Fraction] = {}
    for p, dp in zip(free, d):
        dparam[p] = dparam.get(p, _ZERO) + Fraction(dp)
    dot: list[Fraction] = []
    for n in program.nodes:
        op = n.op
        if op == PARAM:
            v = dparam.get(n.param, _ZERO)
        elif op == CONST:
            v = _ZERO
        elif op == LIN:
            v = sum((c * dot[a] for c, a in zip(n.coefs, n.args)), _ZERO)
        elif op == MUL:
            x, y = n.args
            v = values[x] * dot[y] + dot[x] * values[y]
        elif op == ACT:
            x = n.args[0]
            v = n.act.directional(values[x], dot[x])
        elif op == MAX:
            m = max(values[a] for a in n.args)
            v = max(dot[a] for a in n.args if values[a] == m)
        else:  # pragma: no cover
            raise ValueError(f"unknown op {op}")
        dot.append(v)
    return dot[program.output]
