"""Network descriptions: lowering evaluated exactly on hand-computed networks, naming, errors.

The grid is FP4 E2M1 (|M| = 15: 0, +-0.5, +-1, +-1.5, +-2, +-3, +-4, +-6).
"""

import copy
from fractions import Fraction as F
from pathlib import Path

import pytest

from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.graph import ACT, MAX
from fpad.network import NetworkSpec, exact

FP4 = get_format("e2m1")
NETS = Path(__file__).resolve().parents[1] / "fpad" / "nets"


def P(problem, assignment: str) -> F:
    """P(w) at the free values given as an assignment string."""
    w = problem.full_point(problem.parse_assignment(assignment))
    return problem.program.evaluate(w)[problem.program.output]


def dense_net(**over):
    d = {
        "inputs": [[1], [3]],
        "layers": [
            {"kind": "dense", "width": 2, "activation": "relu"},
            {"kind": "dense", "width": 1, "activation": "identity"},
        ],
        "params": {"free": ["L1.W", "L1.b"], "fixed": {"L2.W": [[1, "-1/2"]], "L2.b": [F(1, 2)]}},
    }
    d.update(over)
    return d


# -- the issue's example, as shipped ------------------------------------------------------------
def test_issue_example_file():
    spec = NetworkSpec.from_toml(NETS / "issue_example.toml")
    pb = spec.build(FP4)
    assert pb.param_names == ["L1.W[0,0]", "L1.W[1,0]", "L1.b[0]", "L1.b[1]", "L2.W[0,0]", "L2.W[0,1]", "L2.b[0]"]
    assert pb.free == [0, 1, 2, 3] and pb.free_names == pb.param_names[:4]
    assert pb.values[4:6] == [1, F(-1, 2)]
    assert FP4.contains(pb.values[6])  # L2.b drawn from M with seed 0
    assert pb.values == spec.build(FP4).values  # the draw is reproducible
    assert pb.kinks_total == 4  # 2 neurons x 2 samples x 1 kink
    assert pb.has_bias == {1: "distinct"} and pb.has_bias_params
    assert pb.proxy.spec == "pytorch" and pb.seed == 0
    tags = [n.tag for n in pb.program.nodes if n.op == ACT]
    assert tags == ["L1[0] s0", "L1[1] s0", "L1[0] s1", "L1[1] s1"]
    # W = (1, -1), b = (0, 2): sample 1: relu(1) - relu(1)/2; sample 3: relu(3) - relu(-1)/2
    b2 = pb.values[6]
    assert P(pb, "L1.W[0,0]=1,L1.W[1,0]=-1,L1.b[0]=0,L1.b[1]=2") == F(1, 2) + 3 + 2 * b2


def test_dense_with_bias_hand_computed():
    pb = NetworkSpec.from_dict(dense_net()).build(FP4)
    # y = relu(w0 x + b0) - relu(w1 x + b1)/2 + 1/2, summed over x = 1, 3
    # w = (0.5, -1), b = (-1.5, 4): x=1: relu(-1)=0, relu(3)=3 -> -1.5+0.5 = -1
    #                               x=3: relu(0)=0,  relu(1)=1 -> -0.5+0.5 = 0
    assert P(pb, "L1.W[0,0]=0.5, L1.W[1,0]=-1, L1.b[0]=-1.5, L1.b[1]=4") == -1


def test_shared_and_constant_bias_and_constant_weights():
    d = dense_net()
    d["layers"][0]["bias"] = "shared"
    d["params"]["free"] = ["L1"]
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert pb.free_names == ["L1.W[0,0]", "L1.W[1,0]", "L1.b[0]"]
    assert pb.has_bias == {1: "shared"} and pb.has_bias_params
    # w = (1, 1), b = -2: x=1: relu(-1) - relu(-1)/2 = 0; x=3: 1 - 1/2 = 1/2; plus 1/2 twice
    assert P(pb, "L1.W[0,0]=1,L1.W[1,0]=1,L1.b[0]=-2") == F(3, 2)

    d = dense_net()
    d["layers"][0].update(bias=[1, "-1/3"], weights=[[2], [-1]])
    d["params"]["free"] = ["L2.b"]
    del d["params"]["fixed"]["L2.b"]
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert pb.param_names == ["L2.W[0,0]", "L2.W[0,1]", "L2.b[0]"]
    assert pb.has_bias == {1: "none"} and not pb.has_bias_params
    # x=1: relu(3) - relu(-4/3)/2 = 3; x=3: relu(7) - relu(-10/3)/2 = 7; + 2 b
    assert P(pb, "L2.b[0]=-6") == 10 - 12


