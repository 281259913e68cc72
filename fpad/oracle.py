"""Exact classification of one parameter point: differentiable or not, and is AD right there?

:func:`classify` implements the Semantics section of ``docs/DESIGN.md`` on one point w (the free
parameter values; the fixed parameters are constants of the program):

1. Evaluate every node exactly (:func:`fpad.ad.forward`). A node is *touched* when it is an ACT
   node whose input equals one of its activation's kinks, or a MAX node with two or more tied
   maximisers, and P depends on it (nodes behind a constant 0 weight do not count). Off the touched set P is a composition of analytic maps near w, so it is
   differentiable and AD is exact: the answer is immediate.
2. Otherwise enumerate the one-sided *choices*, one touched node at a time in topological order:
   the side (``-`` or ``+``) of every touched kink and the winner of every tie. Under the choices
   made so far, first-order forward mode gives every node's derivative as an exact linear form
   ``d -> f . d`` on the free directions d in R^k. A choice adds strict inequalities on d:
   ``s * f_input . d > 0`` for side s of a kink, ``(f_winner - f_other) . d > 0`` against every
   other tied candidate (candidates with identical forms are merged: which of them wins changes
   nothing). A touched kink whose input form is identically 0 carries no side (choice ``0``): to
   first order it does not move, so it contributes nothing. A prefix whose open cone
   ``{d : all rows . d > 0}`` is empty is dropped, with the Farkas certificate of
   :func:`fpad.exact.cone_interior_point`; the prefixes that survive to the end are the
   *realisable pieces*, each with an interior direction as certificate and its gradient g_s
   (reverse mode with the chosen one-sided derivatives and winners).
3. P'(w; d) = g_s . d on the open cone of piece s, and these cones are dense in R^k, so P is
   differentiable at w iff all realisable g_s are equal; then DP = that g_s.
   ``ndf`` = not differentiable; ``inc`` = differentiable and AD != DP. ``bouligand_ok``: AD equals
   some realisable g_s; ``clarke_ok``: AD lies in conv{g_s} (certified by
   :func:`fpad.exact.hull_membership`). At a differentiable point both sets are {DP}, so there
   ``bouligand_ok == clarke_ok == not inc``.

Also reported, beside the general answer: ``paper_condition``, the papers' characterisation of ndf
for bias networks (ICML 2023, reconstructed in paper_icml2023.md section 4.1(d)): some touched
activation has a non-zero AD sensitivity dP/dz of its output. It is proven for a single input
with distinct bias parameters; elsewhere (minibatches, no biases, ties) it may disagree with the
exact answer, and reporting both shows where (e.g. Lemma 3 of ICLR 2024). ``thm4_applies``
says whether ICLR 2024 Thm 4 (distinct bias parameters, one lambda per activation) guarantees
AD's correctness here; it is informative only and not used in any decision.

What exact mode does not cover:

* only what :mod:`fpad.graph` can express: continuous piecewise-linear activations, max, linear
  maps and products, all with rational constants. Losses with exp/log (softmax cross-entropy) and
  non-PWL activations (GELU, sigmoid, tanh) are outside: their values are not rational, so exact
  kink tests would need algebraic-number arithmetic. Squared error is covered (it is a product).
* First-order caveat (DESIGN.md): when parameters of several layers are free, a pre-activation is
  a polynomial in w and some regions are reachable only at second order (cusps). Our pieces are
  the first-order-realisable ones, so ``bouligand_ok``/``clarke_ok`` test membership in subsets of
  the true Bouligand/Clarke sets (a ``False`` can be conservative there). The differentiability
  decision and DP are exact regardless: P'(w; .) is linear iff all first-order pieces agree.
* The enumeration is exponential in the number of touched nodes in the worst case. Pruning keeps
  it small in practice; beyond :data:`MAX_CHOICES` explored choices :func:`classify` refuses with
  :class:`fpad.errors.FpadError` rather than run for hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from fpad import exact, ops
from fpad.ad import ad_backward, forward
from fpad.errors import FpadError
from fpad.ops import first_maximiser

MAX_CHOICES = 2**16  # explored one-sided choices (tree nodes) per point before refusing
_SHOWN = 16  # pieces / dropped prefixes listed by to_text (to_json has all)

_ZERO = Fraction(0)


# -- result types --------------------------------------------------------------------------------
@dataclass
class Touch:
    """One touched node: an activation exactly on a kink, or a max with tied maximisers."""

    node: int
    tag: str
    kind: str  # "kink" | "tie"
    value: Fraction  # kink: the input (= the kink); tie: the tied maximum
    activation: str = ""  # kink only
    kink_index: int = -1  # kink only
    proxy: Fraction | None = None  # kink only: the value AD used for rho'(kink)
    proxy_side: str = ""  # kink only: "-" (= D^-), "+" (= D^+), "interior" (strictly between), "other"
    tied: tuple[int, ...] = ()  # tie only: positions in the node's args attaining the max
    ad_winner: int = -1  # tie only: the position AD routes the gradient to (first maximiser)
    sensitivity: Fraction = _ZERO  # AD's dP/dz for this node's output (proxies downstream)

    def describe(self) -> str:
        if self.kind == "kink":
            return (
                f"{self.tag}: {self.activation} input = {self.value} = kink #{self.kink_index}; "
                f"AD proxy {self.proxy} ({_SIDE_WORDS[self.proxy_side]}); AD dP/dz = {self.sensitivity}"
            )
        return (
            f"{self.tag}: max tie at {self.value} between argument positions {list(self.tied)}; "
            f"AD routes to position {self.ad_winner}; AD dP/dz = {self.sensitivity}"
        )


_SIDE_WORDS = {"-": "= D^-", "+": "= D^+", "interior": "strictly between D^- and D^+", "other": "outside [D^-, D^+]"}


@dataclass
class Piece:
    """A realisable combination of one-sided choices and the gradient P has on it.

    ``choices[j]`` is the choice at ``touched[j]``: ``"-"``/``"+"`` (side of a kink), ``"0"``
    (kink whose input does not move to first order), ``"max=P"`` (argument position P wins),
    ``"max=all"`` (all tied candidates have the same form). ``direction`` is a direction d in the
    open cone of the piece: the exact certificate that it is realisable.
    """

    choices: tuple[str, ...]
    gradient: tuple[Fraction, ...]
    direction: tuple[Fraction, ...]


@dataclass
class Dropped:
    """A prefix of choices whose cone is empty, with the Farkas certificate from fpad.exact."""

    choices: tuple[str, ...]
    certificate: object


@dataclass
class PointResult:
    """The exact verdict at one point (see the module docstring).

    ``ndf`` / ``inc`` / ``verdict`` are derived. ``bouligand_ok`` / ``clarke_ok`` test AD against
    the first-order Bouligand set {g_s} and its convex hull; at a differentiable point that set
    is {DP}, so there both equal ``not inc``. ``pieces`` has one entry per realisable choice
    (gradients may repeat); ``dropped`` the prefixes refuted by a Farkas certificate.
    """

    params: list[str]  # names of the parameters the derivative is taken with respect to
    point: list[Fraction]  # their values at this point
    touched: list[Touch]
    ad: tuple[Fraction, ...]
    pieces: list[Piece]
    dropped: list[Dropped]
    differentiable: bool
    dp: tuple[Fraction, ...] | None  # the true gradient, when differentiable
    bouligand_ok: bool
    clarke_ok: bool
    clarke_certificate: object  # HullResult from fpad.exact (weights or separator); None if not needed
    paper_condition: bool
    thm4_applies: bool
    wrt_all: bool = False
    explored: int = 0  # one-sided choices examined (tree nodes of the enumeration)

    @property
    def ndf(self) -> bool:
        return not self.differentiable

    @property
    def inc(self) -> bool:
        return self.differentiable and self.ad != self.dp

    @property
    def is_touched(self) -> bool:
        return bool(self.touched)

    @property
    def verdict(self) -> str:
        """One word: ``ok`` (differentiable, AD right), ``inc`` or ``ndf``."""
        return "ndf" if self.ndf else ("inc" if self.inc else "ok")

    def to_json(self) -> dict:
        """A JSON-ready dict; every exact number is a string ``"p/q"`` (or ``"p"``)."""
        return _jsonable(
            {
                "params": self.params,
                "point": self.point,
                "wrt_all": self.wrt_all,
                "touched": [t.__dict__ for t in self.touched],
                "ad": self.ad,
                "pieces": [p.__dict__ for p in self.pieces],
                "dropped": [{"choices": d.choices, "certificate": _cert_json(d.certificate)} for d in self.dropped],
                "explored": self.explored,
                "differentiable": self.differentiable,
                "ndf": self.ndf,
                "inc": self.inc,
                "verdict": self.verdict,
                "dp": self.dp,
                "bouligand_ok": self.bouligand_ok,
                "clarke_ok": self.clarke_ok,
                "clarke_certificate": _cert_json(self.clarke_certificate),
                "paper_condition": self.paper_condition,
                "thm4_applies": self.thm4_applies,
            }
        )

    def to_text(self) -> str:
        """A report for people: the point, touched nodes, pieces, DP, D^AD and the verdicts."""

        def vec(v) -> str:
            return "(" + ", ".join(f"{n}: {x}" for n, x in zip(self.params, v)) + ")"

        lines = ["point: " + ", ".join(f"{n} = {x}" for n, x in zip(self.params, self.point))]
        if not self.touched:
            lines.append("touched: none (no activation input on a kink, no tied max): differentiable, AD exact")
        else:
            lines.append(f"touched: {len(self.touched)}")
            lines += ["  " + t.describe() for t in self.touched]
            lines.append(
                f"pieces (realisable one-sided choices): {len(self.pieces)}; "
                f"{len(self.dropped)} prefix(es) dropped with a Farkas certificate; {self.explored} choices examined"
            )
            tags = [t.tag for t in self.touched]
            for p in self.pieces[:_SHOWN]:
                ch = ", ".join(f"{t}:{c}" for t, c in zip(tags, p.choices))
                lines.append(f"  [{ch}] gradient {vec(p.gradient)}  direction {vec(p.direction)}")
            for d in self.dropped[:_SHOWN]:
                ch = ", ".join(f"{t}:{c}" for t, c in zip(tags, d.choices))
                lines.append(f"  dropped [{ch}]: empty cone")
            hidden = max(0, len(self.pieces) - _SHOWN) + max(0, len(self.dropped) - _SHOWN)
            if hidden:
                lines.append(f"  ... {hidden} more (see --json)")
        lines.append(f"D^AD = {vec(self.ad)}")
        lines.append(f"DP   = {vec(self.dp)}" if self.dp is not None else "DP   = (none: not differentiable)")
        if self.ndf:
            lines.append(
                "verdict: NOT differentiable (ndf); AD "
                + ("is" if self.bouligand_ok else "is not")
                + " a one-sided piece gradient (Bouligand), and "
                + ("is" if self.clarke_ok else "is not")
                + " in their convex hull (Clarke, first-order sets)"
            )
        elif self.inc:
            lines.append("verdict: differentiable, but AD is WRONG (inc)")
        else:
            lines.append("verdict: differentiable and AD is correct")
        lines.append(
            f"papers' ndf criterion (some touched activation with AD dP/dz != 0): {self.paper_condition}"
            + ("" if self.paper_condition == self.ndf else "  <- differs from the exact answer")
        )
        lines.append(f"ICLR 2024 Thm 4 hypotheses (bias parameters, one lambda per activation): {self.thm4_applies}")
        return "\n".join(lines)


def _cert_json(c):
    """A certificate (a list of Fractions, or an fpad.exact result dataclass) as plain data."""
    return dict(c.__dict__) if hasattr(c, "__dict__") else c


def _jsonable(x):
    if isinstance(x, Fraction):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


# -- linear forms (first-order forward mode) -----------------------------------------------------
# A form is the gradient of a node along the k free directions, stored sparsely as a dict
# {direction index: non-zero Fraction} (ops.Forms), or None for the zero form. Storing no zeros
# is what makes "identically zero" and "equal forms" exact tests. Points of cones stay dense
# k-tuples (they are certificates handed to the user).


def _scale(c: Fraction, f):
    return {j: c * x for j, x in f.items()} if c and f is not None else None


def _sub(f, g):
    if f == g:
        return None
    r = dict(f) if f is not None else {}
    for j, x in (g or {}).items():
        v = r.get(j, _ZERO) - x
        if v:
            r[j] = v
        else:
            del r[j]
    return r or None


def _dot(f, x) -> Fraction:
    """f . x for a sparse form f and a dense vector x."""
    return sum((c * x[j] for j, c in f.items() if x[j]), _ZERO)


def _axpy(g: list, c: Fraction, f) -> None:
    """g += c * f in place (g dense, f sparse)."""
    if f is not None and c:
        for j, x in f.items():
            g[j] += c * x


def _extend_point(d, rows, new_rows):
    """A point of the open cone {x : r . x > 0 for r in rows + new_rows}, or None (no verdict).

    ``d`` satisfies every row of ``rows`` strictly (the parent's certificate). Try x = d + t g with
    g = sum of the new rows: each row r needs r.d + t r.g > 0, an open interval of t > 0, computed
    exactly; the returned point is then checked exactly, so it is a certificate like the LP's.
    None only means "ask the LP" (never "empty").
    """
    g: dict = {}
    for r in new_rows:
        for j, c in r.items():
            g[j] = g.get(j, _ZERO) + c
    lo, hi = _ZERO, None
    for r in (*rows, *new_rows):
        a = _dot(r, d)
        b = sum((c * g[j] for j, c in r.items() if j in g), _ZERO)
        if b > 0:
            lo = max(lo, -a / b)
        elif b < 0:
            if a <= 0:
                return None
            hi = a / -b if hi is None else min(hi, a / -b)
        elif a <= 0:
            return None
    if hi is not None and not lo < hi:
        return None
    t = lo + 1 if hi is None else (lo + hi) / 2
    x = list(d)
    for j, v in g.items():
        x[j] += t * v
    if all(_dot(r, x) > 0 for r in (*rows, *new_rows)):
        return tuple(x)
    return None


def _cone_point(rows, k: int):
    """fpad.exact's verdict on the open cone of the sparse ``rows`` in R^k, solved on the
    coordinates some row uses (a point is 0 elsewhere; a Farkas certificate weighs rows, so it
    is the same in both spaces). Returns (dense point or None, the ConeResult)."""
    cols = sorted({j for r in rows for j in r})
    cone = exact.cone_interior_point([[r.get(j, _ZERO) for j in cols] for r in rows], n=len(cols))
    if not cone.nonempty:
        return None, cone
    x = [_ZERO] * k
    for j, v in zip(cols, cone.point):
        x[j] = Fraction(v)
    return tuple(x), cone


# -- the classification --------------------------------------------------------------------------
def classify(problem, free_values, *, wrt_all: bool = False, semantics=ops.EXACT) -> PointResult:
    """Classify the point ``free_values`` of ``problem`` exactly (see the module docstring).

    ``problem`` is a :class:`fpad.network.Problem` (``program``, ``free``, ``proxy``,
    ``full_point``); ``free_values`` gives one value per free parameter, in ``problem.free`` order
    (numbers, Fractions or decimal strings). With ``wrt_all=True`` (or a problem built with
    ``wrt_all=True``) the derivative is taken with respect to *all* parameters of the program at
    the same point.
    """
    program = problem.program
    w_full = problem.full_point(free_values)
    wrt_all = wrt_all or getattr(problem, "wrt_all", False)
    wrt = list(range(program.n_params)) if wrt_all else list(problem.free)
    return classify_program(
        program,
        w_full,
        wrt,
        problem.proxy,
        thm4_hypotheses=_thm4_hypotheses(problem),
        wrt_all=wrt_all,
        semantics=semantics,
    )


def _thm4_hypotheses(problem) -> bool:
    """ICLR 2024 Thm 4 (Condition 1): every kinked activation layer has a free bias parameter per
    neuron, there are no max nodes, and the proxy is lambda D^- + (1 - lambda) D^+ at every kink of
    every activation (one lambda per activation)."""
    program = problem.program
    if not getattr(problem, "has_bias_params", False):
        return False
    acts = {}
    for n in program.nodes:
        if ops.is_tie_node(n):
            return False
        if ops.is_kinked_act(n):
            acts[id(n.act)] = n.act
    return all(problem.proxy.single_lambda(a) is not None for a in acts.values())


def classify_program(
    program, w_full, wrt, proxy, *, thm4_hypotheses: bool = False, wrt_all: bool = False, shortcut: bool = True,
    semantics=ops.EXACT,
) -> PointResult:
    """:func:`classify` on a bare program: full parameter vector ``w_full``, derivative w.r.t. the
    parameter indices ``wrt``. ``thm4_hypotheses`` is copied to ``thm4_applies``.
    ``shortcut=False`` computes every piece gradient by a full reverse sweep even when the
    touched nodes form an antichain (tests compare both ways). ``semantics``: the arithmetic
    (:func:`fpad.ops.get_semantics`)."""
    nodes = program.nodes
    values = forward(program, w_full, semantics)
    adj_ad, grad_ad = ad_backward(program, values, proxy)
    ad = tuple(grad_ad.get(p, _ZERO) for p in wrt)
    names = [program.param_names[p] for p in wrt]
    point = [exact.to_fraction(w_full[p]) for p in wrt]

    # 1. touched nodes
    touched: list[Touch] = []
    for i, n in enumerate(nodes):
        if not ops.OPS[n.op].touched(n, values):
            continue
        if ops.is_tie_node(n):
            touched.append(Touch(i, n.tag, "tie", values[i], tied=ops.tied_positions(n, values),
                                 ad_winner=first_maximiser(n, values), sensitivity=Fraction(adj_ad[i])))
        else:
            x = values[n.args[0]]
            k = n.act.kink_index(x)
            touched.append(Touch(i, n.tag, "kink", x, n.act.name, k, proxy.value(n.act, k), proxy.side(n.act, k),
                                 sensitivity=Fraction(adj_ad[i])))
    if touched:  # only nodes P depends on count (not e.g. those behind a constant 0 weight)
        live = program.live_nodes()
        touched = [t for t in touched if t.node in live]
    paper_condition = any(t.kind == "kink" and t.sensitivity != 0 for t in touched)
    common = dict(params=names, point=point, touched=touched, ad=ad, paper_condition=paper_condition,
                  thm4_applies=thm4_hypotheses, wrt_all=wrt_all)
    if not touched:
        # Off the touched set P is analytic near w and AD applies the true chain rule.
        return PointResult(pieces=[Piece((), ad, (_ZERO,) * len(wrt))], dropped=[], differentiable=True, dp=ad,
                           bouligand_ok=True, clarke_ok=True, clarke_certificate=None, explored=0, **common)

    # 2. enumeration of one-sided choices
    pieces, dropped, explored = _enumerate(program, values, wrt, touched, ad, shortcut)
    # distinct gradients, in piece order; by equality, not hashing: a Fraction's hash costs a modular
    # inverse, and the gradients share AD's Fraction objects wherever they agree with it (tuple
    # equality tests identity first)
    grads: list = []
    for p in pieces:
        if all(p.gradient != g for g in grads):
            grads.append(p.gradient)
    differentiable = len(grads) == 1
    if differentiable:
        dp = grads[0]
        ok = ad == dp
        return PointResult(pieces=pieces, dropped=dropped, differentiable=True, dp=dp, bouligand_ok=ok,
                           clarke_ok=ok, clarke_certificate=None, explored=explored, **common)
    bouligand_ok = ad in grads
    hull = exact.hull_membership([list(g) for g in grads], list(ad))
    return PointResult(pieces=pieces, dropped=dropped, differentiable=False, dp=None, bouligand_ok=bouligand_ok,
                       clarke_ok=bool(hull.member), clarke_certificate=hull, explored=explored, **common)


def _enumerate(program, values, wrt, touched, ad, shortcut=True):
    """Depth-first search over the one-sided choices at the touched nodes, in topological order.

    ``forms[i]`` holds node i's first-order form under the choices of the current prefix; a level
    of the search (re)computes the forms of the needed nodes between the previous touched node and
    its own, so deeper levels only overwrite later nodes and backtracking needs no copies.
    Returns (pieces, dropped prefixes, number of choices examined).

    Piece gradients: when no touched node depends on another (an antichain, e.g. all touches in
    one layer), every path from a parameter to the output meets at most one touched node, so the
    chain rule is affine in each touched node's local derivative separately:
    g_s = AD + sum_t (dP/dz_t) * (local_s(t) - local_AD(t)) * form(input of t), where dP/dz_t is
    AD's adjoint of t (no touched node lies downstream of t, so it does not depend on the choices)
    and the input forms do not either (no touched node upstream). Otherwise a full reverse sweep
    with the chosen one-sided derivatives and winners.
    """
    nodes = program.nodes
    k = len(wrt)
    col = {}
    for j, p in enumerate(wrt):
        col.setdefault(p, []).append(j)

    t_nodes = [t.node for t in touched]
    need = program.ancestors([a for i in t_nodes for a in nodes[i].args])
    # segments[j]: the needed nodes strictly between touched node j-1 and touched node j
    segments = []
    start = 0
    for i in t_nodes:
        segments.append([x for x in need if start <= x < i])
        start = i + 1
    forms: list = [None] * len(nodes)
    choice: list[str] = [""] * len(touched)
    sides: dict[int, str] = {}
    winners: dict[int, int] = {}
    pieces: list[Piece] = []
    dropped: list[Dropped] = []
    explored = 0

    space = ops.Forms(col)
    untouched = ops.Rules()  # nodes between touched ones: inside a piece, a unique maximiser

    antichain = shortcut and not (set(t_nodes) & set(need))

    def piece_gradient() -> tuple[Fraction, ...]:
        if antichain:
            g = list(ad)
            for j, t in enumerate(touched):
                n = nodes[t.node]
                if not t.sensitivity or choice[j] in ("0", "max=all"):
                    continue  # no flow, or a zero / common form: same contribution as AD's
                if t.kind == "kink":
                    slope = n.act.slopes[t.kink_index + (choice[j] == "+")]
                    _axpy(g, t.sensitivity * (slope - t.proxy), forms[n.args[0]])
                else:
                    _axpy(g, t.sensitivity, _sub(forms[n.args[winners[t.node]]], forms[n.args[t.ad_winner]]))
            return tuple(g)

        _, grad = ops.backward(program, values, _ChoiceRules(sides, winners))
        return tuple(grad.get(p, _ZERO) for p in wrt)

    def options(j: int):
        """(label, rows to add, the node's form) for each choice at touched node j."""
        t = touched[j]
        n = nodes[t.node]
        if t.kind == "kink":
            f = forms[n.args[0]]
            if f is None:
                return [("0", [], None)]
            dm, dp_ = n.act.slopes[t.kink_index], n.act.slopes[t.kink_index + 1]
            return [("-", [{j: -x for j, x in f.items()}], _scale(dm, f)), ("+", [f], _scale(dp_, f))]
        groups: list[tuple[int, object]] = []  # (first position, form) per distinct form
        for pos in t.tied:
            f = forms[n.args[pos]]
            if all(f != g for _, g in groups):
                groups.append((pos, f))
        if len(groups) == 1:
            return [("max=all", [], groups[0][1])]
        return [
            (f"max={pos}", [_sub(f, g) for q, g in groups if q != pos], f)
            for pos, f in groups
        ]

    def explore(j: int, rows: list, point) -> None:
        nonlocal explored
        if j == len(touched):
            pieces.append(Piece(tuple(choice), piece_gradient(), point))
            return
        ops.tangents(program, values, untouched, space, segments[j], forms)
        t = touched[j]
        for label, new_rows, f in options(j):
            explored += 1
            if explored > MAX_CHOICES:
                raise FpadError(
                    f"more than {MAX_CHOICES} one-sided choices at this point ({len(touched)} touched nodes); "
                    "the exact oracle refuses; free fewer parameters or use a smaller network"
                )
            choice[j] = label
            if new_rows:
                here = _extend_point(point, rows, new_rows)
                if here is None:
                    here, cone = _cone_point(rows + new_rows, k)
                    if here is None:
                        dropped.append(Dropped(tuple(choice[: j + 1]), cone.farkas))
                        continue
            else:
                here = point
            forms[t.node] = f
            if t.kind == "kink":
                sides[t.node] = label
            else:
                winners[t.node] = int(label[4:]) if label != "max=all" else first_maximiser(nodes[t.node], values)
            explore(j + 1, rows + new_rows, here)
        sides.pop(t.node, None)
        winners.pop(t.node, None)

    explore(0, [], (_ZERO,) * k)
    return pieces, dropped, explored


class _ChoiceRules(ops.Rules):
    """The rules of one piece: the chosen side at each touched kink, the chosen winner at each
    touched tie, the ordinary chain rule elsewhere."""

    def __init__(self, sides: dict[int, str], winners: dict[int, int]):
        self.sides, self.winners = sides, winners

    def act_slope(self, i, node, x, dx=None):
        s = self.sides.get(i)
        if s is None:
            return node.act.slopes[node.act.piece(x)]
        kk = node.act.kink_index(x)
        # side "0": the input's form is 0, so any slope gives the same gradient; use 0.
        return node.act.slopes[kk] if s == "-" else node.act.slopes[kk + 1] if s == "+" else _ZERO

    def max_winner(self, i, node, values, dots=None):
        w = self.winners.get(i)
        return first_maximiser(node, values) if w is None else w
