"""fpad.oracle.classify: the exact one-point classification (docs/DESIGN.md, Semantics).

Closed-form cases (paper_iclr2024.md sections 2.2-2.9), the certificates every answer carries
(interior directions realise their piece, Farkas weights refute dropped prefixes, hull weights
or separators back Clarke), the JSON/text reports, the refusal beyond MAX_CHOICES, and the
agreement of the two ways of computing piece gradients.
"""

import json
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fpad.oracle as oracle
from fpad.activations import get_activation
from fpad.ad import directional, forward
from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.graph import Program
from fpad.network import NetworkSpec
from fpad.oracle import classify, classify_program
from fpad.proxies import get_proxy

RELU = get_activation("relu")


def two_relus(a, b, out=(1, -1)):
    """P(w) = out0 * ReLU(a w) + out1 * ReLU(b w)."""
    p = Program(["w"])
    w = p.param(0)
    x = p.act(RELU, p.lin([(a, w)]), "x")
    y = p.act(RELU, p.lin([(b, w)]), "y")
    p.set_output(p.lin([(out[0], x), (out[1], y)]))
    return p


def run(p, w, proxy="pytorch", wrt=None, **kw):
    return classify_program(p, [F(v) for v in w], list(range(p.n_params)) if wrt is None else wrt, get_proxy(proxy), **kw)


def test_untouched_point_is_differentiable_with_ad_exact():
    r = run(two_relus(1, -1), [F(1, 2)])
    assert (r.touched, r.differentiable, r.inc, r.dp, r.ad) == ([], True, False, (F(1),), (F(1),))
    assert r.verdict == "ok" and r.explored == 0


def test_lemma2_pieces_and_certificates():
    r = run(two_relus(1, -1), [0])
    assert r.verdict == "inc" and r.ad == (F(0),) and r.dp == (F(1),)
    assert [t.proxy_side for t in r.touched] == ["-", "-"]
    assert sorted(p.choices for p in r.pieces) == [("+", "-"), ("-", "+")]
    assert sorted(d.choices for d in r.dropped) == [("+", "+"), ("-", "-")]
    for d in r.dropped:  # Gordan weights: y >= 0, sum 1
        assert all(y >= 0 for y in d.certificate) and sum(d.certificate) == 1
    assert r.paper_condition is True  # the papers' criterion is for bias networks; here it is wrong
    assert not r.bouligand_ok and not r.clarke_ok


@pytest.mark.parametrize("proxy, side", [("pytorch", "-"), ("right", "+"), ("mix:1/3", "interior"), ("const:5", "other")])
def test_proxy_side_labels(proxy, side):
    r = run(two_relus(1, 2), [0], proxy)
    assert {t.proxy_side for t in r.touched} == {side}


@pytest.mark.parametrize(
    "proxy, ad, bouligand, clarke",
    [("pytorch", 0, True, True), ("right", -1, True, True), ("mix:1/2", F(-1, 2), False, True), ("const:2", -2, False, False)],
)
def test_relu_minus_relu2_ndf_with_clarke_interval(proxy, ad, bouligand, clarke):
    # ReLU(w) - ReLU(2w): pieces 0 (w < 0) and -1 (w > 0); AD = p - 2p = -p.
    r = run(two_relus(1, 2), [0], proxy)
    assert r.ndf and r.dp is None and r.ad == (F(ad),)
    assert sorted(p.gradient for p in r.pieces) == [(F(-1),), (F(0),)]
    assert (r.bouligand_ok, r.clarke_ok) == (bouligand, clarke)
    cert = r.clarke_certificate
    if clarke:  # weights reproduce AD from the piece gradients
        grads = []
        for p in r.pieces:
            if p.gradient not in grads:
                grads.append(p.gradient)
        assert sum(wt * g[0] for wt, g in zip(cert.weights, grads)) == F(ad) and sum(cert.weights) == 1
    else:  # a separator h with h.AD > h.g for every piece
        assert all(cert.separator[0] * F(ad) > cert.separator[0] * p.gradient[0] for p in r.pieces)


def test_piece_directions_realise_their_gradient():
    """The certificate of a piece: P'(w; d) = g_s . d exactly along its interior direction."""
    # P(u, b) = ReLU(u + b) - 2 ReLU(u - b) + max(2u, b): three touches at (0, 0).
    # The lines u + b = 0, u - b = 0, 2u - b = 0 cut the plane into 6 open sectors.
    p = Program(["u", "b"])
    u, b = p.param(0), p.param(1)
    x = p.act(RELU, p.lin([(1, u), (1, b)]), "x")
    y = p.act(RELU, p.lin([(1, u), (-1, b)]), "y")
    m = p.max([p.lin([(2, u)]), b], "m")
    p.set_output(p.lin([(1, x), (-2, y), (1, m)]))
    r = run(p, [0, 0])
    assert len(r.pieces) == 6 and len(r.dropped) == 2  # 8 sign patterns, 2 impossible
    assert r.ndf
    for piece in r.pieces:
        d = piece.direction
        assert directional(p, [0, 0], [0, 1], d) == sum(g * di for g, di in zip(piece.gradient, d))


