"""Lower a small torch model and its minibatch to fpad's network description; decide exactly.

The captured graph (:mod:`fpad.train.trace`) becomes a :class:`fpad.network.NetworkSpec` dict:
``linear`` -> ``dense``, ``conv2d`` -> ``conv2d``, each activation call -> an ``activation``
layer, ``max_pool2d`` (no padding) -> ``maxpool2d``, a residual ``a + b`` -> ``add``. Trainable
parameters are the differentiation variables (free, at their float values taken exactly);
frozen ones (``requires_grad=False``) become constants. The oracle (:func:`fpad.oracle.classify`)
then decides exactly whether AD's output (torch's proxies: ``pytorch`` for the activation
modules, ``const:1`` for ``clamp``) lies in the Clarke set of the minibatch loss.

What cannot be lowered returns None, with the reason in :func:`lowering` 's error: batch norm
(its variance involves a square root), losses other than :class:`LinearLoss` and
:class:`SquaredErrorLoss` (cross-entropy is not rational), one activation base with two
different proxies in one model, non-sequential graphs beyond residual additions, or more than
:data:`MAX_PARAMS` parameters. The oracle takes the values as exact rationals; when float
rounding occurred in the forward pass the two may see different touches, so tests use values on
coarse dyadic grids where float32 arithmetic is exact.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify
from fpad.train.trace import Capture, OpTable

MAX_PARAMS = 64


class LinearLoss:
    """loss = sum over samples b and output units i of weights[i] * output[b, i]."""

    def __init__(self, weights):
        self.weights = [Fraction(w) for w in weights]  # floats at their exact binary value

    def __call__(self, output, targets=None):
        w = torch.tensor([float(x) for x in self.weights], dtype=output.dtype)
        return (output.reshape(output.shape[0], -1) * w).sum()


class SquaredErrorLoss:
    """loss = sum over samples and units of (output - targets)^2."""

    def __call__(self, output, targets):
        return ((output.reshape(output.shape[0], -1) - targets.reshape(output.shape[0], -1)) ** 2).sum()


class NotLowerable(Exception):
    """The model or loss is outside what fpad's network description expresses."""


def _nums(a) -> list:
    a = np.asarray(a, dtype=np.float64)
    return [_nums(x) for x in a] if a.ndim else str(Fraction(float(a)))


class _Lowering:
    """The network description's layers built node by node, where each node's value lives, and the
    free parameters with their values."""

    def __init__(self, trace):
        self.trace = trace
        self.layers: list[dict] = []
        self.where: dict[int, int] = {}  # node id -> spec layer index of its value (0: the network input)
        self.proxies: dict[str, str] = {}  # activation base -> its AD proxy
        self.free: list[str] = []
        self.values: list[Fraction] = []

    def add(self, n) -> None:
        entry = _LOWER[n.op](self, n)
        if entry is not None:  # a new layer (input and reshape only name an existing value)
            self.layers.append(entry)
            self.where[n.id] = len(self.layers)

    def _chain(self, n):
        if self.where.get(n.parents[0], -2) != len(self.layers):
            raise NotLowerable("the graph is not a chain (only residual additions may branch)")

    def _params(self, n, entry, flat: bool) -> dict:
        """The layer's weight and bias: free if trainable, else constants (``flat``: a dense
        layer's weight matrix, one row per unit)."""
        l = len(self.layers) + 1
        for key, pname in (("W", n.info["weight"]), ("b", n.info["bias"])):
            if pname is None:
                if key == "b":
                    entry["bias"] = False
                continue
            v = self.trace.param_values[pname]
            if self.trace.trainable[pname]:
                self.free.append(f"L{l}.{key}")
                self.values.extend(Fraction(float(x)) for x in v.reshape(-1))
            elif key == "W":
                entry["weights"] = _nums(v.reshape(v.shape[0], -1) if flat else v)
            else:
                entry["bias"] = _nums(v)
        return entry

    def input(self, n):
        self.where[n.id] = 0

    def reshape(self, n):
        self.where[n.id] = self.where.get(n.parents[0], -2)

    def linear(self, n):
        self._chain(n)
        return self._params(n, {"kind": "dense", "width": int(n.tensor.shape[1])}, flat=True)

    def conv2d(self, n):
        self._chain(n)
        w = self.trace.param_values[n.info["weight"]]
        return self._params(n, {"kind": "conv2d", "channels": int(w.shape[0]), "kernel": list(w.shape[2:]),
                                "stride": list(n.info["stride"]), "padding": list(n.info["padding"])}, flat=False)

    def act(self, n):
        self._chain(n)
        a = n.info["act"]
        base = a.act.name.split(":")[0]
        if self.proxies.setdefault(base, a.proxy_spec) != a.proxy_spec:
            raise NotLowerable(f"{base} is used with two different AD proxies")
        return {"kind": "activation", "activation": a.act.spec}

    def pool(self, n):
        self._chain(n)
        if n.info["padding"] != (0, 0):
            raise NotLowerable("max_pool2d with padding")
        return {"kind": "maxpool2d", "window": list(n.info["kernel"]), "stride": list(n.info["stride"])}

    def residual(self, n):
        if len(n.parents) != 2 or tuple(n.coef) != (1, 1):
            raise NotLowerable("only a + b residual additions are expressible")
        a, b = (self.where.get(p, -2) for p in n.parents)
        last = len(self.layers)
        src = b if a == last else a if b == last else None
        if src is None or src < 0 or src >= last:
            raise NotLowerable("residual addition not of the previous layer and an earlier one")
        return {"kind": "add", "from": src}

    def batch_norm(self, n):
        raise NotLowerable("batch_norm cannot be lowered (batch norm involves a square root)")


