"""Random tiny torch models on coarse dyadic grids, for comparing the checker with the oracle.

Weights, biases and inputs are drawn from {-1, -1/2, 0, 1/2, 1} (inputs also +-2), so float32
evaluates every pre-activation exactly and exact kink touches and ties are frequent. Used by the
tests ("certified implies Clarke" on >= 200 models) and by the conservatism analysis.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fpad.train.lower import LinearLoss

GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
ACTS = ("relu", "relu6", "hardtanh", "leaky", "clamp")


class _Clamp(nn.Module):
    def forward(self, x):
        return torch.clamp(x, -1.0, 1.0)


def _act(name):
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardtanh": nn.Hardtanh,
            "leaky": lambda: nn.LeakyReLU(0.25), "clamp": _Clamp}[name]()


def _fill(mod, rng, freeze_weight=False):
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(torch.tensor(rng.choice(GRID, size=tuple(p.shape)), dtype=torch.float32))
    if freeze_weight:
        mod.weight.requires_grad_(False)
    return mod


def random_case(rng: np.random.Generator):
    """(model, inputs, loss, description) of one random tiny case."""
    act = str(rng.choice(ACTS))
    B = int(rng.integers(1, 4))
    if rng.random() < 0.5:
        n0, h = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        first = _fill(nn.Linear(n0, h, bias=bool(rng.random() < 0.6)), rng, freeze_weight=bool(rng.random() < 0.2))
        layers = [first, _act(act)]
        if rng.random() < 0.5:
            layers += [_fill(nn.Linear(h, 1, bias=bool(rng.random() < 0.5)), rng)]
            n_out = 1
        else:
            n_out = h
        x = torch.tensor(rng.choice(GRID + (2.0, -2.0), size=(B, n0)), dtype=torch.float32)
        desc = f"fc {n0}-{h} {act} B={B}"
    else:
        c, k = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        conv = _fill(nn.Conv2d(1, c, (1, k), bias=bool(rng.random() < 0.6)), rng)
        B = min(B, 2)
        W = 4 if k == 1 else 5
        layers = [conv] + ([_act(act)] if rng.random() < 0.8 else []) + [nn.MaxPool2d((1, 2)), nn.Flatten()]
        n_out = c * 1 * ((W - k + 1) // 2)
        x = torch.tensor(rng.choice(GRID, size=(B, 1, 1, W)), dtype=torch.float32)
        desc = f"conv c={c} k={k} {act} pool B={B}"
    loss = LinearLoss([float(v) for v in rng.choice((-1.0, 1.0, 2.0), size=n_out)])
    return nn.Sequential(*layers), x, loss, desc


def random_traces(rng: np.random.Generator, n: int):
    """The captured forward passes of ``n`` random tiny cases (for comparing checker variants)."""
    from fpad.train.trace import Capture

    for _ in range(n):
        m, x, _, _ = random_case(rng)
        with torch.no_grad(), Capture(m) as cap:
            m(x)
        yield cap.trace


def compare_with_oracle(n: int = 220, seed: int = 11) -> dict:
    """Checker vs oracle on ``n`` decided random tiny cases: counts (ints) of each outcome.

    ``certified_not_clarke`` must be 0 (soundness); ``not_certified_clarke / not_certified`` is
    the conditions' conservatism: how often "not certified" is in fact correct AD.
    """
    from fpad.train import check
    from fpad.train.lower import exact_result

    rng = np.random.default_rng(seed)
    out = {"decided": 0, "undecidable": 0, "touched": 0, "certified": 0, "certified_not_clarke": 0,
           "not_certified": 0, "not_certified_clarke": 0, "not_certified_touched": 0,
           "not_certified_touched_clarke": 0, "examples_not_clarke": 0}
    while out["decided"] < n:
        m, x, loss, desc = random_case(rng)
        res = exact_result(m, x, loss)
        if res is None:
            out["undecidable"] += 1
            continue
        rep = check(m, x, loss)
        out["decided"] += 1
        out["touched"] += res.is_touched
        out["examples_not_clarke"] += not res.clarke_ok
        if rep.certified:
            out["certified"] += 1
            out["certified_not_clarke"] += not res.clarke_ok
        else:
            out["not_certified"] += 1
            out["not_certified_clarke"] += bool(res.clarke_ok)
            out["not_certified_touched"] += res.is_touched
            out["not_certified_touched_clarke"] += bool(res.clarke_ok and res.is_touched)
    return out
