"""PyTorch's autograd at every point of a grid, classified exactly against fpad.

For a dense network (a :class:`fpad.network.Problem` whose layers are dense with pointwise
activations), each activation is written with one of the spellings users write (:data:`VARIANTS`:
``F.relu``, ``torch.clamp(x, min=0)``, ``torch.maximum(x, 0)``, ``torch.where(x > 0, x, 0)``,
``F.relu6``, ``torch.clamp(x, 0, 6)``, ``F.hardsigmoid``). The network is evaluated in a torch
dtype with ``F.linear`` per layer and differentiated by ``torch.func.grad`` under ``vmap`` over
grid points. Every framework number is a binary float, hence an exact rational, so each point is
classified exactly (no tolerance), first match wins:

* ``equal_ad``: the framework's gradient equals fpad's exact AD with PyTorch's proxies;
* ``equal_dp``: it equals the true derivative DP (P differentiable there) but not fpad's AD;
* ``rounding``: it follows the exact forward's branches (every activation input on the same
  piece, on a kink exactly when the exact one is) and no kink is touched: the difference is
  rounding of the values;
* ``kink_rule``: same branches, but a kink is touched: the op's own derivative at the kink
  (``clamp`` takes 1, ``maximum`` splits 1/2), possibly with rounding;
* ``wrong_branch``: some activation input, as the framework computed it, lies on another piece
  than the exact one (or on a kink the exact value misses, or off one it hits).

``kink_derivatives`` records what each op's autograd returns at each kink, measured.
"""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

from fpad.errors import FpadError

CLASSES = ("equal_ad", "equal_dp", "rounding", "kink_rule", "wrong_branch")
DTYPES = ("float64", "float32", "bfloat16")


def _torch():
    try:
        import torch
    except ImportError:
        raise FpadError('the PyTorch audit needs PyTorch: pip install "fpad[train]"') from None
    return torch


def variants() -> dict[str, dict]:
    """activation name -> {spelling: callable on a tensor}."""
    torch = _torch()
    import torch.nn.functional as F

    zero = torch.zeros_like
    return {
        "relu": {"F.relu": F.relu, "torch.clamp(x, min=0)": lambda x: torch.clamp(x, min=0),
                 "torch.maximum(x, 0)": lambda x: torch.maximum(x, zero(x)),
                 "torch.where(x > 0, x, 0)": lambda x: torch.where(x > 0, x, zero(x))},
        "relu6": {"F.relu6": F.relu6, "torch.clamp(x, 0, 6)": lambda x: torch.clamp(x, 0, 6)},
        "hardsigmoid": {"F.hardsigmoid": F.hardsigmoid},
        "identity": {"identity": lambda x: x},
    }


def kink_derivatives(act_name: str, spelling: str, kinks, dtype: str) -> list[Fraction]:
    """What the op's autograd returns at each kink, in ``dtype`` (exact rationals)."""
    torch = _torch()
    from torch.func import grad, vmap

    f = variants()[act_name][spelling]
    xs = torch.tensor([float(k) for k in kinks], dtype=getattr(torch, dtype))
    return [Fraction(float(g)) for g in vmap(grad(f))(xs)]


def _layers(problem):
    spec = problem.spec
    out = []
    for layer in spec.layers:
        if layer.kind != "dense":
            raise FpadError(f"the PyTorch audit takes dense networks; layer {layer.index} is {layer.kind}")
        name = (layer.activation.spec if layer.activation is not None else "identity").split(":")[0]
        if name not in variants():
            raise FpadError(f"the PyTorch audit knows relu, relu6, hardsigmoid and identity; layer "
                            f"{layer.index} uses {name}")
        out.append((layer, name))
    if spec.reduce == "squared_error":
        raise FpadError("the PyTorch audit takes reduce = sum or weighted")
    return out


def _torch_fn(problem, spellings: dict, dtype):
    """f(full parameter vector) -> (P, pre-activations of kinked layers, flattened per sample)."""
    torch = _torch()
    import torch.nn.functional as F

    spec = problem.spec
    index = spec._index
    layers = _layers(problem)
    x = torch.tensor([[float(v) for v in row] for row in spec.inputs], dtype=dtype)
    out_w = None if spec.out_weights is None else torch.tensor([float(v) for v in spec.out_weights], dtype=dtype)

    def take(w, layer, kind):
        if kind == "W":
            if layer.const_weight is not None:
                return torch.tensor([[float(v) for v in r] for r in layer.const_weight], dtype=dtype)
            ids = [[index[layer.weight.entry_name((i, j))] for j in range(layer.weight.shape[1])]
                   for i in range(layer.weight.shape[0])]
            return w[torch.tensor(ids)]
        if layer.bias == "param":
            return w[torch.tensor([index[layer.bias_tensor.entry_name((i,))] for i in range(layer.out_shape[0])])]
        if layer.bias == "shared":
            return w[index[layer.bias_tensor.entry_name((0,))]].expand(layer.out_shape[0])
        if layer.bias == "const":
            return torch.tensor([float(v) for v in layer.const_bias], dtype=dtype)
        return None

    def f(w):
        z, pres = x, []
        for layer, act in layers:
            pre = F.linear(z, take(w, layer, "W"), take(w, layer, "b"))
            if act != "identity":
                pres.append(pre)
            z = spellings[act](pre)
        p = (z * out_w).sum() if out_w is not None else z.sum()
        return p, tuple(pres)

    return f


