"""fpad.ad: exact reverse-mode AD with proxies, and the exact directional derivative.

Hand-built programs whose AD output is known in closed form (paper_iclr2024.md sections 2.2-2.9),
plus the generic check that ``directional`` equals exact difference quotients on piecewise-linear
programs, where (P(w + t d) - P(w)) / t is *exactly* P'(w; d) for every t below the first
breakpoint along the ray.
"""

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpad.activations import REGISTRY, get_activation
from fpad.ad import ad_gradient, directional, forward
from fpad.errors import FpadError
from fpad.graph import ACT, CONST, LIN, MAX, MUL, PARAM, Program
from fpad.proxies import get_proxy

RELU = get_activation("relu")


def relu_minus_relu_neg():
    """Lemma 2: P(w) = ReLU(w) - ReLU(-w) = w."""
    p = Program(["w"])
    w = p.param(0)
    a = p.act(RELU, p.lin([(1, w)]), "a")
    b = p.act(RELU, p.lin([(-1, w)]), "b")
    p.set_output(p.lin([(1, a), (-1, b)]))
    return p


@pytest.mark.parametrize("proxy, expected", [("pytorch", 0), ("const:1", 2), ("mix:1/2", 1), ("right", 2)])
def test_lemma2_ad_is_twice_the_proxy(proxy, expected):
    assert ad_gradient(relu_minus_relu_neg(), [F(0)], [0], get_proxy(proxy)) == [F(expected)]


def test_off_kink_ad_is_the_derivative_whatever_the_proxy():
    for proxy in ("pytorch", "const:7", "left"):
        assert ad_gradient(relu_minus_relu_neg(), [F(3, 4)], [0], get_proxy(proxy)) == [F(1)]


def test_max_routes_to_first_maximiser_and_parameter_feeds_add_up():
    # P(u, b) = max(u + b, b) - max(-u + b, b): Lemma 7, AD (2, 0) at (0, 0).
    p = Program(["u", "b"])
    u, b = p.param(0), p.param(1)
    m1 = p.max([p.lin([(1, u), (1, b)]), p.lin([(1, b)])])
    m2 = p.max([p.lin([(-1, u), (1, b)]), p.lin([(1, b)])])
    p.set_output(p.lin([(1, m1), (-1, m2)]))
    assert ad_gradient(p, [0, 0], [0, 1], get_proxy("pytorch")) == [F(2), F(0)]
    # a strict maximiser wins whatever its position
    assert ad_gradient(p, [F(-1), F(0)], [0, 1], get_proxy("pytorch")) == [F(1), F(0)]
    # gradient only w.r.t. b, and w.r.t. b listed first
    assert ad_gradient(p, [0, 0], [1], get_proxy("pytorch")) == [F(0)]
    assert ad_gradient(p, [0, 0], [1, 0], get_proxy("pytorch")) == [F(0), F(2)]


def test_product_rule_and_repeated_parameter():
    # P(a, b) = a * b * a + 3 a: dP/da = 2ab + 3, dP/db = a^2.
    p = Program(["a", "b"])
    a1, b, a2 = p.param(0), p.param(1), p.param(0)
    p.set_output(p.lin([(1, p.mul(p.mul(a1, b), a2)), (3, a1)]))
    assert ad_gradient(p, [F(1, 2), F(-3)], [0, 1], get_proxy("pytorch")) == [F(0), F(1, 4)]
    assert forward(p, [F(1, 2), F(-3)])[-1] == F(-3, 4) + F(3, 2)


def test_hardsigmoid_lemma3_proxies():
    # P(w) = HS(3 + w) + HS(-3 + w): AD 0 with PyTorch's proxies, 1/6 with left or right.
    hs = get_activation("hardsigmoid")
    p = Program(["w"])
    w = p.param(0)
    p.set_output(p.lin([(1, p.act(hs, p.lin([(1, w)], 3))), (1, p.act(hs, p.lin([(1, w)], -3)))]))
    assert ad_gradient(p, [0], [0], get_proxy("pytorch")) == [F(0)]
    assert ad_gradient(p, [0], [0], get_proxy("left")) == [F(1, 6)]
    assert ad_gradient(p, [0], [0], get_proxy("right")) == [F(1, 6)]


def test_forward_rejects_unknown_semantics_and_wrong_length():
    p = relu_minus_relu_neg()
    with pytest.raises(FpadError, match="semantics"):
        forward(p, [0], semantics="rounded")
    with pytest.raises(FpadError, match="1 parameters"):
        forward(p, [0, 1])
    with pytest.raises(FpadError, match="direction"):
        directional(p, [0], [0], [1, 1])