def test_tie_with_identical_forms_is_merged():
    # max(w, 1 * w) with two distinct nodes: same form, one piece, differentiable
    p = Program(["w"])
    w = p.param(0)
    p.set_output(p.max([p.lin([(1, w)]), p.lin([(1, w)], 0)], "m"))
    r = run(p, [3])
    assert r.touched[0].kind == "tie" and [pc.choices for pc in r.pieces] == [("max=all",)]
    assert r.verdict == "ok" and r.dp == (F(1),)


def test_zero_form_kink_carries_no_side():
    # v * ReLU(u + b) at v = 0, u + b = 0: touched, but P is differentiable with DP = (0, 0, 0)
    p = Program(["u", "b", "v"])
    u, b, v = p.param(0), p.param(1), p.param(2)
    p.set_output(p.mul(v, p.act(RELU, p.lin([(1, u), (1, b)]), "h")))
    r = run(p, [1, -1, 0])
    assert r.verdict == "ok" and r.dp == (0, 0, 0)
    # with only v free the kink's input does not move at all: choice "0"
    r = run(p, [1, -1, 0], wrt=[2])
    assert [pc.choices for pc in r.pieces] == [("0",)] and r.dp == (F(0),)


def test_touches_the_output_does_not_depend_on_are_ignored():
    # P(w) = w + 1 with a ReLU computed on its kink but unused (as behind a constant 0 weight)
    p = Program(["w"])
    w = p.param(0)
    p.act(RELU, p.lin([(1, w)]), "dead")
    p.set_output(p.lin([(1, w)], 1))
    r = run(p, [0])
    assert r.touched == [] and r.verdict == "ok" and r.dp == (F(1),)


def test_chained_touches_relu_of_minus_relu():
    # ReLU(-ReLU(w)) = 0: proxy p gives AD -p^2 (App. H f3 with p = 1)
    p = Program(["w"])
    w = p.param(0)
    inner = p.act(RELU, p.lin([(1, w)]), "inner")
    p.set_output(p.act(RELU, p.lin([(-1, inner)]), "outer"))
    for proxy, ad, verdict in (("pytorch", 0, "ok"), ("right", -1, "inc"), ("mix:1/2", F(-1, 4), "inc")):
        r = run(p, [0], proxy)
        assert (r.verdict, r.ad, r.dp) == (verdict, (F(ad),), (F(0),))
    # the side "-" of the inner relu makes the outer input's form 0: choice "0"
    assert sorted(pc.choices for pc in run(p, [0]).pieces) == [("+", "-"), ("-", "0")]


def test_refuses_beyond_max_choices(monkeypatch):
    k = 5
    p = Program([f"w{j}" for j in range(k)])
    ws = [p.param(j) for j in range(k)]
    p.set_output(p.lin([(1, p.act(RELU, w, f"h{j}")) for j, w in enumerate(ws)]))
    assert len(run(p, [0] * k).pieces) == 2**k
    monkeypatch.setattr(oracle, "MAX_CHOICES", 20)
    with pytest.raises(FpadError, match="more than 20 one-sided choices"):
        run(p, [0] * k)


def test_json_and_text_reports():
    spec = NetworkSpec.from_dict(
        {
            "inputs": [[1]],
            "layers": [{"kind": "dense", "width": 1, "bias": False}, {"kind": "dense", "width": 2, "weights": [[1], [-1]], "bias": False, "activation": "relu"}],
            "output": {"reduce": "weighted", "weights": [1, -1]},
            "params": {"free": ["L1.W[0,0]"]},
        }
    )
    problem = spec.build(get_format("e4m3fn"))
    r = classify(problem, problem.parse_assignment("L1.W[0,0]=0"))
    j = json.loads(json.dumps(r.to_json()))
    assert j["verdict"] == "inc" and j["ad"] == ["0"] and j["dp"] == ["1"] and j["params"] == ["L1.W[0,0]"]
    assert j["touched"][0]["tag"] == "L2[0] s0" and j["touched"][0]["proxy_side"] == "-"
    assert all(isinstance(y, str) for d in j["dropped"] for y in d["certificate"])
    text = r.to_text()
    for needle in ("L1.W[0,0] = 0", "L2[1] s0", "D^AD = (L1.W[0,0]: 0)", "DP   = (L1.W[0,0]: 1)", "AD is WRONG (inc)"):
        assert needle in text
    # wrt_all on a problem whose only parameter is free changes nothing but the flag
    assert classify(problem, [0], wrt_all=True).to_json()["wrt_all"] is True


