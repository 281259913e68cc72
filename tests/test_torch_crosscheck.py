"""fpad.ad with the ``pytorch`` proxy returns exactly what torch.autograd returns.

Random small networks at points where activations sit exactly on kinks (biases are set so that
chosen pre-activations equal a kink) and max-pool windows tie. All values are dyadic rationals
of a few bits, so float64 evaluation in torch is exact, torch's kink tests see the exact
pre-activations, and its gradients are compared with ours *exactly* (``Fraction(float)``).

HardSigmoid's slope 1/6 is not a binary float, and torch 2.13's CPU backward multiplies by a
*float32* constant even for float64 tensors (observed: 0.1666666716337204 = float32(1/6)). Its
check therefore uses one HardSigmoid layer, a single sample and power-of-two inputs, so every torch
gradient entry is c * 2^k with c = float32(1/6), exactly; we compare it with our exact value
scaled by 6c -- still an equality, no tolerance. (The proxy decision at the kinks, 0, agrees.)
"""

import random
from fractions import Fraction as F

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

from fpad.ad import ad_gradient, forward  # noqa: E402
from fpad.formats import get_format  # noqa: E402
from fpad.graph import ACT, MAX  # noqa: E402
from fpad.network import NetworkSpec  # noqa: E402
from fpad.proxies import get_proxy  # noqa: E402

TORCH_ACT = {
    "relu": TF.relu,
    "leaky_relu:1/64": lambda x: TF.leaky_relu(x, 1 / 64),
    "relu6": TF.relu6,
    "hardtanh": TF.hardtanh,
    "hardsigmoid": TF.hardsigmoid,
    "abs": torch.abs,
    "identity": lambda x: x,
}
TORCH_ONE_SIXTH = F(float(torch.tensor(1 / 6, dtype=torch.float32)))  # the constant torch uses
WEIGHTS = [F(n, 2) for n in (-4, -2, -1, 0, 1, 2, 4)]
INPUTS = [F(n, 2) for n in range(-6, 7)]
FMT = get_format("bf16")  # only the parameter-name plumbing needs a format: every value is fixed


def _t(x):
    return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)


def _problem(d):
    return NetworkSpec.from_dict(d).build(FMT)


def _force_kinks(problem, w, rng, prefix_layers):
    """Move biases so that some neurons of each layer (sample chosen at random) sit on a kink."""
    for l, width in prefix_layers:
        vals = forward(problem.program, w)
        for i in range(width):
            if rng.random() < 0.25:
                continue
            tags = [n for n in problem.program.nodes if n.tag.startswith(f"L{l}[{i}] ") and n.op == ACT]
            if not tags:
                continue
            node = rng.choice(tags)
            k = problem.param_names.index(f"L{l}.b[{i}]" if f"L{l}.b[{i}]" in problem.param_names else f"L{l}.b[0]")
            w[k] += rng.choice(node.act.kinks) - vals[node.args[0]]
    return w


def _dense_case(rng, acts, batch):
    n0 = rng.randint(1, 2)
    widths = [rng.randint(1, 3) for _ in range(rng.randint(1, 2))]
    layers = [{"kind": "dense", "width": wd, "bias": True, "activation": rng.choice(acts)} for wd in widths]
    layers.append({"kind": "dense", "width": 1, "bias": True})
    inputs = [[rng.choice(INPUTS) for _ in range(n0)] for _ in range(batch)]
    d = {"inputs": [[str(x) for x in row] for row in inputs], "layers": layers, "params": {"free": [f"L{l}" for l in range(1, len(layers) + 1)]}}
    problem = _problem(d)
    w = [rng.choice(WEIGHTS) for _ in problem.param_names]
    w = _force_kinks(problem, w, rng, list(enumerate(widths, start=1)))
    return d, problem, w, inputs


def _torch_dense(d, problem, w, inputs):
    """The same network in torch; returns {parameter name: gradient as Fraction}."""
    tensors = {}
    for l, layer in enumerate(d["layers"], start=1):
        n_in = len(inputs[0]) if l == 1 else d["layers"][l - 2]["width"]
        W = [[_t(w[problem.param_names.index(f"L{l}.W[{i},{j}]")]) for j in range(n_in)] for i in range(layer["width"])]
        b = [_t(w[problem.param_names.index(f"L{l}.b[{i}]")]) for i in range(layer["width"])]
        tensors[l] = (W, b)
    total = torch.zeros((), dtype=torch.float64)
    for row in inputs:
        z = torch.stack([torch.tensor(float(x), dtype=torch.float64) for x in row])
        for l, layer in enumerate(d["layers"], start=1):
            W, b = tensors[l]
            Wt = torch.stack([torch.stack(r) for r in W])
            y = Wt @ z + torch.stack(b)
            z = TORCH_ACT[layer.get("activation", "identity")](y)
        total = total + z.sum()
    total.backward()
    grads = {}
    for l, (W, b) in tensors.items():
        for i, r in enumerate(W):
            for j, t in enumerate(r):
                grads[f"L{l}.W[{i},{j}]"] = F(t.grad.item()) if t.grad is not None else F(0)
        for i, t in enumerate(b):
            grads[f"L{l}.b[{i}]"] = F(t.grad.item()) if t.grad is not None else F(0)
    return grads


