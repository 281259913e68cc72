"""Proxy conventions: framework values at every kink, and the paper's conditions (ICLR 2024 section 3)."""

from fractions import Fraction as F

import pytest

from fpad.activations import REGISTRY, get_activation
from fpad.errors import FpadError
from fpad.proxies import _FRAMEWORK_VALUES, get_proxy

A = get_activation
PT = get_proxy("pytorch")


def test_every_registered_activation_has_a_framework_proxy():
    assert set(_FRAMEWORK_VALUES) == set(REGISTRY)


@pytest.mark.parametrize(
    "act, values, lam, bouligand",
    [
        # paper_iclr2024.md section 3 table, PyTorch column
        ("relu", (0,), 1, True),
        ("leaky_relu:1/64", (F(1, 64),), 1, True),
        ("relu6", (0, 0), None, True),  # D^- at 0, D^+ at 6: no common lambda
        ("hardtanh", (0, 0), None, True),
        ("hardtanh:-2:3", (0, 0), None, True),
        ("hardsigmoid", (0, 0), None, True),  # Lemma 3's counterexample proxy
        ("abs", (0,), F(1, 2), False),  # torch.sign(0) = 0 = (D^- + D^+)/2
        ("identity", (), 1, True),  # no kinks: vacuous
    ],
)
def test_pytorch_table(act, values, lam, bouligand):
    a = A(act)
    assert PT.values(a) == tuple(F(v) for v in values)
    assert PT.single_lambda(a) == (None if lam is None else F(lam))
    assert PT.is_bouligand(a) is bouligand
    assert PT.is_clarke(a)
    assert get_proxy("tensorflow").values(a) == PT.values(a)
    assert PT.max_rule == "first"


def test_relu6_sides_under_pytorch():
    r6 = A("relu6")
    assert PT.value(r6, 0) == r6.d_left(0) == 0  # D^- at 0
    assert PT.value(r6, 1) == r6.d_right(6) == 0  # D^+ at 6
    assert r6.d_right(0) == 1 and r6.d_left(6) == 1


def test_one_sided_and_mixed_rules():
    hs = A("hardsigmoid")
    assert get_proxy("left").values(hs) == (0, F(1, 6))
    assert get_proxy("right").values(hs) == (F(1, 6), 0)
    assert get_proxy("left").single_lambda(hs) == 1
    assert get_proxy("right").single_lambda(hs) == 0
    mix = get_proxy("mix:1/4")
    assert mix.values(hs) == (F(1, 6) * F(3, 4), F(1, 6) * F(1, 4))
    assert mix.single_lambda(hs) == F(1, 4)
    assert not mix.is_bouligand(hs) and mix.is_clarke(hs)
    assert get_proxy("mix:0.5").spec == "mix:1/2"
    assert get_proxy("mix:0.5") == get_proxy("mix:1/2")


def test_const_rule_outside_clarke():
    c = get_proxy("const:7")
    relu = A("relu")
    assert c.values(relu) == (7,)
    assert c.single_lambda(relu) is None  # lambda = -6 is outside [0, 1]
    assert not c.is_clarke(relu) and not c.is_bouligand(relu)
    assert get_proxy("const:1/2").single_lambda(relu) == F(1, 2)
    # relu6 with const 1/2: lambda = 1/2 at 0 and at 6 -> Thm 4 holds
    assert get_proxy("const:1/2").single_lambda(A("relu6")) == F(1, 2)


def test_overrides_by_base_name():
    p = get_proxy({"default": "pytorch", "relu6": "left", "leaky_relu": "right"})
    assert p.values(A("relu6")) == (0, 1)
    assert p.single_lambda(A("relu6")) == 1
    assert p.values(A("leaky_relu:1/8")) == (1,)
    assert p.values(A("hardsigmoid")) == (0, 0)
    assert p.spec == "pytorch,leaky_relu=right,relu6=left"
    assert get_proxy(p.spec) == p


def test_derivative_off_and_on_kinks():
    r6 = A("relu6")
    assert PT.derivative(r6, F(3)) == 1
    assert PT.derivative(r6, F(6)) == 0
    assert get_proxy("left").derivative(r6, F(6)) == 1


@pytest.mark.parametrize(
    "spec, words",
    [
        ("torch", ["unknown proxy", "pytorch", "mix:LAMBDA"]),
        ("mix:2", ["[0, 1]"]),
        ("mix:x", ["exact rational"]),
        ("const:", ["exact rational"]),
        ({"relu": "left"}, ["default"]),
        ({"default": "left", "relu7": "left"}, ["relu7", "accepted keys", "relu6"]),
        ("pytorch,relu6", ["ACTIVATION=RULE"]),
        (3, ["string or a table"]),
    ],
)
def test_bad_specs(spec, words):
    with pytest.raises(FpadError) as e:
        get_proxy(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg
