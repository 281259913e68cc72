"""A framework's autograd at every point of a grid, classified exactly against fpad.

A framework adapter (:mod:`fpad.audit.torch_audit`, :mod:`fpad.audit.jax_audit`) evaluates a dense
network (a :class:`fpad.network.Problem` whose layers are dense with pointwise activations), each
activation written with one of the spellings users write, in one of its dtypes, and returns its
gradients and pre-activations at a batch of grid points (vectorised: ``vmap`` of ``grad``). Every
framework number is a binary float, hence an exact rational, so each point is classified exactly
(no tolerance), first match wins:

* ``equal_ad``: the framework's gradient equals fpad's exact AD with PyTorch's proxies;
* ``equal_dp``: it equals the true derivative DP (P differentiable there) but not fpad's AD;
* ``rounding``: it follows the exact forward's branches (every activation input on the same
  piece, on a kink exactly when the exact one is) and no kink is touched: the difference is
  rounding of the values (the data, the slopes, the sums);
* ``kink_rule``: same branches, but a kink is touched: the op's own derivative at the kink
  (``clamp`` takes 1, ``maximum`` splits 1/2), possibly with rounding;
* ``wrong_branch``: some activation input, as the framework computed it, lies on another piece
  than the exact one (or on a kink the exact value misses, or off one it hits);
* ``nonfinite``: the framework's gradient or pre-activations overflowed to inf/NaN.

fpad's AD here is always PyTorch's convention (ReLU'(0) = 0 and the other proxies of
:func:`fpad.proxies.get_proxy` ``("pytorch")``), whatever proxy the network file names; DP is
taken with respect to the free parameters (a problem built with ``wrt_all`` is refused). Grid
values that a dtype cannot hold exactly are refused for that dtype, so every difference is the
framework's own.

The kink derivatives of each spelling are measured (the adapter's ``kink_derivatives``).
"""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import numpy as np

from fpad.errors import FpadError

CLASSES = ("equal_ad", "equal_dp", "rounding", "kink_rule", "wrong_branch", "nonfinite")
KNOWN = ("relu", "relu6", "hardsigmoid", "identity")


def layers_of(problem) -> list[tuple]:
    """(layer, activation name) per layer; refuses what an adapter cannot write."""
    spec = problem.spec
    out = []
    for layer in spec.layers:
        if layer.kind != "dense":
            raise FpadError(f"the framework audit takes dense networks; layer {layer.index} is {layer.kind}")
        name = (layer.activation.spec if layer.activation is not None else "identity").split(":")[0]
        if name not in KNOWN:
            raise FpadError(f"the framework audit knows relu, relu6, hardsigmoid and identity; layer "
                            f"{layer.index} uses {name}")
        out.append((layer, name))
    if spec.reduce == "squared_error":
        raise FpadError("the framework audit takes reduce = sum or weighted")
    return out


def dense_arrays(problem) -> dict:
    """What an adapter needs to build the network: per layer the flat parameter indices of W and
    b (or constants), as numpy arrays, plus inputs and output weights (float64)."""
    spec, index = problem.spec, problem.spec._index
    layers = []
    for layer, act in layers_of(problem):
        if layer.const_weight is not None:
            w = ("const", np.array([[float(v) for v in r] for r in layer.const_weight]))
        else:
            w = ("param", np.array([[index[layer.weight.entry_name((i, j))] for j in range(layer.weight.shape[1])]
                                    for i in range(layer.weight.shape[0])]))
        units = layer.out_shape[0]
        if layer.bias == "param":
            b = ("param", np.array([index[layer.bias_tensor.entry_name((i,))] for i in range(units)]))
        elif layer.bias == "shared":
            b = ("param", np.full(units, index[layer.bias_tensor.entry_name((0,))]))
        elif layer.bias == "const":
            b = ("const", np.array([float(v) for v in layer.const_bias]))
        else:
            b = None
        layers.append((w, b, act))
    return {"layers": layers, "inputs": np.array([[float(v) for v in r] for r in spec.inputs]),
            "out_weights": None if spec.out_weights is None else np.array([float(v) for v in spec.out_weights])}


def network(arrays, fns, linear, take, x, out_weights):
    """The network as a framework computes it, for an adapter: ``f(w) -> (P, pre-activations of
    the kinked layers)``, each layer ``linear(z, W, b)`` (b may be None) followed by its activation
    spelling ``fns[name]``; ``take(w, spec)`` reads a weight or bias (a constant or parameters)."""

    def f(w):
        z, pres = x, []
        for wspec, bspec, act in arrays["layers"]:
            pre = linear(z, take(w, wspec), None if bspec is None else take(w, bspec))
            if act != "identity":
                pres.append(pre)
            z = fns[act](pre)
        return ((z * out_weights).sum() if out_weights is not None else z.sum()), tuple(pres)

    return f


