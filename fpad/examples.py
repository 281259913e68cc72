"""The papers' examples as networks, each with the verdicts it must produce.

``EXAMPLES`` maps a name to an :class:`Example`: a description with its source, ``build(fmt)``
returning a network dict in the docs/DESIGN.md schema (for :meth:`fpad.network.NetworkSpec.from_dict`),
``default_at(fmt)`` the point where the paper states its result (an assignment string for
:meth:`fpad.network.Problem.parse_assignment`), ``expected(fmt)`` the verdicts there, and for
examples whose whole grid has a closed-form answer ``grid(fmt)`` the expected counts over M^k.

Every expected value below is derived by hand in the comment next to it (from
paper_iclr2024.md sections 2.2-2.9 and 6.2, and paper_icml2023.md sections 4-5), never copied
from the oracle's output; ``tests/test_examples.py`` then checks the oracle against them.

Two examples need two *different* proxies for the same function ReLU in one program (ICLR 2024
App. H: g = ReLU with proxy 0, h = ReLU with proxy 1). Proxy overrides are keyed by activation
name, so h is written ``leaky_relu:0``, which *is* ReLU (kink 0, slopes 0 and 1), with the override
``leaky_relu = "right"``; ``add`` layers route w to both. The lowered program is the paper's
function exactly, only its layer numbering is longer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from fpad.errors import FpadError

F = Fraction


@dataclass(frozen=True)
class Example:
    """One catalogued example (see the module docstring)."""

    name: str
    description: str
    source: str
    build: Callable[[object], dict]
    default_at: Callable[[object], str]
    expected: Callable[[object], dict]
    grid: Callable[[object], dict] | None = None
    default_format: str = "e4m3fn"

    def problem(self, fmt):
        """The example lowered for ``fmt`` (a :class:`fpad.network.Problem`)."""
        from fpad.network import NetworkSpec

        d = self.build(fmt)
        return NetworkSpec.from_dict(d, source=f"example {self.name}").build(fmt)

    def classify_default(self, fmt, **kw):
        """:func:`fpad.oracle.classify` at the example's default point."""
        from fpad.oracle import classify

        problem = self.problem(fmt)
        return classify(problem, problem.parse_assignment(self.default_at(fmt)), **kw)


# -- builders ------------------------------------------------------------------------------------
def _dense(width, weights=None, bias=False, activation="identity") -> dict:
    d = {"kind": "dense", "width": width, "bias": bias, "activation": activation}
    if weights is not None:
        d["weights"] = weights
    return d


def _net(description, inputs, layers, free, proxy="pytorch", reduce="sum", weights=None, **extra) -> dict:
    out = {"reduce": reduce}
    if weights is not None:
        out["weights"] = weights
    d = {
        "description": description,
        "inputs": inputs,
        "layers": layers,
        "output": out,
        "ad": {"proxy": proxy},
        "params": {"free": free, "seed": 0},
    }
    d.update(extra)
    return d


def _scalar_w():
    """Layer 1: z = w, the one free weight (input 1, no bias, identity)."""
    return _dense(1)


def _m(fmt) -> int:
    return fmt.n_values


def _count_in(fmt, xs) -> int:
    return sum(1 for x in set(xs) if fmt.contains(x))


def _const(d: dict):
    return lambda fmt: d


