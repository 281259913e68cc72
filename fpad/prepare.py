"""The one preprocessing step every counter shares: fixed parameters become constants, and the
dependence facts of a program are recorded once.

:func:`prepare` answers, for a program, the values of its fixed parameters and the set of free
ones, the questions the structured methods (:mod:`fpad.structured`) and the kernel compiler
(:mod:`fpad.enumerate`) both ask, in one walk each:

* ``live``: the nodes the output depends on (:meth:`fpad.graph.Program.ancestors`); the oracle
  counts only touched nodes among them;
* ``support[i]``: the free parameters that reach node i (a node with an empty support is a
  constant of the program: its value is the same at every grid point);
* ``constants[i]``: the exact value of every such constant node (fixed parameters included),
  under the arithmetic semantics given (:mod:`fpad.ops`);
* ``const_touched``: the constant nodes that are on a kink or tied: touched at every point, but
  never changing a verdict (their input does not move; see :mod:`fpad.enumerate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from fpad import ops


@dataclass(frozen=True)
class Prepared:
    """The dependence facts of one program for one set of free parameters (see the module)."""

    program: object
    free: tuple[int, ...]
    live: tuple[int, ...]
    support: dict[int, frozenset]
    constants: dict[int, Fraction]
    const_touched: tuple[int, ...]

    def is_const(self, i: int) -> bool:
        """Node ``i`` depends on no free parameter."""
        return not self.support[i]


def prepare(program, values: Sequence, free, semantics=ops.EXACT, roots=None) -> Prepared:
    """The :class:`Prepared` facts of ``program`` with parameter values ``values`` (one per
    parameter; the free entries are never read) and free parameter indices ``free``, for the
    ancestors of ``roots`` (default: the output)."""
    nodes = program.nodes
    live = program.ancestors([program.output] if roots is None else roots)
    free_set = set(free)
    support: dict[int, frozenset] = {}
    for i in live:
        n = nodes[i]
        p = ops.param_of(n)
        if p is not None:
            support[i] = frozenset([p]) if p in free_set else frozenset()
        else:
            support[i] = frozenset().union(*(support[a] for a in n.args)) if n.args else frozenset()
    vals = ops.get_semantics(semantics).evaluate(program, values)
    constants = {i: vals[i] for i in live if not support[i]}
    const_touched = tuple(i for i in constants if ops.OPS[nodes[i].op].touched(nodes[i], vals))
    return Prepared(program, tuple(free), tuple(live), support, constants, const_touched)