def audit(problem, dtypes=DTYPES, spellings=None, chunk: int = 4096, progress=None) -> dict:
    """Classify PyTorch's gradient at every grid point, for each spelling of the network's
    activations and each dtype. Returns {"rows": [...], "points": n, "kink_derivatives": {...}}."""
    torch = _torch()
    from torch.func import grad, vmap

    from fpad import oracle
    from fpad.ad import ad_gradient, forward as exact_forward

    t0 = time.perf_counter()
    layers = _layers(problem)
    acts = list(dict.fromkeys(a for _, a in layers if a != "identity"))
    table = variants()
    choices = {a: list(table[a]) for a in acts} | (spellings or {})
    combos = [dict(zip(acts, c)) for c in itertools.product(*(choices[a] for a in acts))]
    vals = problem.fmt.values_fraction()
    k = len(problem.free)
    points = [list(p) for p in itertools.product(vals, repeat=k)]
    # fpad's side, once per point: AD with PyTorch's proxies, DP, and the exact pre-activations
    ad, dp, pre_exact = [], [], []
    kinked = [(layer, a) for layer, a in layers if a != "identity"]
    for pt in points:
        w = problem.full_point(pt)
        vals_exact = exact_forward(problem.program, w)
        ad.append(tuple(ad_gradient(problem.program, w, problem.free, problem.proxy, values=vals_exact)))
        r = oracle.classify(problem, pt)
        dp.append(tuple(r.dp) if r.differentiable else None)
        pre_exact.append(_exact_pres(problem, w, kinked))
    rows = []
    base = torch.tensor([float(v) for v in problem.values], dtype=torch.float64)
    free_idx = torch.tensor(problem.free)
    for dtype in dtypes:
        td = getattr(torch, dtype)
        for combo in combos:
            f = _torch_fn(problem, {**{a: table[a][s] for a, s in combo.items()}, "identity": table["identity"]["identity"]}, td)
            g_and_pre = vmap(grad(f, has_aux=True))
            counts = dict.fromkeys(CLASSES, 0)
            for start in range(0, len(points), chunk):
                batch = torch.tensor([[float(v) for v in p] for p in points[start:start + chunk]], dtype=torch.float64)
                w = base.repeat(len(batch), 1)
                w[:, free_idx] = batch
                g, pres = g_and_pre(w.to(td))
                g = g[:, free_idx].to(torch.float64).tolist()
                pres = [t.to(torch.float64).reshape(len(batch), -1).tolist() for t in pres]
                for j in range(len(batch)):
                    i = start + j
                    gf = tuple(Fraction(v) for v in g[j])
                    fw_pres = [[Fraction(v) for v in t[j]] for t in pres]
                    counts[_classify(gf, ad[i], dp[i], fw_pres, pre_exact[i], kinked)] += 1
            rows.append({"dtype": dtype, "ops": ", ".join(combo.values()), "points": len(points), **counts})
            if progress:
                progress(f"audit: {dtype} {', '.join(combo.values())}: {counts}")
    kd = {f"{s} ({dtype})": [str(d) for d in kink_derivatives(a, s, _kinks(layers, a), dtype)]
          for a in acts for s in choices[a] for dtype in dtypes}
    return {"rows": rows, "points": len(points), "kink_derivatives": kd, "elapsed_s": time.perf_counter() - t0}


def _kinks(layers, act_name):
    for layer, a in layers:
        if a == act_name:
            return list(layer.activation.kinks)
    return []


def _exact_pres(problem, w, kinked):
    """The exact pre-activations of the kinked layers, per layer in torch's (sample, unit) order."""
    from fpad.network import _tag
    from fpad.rounded.arith import EXACT
    from fpad.rounded.forward import forward

    p = forward(problem.spec, w, EXACT)
    return [[p.pre[_tag(layer.index, (i,), b)] for b in range(problem.spec.batch) for i in range(layer.out_shape[0])]
            for layer, _ in kinked]


def _classify(g, ad, dp, fw_pres, ex_pres, kinked) -> str:
    if g == ad:
        return "equal_ad"
    if dp is not None and g == dp:
        return "equal_dp"
    touched = False
    for (layer, _), fw, ex in zip(kinked, fw_pres, ex_pres):
        act = layer.activation
        for a, b in zip(fw, ex):
            if (act.piece(a), act.kink_index(a) >= 0) != (act.piece(b), act.kink_index(b) >= 0):
                return "wrong_branch"
            touched = touched or act.kink_index(b) >= 0
    return "kink_rule" if touched else "rounding"