# -- the all-grid counterexample (paper_icml2023.md section 5(a)) --------------------------------
def _allgrid(proxy: str):
    def build(fmt) -> dict:
        M = fmt.values_fraction()
        inv = F(1, len(M))
        # L2 neuron pair for c: ReLU(x - c) and ReLU(-x + c); L3 weights +-1/|M|.
        w2 = [[1] if s > 0 else [-1] for _ in M for s in (1, -1)]
        b2 = [-c * s for c in M for s in (1, -1)]
        w3 = [[inv if s > 0 else -inv for _ in M for s in (1, -1)]]
        return _net(
            f"all-grid counterexample P(x) = (1/|M|) sum_c (ReLU(x - c) - ReLU(c - x)) over {fmt.name}, proxy {proxy}",
            [[1]],
            [_scalar_w(), _dense(2 * len(M), w2, b2, "relu"), _dense(1, w3)],
            ["L1.W[0,0]"],
            proxy,
        )

    r = {"pytorch": F(0), "const:1": F(1), "mix:1/2": F(1, 2)}[proxy]

    def expected(fmt) -> dict:
        # P(x) = x - mean(M): DP = 1. At x = c in M each of the |M| - 1 untouched pairs contributes
        # (1 - (-1)) / (2 |M|)... exactly 1/|M| (one ReLU is active, slope 1, weight +-1/|M|), and the
        # touched pair contributes (r + r)/|M|: AD = (|M| - 1 + 2r)/|M|.
        ad = F(_m(fmt) - 1, _m(fmt)) + 2 * r / _m(fmt)
        return {
            "verdict": "ok" if ad == 1 else "inc",
            "ad": (ad,),
            "dp": (F(1),),
            "bouligand_ok": ad == 1,
            "clarke_ok": ad == 1,
            "paper_condition": True,  # the touched pair has sensitivities +-1/|M| != 0
            "thm4_applies": False,  # the offsets c are constants, not bias parameters
        }

    def grid(fmt) -> dict:
        # every x in M touches exactly one pair; P is affine, so ndf = 0 and inc is all or nothing
        n = _m(fmt)
        return {"points": n, "touched": n, "ndf": 0, "inc": 0 if r == F(1, 2) else n}

    return build, expected, grid


# -- bias networks (paper_icml2023.md section 4.1 (c)) -------------------------------------------
def _tight_build(fmt) -> dict:
    # pre-activations are pure biases: 0 * input + b_i
    return _net("sum_i ReLU(b_i), N = 2: the tight construction of the n/|M| bound", [[1]],
                [_dense(2, [[0], [0]], True, "relu")], ["L1.b"])


def _tight_expected(fmt) -> dict:
    # at b = (0, 1/2): neuron 0 on its kink with dP/dz = 1 -> ndf; pieces (0, 1) and (1, 1);
    # AD with ReLU'(0) = 0 gives (0, 1), a piece gradient.
    return {"verdict": "ndf", "ad": (F(0), F(1)), "dp": None, "bouligand_ok": True, "clarke_ok": True,
            "paper_condition": True, "thm4_applies": True}


def _tight_grid(fmt) -> dict:
    # ndf iff some b_i = 0: |M|^2 - (|M| - 1)^2 points; inc = 0 (bias network)
    n = _m(fmt)
    return {"points": n * n, "touched": n * n - (n - 1) ** 2, "ndf": n * n - (n - 1) ** 2, "inc": 0}


def _vrelu_build(fmt) -> dict:
    return _net("v * ReLU(u * 1 + b): bias network with a free downstream weight", [[1]],
                [_dense(1, None, True, "relu"), _dense(1)], ["L1.W", "L1.b", "L2.W"])


def _vrelu_expected(fmt) -> dict:
    # at (u, b, v) = (1, -1, 1): u + b = 0 on the kink, dP/dz = v = 1 -> ndf.
    # pieces: side - gives (0, 0, 0); side + gives (v x, v, ReLU(0)) = (1, 1, 0). AD = side - (proxy 0).
    return {"verdict": "ndf", "ad": (F(0), F(0), F(0)), "dp": None, "bouligand_ok": True, "clarke_ok": True,
            "paper_condition": True, "thm4_applies": True}


def _vrelu_grid(fmt) -> dict:
    # touched iff b = -u (|M| pairs on a symmetric grid) for every v; ndf iff moreover v != 0
    n = _m(fmt)
    return {"points": n**3, "touched": n * n, "ndf": n * (n - 1), "inc": 0}


# -- ICLR 2024 Lemma 2 / App. H f1 -----------------------------------------------------------------
def _lemma2_build(fmt, proxy="pytorch") -> dict:
    return _net(f"ReLU(w) - ReLU(-w) = w (no bias, B = 1), proxy {proxy}", [[1]],
                [_scalar_w(), _dense(2, [[1], [-1]], False, "relu")], ["L1.W[0,0]"], proxy, "weighted", [1, -1])