# each traced op's layer in the network description
_LOWER = OpTable("the lowering to a network description", {
    "input": _Lowering.input, "reshape": _Lowering.reshape, "linear": _Lowering.linear, "conv2d": _Lowering.conv2d,
    "act": _Lowering.act, "pool": _Lowering.pool, "add": _Lowering.residual, "batch_norm": _Lowering.batch_norm,
})


def lowering(trace, loss_fn, targets=None) -> tuple[dict, list[str], list[Fraction]]:
    """(network dict, free tensor names, their values in order). Raises NotLowerable."""
    nodes = trace.nodes
    x0 = nodes[0].value()
    B = x0.shape[0]
    low = _Lowering(trace)
    spec = {"inputs": [_nums(r) for r in x0.reshape(B, -1)], "layers": low.layers}
    if x0.ndim > 2:
        spec["input_shape"] = list(x0.shape[1:])
    for n in nodes:
        low.add(n)
    where, proxies, free, values = low.where, low.proxies, low.free, low.values
    if where.get(trace.output) != len(spec["layers"]):
        raise NotLowerable("the model output is not the last layer")
    n_out = int(np.prod(nodes[trace.output].tensor.shape[1:]))
    if isinstance(loss_fn, LinearLoss):
        if len(loss_fn.weights) != n_out:
            raise FpadError(f"LinearLoss has {len(loss_fn.weights)} weights; the model has {n_out} outputs")
        spec["output"] = {"reduce": "weighted", "weights": [str(w) for w in loss_fn.weights]}
    elif isinstance(loss_fn, SquaredErrorLoss):
        t = targets.detach().to(torch.float64).numpy().reshape(B, -1)
        spec["output"] = {"reduce": "squared_error", "targets": [_nums(r) for r in t]}
    else:
        raise NotLowerable("the loss must be fpad.train.LinearLoss or SquaredErrorLoss to be decided exactly")
    default = "pytorch"
    over = {k: v for k, v in proxies.items() if v != default}
    spec["ad"] = {"proxy": ",".join([default] + [f"{k}={v}" for k, v in sorted(over.items())])}
    if len(values) > MAX_PARAMS:
        raise NotLowerable(f"{len(values)} trainable parameters (more than {MAX_PARAMS})")
    if not free:
        raise NotLowerable("no trainable parameters")
    spec["params"] = {"free": free}
    return spec, free, values


def exact_result(model, inputs, loss_fn, targets=None):
    """The oracle's :class:`fpad.oracle.PointResult`, or None if the model cannot be lowered."""
    saved = {n: b.detach().clone() for n, b in model.named_buffers()}
    with torch.no_grad(), Capture(model) as cap:
        model(inputs)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(saved[n])
    try:
        spec, free, values = lowering(cap.trace, loss_fn, targets)
    except NotLowerable:
        return None
    problem = NetworkSpec.from_dict(spec, "<torch model>").build(get_format("e2m1"), free=free)
    try:
        return classify(problem, values)
    except FpadError:  # too many one-sided choices to enumerate
        return None


def exact_verdict(model, inputs, loss_fn, targets=None) -> bool | None:
    """True iff AD's output is in the (first-order) Clarke set; None if not decidable here."""
    r = exact_result(model, inputs, loss_fn, targets)
    return None if r is None else bool(r.clarke_ok)