def run(problem, adapter, dtypes, spellings=None, chunk: int = 4096, progress=None) -> dict:
    """Classify ``adapter``'s gradient at every grid point, for each combination of spellings of
    the network's activations and each dtype. Returns {"rows", "points", "kink_derivatives"}."""
    from fpad import oracle
    from fpad.ad import ad_gradient, forward as exact_forward

    from fpad.proxies import get_proxy

    t0 = time.perf_counter()
    if getattr(problem, "wrt_all", False):
        raise FpadError("the framework audit compares gradients with respect to the free parameters; "
                        "build the problem without wrt_all")
    layers = layers_of(problem)
    pytorch = get_proxy("pytorch")
    table = adapter.variants()
    acts = list(dict.fromkeys(a for _, a in layers if a != "identity"))
    choices = {a: list(table[a]) for a in acts} | (spellings or {})
    combos = [dict(zip(acts, c)) for c in itertools.product(*(choices[a] for a in acts))]
    k = len(problem.free)
    points = [list(p) for p in itertools.product(problem.fmt.values_fraction(), repeat=k)]
    kinked = [(layer, a) for layer, a in layers if a != "identity"]
    # fpad's side, once per point: AD with PyTorch's proxies, DP, the exact pre-activations
    ad, dp, pre_exact = [], [], []
    for pt in points:
        w = problem.full_point(pt)
        vals = exact_forward(problem.program, w)
        ad.append(tuple(ad_gradient(problem.program, w, problem.free, pytorch, values=vals)))
        r = oracle.classify(problem, pt)
        dp.append(tuple(r.dp) if r.differentiable else None)
        pre_exact.append(_exact_pres(problem, w, kinked))
    arrays = dense_arrays(problem)
    base = np.array([float(v) for v in problem.values])
    free = np.array(problem.free)
    rows = []
    for dtype in dtypes:
        _check_representable(adapter, problem, dtype, base)
        for combo in combos:
            fns = {a: table[a][s] for a, s in combo.items()} | {"identity": table["identity"]["identity"]}
            counts = dict.fromkeys(CLASSES, 0)
            for start in range(0, len(points), chunk):
                w = np.tile(base, (len(points[start:start + chunk]), 1))
                w[:, free] = [[float(v) for v in p] for p in points[start:start + chunk]]
                g, pres = adapter.gradients(arrays, fns, dtype, w)
                for j in range(len(w)):
                    i = start + j
                    if not (np.isfinite(g[j]).all() and all(np.isfinite(t[j]).all() for t in pres)):
                        counts["nonfinite"] += 1
                        continue
                    gf = tuple(Fraction(float(v)) for v in g[j, free])
                    fw = [[Fraction(float(v)) for v in t[j]] for t in pres]
                    counts[classify(gf, ad[i], dp[i], fw, pre_exact[i], kinked)] += 1
            rows.append({"framework": adapter.NAME, "dtype": dtype, "ops": ", ".join(combo.values()),
                         "points": len(points), **counts})
            if progress:
                progress(f"audit {adapter.NAME}: {dtype} {', '.join(combo.values())}: {counts}")
    kd = {f"{adapter.NAME} {s} ({dtype})": [str(Fraction(float(d))) for d in
                                            adapter.kink_derivatives(table[a][s], _kinks(layers, a), dtype)]
          for a in acts for s in choices[a] for dtype in dtypes}
    return {"rows": rows, "points": len(points), "kink_derivatives": kd, "elapsed_s": time.perf_counter() - t0}


def _check_representable(adapter, problem, dtype, base) -> None:
    """Refuse a dtype that cannot hold every grid value and fixed parameter exactly (a fp16 grid
    in bfloat16 would be rounded before the framework runs, and fpad would blame the framework)."""
    vals = np.array([float(v) for v in problem.fmt.values_fraction()] + list(base))
    back = adapter.roundtrip(vals, dtype)
    if not np.array_equal(back, vals):
        raise FpadError(f"{problem.fmt.name} values (or the fixed parameters) are not all exact in {dtype}; "
                        f"audit this grid in a wider dtype, or a narrower format in {dtype}")


def _kinks(layers, act_name) -> list[float]:
    for layer, a in layers:
        if a == act_name:
            return [float(k) for k in layer.activation.kinks]
    return []


def _exact_pres(problem, w, kinked):
    """Exact pre-activations of the kinked layers, per layer in (sample, unit) order."""
    from fpad.network import _tag
    from fpad.rounded.arith import EXACT
    from fpad.rounded.forward import forward

    p = forward(problem.spec, w, EXACT)
    return [[p.pre[_tag(layer.index, (i,), b)] for b in range(problem.spec.batch) for i in range(layer.out_shape[0])]
            for layer, _ in kinked]


def classify(g, ad, dp, fw_pres, ex_pres, kinked) -> str:
    """One point's class (see the module docstring)."""
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