def _lemma2_expected(fmt) -> dict:
    # Psi = w, Clarke {1}; AD = 0 - 0 = 0 (proxy 0 at both kinks)
    return {"verdict": "inc", "ad": (F(0),), "dp": (F(1),), "bouligand_ok": False, "clarke_ok": False,
            "paper_condition": True, "thm4_applies": False}


def _one_touch_grid(inc: int, ndf: int, touched: int = 1):
    def grid(fmt) -> dict:
        return {"points": _m(fmt), "touched": touched, "ndf": ndf, "inc": inc}

    return grid


# -- ICLR 2024 Lemma 3 and its one-lambda repairs ---------------------------------------------------
def _minibatch_bias(act: str, xs, proxy: str, what: str):
    def build(fmt) -> dict:
        return _net(f"{what}: {act}(x_b + b) summed over the minibatch x = {list(xs)}, proxy {proxy}",
                    [[x] for x in xs], [_dense(1, [[1]], True, act)], ["L1.b"], proxy)

    return build


def _lemma3_expected(proxy):
    def expected(fmt) -> dict:
        # HS(3 + b) + HS(-3 + b) = 1 + b/6 near 0: DP = 1/6. AD: proxy at 3 plus proxy at -3, each
        # times 1: pytorch 0 + 0; left: D^- at 3 is 1/6, D^- at -3 is 0; right: 0 + 1/6.
        ad = {"pytorch": F(0), "left": F(1, 6), "right": F(1, 6)}[proxy]
        return {"verdict": "ok" if ad == F(1, 6) else "inc", "ad": (ad,), "dp": (F(1, 6),),
                "bouligand_ok": ad == F(1, 6), "clarke_ok": ad == F(1, 6),
                # both touched samples have dP/dz = 1: the criterion says ndf, wrongly (B = 2)
                "paper_condition": True, "thm4_applies": proxy != "pytorch"}

    return expected


def _kink_pair_grid(kinks, xs, proxy_wrong: bool):
    """Grid counts of act(x_1 + b) + act(x_2 + b) when b = 0 puts both samples on kinks whose
    one-sided slopes combine to a differentiable sum, and every other touch is a lone kink (ndf)."""

    def grid(fmt) -> dict:
        touch = {k - x for k in kinks for x in xs}
        touched = _count_in(fmt, touch)
        return {"points": _m(fmt), "touched": touched, "ndf": touched - 1, "inc": 1 if proxy_wrong else 0}

    return grid


# -- ICLR 2024 Lemma 7: maxpool ties with a shared bias -----------------------------------------------
def _lemma7_build(fmt, activation="identity") -> dict:
    # conv1d over x = (1, 0, -1, 0), kernel 1, weight u, per-channel bias b: (u+b, b, -u+b, b);
    # maxpool windows {0,1}, {2,3}; output max(u+b, b) - max(-u+b, b) = u.
    return _net(
        f"max(u + b, b) - max(-u + b, b) = u: conv1d + maxpool1d, shared bias, activation {activation}",
        [[1, 0, -1, 0]],
        [{"kind": "conv1d", "channels": 1, "kernel": 1, "bias": True, "activation": activation},
         {"kind": "maxpool1d", "window": 2}],
        ["L1.W", "L1.b"], "pytorch", "weighted", [1, -1], input_shape=[1, 4],
    )


def _lemma7_expected(fmt) -> dict:
    # both windows tie; AD picks the first entry of each: (1, 1) - (-1, 1) = (2, 0).
    # P = u is differentiable with DP = (1, 0): inc (the paper states Clarke {(1, 0)}).
    return {"verdict": "inc", "ad": (F(2), F(0)), "dp": (F(1), F(0)), "bouligand_ok": False, "clarke_ok": False,
            "paper_condition": False, "thm4_applies": False}


