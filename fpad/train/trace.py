"""Capture what the ICLR 2024 conditions need from one forward pass of a ``torch.nn.Module``.

:class:`Capture` is a context manager. Inside it, a :class:`torch.overrides.TorchFunctionMode`
sees every torch call the forward makes (modules call the functional API: ``nn.Linear`` ->
``F.linear``, ``nn.ReLU6`` -> ``F.hardtanh``, a residual ``out + x`` -> ``add``), and records a
small dataflow graph of :class:`Node` s keyed by tensor identity: layer inputs z_{l-1} (the input
of each ``linear`` / ``conv2d``), pre-activations (the input of each activation call), pool
windows and the index AD routes each window's gradient to (from
``max_pool2d_with_indices``, the kernel whose indices the backward uses). The training code
changes by one ``with`` line; the forward itself runs unchanged.

Replay. The mode costs a Python dispatch per torch call, which on the small networks of the
experiments is as much as the checks. So from the second forward of one :class:`Capture` on,
the capture runs a :mod:`torch.fx` copy of the model that calls the same modules and functions
and also returns every value the trace holds (max-pools, as modules or functions, call
``max_pool2d_with_indices``, as the mode does); the graph, the activations and each node's static facts come from a forward under
the mode. That second forward runs the copy under the mode and switches to the replay only if
the trace rebuilt from the copy's values equals the mode's, node by node and bit by bit.
Models that fx cannot trace, in-place activations, activation bounds given as tensors, an own
``forward`` attribute, or a change of any module's train/eval flag keep (or go back to) the mode.
``Capture(model, replay=False)`` always uses the mode; tests compare the two on every model.

Nothing is silently skipped: a leaf module of an unsupported type, or a torch call that produces
a floating tensor from a traced one and is not understood (dropout, GELU, average pooling, ...),
raises :class:`fpad.errors.FpadError` naming the layer or the call.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx
from torch import nn
from torch.overrides import TorchFunctionMode

from fpad.errors import FpadError
from fpad.train import acts

SUPPORTED_LEAVES = (
    nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU,
    nn.Hardtanh, nn.Hardsigmoid, nn.Flatten, nn.Identity,
)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# calls that only look at metadata or return non-float results
_IGNORED = {"dim", "size", "numel", "__get__", "__len__", "is_floating_point", "__format__", "__repr__",
            "requires_grad_", "register_hook", "__setstate__", "__bool__", "item", "tolist", "numpy",
            "detach", "cpu", "eq", "ne", "ge", "gt", "le", "lt", "all", "any", "isfinite"}


# The kinds of traced node (``Node.op``). Code that treats ops differently does so through an
# :class:`OpTable` (one per purpose: the block owner search, the block assignment and the
# zero-derivative rule in :mod:`fpad.train.checks`, the lowering in :mod:`fpad.train.lower`),
# never an if/elif chain.
OPS = {
    "input": "the model's input: node 0, and no other node (Capture._pre records it first)",
    "linear": "F.linear with the model's weight w_l (and bias): a block's parameters",
    "conv2d": "F.conv2d with the model's weight w_l (and bias): a block's parameters",
    "batch_norm": "F.batch_norm (its gamma, beta; training mode or not)",
    "act": "a piecewise-linear activation call (info: the activation, its pre-activation)",
    "pool": "max_pool2d (info: kernel, stride, padding, AD's routed indices)",
    "add": "a sum of traced values times the coefficients ``coef`` (add, sub, neg)",
    "reshape": "the parent's values in another shape (flatten, view, ..., widening casts)",
}


class OpTable(dict):
    """Op name -> its rule for one purpose. It must give a rule for every op in :data:`OPS`
    (checked when the table is built); looking up any other op raises FpadError naming it."""

    def __init__(self, purpose: str, rules: dict):
        super().__init__(rules)
        self.purpose = purpose
        if set(rules) != set(OPS):
            raise RuntimeError(f"fpad.train: the {purpose} table covers {sorted(rules)}, "
                               f"not the traced ops {sorted(OPS)}")

    def __missing__(self, op):
        raise FpadError(f"fpad.train: {self.purpose}: unknown traced op {op!r} (known: {', '.join(OPS)})")


@dataclass
class Node:
    """One traced value: ``op`` one of :data:`OPS`.

    ``parents`` are node ids (-1 for an untraced constant); ``coef`` the coefficient of each
    parent in an ``add`` (sub gives -1); ``info`` what the op needs (parameter names, geometry,
    the activation, AD's pool indices).
    """

    id: int
    op: str
    parents: tuple[int, ...]
    tensor: object  # the output (detached torch tensor)
    info: dict = field(default_factory=dict)
    coef: tuple = ()

    def value(self) -> np.ndarray:
        """The output as float64 (exact: float32, bf16 and fp16 values are float64 values)."""
        if "value" not in self.info:
            self.info["value"] = self.tensor.detach().to(torch.float64).cpu().numpy()
        return self.info["value"]

    def pre(self) -> np.ndarray:
        """An activation's input (its pre-activation), as float64, captured before the call."""
        if "y64" not in self.info:
            self.info["y64"] = self.info["y"].to(torch.float64).cpu().numpy()
        return self.info["y64"]


@dataclass
class Trace:
    """The recorded graph of one forward pass, plus the model's parameters by name."""

    nodes: list[Node]
    output: int
    trainable: dict[str, bool]  # parameter name -> requires_grad
    dtype: str
    params: dict  # parameter name -> the parameter (detached, shared storage: shapes are always valid)
    versions: dict  # parameter name -> its version counter at capture time
    # the replay that recorded it (None: the mode): every trace of one replay has the same graph,
    # activations and static facts, so the checks may key their structure on it
    replay: object = None

    def node(self, i: int) -> Node:
        return self.nodes[i]

    @staticmethod
    def is_input(i: int) -> bool:
        """Is node i the model's input? (It is always node 0, the only "input" node: the capture
        records it in the model's forward pre-hook before anything else, restarting the graph.)"""
        return i == 0

    @property
    def param_values(self) -> dict[str, np.ndarray]:
        """The parameters' values at capture time, as float64 (exact). Refused once a parameter
        changed in place after the capture (e.g. by the optimiser step): its values are gone."""
        if getattr(self, "_values", None) is None:
            changed = [n for n, p in self.params.items() if p._version != self.versions[n]]
            if changed:
                raise FpadError(f"fpad.train: parameter {changed[0]!r} changed after the forward pass was captured; "
                                "read trace.param_values before the optimiser step")
            self._values = {n: p.to(torch.float64).cpu().numpy() for n, p in self.params.items()}
        return self._values


def check_modules(model: nn.Module) -> None:
    """Refuse models with a torch layer fpad cannot reason about, naming the first one."""
    for name, mod in model.named_modules():
        if isinstance(mod, _CONTAINERS) or not isinstance(mod, nn.Module):
            continue
        leaf = not any(True for _ in mod.children())
        if not leaf:
            continue
        # a torch layer not in the list is refused by name; a user's own leaf module is fine (its
        # torch calls are traced, and an unknown call is refused there)
        if not isinstance(mod, SUPPORTED_LEAVES) and type(mod).__module__.startswith("torch."):
            raise FpadError(
                f"fpad.train: layer {name or '<model>'!r} ({type(mod).__name__}) is not supported; supported layers: "
                + ", ".join(t.__name__ for t in SUPPORTED_LEAVES) + " (and residual additions in forward)"
            )
        if isinstance(mod, nn.Conv2d) and (mod.groups != 1 or tuple(mod.dilation) != (1, 1)
                                           or mod.padding_mode != "zeros" or isinstance(mod.padding, str)):
            raise FpadError(f"fpad.train: layer {name!r} (Conv2d) uses groups/dilation/padding mode/string padding; "
                            "only groups=1, dilation=1, integer zero padding are supported")
        if isinstance(mod, nn.MaxPool2d) and (mod.ceil_mode or mod.dilation not in (1, (1, 1))):
            raise FpadError(f"fpad.train: layer {name!r} (MaxPool2d) uses ceil_mode or dilation; not supported")


def _arg(args, kwargs, pos, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1] if len(v) > 1 else v[0]))
    return (int(v), int(v))