def _ours(problem, w):
    idx = list(range(len(problem.param_names)))
    g = ad_gradient(problem.program, w, idx, get_proxy("pytorch"))
    return dict(zip(problem.param_names, g))


def _touched(problem, w) -> int:
    vals = forward(problem.program, w)
    return sum(1 for n in problem.program.nodes if n.op == ACT and n.act.kink_index(vals[n.args[0]]) >= 0)


@pytest.mark.parametrize("acts", [["relu"], ["leaky_relu:1/64"], ["relu6"], ["hardtanh"], ["abs"], ["relu", "relu6", "hardtanh", "abs", "leaky_relu:1/64"]])
def test_dense_networks_at_kinks_match_torch_exactly(acts):
    rng = random.Random(",".join(acts))  # str seeds are stable across runs
    touched = 0
    for _ in range(25):
        d, problem, w, inputs = _dense_case(rng, acts, rng.randint(1, 3))
        touched += _touched(problem, w)
        assert _ours(problem, w) == _torch_dense(d, problem, w, inputs)
    assert touched >= 25  # the comparisons really exercise the proxies


def test_hardsigmoid_single_layer_matches_torch():
    rng = random.Random(6)
    pow2 = [F(s * 2**e) for s in (1, -1) for e in (-1, 0, 1)] + [F(0)]
    touched = 0
    for _ in range(40):
        n0, width = rng.randint(1, 2), rng.randint(1, 3)
        inputs = [[rng.choice(pow2) for _ in range(n0)]]
        d = {"inputs": [[str(x) for x in inputs[0]]], "layers": [{"kind": "dense", "width": width, "bias": True, "activation": "hardsigmoid"}],
             "params": {"free": ["L1"]}}
        problem = _problem(d)
        w = [rng.choice(WEIGHTS) for _ in problem.param_names]
        w = _force_kinks(problem, w, rng, [(1, width)])
        touched += _touched(problem, w)
        ours = _ours(problem, w)
        theirs = _torch_dense(d, problem, w, inputs)
        assert {k: v * 6 * TORCH_ONE_SIXTH for k, v in ours.items()} == theirs
    assert touched >= 20


def test_maxpool_ties_route_like_torch():
    """conv1d (kernel 2, bias) + optional ReLU + maxpool1d(2): inputs with repeated entries make
    windows tie; AD routes to the first maximiser exactly like F.max_pool1d."""
    rng = random.Random(7)
    ties = 0
    for _ in range(30):
        C = rng.randint(1, 2)
        L = 6
        x = [[rng.choice([F(0), F(1), F(-1), F(2)]) for _ in range(L)] for _ in range(C)]
        for c in range(C):  # repeat entries so that adjacent conv outputs coincide
            for p in range(0, L - 1, 2):
                if rng.random() < 0.6:
                    x[c][p + 1] = x[c][p]
        act = rng.choice(["identity", "relu"])
        d = {
            "inputs": [[str(v) for row in x for v in row]],
            "input_shape": [C, L],
            "layers": [
                {"kind": "conv1d", "channels": 2, "kernel": 1, "bias": True, "activation": act},
                {"kind": "maxpool1d", "window": 2},
            ],
            "output": {"reduce": "weighted", "weights": [str(rng.choice(WEIGHTS)) for _ in range(2 * (L // 2))]},
            "params": {"free": ["L1"]},
        }
        problem = _problem(d)
        w = [rng.choice(WEIGHTS) for _ in problem.param_names]
        vals = forward(problem.program, w)
        ties += sum(1 for i, n in enumerate(problem.program.nodes) if n.op == MAX and sum(vals[a] == vals[i] for a in n.args) > 1)
        ours = _ours(problem, w)
        W = torch.tensor([[[float(w[problem.param_names.index(f"L1.W[{o},{c},0]")])] for c in range(C)] for o in range(2)],
                         dtype=torch.float64, requires_grad=True)
        b = torch.tensor([float(w[problem.param_names.index(f"L1.b[{o}]")]) for o in range(2)], dtype=torch.float64, requires_grad=True)
        xt = torch.tensor([[[float(v) for v in row] for row in x]], dtype=torch.float64)
        y = TORCH_ACT[act](TF.conv1d(xt, W, b))
        pooled = TF.max_pool1d(y, 2).reshape(-1)
        weights = torch.tensor([float(F(s)) for s in d["output"]["weights"]], dtype=torch.float64)
        (pooled * weights).sum().backward()
        theirs = {f"L1.W[{o},{c},0]": F(W.grad[o, c, 0].item()) for o in range(2) for c in range(C)}
        theirs.update({f"L1.b[{o}]": F(b.grad[o].item()) for o in range(2)})
        assert ours == theirs
    assert ties >= 15