def _lemma7_grid(fmt) -> dict:
    # ties iff u = 0 (both windows), for every b; AD is then (2, 0) != (1, 0)
    n = _m(fmt)
    return {"points": n * n, "touched": n, "ndf": 0, "inc": n}


# -- ICLR 2024 App. H and the review-discussion examples --------------------------------------------
def _g_minus_h_layers(extra_w: bool):
    """Layers computing g(w) - h(w) (+ w if ``extra_w``), g = relu (pytorch, proxy 0) and
    h = leaky_relu:0 = ReLU with proxy D^+ = 1 (override): see the module docstring."""
    layers = [
        _scalar_w(),  # L1: w
        {"kind": "activation", "activation": "relu"},  # L2: g(w)
        _dense(1, [[0]]),  # L3: 0
        {"kind": "add", "from": 1, "activation": "leaky_relu:0"},  # L4: h(0 + w)
        _dense(1, [[-1]]),  # L5: -h(w)
        {"kind": "add", "from": 2, "activation": "identity"},  # L6: g(w) - h(w)
    ]
    if extra_w:
        layers.append({"kind": "add", "from": 1, "activation": "identity"})  # L7: w + g(w) - h(w)
    return layers


_G_H_PROXY = {"default": "pytorch", "leaky_relu": "right"}


def _f2_build(fmt) -> dict:
    return _net("App. H f2(w) = g(w) - h(w) = 0, g = ReLU with proxy 0, h = ReLU with proxy 1", [[1]],
                _g_minus_h_layers(False), ["L1.W[0,0]"], _G_H_PROXY)


def _f3_build(fmt, proxy="right") -> dict:
    return _net(f"ReLU(-ReLU(w)) = 0, proxy {proxy}", [[1]],
                [_scalar_w(), _dense(1, [[1]], False, "relu"), _dense(1, [[-1]], False, "relu")], ["L1.W[0,0]"], proxy)


def _relu_relu_build(fmt) -> dict:
    return _net("ReLU(w) - ReLU(w) = 0, the same proxy both times", [[1]],
                [_scalar_w(), _dense(2, [[1], [1]], False, "relu")], ["L1.W[0,0]"], "pytorch", "weighted", [1, -1])


def _relu_relu2_build(fmt) -> dict:
    return _net("ReLU(w) - ReLU(2w) = -ReLU(w): bias-free, yet AD is in the Clarke set", [[1]],
                [_scalar_w(), _dense(2, [[1], [2]], False, "relu")], ["L1.W[0,0]"], "pytorch", "weighted", [1, -1])


def _ghh_same_build(fmt) -> dict:
    # L2: (h(w), h(w)); L3: h - h; L4: w + (h - h)
    return _net("w + h(w) - h(w) with h = ReLU, the same proxy both times", [[1]],
                [_scalar_w(), _dense(2, [[1], [1]], False, "relu"), _dense(1, [[1, -1]]),
                 {"kind": "add", "from": 1, "activation": "identity"}], ["L1.W[0,0]"])


def _ghh_mixed_build(fmt) -> dict:
    return _net("w + h1(w) - h2(w), h1 = ReLU with proxy 0, h2 = ReLU with proxy 1", [[1]],
                _g_minus_h_layers(True), ["L1.W[0,0]"], _G_H_PROXY)


def _thm5_abs_build(fmt) -> dict:
    return _net("ReLU(a x_1) + ReLU(a x_2) with x = (1, -1) = |a|: no bias, B = 2, rank-deficient", [[1], [-1]],
                [_dense(1, None, False, "relu")], ["L1.W[0,0]"])


def _scalar(verdict, ad, dp, bouligand, clarke, paper, thm4=False):
    return _const({"verdict": verdict, "ad": (F(ad),), "dp": None if dp is None else (F(dp),),
                   "bouligand_ok": bouligand, "clarke_ok": clarke, "paper_condition": paper, "thm4_applies": thm4})


def _w0(fmt) -> str:
    return "L1.W[0,0]=0"


def _b0(fmt) -> str:
    return "L1.b[0]=0"