def test_directional_one_sided():
    # ReLU(w) - ReLU(2w) = -ReLU(w): P'(0; 1) = -1, P'(0; -1) = 0.
    p = Program(["w"])
    w = p.param(0)
    p.set_output(p.lin([(1, p.act(RELU, p.lin([(1, w)]))), (-1, p.act(RELU, p.lin([(2, w)])))]))
    assert directional(p, [0], [0], [1]) == -1
    assert directional(p, [0], [0], [-1]) == 0
    assert directional(p, [0], [0], [F(5, 2)]) == F(-5, 2)


# -- directional derivative = exact difference quotient (piecewise-linear programs) -------------
ACTS = [REGISTRY[name]() for name in REGISTRY] + [get_activation("leaky_relu:1/64")]
HALF_GRID = [F(n, 2) for n in range(-8, 9)]  # values near kinks of every registered activation


@st.composite
def pwl_program(draw):
    """A random two-layer program, PWL in its free parameters (only the first layer is free;
    the second layer and max nodes use constants), with values chosen to sit on kinks often."""
    k = draw(st.integers(1, 3))
    names = [f"w{j}" for j in range(k)]
    p = Program(names)
    params = [p.param(j) for j in range(k)]
    width = draw(st.integers(1, 3))
    hidden = []
    for i in range(width):
        coefs = [draw(st.sampled_from([-2, -1, 0, 1, 2])) for _ in range(k)]
        const = draw(st.sampled_from(HALF_GRID))
        act = draw(st.sampled_from(ACTS))
        hidden.append(p.act(act, p.lin(list(zip(coefs, params)), const), f"h{i}"))
    if width > 1 and draw(st.booleans()):
        hidden.append(p.max(hidden[:2], "m"))
    outs = []
    for h in hidden:
        act = draw(st.sampled_from(ACTS))
        outs.append(p.act(act, p.lin([(draw(st.sampled_from([-1, 1, 2])), h)], draw(st.sampled_from(HALF_GRID)))))
    p.set_output(p.lin([(draw(st.sampled_from([-1, 1, F(1, 3)])), o) for o in outs]))
    w = [draw(st.sampled_from([F(n, 2) for n in range(-4, 5)])) for _ in range(k)]
    d = [draw(st.integers(-3, 3)) for _ in range(k)]
    return p, w, d


@settings(max_examples=150, deadline=None)
@given(pwl_program())
def test_directional_equals_exact_difference_quotient(case):
    p, w, d = case
    t = F(1, 2**60)  # breakpoints along the ray are rationals of denominator << 2^60 away from w
    base = forward(p, w)[p.output]
    moved = forward(p, [wi + t * di for wi, di in zip(w, d)])[p.output]
    assert directional(p, w, list(range(len(w))), d) == (moved - base) / t


@settings(max_examples=100, deadline=None)
@given(pwl_program())
def test_ad_equals_gradient_off_kinks_and_is_linear_in_directional(case):
    """Where no activation input is on a kink and no max ties, AD is the gradient: it gives the
    directional derivative along every coordinate and its negative."""
    p, w, _ = case
    w = [wi + F(1, 1024) * (j + 1) for j, wi in enumerate(w)]  # move off the half-integer kinks
    vals = forward(p, w)
    on_kink = any(n.op == ACT and n.act.kink_index(vals[n.args[0]]) >= 0 for n in p.nodes)
    tie = any(n.op == MAX and sum(vals[a] == vals[i] for a in n.args) > 1 for i, n in enumerate(p.nodes))
    if on_kink or tie:
        return
    k = len(w)
    g = ad_gradient(p, w, list(range(k)), get_proxy("const:5"))
    for j in range(k):
        e = [0] * k
        e[j] = 1
        assert directional(p, w, list(range(k)), e) == g[j]
        e[j] = -1
        assert directional(p, w, list(range(k)), e) == -g[j]


def _reference_values(p, w):
    """The slow twin of fpad.ops' exact value rules: one Fraction operation per term, written
    from graph.py's definition of each op."""
    vals = []
    for n in p.nodes:
        if n.op == PARAM:
            v = F(w[n.param])
        elif n.op == CONST:
            v = n.const
        elif n.op == LIN:
            v = n.const + sum((c * vals[a] for c, a in zip(n.coefs, n.args)), F(0))
        elif n.op == MUL:
            v = vals[n.args[0]] * vals[n.args[1]]
        elif n.op == ACT:
            x = vals[n.args[0]]
            i = sum(1 for k in n.act.kinks if x >= k)
            v = n.act.slopes[i] * x + n.act.intercepts[i]
        else:
            v = max(vals[a] for a in n.args)
        vals.append(v)
    return vals


@settings(max_examples=100, deadline=None)
@given(pwl_program())
def test_fast_forward_equals_reference_evaluate(case):
    p, w, _ = case
    assert forward(p, w) == p.evaluate(w) == _reference_values(p, w)
    w = [wi / 3 for wi in w]  # non-dyadic values exercise the common-denominator path
    assert forward(p, w) == _reference_values(p, w)