class _Mode(TorchFunctionMode):
    def __init__(self, cap: Capture):
        super().__init__()
        self.cap = cap

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        return self.cap._call(func, args, kwargs)


class Capture:
    """``with Capture(model) as cap: out = model(x)`` records ``cap.trace`` (see the module docstring)."""

    def __init__(self, model: nn.Module, replay: bool = True):
        check_modules(model)
        self.model = model
        self._params = list(model.named_parameters())
        self.pnames = {id(p): n for n, p in self._params}
        self._by_name = dict(self._params)
        self._trace: Trace | None = None
        self._out: int | None = None  # node id of the model's output once the forward is over
        self._nodes: list[Node] = []
        self._ids: dict[int, int] = {}
        self._hook = None
        self._mode = None
        # the fx replay (module docstring): None not tried yet, False unavailable, else _Replay
        self._replay = None if replay else False
        self._forwards = 0  # forwards under the mode so far (the replay is built on the second)
        self._fx = None  # the fx copy's output values, in the forward that builds the replay
        self._building = None

    # -- context manager ---------------------------------------------------------------------------
    def __enter__(self):
        self._nodes, self._ids, self._trace, self._out = [], {}, None, None
        # Parameter facts are read outside the tracing mode (attribute reads under it are torch
        # calls and cost a dispatch each): version counters here, the rest in ``trace``.
        self._versions = {n: p._version for n, p in self._params}
        self._from = None  # the replay recording this forward, if any
        rp = self._replay
        if rp and rp.flags != self._flags():
            rp = self._replay = None  # a module was replaced or switched train/eval: trace the model again
            self._forwards = 1
        if rp:
            self.model.forward = rp.forward_for(self)
            return self
        self._building = None  # the replay this forward builds (its forward is the model's until __exit__)
        if rp is None and self._forwards >= 1 and "forward" not in self.model.__dict__:
            self._building = _Replay.build(self.model, self._flags())
            if self._building is None:
                self._replay = False
            else:
                self.model.forward = self._building.recording_forward(self)
        self._unsafe = False  # set by a recorder when the replay cannot reproduce this forward
        self._alive: list = []
        self._pool_idx: dict[int, torch.Tensor] = {}
        self._hook = self.model.register_forward_pre_hook(self._pre)
        self._post = self.model.register_forward_hook(self._done)
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        if self._replay:
            self.model.__dict__.pop("forward", None)
            return False
        self._mode.__exit__(*exc)
        self._hook.remove()
        self._post.remove()
        self._forwards += 1
        if self._building is not None:
            self.model.__dict__.pop("forward", None)
            self._alive = []
        if self._fx is not None:  # this forward ran the fx copy under the mode: compare the two
            rp, vals, self._fx = self._building, self._fx, None
            ok = exc[0] is None and self._out is not None and not self._unsafe and rp.adopt(self, vals)
            self._replay = rp if ok else False
        return False

    def _flags(self) -> tuple:
        """What the fx copy fixes besides the graph: which modules the model holds (a replaced
        submodule would otherwise keep running in the copy) and their train/eval flags."""
        return tuple((id(m), m.training) for m in self.model.modules())

    def _pre(self, module, args):
        if self._nodes:  # a second forward inside one capture: keep the last one
            self._nodes, self._ids, self._trace, self._out = [], {}, None, None
        x = args[0]
        if not isinstance(x, torch.Tensor):
            raise FpadError("fpad.train: the model's first forward argument must be the input tensor")
        self._new("input", (), x)

    def _done(self, module, args, out):
        if not isinstance(out, torch.Tensor) or id(out) not in self._ids:
            raise FpadError("fpad.train: the model must return one tensor computed from its input")
        self._out = self._ids[id(out)]

    @property
    def trace(self) -> Trace | None:
        """The recorded forward pass (None before one has completed)."""
        if self._trace is None and self._out is not None:
            # No copies: the parameters are kept by reference with their version counters and
            # converted only when someone reads their values (the checks need only their shapes).
            self._trace = Trace(list(self._nodes), self._out, {n: bool(p.requires_grad) for n, p in self._params},
                                str(self._nodes[self._out].tensor.dtype).replace("torch.", ""),
                                {n: p.detach() for n, p in self._params}, self._versions, self._from)
        return self._trace

    # -- recording -----------------------------------------------------------------------------------
    def _new(self, op, parents, out, info=None, coef=()) -> int:
        i = len(self._nodes)
        self._nodes.append(Node(i, op, tuple(parents), out.detach(), info or {}, coef))
        self._ids[id(out)] = i
        if self._building is not None:  # keep the object, so that no other tensor takes its id
            self._alive.append(out)
        return i

    def _tracked(self, t) -> int:
        return self._ids.get(id(t), -1) if isinstance(t, torch.Tensor) else -1

    def _any_tracked(self, args, kwargs) -> bool:
        return any(self._tracked(a) >= 0 for a in args) or any(self._tracked(a) >= 0 for a in kwargs.values())

    def _pname(self, p) -> str | None:
        if p is None:
            return None
        if id(p) not in self.pnames:
            raise FpadError("fpad.train: a layer uses a tensor that is not a parameter of the model as its weight")
        return self.pnames[id(p)]

    def _call(self, func, args, kwargs):
        if self._out is not None:  # the forward pass is over (e.g. the loss is computed inside the with)
            return func(*args, **kwargs)
        name = getattr(func, "__name__", None) or str(func)
        if name in _IGNORED:
            return func(*args, **kwargs)
        handler = _HANDLERS.get(name)
        if handler is not None and (handler[1] or self._any_tracked(args, kwargs)):
            return handler[0](self, name, func, args, kwargs)
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return out
        if self._any_tracked(args, kwargs):
            raise FpadError(
                f"fpad.train: the model calls {name!r}, which fpad cannot reason about (supported: linear, conv2d, "
                "batch_norm, max_pool2d, relu/relu6/hardtanh/hardsigmoid/leaky_relu/clamp, add/sub, flatten/view)"
            )
        return out

    # -- one recorder per traced torch call (the table _HANDLERS below) ------------------------------
    def _act(self, name, func, args, kwargs):
        x = args[0]
        inplace = name.endswith("_") or kwargs.get("inplace") is True or any(a is True for a in args[1:])
        pre = x.detach().clone() if inplace else x.detach()
        src = self._tracked(x)
        out = func(*args, **kwargs)
        if src >= 0:
            act = _torch_act(name, args, kwargs)
            if inplace:  # the producer's recorded output is the value before the call
                self._nodes[src].tensor = pre
            if inplace or _tensor_args(args, kwargs):
                self._unsafe = True  # the replay reads y from the producer, and bounds once
            self._new("act", (src,), out, {"act": act, "y": pre})
        return out

    def _pool(self, name, func, args, kwargs):
        # Compute the pool with indices ourselves (the same kernel torch's backward uses) and
        # return what the caller asked for: the indices are AD's routed entries.
        x = args[0]
        k, s, p = _pool_geometry(_arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                                 _arg(args, kwargs, 3, "padding", 0))
        if _pair(_arg(args, kwargs, 4, "dilation", 1)) != (1, 1) or _arg(args, kwargs, 5, "ceil_mode", False):
            raise FpadError("fpad.train: max_pool2d with dilation or ceil_mode is not supported")
        res, idx = torch.nn.functional.max_pool2d_with_indices(x, k, s, p)
        i = self._new("pool", (self._tracked(x),), res, {"kernel": k, "stride": s, "padding": p, "indices": idx.numpy()})
        self._pool_idx[i] = idx
        want = name == "max_pool2d_with_indices" or _arg(args, kwargs, 6, "return_indices", False)
        return (res, idx) if want else res

    def _linear(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        self._new("linear", (self._tracked(args[0]),), out, {
            "weight": self._pname(_arg(args, kwargs, 1, "weight")), "bias": self._pname(_arg(args, kwargs, 2, "bias"))})
        return out

    def _conv2d(self, name, func, args, kwargs):
        pad = _arg(args, kwargs, 4, "padding", 0)
        if isinstance(pad, str):
            raise FpadError("fpad.train: conv2d with string padding is not supported; give integers")
        if _pair(_arg(args, kwargs, 5, "dilation", 1)) != (1, 1) or int(_arg(args, kwargs, 6, "groups", 1)) != 1:
            raise FpadError("fpad.train: conv2d with dilation or groups is not supported")
        out = func(*args, **kwargs)
        self._new("conv2d", (self._tracked(args[0]),), out, {
            "weight": self._pname(_arg(args, kwargs, 1, "weight")), "bias": self._pname(_arg(args, kwargs, 2, "bias")),
            "stride": _pair(_arg(args, kwargs, 3, "stride", 1)), "padding": _pair(pad)})
        return out

    def _batch_norm(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        w, b = _arg(args, kwargs, 3, "weight"), _arg(args, kwargs, 4, "bias")
        training = bool(_arg(args, kwargs, 5, "training", False))
        # gamma's value before the optimiser step (only whether it is 0 is used)
        self._new("batch_norm", (self._tracked(args[0]),), out, {
            "weight": self._pname(w), "bias": self._pname(b), "training": training,
            "gamma": None if w is None else w.detach().clone()})
        return out

    def _add(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        sign = -1 if "sub" in name else 1
        alpha = kwargs.get("alpha", 1)
        a, b = (args[0], args[1]) if len(args) > 1 else (args[0], kwargs.get("other"))
        if name == "__rsub__":
            a, b = b, a
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise FpadError(f"fpad.train: {name} of a tensor and a number inside the model is not supported")
        self._new("add", (self._tracked(a), self._tracked(b)), out, coef=(1, sign * alpha))
        return out

    def _reshape(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self._new("reshape", (self._tracked(args[0]),), out)
        return out

    def _identity(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        x = args[0]
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            if out.dtype != x.dtype and torch.finfo(out.dtype).bits < torch.finfo(x.dtype).bits:
                raise FpadError(f"fpad.train: {name} lowers the precision inside the model; not supported")
            self._new("reshape", (self._tracked(x),), out)
        return out

    def _neg(self, name, func, args, kwargs):
        out = func(*args, **kwargs)
        self._new("add", (self._tracked(args[0]),), out, coef=(-1,))
        return out


_ADD = ("add", "add_", "__add__", "__iadd__", "__radd__", "sub", "sub_", "__sub__", "__isub__", "__rsub__")
# torch function name -> (recorder, run it even when no argument is traced)
_HANDLERS = {
    **{n: (Capture._act, True) for n in acts.NAMES},
    **{n: (Capture._pool, False) for n in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices")},
    "linear": (Capture._linear, False), "conv2d": (Capture._conv2d, False), "batch_norm": (Capture._batch_norm, False),
    **{n: (Capture._add, False) for n in _ADD},
    **{n: (Capture._reshape, False) for n in ("flatten", "view", "reshape", "squeeze", "unsqueeze")},
    **{n: (Capture._identity, False) for n in ("contiguous", "clone", "float", "to", "type_as")},
    "neg": (Capture._neg, False), "__neg__": (Capture._neg, False),
}

_ACT_CACHE: dict = {}


def _tensor_args(args, kwargs) -> bool:
    """Does an activation call give a bound (an argument after the input) as a tensor?"""
    return any(isinstance(v, torch.Tensor) for v in args[1:]) or any(isinstance(v, torch.Tensor) for v in kwargs.values())


def _torch_act(name, args, kwargs) -> acts.TorchAct:
    """:func:`acts.from_call`, memoised on the call's non-tensor arguments (constant per model)."""
    key = (name, tuple(args[1:]), tuple(sorted(kwargs.items())))
    if _tensor_args(args, kwargs):
        return acts.from_call(name, args, kwargs)  # bounds given as tensors: not memoised
    try:
        hash(key)
    except TypeError:
        return acts.from_call(name, args, kwargs)
    if key not in _ACT_CACHE:
        _ACT_CACHE[key] = acts.from_call(name, args, kwargs)
    return _ACT_CACHE[key]


def _pool_with_indices(x, kernel, stride, padding):
    """What the fx copy calls for an ``nn.MaxPool2d``: the pool and AD's routed indices (the
    kernel the mode's recorder calls, so the mode records the copy's pool as the model's)."""
    return torch.nn.functional.max_pool2d_with_indices(x, kernel, stride, padding)


def _fx_pool(gm, n):
    """(input node, kernel, stride, padding) if fx node ``n`` is a max-pool (an ``nn.MaxPool2d``,
    ``F.max_pool2d`` or ``torch.max_pool2d`` with constant geometry, read as the mode's recorder
    reads it); None for a max-pool it cannot replace (indices returned, dilation, ceil mode,
    geometry computed in the forward); False for anything else."""
    if n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.MaxPool2d):
        mod = gm.get_submodule(n.target)
        if mod.return_indices or n.kwargs or len(n.args) != 1:
            return None
        args = (n.args[0], mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)
    elif n.op == "call_function" and n.target in (torch.nn.functional.max_pool2d, torch.max_pool2d):
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        given = dict(zip(names, n.args), **n.kwargs)
        if given.get("return_indices") or set(given) - set(names):
            return None
        args = (given.get("input"), given.get("kernel_size"), given.get("stride"), given.get("padding", 0),
                given.get("dilation", 1), given.get("ceil_mode", False))
    else:
        return False
    x, k, st, p, dil, ceil = args
    if any(isinstance(v, torch.fx.Node) for v in (k, st, p, dil, ceil)) or k is None or ceil or _pair(dil) != (1, 1):
        return None
    return (x, *_pool_geometry(k, st, p))


def _pool_geometry(kernel, stride, padding) -> tuple:
    """(kernel, stride, padding) of a max-pool call as pairs; no stride means the kernel's, as in torch."""
    k = _pair(kernel)
    return k, (k if stride is None or stride == [] or stride == () else _pair(stride)), _pair(padding)


_PER_STEP = ("y", "indices", "gamma", "value", "y64", "zero")  # info entries not carried between steps


class _Replay:
    """A :mod:`torch.fx` copy of the model returning (output, every fx node's value), and once
    adopted, how each traced node's tensor is read from those values (module docstring)."""

    def __init__(self, gm, flags: tuple):
        self.gm, self.flags = gm, flags
        self.plan = None  # [(node skeleton, position of its value, position of its pool indices)]

    @staticmethod
    def build(model: nn.Module, flags: tuple) -> _Replay | None:
        try:
            gm = torch.fx.symbolic_trace(model)
        except Exception:  # fx cannot trace every model (data-dependent control flow, ...): the mode does
            return None
        g = gm.graph
        for n in list(g.nodes):
            geometry = _fx_pool(gm, n)  # (input, kernel, stride, padding) of a max-pool, False: none
            if geometry is None:
                return None  # a max-pool the copy cannot call with indices: the mode records it
            if geometry is False:
                continue
            with g.inserting_after(n):
                both = g.call_function(_pool_with_indices, geometry)
            with g.inserting_after(both):
                val = g.call_function(operator.getitem, (both, 0))
            with g.inserting_after(val):
                g.call_function(operator.getitem, (both, 1))
            n.replace_all_uses_with(val)
            g.erase_node(n)
        out = next(n for n in g.nodes if n.op == "output")
        values = [n for n in g.nodes if n.op != "output"]
        out.args = ((out.args[0], *values),)
        gm.recompile()
        return _Replay(gm, flags)

    def recording_forward(self, cap: Capture):
        """The forward that builds the replay: the copy, run under the mode, its values kept."""
        def forward(*args, **kwargs):
            res = self.gm(*args, **kwargs)
            cap._fx = res[1:]
            return res[0]
        return forward

    def adopt(self, cap: Capture, vals: tuple) -> bool:
        """Map each node the mode recorded to the copy's value that is its tensor, and accept the
        mapping only if the trace it rebuilds from ``vals`` equals the mode's, bit by bit."""
        pos: dict[int, int] = {}
        for j, v in enumerate(vals):
            if isinstance(v, torch.Tensor) and id(v) in cap._ids:
                pos.setdefault(cap._ids[id(v)], j)
        idx_pos = {id(v): j for j, v in enumerate(vals) if isinstance(v, torch.Tensor)}
        plan = []
        for n in cap._nodes:
            if n.id not in pos or (n.op == "pool" and id(cap._pool_idx.get(n.id)) not in idx_pos):
                return False
            skel = Node(n.id, n.op, n.parents, None, {k: v for k, v in n.info.items() if k not in _PER_STEP}, n.coef)
            plan.append((skel, pos[n.id], idx_pos[id(cap._pool_idx[n.id])] if n.op == "pool" else -1))
        self.plan, self.out = plan, cap._out
        mine = self.nodes(cap, vals)
        return all(_same_node(a, b) for a, b in zip(mine, cap._nodes))

    def forward_for(self, cap: Capture):
        def forward(*args, **kwargs):
            if not args or not isinstance(args[0], torch.Tensor):
                raise FpadError("fpad.train: the model's first forward argument must be the input tensor")
            res = self.gm(*args, **kwargs)
            cap._nodes, cap._out, cap._trace, cap._from = self.nodes(cap, res[1:]), self.out, None, self
            return res[0]
        return forward

    def nodes(self, cap: Capture, vals: tuple) -> list[Node]:
        """This forward's traced nodes from the copy's values (what the mode's recorders keep)."""
        out = []
        for skel, j, k in self.plan:
            info = dict(skel.info)
            op = skel.op
            t = vals[j].detach()
            if op == "act":
                info["y"] = out[skel.parents[0]].tensor
            elif op == "pool":
                info["indices"] = vals[k].numpy()
            elif op == "batch_norm" and info["weight"] is not None:
                info["gamma"] = cap._by_name[info["weight"]].detach().clone()
            out.append(Node(skel.id, op, skel.parents, t, info, skel.coef))
        return out


_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _same_node(a: Node, b: Node) -> bool:
    """Equal op, edges, static facts and per-step values (tensors bit for bit: dtype, shape, and
    the bits themselves, so that NaN equals the same NaN and -0.0 differs from 0.0)."""
    def same_t(x, y):
        if (x is None) != (y is None) or x is None:
            return x is None and y is None
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        bits = _BITS.get(x.element_size()) if x.is_floating_point() else None
        return bool(torch.equal(x.contiguous().view(bits), y.contiguous().view(bits)) if bits else torch.equal(x, y))
    ka = {k: v for k, v in a.info.items() if k not in _PER_STEP}
    kb = {k: v for k, v in b.info.items() if k not in _PER_STEP}
    return (a.op == b.op and a.parents == b.parents and a.coef == b.coef and ka == kb and same_t(a.tensor, b.tensor)
            and same_t(a.info.get("y"), b.info.get("y")) and same_t(a.info.get("gamma"), b.info.get("gamma"))
            and np.array_equal(a.info.get("indices", 0), b.info.get("indices", 0)))


def capture(model: nn.Module) -> Capture:
    """``with fpad.train.capture(model) as cap: out = model(x)``; then ``cap.trace``."""
    return Capture(model)