def test_wrt_all_differentiates_fixed_parameters_too():
    # P(u, v) = v * ReLU(u) with only u free at (0, 1): ndf in u; w.r.t. (u, v) too.
    # At (0, 0): differentiable in u alone (v = 0 kills it) but also w.r.t. (u, v): dP/dv = ReLU(0) = 0.
    spec = NetworkSpec.from_dict(
        {
            "inputs": [[1]],
            "layers": [{"kind": "dense", "width": 1, "bias": False, "activation": "relu"}, {"kind": "dense", "width": 1, "bias": False}],
            "params": {"free": ["L1.W"], "fixed": {"L2.W": [[0]]}},
        }
    )
    problem = spec.build(get_format("e2m1"))
    r = classify(problem, [0])
    assert r.params == ["L1.W[0,0]"] and r.verdict == "ok" and r.dp == (F(0),)
    r = classify(problem, [0], wrt_all=True)
    assert r.params == ["L1.W[0,0]", "L2.W[0,0]"] and r.verdict == "ok" and r.dp == (F(0), F(0))


# -- the antichain shortcut agrees with full reverse sweeps ------------------------------------
ACTS = [get_activation(s) for s in ("relu", "leaky_relu:1/64", "relu6", "hardtanh", "hardsigmoid", "abs")]
SMALL = [F(n, 2) for n in range(-6, 7)]


@st.composite
def layered_program(draw):
    """Two kinked layers over free parameters (products of parameters included), values chosen so
    that many activations and ties sit exactly on kinks."""
    k = draw(st.integers(1, 3))
    p = Program([f"w{j}" for j in range(k)])
    ps = [p.param(j) for j in range(k)]
    layer1 = []
    for i in range(draw(st.integers(1, 3))):
        terms = [(draw(st.sampled_from([-1, 0, 1, 2])), x) for x in ps]
        pre = p.lin(terms, draw(st.sampled_from([0, 0, -1, 1, 3, -3, 6])))
        if draw(st.booleans()) and k > 1:
            pre = p.mul(pre, ps[1])
        layer1.append(p.act(draw(st.sampled_from(ACTS)), pre, f"a{i}"))
    if len(layer1) > 1 and draw(st.booleans()):
        layer1.append(p.max(layer1[:2], "m"))
    layer2 = []
    for i in range(draw(st.integers(1, 2))):
        terms = [(draw(st.sampled_from([-1, 1, 2])), x) for x in layer1]
        layer2.append(p.act(draw(st.sampled_from(ACTS)), p.lin(terms, draw(st.sampled_from([0, 0, 1, -1]))), f"b{i}"))
    p.set_output(p.lin([(draw(st.sampled_from([-1, 1, F(1, 3)])), x) for x in layer2 + layer1[:1]]))
    w = [draw(st.sampled_from(SMALL + [F(0)] * 4)) for _ in range(k)]
    return p, w


PROXIES = ["pytorch", "left", "right", "mix:1/3", "const:2"]


@settings(max_examples=200, deadline=None)
@given(layered_program(), st.sampled_from(PROXIES))
def test_piece_gradients_shortcut_equals_full_sweep(case, proxy):
    p, w = case
    fast = run(p, w, proxy)
    slow = run(p, w, proxy, shortcut=False)
    assert [(pc.choices, pc.gradient) for pc in fast.pieces] == [(pc.choices, pc.gradient) for pc in slow.pieces]
    assert (fast.verdict, fast.clarke_ok, fast.bouligand_ok) == (slow.verdict, slow.clarke_ok, slow.bouligand_ok)


@settings(max_examples=200, deadline=None)
@given(layered_program(), st.sampled_from(PROXIES))
def test_pieces_certified_and_dp_matches_directional_derivatives(case, proxy):
    """Every piece's direction d has P'(w; d) = g_s . d; at a differentiable point DP gives the
    directional derivative along every +-e_j (P'(w; .) is linear)."""
    p, w = case
    r = run(p, w, proxy)
    k = len(w)
    wrt = list(range(k))
    for piece in r.pieces:
        if any(piece.direction):
            assert directional(p, w, wrt, piece.direction) == sum(g * d for g, d in zip(piece.gradient, piece.direction))
    if r.differentiable:
        for j in range(k):
            for s in (1, -1):
                e = [0] * k
                e[j] = s
                assert directional(p, w, wrt, e) == s * r.dp[j]
    else:  # some coordinate direction or piece pair shows non-linearity
        assert len({pc.gradient for pc in r.pieces}) > 1
    # the fast exact evaluator equals the reference Program.evaluate on every node
    assert forward(p, w) == p.evaluate(w)
