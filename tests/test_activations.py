"""The generic battery every activation passes (STYLE.md: scikit-learn's check_estimator).

Adding an activation to :data:`fpad.activations.REGISTRY` (and a parametrised spelling below when
it takes parameters) is enough to run all of it: exact values against the declared pieces,
continuity at the kinks, declared kinks = observed kinks, one-sided derivatives = exact difference
quotients, every proxy convention's value at every kink, the float64 kernel arrays, and the
compiled kernels against the exact oracle on every point of a small grid.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from fpad.activations import REGISTRY, get_activation
from fpad.ad import ad_gradient, directional
from fpad.enumerate import count_exhaustive, count_exhaustive_reference
from fpad.formats import get_format
from fpad.graph import Program
from fpad.network import NetworkSpec
from fpad.proxies import get_proxy

# every registered name once, plus the parametrised spellings
SPECS = sorted(REGISTRY) + ["leaky_relu:1/64", "leaky_relu:-2", "hardtanh:-2:3"]
CONVENTIONS = ("pytorch", "tensorflow", "left", "right", "mix:1/3", "const:7")


def _probe_points(act) -> list[F]:
    """Kinks, midpoints between them, and points beyond both ends (exact rationals)."""
    ks = list(act.kinks) or [F(0)]
    pts = [ks[0] - 5, ks[0] - F(1, 3), ks[-1] + F(1, 7), ks[-1] + 9, *ks]
    pts += [(a + b) / 2 for a, b in zip(ks, ks[1:])]
    return sorted(set(pts))


def _gap(act, x) -> F:
    """A step smaller than the distance from x to any other kink."""
    others = [abs(k - x) for k in act.kinks if k != x]
    return min(others + [F(1)]) / 4


@pytest.mark.parametrize("spec", SPECS)
def test_value_is_the_declared_piece_and_continuous_at_kinks(spec):
    act = get_activation(spec)
    assert act.spec == spec.split(":")[0] or get_activation(act.spec) == act
    for x in _probe_points(act):
        i = sum(1 for k in act.kinks if x >= k)  # the piece to the right at a kink
        assert act(x) == act.slopes[i] * x + act.intercepts[i]
        assert isinstance(act(x), F)
    for i, k in enumerate(act.kinks):
        assert act.slopes[i] * k + act.intercepts[i] == act.slopes[i + 1] * k + act.intercepts[i + 1] == act(k)


@pytest.mark.parametrize("spec", SPECS)
def test_declared_kinks_are_the_observed_kinks(spec):
    act = get_activation(spec)
    for x in _probe_points(act):
        h = _gap(act, x)
        left = (act(x) - act(x - h)) / h
        right = (act(x + h) - act(x)) / h
        assert (left != right) == (x in act.kinks)
        assert (act.kink_index(x) >= 0) == (x in act.kinks)


@pytest.mark.parametrize("spec", SPECS)
def test_one_sided_derivatives_are_exact_difference_quotients(spec):
    act = get_activation(spec)
    for x in _probe_points(act):
        h = _gap(act, x)
        assert act.d_right(x) == (act(x + h) - act(x)) / h
        assert act.d_left(x) == (act(x) - act(x - h)) / h
        assert act.directional(x, h) == act(x + h) - act(x)
        assert act.directional(x, -h) == act(x - h) - act(x)
        assert act.directional(x, 0) == 0
        if x in act.kinks:
            with pytest.raises(ValueError):
                act.derivative(x)
        else:
            assert act.derivative(x) == act.d_left(x) == act.d_right(x)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("conv", CONVENTIONS)
def test_every_convention_has_an_exact_proxy_at_every_kink(spec, conv):
    act, proxy = get_activation(spec), get_proxy(conv)
    for i, k in enumerate(act.kinks):
        dm, dp = act.d_left(k), act.d_right(k)
        p = proxy.value(act, i)
        assert isinstance(p, F)
        expected = {"left": dm, "right": dp, "mix:1/3": F(1, 3) * dm + F(2, 3) * dp, "const:7": F(7)}
        if conv in expected:
            assert p == expected[conv]
        assert proxy.derivative(act, k) == p
        assert proxy.in_clarke(act, i) == (min(dm, dp) <= p <= max(dm, dp))
    for x in _probe_points(act):
        if x not in act.kinks:
            assert proxy.derivative(act, x) == act.derivative(x)
    assert proxy.is_clarke(act) == all(proxy.in_clarke(act, i) for i in range(act.n_kinks))


@pytest.mark.parametrize("spec", SPECS)
def test_kernel_arrays_bound_the_exact_numbers(spec):
    act = get_activation(spec)
    kinks, kerr, slopes, serr, icpt, ierr = act.kernel_arrays()
    for floats, errs, exact in ((kinks, kerr, act.kinks), (slopes, serr, act.slopes), (icpt, ierr, act.intercepts)):
        assert len(floats) == len(errs) == len(exact)
        for f, e, q in zip(floats, errs, exact):
            assert abs(F(float(f)) - q) <= F(float(e))
            assert (e == 0) == (F(float(f)) == q)
    # where the data is exact, the kernels' float piece search agrees with the exact one
    if not any(kerr) and not any(serr) and not any(ierr):
        for v in get_format("e3m2").values():
            piece = int(np.searchsorted(kinks, v, side="right"))
            assert F(float(slopes[piece] * v + icpt[piece])) == act(F(float(v)))


def test_non_dyadic_data_carries_an_error_bound():
    _, _, slopes, serr, _, _ = get_activation("hardsigmoid").kernel_arrays()
    assert serr[1] > 0 and serr[0] == serr[2] == 0 and slopes[1] == 1 / 6


@pytest.mark.parametrize("spec", SPECS)
def test_ad_and_directional_through_the_activation(spec):
    act = get_activation(spec)
    prog = Program(["w"])
    prog.set_output(prog.act(act, prog.param(0), tag="a"))
    for conv in ("pytorch", "left", "mix:1/3"):
        proxy = get_proxy(conv)
        for x in _probe_points(act):
            assert ad_gradient(prog, [x], [0], proxy) == [proxy.derivative(act, x)]
            assert directional(prog, [x], [0], [1]) == act.d_right(x)
            assert directional(prog, [x], [0], [-1]) == -act.d_left(x)


@pytest.mark.parametrize("spec", SPECS)
def test_compiled_kernels_agree_with_the_oracle(spec):
    """x -> v * act(w + b) + c over e2m1 (all four free): every point, kernels vs oracle."""
    fmt = get_format("e2m1")
    p = NetworkSpec.from_dict({
        "inputs": [["1"]],
        "layers": [{"kind": "dense", "width": 1, "activation": spec},
                   {"kind": "dense", "width": 1, "activation": "identity"}],
        "params": {"free": ["L1.W", "L1.b", "L2.W", "L2.b"]}}).build(fmt)
    fast, slow = count_exhaustive(p), count_exhaustive_reference(p)
    assert (fast.points, fast.touched, fast.ndf, fast.inc, fast.clarke_ok) == \
        (slow.points, slow.touched, slow.ndf, slow.inc, slow.clarke_ok)
    assert fast.points == fmt.n_values ** 4
    assert (fast.touched > 0) == (fast.ndf > 0) == (get_activation(spec).n_kinks > 0)  # kinks reachable in e2m1