def _catalogue() -> dict[str, Example]:
    ex: list[Example] = []
    for name, proxy in (("allgrid", "pytorch"), ("allgrid-const1", "const:1"), ("allgrid-mix", "mix:1/2")):
        build, expected, grid = _allgrid(proxy)
        ex.append(Example(name, f"P(x) = (1/|M|) sum_c (ReLU(x-c) - ReLU(c-x)) = x, proxy {proxy}: "
                          + ("AD wrong at every grid point" if proxy != "mix:1/2" else "AD right everywhere (r = 1/2)"),
                          "paper_icml2023.md 5(a)", build, _w0, expected, grid))
    ex += [
        Example("tight", "sum_i ReLU(b_i), N = 2: ndf density exactly 1 - (1 - 1/|M|)^2, inc empty",
                "paper_icml2023.md 4.1(c)", _tight_build, lambda fmt: "L1.b[0]=0,L1.b[1]=0.5",
                _tight_expected, _tight_grid, "e2m1"),
        Example("vrelu", "v * ReLU(u + b): ndf iff u + b = 0 and v != 0, inc empty",
                "paper_icml2023.md 4.1(c),(d)", _vrelu_build,
                lambda fmt: "L1.W[0,0]=1,L1.b[0]=-1,L2.W[0,0]=1", _vrelu_expected, _vrelu_grid, "e2m1"),
        Example("lemma2", "ICLR 2024 Lemma 2 = App. H f1: ReLU(w) - ReLU(-w), AD 0, true derivative 1",
                "paper_iclr2024.md 2.2, 2.9", _lemma2_build, _w0, _lemma2_expected, _one_touch_grid(1, 0)),
        Example("apph-f1", "App. H f1(w) = g(w) - g(-w) (the same function as lemma2)",
                "paper_iclr2024.md 2.9", _lemma2_build, _w0, _lemma2_expected, _one_touch_grid(1, 0)),
    ]
    for proxy in ("pytorch", "left", "right"):
        name = "lemma3" if proxy == "pytorch" else f"lemma3-{proxy}"
        ex.append(Example(
            name, f"ICLR 2024 Lemma 3: HS(3 + b) + HS(-3 + b), B = 2, proxy {proxy}: "
            + ("AD 0, true derivative 1/6" if proxy == "pytorch" else "one lambda, AD right (Thm 4)"),
            "paper_iclr2024.md 2.3, 6.2", _minibatch_bias("hardsigmoid", (3, -3), proxy, "Lemma 3"), _b0,
            _lemma3_expected(proxy), _kink_pair_grid((-3, 3), (3, -3), proxy == "pytorch")))
    ex += [
        Example("relu6-analog", "ReLU6(b) + ReLU6(6 + b), B = 2, PyTorch proxy: AD 0, true derivative 1",
                "paper_iclr2024.md 6.2", _minibatch_bias("relu6", (0, 6), "pytorch", "ReLU6 analog of Lemma 3"), _b0,
                # relu6(b) ~ max(b, 0), relu6(6 + b) ~ 6 + min(b, 0): sum 6 + b, DP 1; AD 0 + 0
                _scalar("inc", 0, 1, False, False, True), _kink_pair_grid((0, 6), (0, 6), True)),
        Example("hardtanh-analog", "HardTanh(1 + b) + HardTanh(-1 + b), B = 2, PyTorch proxy: AD 0, true derivative 1",
                "paper_iclr2024.md 6.2", _minibatch_bias("hardtanh", (1, -1), "pytorch", "HardTanh analog of Lemma 3"), _b0,
                _scalar("inc", 0, 1, False, False, True), _kink_pair_grid((-1, 1), (1, -1), True)),
        Example("lemma7", "ICLR 2024 Lemma 7: max(u+b, b) - max(-u+b, b) = u, first-maximiser ties: AD (2, 0), DP (1, 0)",
                "paper_iclr2024.md 2.7, 6.2", _lemma7_build, lambda fmt: "L1.W[0,0,0]=0,L1.b[0]=0",
                _lemma7_expected, _lemma7_grid, "e2m1"),
        Example("lemma7-relu", "Lemma 7 with positive ties (b = 1, ReLU, the Algorithm 2 setting): AD (2, 0), DP (1, 0)",
                "paper_iclr2024.md 6.2", lambda fmt: _lemma7_build(fmt, "relu"), lambda fmt: "L1.W[0,0,0]=0,L1.b[0]=1",
                _lemma7_expected, None, "e2m1"),
        Example("apph-f2", "App. H f2(w) = g(w) - h(w) = 0 with proxies 0 and 1: AD -1",
                "paper_iclr2024.md 2.9", _f2_build, _w0,
                # AD: g'(0) - h'(0) = 0 - 1; both touched nodes have dP/dz = +-1
                _scalar("inc", -1, 0, False, False, True), _one_touch_grid(1, 0)),
        Example("apph-f3", "App. H f3(w) = h(-h(w)) = 0, proxy 1: AD -1",
                "paper_iclr2024.md 2.9", _f3_build, _w0,
                # AD = h'(0) * (-1) * h'(0) = -1. Touched: every w <= 0 (outer input -ReLU(w) = 0);
                # for w < 0 the inner slope is 0 so AD = 0 = DP; only w = 0 is wrong.
                _scalar("inc", -1, 0, False, False, True),
                lambda fmt: {"points": _m(fmt), "touched": _count_in(fmt, [x for x in fmt.values_fraction() if x <= 0]),
                             "ndf": 0, "inc": 1}),
        Example("relu-neg-relu", "ReLU(-ReLU(w)) = 0 with PyTorch's proxy 0: AD 0, right",
                "paper_iclr2024.md 2.9", lambda fmt: _f3_build(fmt, "pytorch"), _w0,
                _scalar("ok", 0, 0, True, True, True),
                lambda fmt: {"points": _m(fmt), "touched": _count_in(fmt, [x for x in fmt.values_fraction() if x <= 0]),
                             "ndf": 0, "inc": 0}),
        Example("relu-minus-relu", "ReLU(w) - ReLU(w) = 0, the same proxy: AD 0, right",
                "paper_iclr2024.md 2.9", _relu_relu_build, _w0, _scalar("ok", 0, 0, True, True, True),
                _one_touch_grid(0, 0)),
        Example("relu-minus-relu2", "ReLU(w) - ReLU(2w) = -ReLU(w): ndf at 0, AD 0 in the Clarke set [-1, 0]",
                "paper_iclr2024.md 2.9", _relu_relu2_build, _w0,
                # pieces: side - gives 0, side + gives 1 - 2 = -1; AD 0 is the side - piece
                _scalar("ndf", 0, None, True, True, True), _one_touch_grid(0, 1)),
        Example("g-plus-h-minus-h", "w + h(w) - h(w), h = ReLU with the same proxy twice: AD 1, right",
                "paper_iclr2024.md 2.9", _ghh_same_build, _w0, _scalar("ok", 1, 1, True, True, True),
                _one_touch_grid(0, 0)),
        Example("g-plus-h1-minus-h2", "w + h1(w) - h2(w), proxies 0 and 1: AD 1 + 0 - 1 = 0, true derivative 1",
                "paper_iclr2024.md 2.9", _ghh_mixed_build, _w0, _scalar("inc", 0, 1, False, False, True),
                _one_touch_grid(1, 0)),
        Example("thm5-abs", "ReLU(a) + ReLU(-a) = |a| (no bias, B = 2): ndf, AD 0 in Clarke [-1, 1] but not Bouligand",
                "paper_iclr2024.md 6.2", _thm5_abs_build, _w0, _scalar("ndf", 0, None, False, True, True),
                _one_touch_grid(0, 1)),
    ]
    return {e.name: e for e in ex}


EXAMPLES: dict[str, Example] = _catalogue()


def get_example(name: str) -> Example:
    """The catalogued example ``name``, or a one-line FpadError listing the names."""
    try:
        return EXAMPLES[name]
    except KeyError:
        raise FpadError(f"unknown example {name!r}; accepted: {', '.join(EXAMPLES)}") from None