def test_lemma3_file():
    pb = NetworkSpec.from_toml(NETS / "lemma3.toml").build(FP4)
    assert pb.param_names == ["L1.b[0]"] and pb.free == [0]
    assert pb.kinks_total == 4  # 1 neuron x 2 samples x 2 kinks
    assert pb.proxy.single_lambda(pb.program.nodes[pb.program.kink_nodes()[0]].act) is None
    assert P(pb, "L1.b[0]=0") == 1  # HS(3) + HS(-3)
    assert P(pb, "L1.b[0]=1") == F(7, 6)  # HS(4) + HS(-2) = 1 + 1/6


def test_conv1d_with_padding_and_stride():
    d = {
        "inputs": [[1, 2, 3, 4]],
        "input_shape": [1, 4],
        "layers": [{"kind": "conv1d", "channels": 1, "kernel": 2, "activation": "identity"}],
        "params": {"free": ["L1.W", "L1.b"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert pb.param_names == ["L1.W[0,0,0]", "L1.W[0,0,1]", "L1.b[0]"]
    # y_t = a x_t + b x_{t+1} + c, t = 0..2: a*6 + b*9 + 3c
    assert P(pb, "L1.W[0,0,0]=1,L1.W[0,0,1]=-1,L1.b[0]=0.5") == 6 - 9 + F(3, 2)
    d["layers"][0].update(padding=1, stride=2)
    pb = NetworkSpec.from_dict(d).build(FP4)
    # padded x = (0,1,2,3,4,0), positions t = 0, 2, 4: (0,1), (2,3), (4,0): a*6 + b*4 + 3c
    assert P(pb, "L1.W[0,0,0]=1,L1.W[0,0,1]=-1,L1.b[0]=0.5") == 6 - 4 + F(3, 2)


def test_conv2d_against_direct_sum():
    x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    d = {
        "inputs": [[v for row in x for v in row]],
        "input_shape": [1, 3, 3],
        "layers": [{"kind": "conv2d", "channels": 2, "kernel": 2, "activation": "relu"}],
        "params": {"free": ["L1.W", "L1.b"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert pb.free_names[:4] == ["L1.W[0,0,0,0]", "L1.W[0,0,0,1]", "L1.W[0,0,1,0]", "L1.W[0,0,1,1]"]
    assert pb.free_names[8:] == ["L1.b[0]", "L1.b[1]"]
    W = [[[1, -1], [F(1, 2), 0]], [[-2, 0], [0, 1]]]
    b = [-3, F(3, 2)]
    assign = ",".join(
        [f"L1.W[{o},0,{i},{j}]={W[o][i][j]}" for o in range(2) for i in range(2) for j in range(2)]
        + [f"L1.b[{o}]={b[o]}" for o in range(2)]
    )
    expected = sum(
        max(F(0), sum(W[o][i][j] * x[r + i][c + j] for i in range(2) for j in range(2)) + b[o])
        for o in range(2) for r in range(2) for c in range(2)
    )
    assert P(pb, assign) == expected
    acts = [n for n in pb.program.nodes if n.op == ACT]
    assert [n.tag for n in acts][:3] == ["L1[0,0,0] s0", "L1[0,0,1] s0", "L1[0,1,0] s0"]
    assert pb.kinks_total == 8 and pb.has_bias == {1: "shared"}


def test_maxpool2d_scan_order_and_tags():
    d = {
        "inputs": [[1, 2, 3, 4]],
        "input_shape": [1, 2, 2],
        "layers": [
            {"kind": "conv2d", "channels": 1, "kernel": 1, "activation": "identity"},
            {"kind": "maxpool2d", "window": 2},
        ],
        "params": {"free": ["L1.W", "L1.b"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    (mx,) = [n for n in pb.program.nodes if n.op == MAX]
    assert mx.tag == "L2[0,0,0] s0"
    vals = pb.program.evaluate(pb.full_point([F(2), F(1)]))
    # arguments in row-major window order: x = 1, 2, 3, 4 -> 2x + 1
    assert [vals[a] for a in mx.args] == [3, 5, 7, 9]
    assert vals[pb.program.output] == 9
    assert pb.kinks_total == 0 and pb.has_maxpool  # ties are not counted in n


def test_maxpool1d_windows_and_relu():
    d = {
        "inputs": [[1, -3, 3, 2], [0, 0, 1, 1]],
        "input_shape": [1, 4],
        "layers": [
            {"kind": "conv1d", "channels": 1, "kernel": 1, "bias": False, "activation": "relu"},
            {"kind": "maxpool1d", "window": 2},
        ],
        "params": {"free": ["L1.W"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert [n.tag for n in pb.program.nodes if n.op == MAX] == ["L2[0,0] s0", "L2[0,1] s0", "L2[0,0] s1", "L2[0,1] s1"]
    # w = -1: s0: max(0, 3) + max(0, 0) = 3; s1: max(0,0) + max(0,0) = 0
    assert P(pb, "L1.W[0,0,0]=-1") == 3
    assert P(pb, "L1.W[0,0,0]=2") == 2 + 6 + 0 + 2


def test_residual_add():
    d = {
        "inputs": [[1]],
        "layers": [
            {"kind": "dense", "width": 1, "activation": "relu"},
            {"kind": "dense", "width": 1, "weights": [[2]], "bias": False},
            {"kind": "add", "from": 1, "activation": "hardtanh:-2:2"},
        ],
        "params": {"free": ["L1.W", "L1.b"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert pb.has_bias == {1: "distinct", 3: "none"}
    # h = relu(w + b); out = hardtanh(2h + h) on [-2, 2]
    assert P(pb, "L1.W[0,0]=0.5,L1.b[0]=0") == F(3, 2)
    assert P(pb, "L1.W[0,0]=1,L1.b[0]=0") == 2
    assert [n.tag for n in pb.program.nodes if n.op == ACT] == ["L1[0] s0", "L3[0] s0"]
    assert pb.kinks_total == 3
    d["layers"].append({"kind": "add", "from": 0})  # residual from the input
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert P(pb, "L1.W[0,0]=0.5,L1.b[0]=0") == F(5, 2)


def test_squared_error_and_weighted():
    d = {
        "inputs": [[1], [2]],
        "layers": [{"kind": "dense", "width": 2, "bias": False}],
        "output": {"reduce": "squared_error", "targets": [[1, 0], [1, 0]]},
        "params": {"free": ["L1.W[0,0]"], "fixed": {"L1.W[1,0]": 0}},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert P(pb, "L1.W[0,0]=2") == (2 - 1) ** 2 + (4 - 1) ** 2
    d["output"] = {"reduce": "weighted", "weights": [3, -1]}
    d["params"]["fixed"]["L1.W[1,0]"] = 4
    pb = NetworkSpec.from_dict(d).build(FP4)
    assert P(pb, "L1.W[0,0]=2") == 3 * (2 + 4) - (4 + 8)


def test_free_order_and_override():
    spec = NetworkSpec.from_dict(dense_net())
    pb = spec.build(FP4, free=["L2.b", "L1.W[1,0]", "L1.b"])
    assert pb.free_names == ["L2.b[0]", "L1.W[1,0]", "L1.b[0]", "L1.b[1]"]
    assert pb.free == [6, 1, 2, 3]
    assert pb.values[6] == F(1, 2)  # a fixed value is the initial value of a now-free parameter
    w = pb.full_point(pb.parse_assignment("L1.b[1]=1,L1.b[0]=2,L1.W[1,0]=-1,L2.b[0]=0"))
    assert w[6] == 0 and w[1] == -1 and w[2] == 2 and w[3] == 1
    assert pb.wrt == pb.free and not pb.wrt_all
    pb_all = spec.build(FP4, free=["L2.b"], wrt_all=True)
    assert pb_all.wrt == list(range(7)) and pb_all.has_bias == {1: "distinct"}
    assert spec.build(FP4, free=["L2.b"]).has_bias == {1: "none"}


def test_exact_numbers_from_toml(tmp_path):
    f = tmp_path / "n.toml"
    f.write_text(
        'inputs = [[0.1, "1/3"], [1e-1, 2]]\n[[layers]]\nkind = "dense"\nwidth = 1\n'
        'weights = [[1.5, 0x2]]\n[params]\nfree = ["L1.b"]\n'
    )
    spec = NetworkSpec.from_toml(f)
    assert spec.inputs[0, 0] == F(1, 10) and spec.inputs[0, 1] == F(1, 3) and spec.inputs[1, 0] == F(1, 10)
    pb = spec.build(FP4)
    assert P(pb, "L1.b[0]=0") == F(3, 2) * F(2, 10) + 2 * (F(1, 3) + 2)
    assert exact("0x1p-3") == F(1, 8) and exact(0.1) == F(0.1)


def test_to_dict_round_trip_and_hash():
    spec = NetworkSpec.from_toml(NETS / "issue_example.toml")
    again = NetworkSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict() and again.spec_hash == spec.spec_hash
    assert len(spec.spec_hash) == 64
    other = copy.deepcopy(spec.to_dict())
    other["inputs"][0][0] = "2"
    assert NetworkSpec.from_dict(other).spec_hash != spec.spec_hash
    assert spec.build(FP4).spec_hash != spec.build(FP4, free=["L1.b"]).spec_hash


# -- assignments ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, words",
    [
        ("L1.W[0,0]=0.3,L1.W[1,0]=0,L1.b[0]=0,L1.b[1]=0", ["L1.W[0,0] = 0.3", "not in e2m1", "0.0 and 0.5"]),
        ("L1.W[0,0]=0,L1.W[1,0]=0,L1.b[0]=0,L1.b[7]=0", ["unknown parameter", "L1.b[7]", "L1.b[1]"]),
        ("L1.W[0,0]=0,L1.W[1,0]=0,L1.b[0]=0,L2.b[0]=0", ["L2.b[0] is fixed", "--free"]),
        ("L1.W[0,0]=0,L1.b[0]=0", ["no value", "L1.W[1,0], L1.b[1]"]),
        ("L1.W[0,0]=x", ["not an exact number"]),
        ("L1.W[0,0]", ["NAME=VALUE"]),
        ("", ["empty assignment"]),
        ("L1.W[0,0]=0,L1.W[0,0]=1", ["assigned twice"]),
    ],
)
def test_parse_assignment_errors(text, words):
    pb = NetworkSpec.from_dict(dense_net()).build(FP4)
    with pytest.raises(FpadError) as e:
        pb.parse_assignment(text)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


# -- bad descriptions -----------------------------------------------------------------------------
def _mutate(path, value):
    d = copy.deepcopy(dense_net())
    *head, last = path
    tgt = d
    for k in head:
        tgt = tgt[k]
    if value is KeyError:
        del tgt[last]
    else:
        tgt[last] = value
    return d


@pytest.mark.parametrize(
    "path, value, words",
    [
        (("widht",), 3, ["top level", "unknown key 'widht'", "accepted keys", "inputs"]),
        (("layers", 0, "widht"), 3, ["layers[0] (dense)", "unknown key 'widht'", "width"]),
        (("layers", 0, "width"), 0, ["layers[0].width", "integer >= 1"]),
        (("layers", 0, "kind"), "lstm", ["layers[0].kind", "lstm", "conv2d"]),
        (("layers", 0, "activation"), "gelu", ["layers[0].activation", "unknown activation 'gelu'", "relu6"]),
        (("layers", 0, "weights"), [[1, 2]], ["layers[0].weights", "shape [2, 1]", "got [1, 2]"]),
        (("layers", 0, "bias"), "maybe", ["layers[0].bias", "shared"]),
        (("layers",), [], ["layers", "no layers"]),
        (("inputs",), [[1], [2, 3]], ["inputs", "equal-length rows"]),
        (("inputs",), KeyError, ["inputs", "missing"]),
        (("inputs",), [["a"]], ["inputs[0,0]", "not an exact number"]),
        (("params", "free"), ["L3.W"], ["[params].free", "no parameter tensor L3.W", "L2.W [1, 2]"]),
        (("params", "free"), ["L1.W[5,0]"], ["out of range", "shape [2, 1]"]),
        (("params", "free"), ["L1.W", "L1.W[0,0]"], ["L1.W[0,0] is listed twice"]),
        (("params", "free"), ["weights"], ["'weights' is not a parameter name", "L1.W [2, 1]"]),
        (("params", "fixed", "L2.W"), [[1]], ["[params.fixed].L2.W", "shape [1, 2]"]),
        (("params", "seed"), -1, ["[params].seed"]),
        (("output",), {"reduce": "mean"}, ["[output].reduce", "squared_error"]),
        (("output",), {"reduce": "weighted"}, ["needs weights", "1 numbers"]),
        (("ad",), {"proxy": "torch"}, ["[ad].proxy", "unknown proxy 'torch'"]),
        (("ad",), {"proxi": "left"}, ["[ad]", "unknown key 'proxi'"]),
    ],
)
def test_bad_descriptions(path, value, words):
    with pytest.raises(FpadError) as e:
        NetworkSpec.from_dict(_mutate(path, value), source="net.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("net.toml: ")
    for w in words:
        assert w in msg, msg


def test_bad_layer_structure():
    conv = {"inputs": [[1, 2]], "layers": [{"kind": "conv1d", "channels": 1, "kernel": 1}]}
    with pytest.raises(FpadError, match=r"layers\[0\]: conv1d needs a \[C, L\] input.*input_shape"):
        NetworkSpec.from_dict(conv)
    add = {"inputs": [[1]], "layers": [{"kind": "dense", "width": 2}, {"kind": "add", "from": 0}]}
    with pytest.raises(FpadError, match=r"layers\[1\].from: layer 0 has output shape \[1\]"):
        NetworkSpec.from_dict(add)
    add["layers"][1]["from"] = 1
    with pytest.raises(FpadError, match=r"layers\[1\].from: 1 is not an earlier layer"):
        NetworkSpec.from_dict(add)
    shape = {"inputs": [[1, 2]], "input_shape": [1, 3], "layers": [{"kind": "dense", "width": 1}]}
    with pytest.raises(FpadError, match=r"input_shape: \[1, 3\] has 3 entries but each input row has 2"):
        NetworkSpec.from_dict(shape)


def test_build_errors():
    spec = NetworkSpec.from_dict(dense_net(params={"fixed": {"L2.W": [[1, "0.3"]]}}), source="n.toml")
    with pytest.raises(FpadError, match=r"^n.toml: \[params\].free: no free parameters; .*L1.W \[2, 1\]"):
        spec.build(FP4)
    with pytest.raises(FpadError, match=r"\[params.fixed\] L2.W\[0,1\]: 3/10 is not in e2m1; .*0.0 and 0.5"):
        spec.build(FP4, free=["L1.b"])
    with pytest.raises(FpadError, match=r"--free: no parameter tensor L9.b"):
        spec.build(FP4, free=["L9.b"])


def test_file_errors(tmp_path):
    with pytest.raises(FpadError, match="does not exist"):
        NetworkSpec.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("inputs = [[1.0]\n")
    with pytest.raises(FpadError, match=r"bad.toml: malformed TOML"):
        NetworkSpec.from_toml(bad)
    bad.write_text("inputs = [[inf]]\n")  # valid TOML, not a network value: the key is named
    with pytest.raises(FpadError, match=r"bad.toml: inputs\[0,0\]: inf is not allowed; values must be finite"):
        NetworkSpec.from_toml(bad)


def test_bias_kind_through_pointwise_and_residual_layers():
    d = {
        "inputs": [[1], [2]],
        "layers": [
            {"kind": "dense", "width": 1},
            {"kind": "activation", "activation": "relu"},
            {"kind": "dense", "width": 1, "bias": False},
            {"kind": "add", "from": 2, "activation": "relu"},
        ],
        "params": {"free": ["L1", "L3"]},
    }
    pb = NetworkSpec.from_dict(d).build(FP4)
    # relu(w x + b): layer 2's pre-activation carries L1.b; layer 4's is L3's bias-free output
    assert pb.has_bias == {2: "distinct", 4: "none"}
    assert [n.tag for n in pb.program.nodes if n.op == ACT] == ["L2[0] s0", "L4[0] s0", "L2[0] s1", "L4[0] s1"]
    # w = 1, b = -1, v = 2: x=1: h = 0, relu(0 + 0) = 0; x=2: h = 1, relu(2 + 1) = 3
    assert P(pb, "L1.W[0,0]=1,L1.b[0]=-1,L3.W[0,0]=2") == 3
    d["layers"][2]["bias"] = True
    d["layers"][2]["activation"] = "identity"
    pb = NetworkSpec.from_dict(d).build(FP4, free=["L1", "L3"])
    assert pb.has_bias == {2: "distinct", 4: "distinct"} and pb.has_bias_params
