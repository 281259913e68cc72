"""The PyTorch audit (issue 13): PyTorch's own autograd at every point of whole small grids,
classified exactly against fpad. Each op's convention at its kinks is measured, never assumed."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from fpad.ad import ad_gradient  # noqa: E402
from fpad.audit import core  # noqa: E402
from fpad.audit.torch_audit import audit, kink_derivatives, network_fn, variants  # noqa: E402
from fpad.formats import get_format  # noqa: E402
from fpad.network import NetworkSpec  # noqa: E402
from fpad.proxies import get_proxy  # noqa: E402
from fpad.sweeps import one_hidden_spec  # noqa: E402


def _problem(fmt="e3m2", act="relu", inputs=(("1",), ("-0.5",))):
    spec = NetworkSpec.from_dict(one_hidden_spec(1, act=act, inputs=inputs, free=["L1.W", "L1.b"],
                                                 fixed={"L2.W": [["1"]], "L2.b": ["0"]}))
    return spec.build(get_format(fmt))


def test_float64_f_relu_equals_fpads_ad_on_the_whole_grid():
    p = _problem()
    res = audit(p, dtypes=("float64",), spellings={"relu": ["F.relu"]})
    (row,) = res["rows"]
    assert row["points"] == 63**2 and row["equal_ad"] == 63**2


@pytest.mark.parametrize("act,spelling", [("relu", s) for s in variants()["relu"]] +
                         [("relu6", s) for s in variants()["relu6"]])
def test_float64_gradients_are_fpads_ad_with_the_ops_measured_kink_rule(act, spelling):
    """At every point of e2m1 x e2m1, PyTorch float64 = fpad's exact AD with the proxy the op
    takes at its kinks (measured), so fpad models each spelling exactly. (F.hardsigmoid is left
    to the audit's table: its float64 slope has been measured as float32(1/6), a rounding.)"""
    inputs = (("3",), ("-3",)) if act != "relu" else (("1",), ("-0.5",))
    p = _problem("e2m1", act, inputs)
    act_obj = p.spec.layers[0].activation
    measured = [Fraction(d) for d in kink_derivatives(variants()[act][spelling], [float(k) for k in act_obj.kinks],
                                                      "float64")]
    rule = "const:" + ",".join(str(d) for d in measured) if len(set(measured)) > 1 else f"const:{measured[0]}"
    proxy = get_proxy(f"const:{measured[0]}") if len(set(measured)) == 1 else None
    if proxy is None:
        pytest.skip(f"{spelling} takes different values at its kinks ({rule}); one const proxy cannot say it")
    f = network_fn(core.dense_arrays(p), {act: variants()[act][spelling], "identity": variants()["identity"]["identity"]},
                   "float64")
    from torch.func import grad

    vals = p.fmt.values_fraction()
    base = torch.tensor([float(v) for v in p.values], dtype=torch.float64)
    for pt in itertools.product(vals, repeat=len(p.free)):
        w = base.clone()
        w[torch.tensor(p.free)] = torch.tensor([float(v) for v in pt], dtype=torch.float64)
        g, _ = grad(f, has_aux=True)(w)
        got = tuple(Fraction(float(g[i])) for i in p.free)
        assert got == tuple(ad_gradient(p.program, p.full_point(pt), p.free, proxy)), (spelling, pt)


def test_audit_refuses_what_it_cannot_write_in_torch():
    from fpad.errors import FpadError

    spec = NetworkSpec.from_dict(one_hidden_spec(1, act="abs", free=["L1.b"]))
    with pytest.raises(FpadError, match="knows relu, relu6, hardsigmoid"):
        audit(spec.build(get_format("e2m1")))


def test_jax_float64_relu_equals_fpads_ad_and_its_kink_rule_explains_the_rest():
    pytest.importorskip("jax")
    from fpad.audit import jax_audit

    p = _problem()
    res = jax_audit.audit(p, dtypes=("float64",), spellings={"relu": ["jax.nn.relu", "jnp.maximum(x, 0)"]})
    by = {r["ops"]: r for r in res["rows"]}
    assert by["jax.nn.relu"]["equal_ad"] == 63**2
    mx = by["jnp.maximum(x, 0)"]
    assert mx["equal_ad"] + mx["kink_rule"] == 63**2  # only its own rule at kinks differs, never a branch
    measured = res["kink_derivatives"]["jax jnp.maximum(x, 0) (float64)"]
    assert (mx["kink_rule"] == 0) == (measured == ["0"])  # a kink rule of 0 is PyTorch's proxy: nothing differs


def test_review_findings_on_the_audit():
    """From the independent review: fpad's AD in the audit is PyTorch's whatever the file's proxy;
    wrt_all is refused; a grid a dtype cannot hold is refused for that dtype."""
    from fpad.errors import FpadError

    spec = NetworkSpec.from_dict(one_hidden_spec(1, proxy="const:1", inputs=(("1",), ("-0.5",)),
                                                 free=["L1.W", "L1.b"], fixed={"L2.W": [["1"]], "L2.b": ["0"]}))
    (row,) = audit(spec.build(get_format("e2m1")), dtypes=("float64",), spellings={"relu": ["F.relu"]})["rows"]
    assert row["equal_ad"] == 225 and row["kink_rule"] == 0
    with pytest.raises(FpadError, match="without wrt_all"):
        audit(spec.build(get_format("e2m1"), wrt_all=True), dtypes=("float64",))
    fp16 = NetworkSpec.from_dict(one_hidden_spec(1, free=["L1.b"], fixed={"L1.W": [["1"]], "L2.W": [["1"]], "L2.b": ["0"]}))
    with pytest.raises(FpadError, match="not all exact in bfloat16"):
        audit(fp16.build(get_format("fp16")), dtypes=("bfloat16",))
