"""The scalar program: what a network *is* once its layers, minibatch and objective are fixed.

A network description (:mod:`fpad.network`) is lowered to a :class:`Program`: a list of scalar
nodes in topological order, ending in one scalar output P(w). Every consumer works on this one
representation: exact evaluation and AD (:mod:`fpad.ad`), the one-point oracle (:mod:`fpad.oracle`),
and the compiled enumeration kernels (:mod:`fpad.enumerate`), which flatten it to arrays.

Node kinds (``Node.op``):

* ``PARAM``  the value of parameter ``param`` (an index into ``Program.param_names``);
* ``CONST``  the exact rational ``const``;
* ``LIN``    ``const + sum_k coefs[k] * value(args[k])`` with constant rational coefficients;
* ``MUL``    ``value(args[0]) * value(args[1])``;
* ``ACT``    ``act(value(args[0]))`` for an :class:`fpad.activations.Activation`;
* ``MAX``    ``max_k value(args[k])``; AD routes the gradient to the *first* maximiser in
  ``args`` order (PyTorch's scan order for a pooling window, paper_iclr2024.md section 3).

Every ``ACT`` and ``MAX`` node carries a ``tag`` (layer, neuron, sample) used in reports and
per-neuron breakdowns, e.g. ``"L1[0] s1"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from fpad.activations import Activation

PARAM, CONST, LIN, MUL, ACT, MAX = range(6)
OP_NAMES = ("param", "const", "lin", "mul", "act", "max")


@dataclass(frozen=True)
class Node:
    op: int
    args: tuple[int, ...] = ()
    coefs: tuple[Fraction, ...] = ()
    const: Fraction = Fraction(0)
    param: int = -1
    act: Activation | None = None
    tag: str = ""


@dataclass
class Program:
    """A scalar straight-line program P(w) over named parameters.

    ``values`` holds a value for *every* parameter (free and fixed); ``free`` lists the indices of
    the free parameters, in the order the grid enumerates them. P is a function of the free
    parameters only: fixed parameters act as constants of the program.
    """

    param_names: list[str]
    nodes: list[Node] = field(default_factory=list)
    output: int = -1

    # -- construction ------------------------------------------------------------------------
    def _add(self, node: Node) -> int:
        for a in node.args:
            if not 0 <= a < len(self.nodes):
                raise ValueError(f"node argument {a} does not exist yet")
        self.nodes.append(node)
        return len(self.nodes) - 1

    def param(self, index: int) -> int:
        if not 0 <= index < len(self.param_names):
            raise ValueError(f"no parameter {index}")
        return self._add(Node(PARAM, param=index))

    def const(self, value) -> int:
        return self._add(Node(CONST, const=Fraction(value)))

    def lin(self, terms, const=0) -> int:
        """``const + sum(c * node for c, node in terms)``."""
        terms = [(Fraction(c), int(n)) for c, n in terms]
        return self._add(
            Node(LIN, args=tuple(n for _, n in terms), coefs=tuple(c for c, _ in terms), const=Fraction(const))
        )

    def mul(self, a: int, b: int) -> int:
        return self._add(Node(MUL, args=(a, b)))

    def act(self, activation: Activation, x: int, tag: str = "") -> int:
        return self._add(Node(ACT, args=(x,), act=activation, tag=tag))

    def max(self, xs, tag: str = "") -> int:
        xs = tuple(int(x) for x in xs)
        if not xs:
            raise ValueError("max of nothing")
        return self._add(Node(MAX, args=xs, tag=tag))

    def set_output(self, node: int) -> None:
        if not 0 <= node < len(self.nodes):
            raise ValueError(f"no node {node}")
        self.output = node

    # -- queries -------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def kink_nodes(self) -> list[int]:
        """Indices of the ACT nodes whose activation has at least one kink, and of MAX nodes."""
        from fpad import ops

        return [i for i, n in enumerate(self.nodes) if ops.is_kinked_act(n) or ops.is_tie_node(n)]

    def ancestors(self, roots) -> list[int]:
        """Indices (sorted) of the nodes that ``roots`` depend on, roots included (the one
        dependence walk: the oracle, the structured methods and the kernel compiler use it)."""
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack.extend(self.nodes[i].args)
        return sorted(seen)

    def live_nodes(self) -> frozenset[int]:
        """The nodes the output depends on, as a set; cached until the program grows or its output
        moves (the oracle asks at every touched point)."""
        key = (len(self.nodes), self.output)
        cache = getattr(self, "_live_cache", None)
        if cache is None or cache[0] != key:
            cache = self._live_cache = (key, frozenset(self.ancestors([self.output])))
        return cache[1]

    def evaluate(self, w) -> list[Fraction]:
        """Exact value of every node at the full parameter vector ``w`` (Fractions):
        :data:`fpad.ops.EXACT` evaluating the table of :mod:`fpad.ops`."""
        from fpad import ops

        return ops.EXACT.evaluate(self, w)
