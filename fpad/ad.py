"""Automatic differentiation of a :class:`fpad.graph.Program`, exactly as a framework would do it.

Three things live here, all exact (Fractions), each a walk of :mod:`fpad.ops`' table:

* :func:`forward` -- the value of every node under the arithmetic semantics it is given
  (:func:`fpad.ops.get_semantics`; ``"exact"``, real arithmetic on rationals, the papers' model,
  is the only one today). Every other function takes the node values it produces.
* :func:`ad_gradient` -- what reverse-mode AD returns: the chain rule where an activation whose
  input is *exactly* one of its kinks uses the proxy value of a
  :class:`fpad.proxies.ProxyConvention` (``proxy.value(act, kink_index)``), the true derivative
  elsewhere, and a MAX node routes its whole adjoint to the *first* maximiser in argument order
  (PyTorch's pooling rule): :func:`fpad.ops.backward` with :class:`fpad.ops.ProxyRules`. The
  oracle computes the gradient of every one-sided piece with the same walk and its own rules.
* :func:`directional` -- the true one-sided directional derivative P'(w; d), by forward mode with
  :class:`fpad.ops.DirectionalRules`: ``rho'(x; dx)`` and, for a MAX, the largest directional
  derivative among the tied maximisers. This chain rule is valid because every node is a locally
  Lipschitz, directionally differentiable map (Shapiro 1990, Prop. 3.5), so it is the independent
  reference the oracle and the tests compare against.

Parameters are addressed by their index in ``program.param_names``; ``w_full`` gives a value for
every parameter and ``free`` lists the indices the derivative is taken with respect to (one
parameter may feed several PARAM nodes; their contributions add up).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from fpad import ops
from fpad.errors import FpadError
from fpad.graph import Program
from fpad.ops import first_maximiser  # noqa: F401  (AD's tie rule, re-exported)

_ZERO = Fraction(0)


def forward(program: Program, w_full: Sequence, semantics="exact") -> list[Fraction]:
    """The value of every node of ``program`` at the full parameter vector ``w_full`` under
    ``semantics`` (a name or an :class:`fpad.ops.Semantics`)."""
    return ops.get_semantics(semantics).evaluate(program, w_full)


def ad_backward(program: Program, values: Sequence[Fraction], proxy) -> tuple[list, dict[int, Fraction]]:
    """Reverse mode with AD's rules (proxy at exact kinks, first maximiser at ties): ``(adjoints,
    grad)`` as :func:`fpad.ops.backward` returns them."""
    return ops.backward(program, values, ops.ProxyRules(proxy))


def ad_gradient(program: Program, w_full: Sequence, free: Sequence[int], proxy, *, values=None,
                semantics="exact") -> list[Fraction]:
    """What reverse-mode AD with ``proxy`` returns for dP/dw[free] at ``w_full`` (exact).

    ``values`` may pass the node values from :func:`forward` to avoid recomputing them.
    """
    if values is None:
        values = forward(program, w_full, semantics)
    _, grad = ad_backward(program, values, proxy)
    return [grad.get(p, _ZERO) for p in free]


def directional(program: Program, w_full: Sequence, free: Sequence[int], d: Sequence, *, values=None,
                semantics="exact") -> Fraction:
    """The exact one-sided directional derivative P'(w; d) along ``d`` in the free coordinates."""
    if len(d) != len(free):
        raise FpadError(f"direction has {len(d)} entries but there are {len(free)} free parameters")
    if values is None:
        values = forward(program, w_full, semantics)
    dparam: dict[int, Fraction] = {}
    for p, dp in zip(free, d):
        dparam[p] = dparam.get(p, _ZERO) + Fraction(dp)
    dots = ops.tangents(program, values, ops.DirectionalRules(), ops.Scalars(dparam))
    return dots[program.output]
