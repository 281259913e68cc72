"""The network description (a TOML file or a dict) and its lowering to a scalar :class:`Program`.

A :class:`NetworkSpec` is a validated, format-independent description: the minibatch, the layers,
the objective, the proxy convention and which parameters are free (docs/DESIGN.md, "Network file
(TOML) schema"). ``spec.build(fmt)`` fixes a number format and returns a :class:`Problem`: the
scalar program P(w) over *all* parameters, the indices of the free ones (enumerated over M^k), and
a value for every parameter (fixed values from ``[params.fixed]``, which must lie in M, the rest
drawn uniformly from M with ``numpy.random.default_rng(seed)``). A ``[params.fixed]`` key whose
parameters are all in ``[params].free`` is refused (its value could never be used); a fixed
tensor may have some entries free, which then take the grid's values.

Lowering, per sample b of the minibatch, layer by layer:

* every number is an exact :class:`~fractions.Fraction` (TOML decimals are parsed as written,
  ``0.1`` is 1/10; Python floats in a dict are taken at their exact binary value);
* values that do not depend on parameters (inputs, constant weights and biases) are folded into
  the coefficients of ``LIN`` nodes, so a first layer with parameter weights is ``LIN`` over
  ``PARAM`` nodes with the inputs as coefficients; a product of two parameter-dependent values is
  a ``MUL`` node;
* every neuron whose activation has a kink becomes an ``ACT`` node tagged ``"L{l}[i] s{b}"``
  (conv and pointwise layers on shaped tensors: ``"L{l}[c,p] s{b}"`` or ``"L{l}[c,i,j] s{b}"``),
  even when its input is constant, so that the number of kinks n is neurons x samples x kinks;
  the identity creates no node;
* a pooling window becomes a ``MAX`` node tagged like a neuron, with its arguments in PyTorch's
  scan order (row, then column inside the window), so "AD picks the first maximiser" is PyTorch's
  choice. Windows of one element are passed through.

``Problem.kinks_total`` is n = sum over ACT nodes of their number of kinks (neurons x samples x
kinks per activation), the n of the bound n/|M| (ICML 2023). Ties of MAX nodes are not counted in
n: with pooling the bound is not a theorem, and reports say so.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from fpad.activations import Activation, get_activation
from fpad.errors import FpadError
from fpad import ops
from fpad.graph import Program
from fpad.proxies import ProxyConvention, get_proxy

KINDS = ("dense", "conv1d", "conv2d", "maxpool1d", "maxpool2d", "add", "activation")
LAYER_KEYS = {
    "dense": ("kind", "width", "bias", "weights", "activation"),
    "conv1d": ("kind", "channels", "kernel", "stride", "padding", "bias", "weights", "activation"),
    "conv2d": ("kind", "channels", "kernel", "stride", "padding", "bias", "weights", "activation"),
    "maxpool1d": ("kind", "window", "stride"),
    "maxpool2d": ("kind", "window", "stride"),
    "add": ("kind", "from", "activation"),
    "activation": ("kind", "activation"),
}
TOP_KEYS = ("description", "inputs", "input_shape", "layers", "output", "ad", "params")
OUTPUT_KEYS = ("reduce", "weights", "targets")
REDUCES = ("sum", "weighted", "squared_error")
PARAMS_KEYS = ("free", "seed", "fixed")

_NAME = re.compile(r"^L(\d+)(?:\.(W|b)(?:\[(\d+(?:,\d+)*)\])?)?$")


# -- numbers -----------------------------------------------------------------------------------
class NonFinite(str):
    """A TOML ``nan`` / ``inf`` literal, kept as written so the check of the key it appears
    under can name both (the TOML parser itself knows no key names)."""

    __repr__ = str.__str__


def _toml_float(text: str):
    """``parse_float`` for network files: decimals as exact Fractions, nan/inf marked."""
    if text.lstrip("+-") in ("nan", "inf"):
        return NonFinite(text)
    return Fraction(text)


def _show(v) -> str:
    """A value from a network file as its author wrote it: 2.5, not Fraction(5, 2)."""
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if not isinstance(v, Fraction):
        return repr(v)
    places = 0
    while (v * 10 ** places).denominator != 1 and places < 30:
        places += 1
    if places == 0 and abs(v) >= 10 ** 15:
        return f"{float(v):g}"  # 1e300 as written, not 301 digits
    if places == 0 or (v * 10 ** places).denominator != 1:
        return str(v)  # an integer, or not a short decimal: "1/3"
    digits = str(abs(v.numerator) * 10 ** places // v.denominator).rjust(places + 1, "0")
    return f"{'-' if v < 0 else ''}{digits[:-places]}.{digits[-places:]}"


def exact(x, where: str = "value") -> Fraction:
    """An exact rational from a TOML/JSON/Python number or a string such as ``"1/3"`` or ``"0x1p-3"``.

    Python floats are converted at their exact binary value (Fraction(0.1) != 1/10); TOML files are
    read with ``parse_float=Fraction``, so decimals written in a file are exact as written.
    """
    if isinstance(x, bool):
        raise FpadError(f"{where}: {x!r} is not a number; write an exact number such as 0.5 or \"1/3\"")
    if isinstance(x, NonFinite):
        raise FpadError(f"{where}: {x} is not allowed; values must be finite decimals such as 0.5 "
                        "or exact strings such as \"1/3\"")
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            raise FpadError(f"{where}: {x!r} is not a finite number")
        return Fraction(float(x))
    if isinstance(x, str):
        s = x.strip()
        try:
            if s.lower().lstrip("+-").startswith("0x"):
                f = float.fromhex(s)  # hex floats are exact by construction
                if np.isfinite(f):
                    return Fraction(f)
            return Fraction(s)
        except (ValueError, ZeroDivisionError, OverflowError):
            pass
    raise FpadError(f"{where}: {_show(x)} is not an exact number; write e.g. 0.5, -3, \"1/3\" or \"0x1p-3\"")


# -- parameter tensors ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tensor:
    """A parameter tensor ``L{layer}.{kind}`` of the given shape; entries are named row-major."""

    layer: int
    kind: str  # "W" or "b"
    shape: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"L{self.layer}.{self.kind}"

    def entries(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(n) for n in self.shape)))

    def entry_name(self, idx: tuple[int, ...]) -> str:
        return f"{self.name}[{','.join(map(str, idx))}]"


@dataclass
class Layer:
    """One validated ``[[layers]]`` entry with its input/output shapes (see the module docstring)."""

    index: int  # l, from 1
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: Activation | None = None
    weight: Tensor | None = None  # parameter weights, or None
    const_weight: np.ndarray | None = None  # object array of Fractions when weights are constant
    bias: str = "none"  # "param" (per unit / channel), "shared" (one scalar), "const", "none"
    const_bias: list[Fraction] | None = None
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    window: tuple[int, ...] = ()
    source: int = -1  # add: the layer whose output is added (0 = the network input)
    raw: dict = field(default_factory=dict)  # the normalised entry, for to_dict()

    @property
    def bias_tensor(self) -> Tensor | None:
        if self.bias == "param":
            return Tensor(self.index, "b", (self.out_shape[0],))
        if self.bias == "shared":
            return Tensor(self.index, "b", (1,))
        return None

    @property
    def tensors(self) -> list[Tensor]:
        return [t for t in (self.weight, self.bias_tensor) if t is not None]


def _tag(layer: int, idx: tuple[int, ...], sample: int) -> str:
    return f"L{layer}[{','.join(map(str, idx))}] s{sample}"


def _shape(x) -> tuple[int, ...]:
    """Shape of a rectangular nested list (numbers at the leaves), or None if ragged."""
    if not isinstance(x, list):
        return ()
    if not x:
        return (0,)
    subs = [_shape(e) for e in x]
    if any(s is None or s != subs[0] for s in subs):
        return None
    return (len(x), *subs[0])


def _as_array(x, shape, where: str) -> np.ndarray:
    got = _shape(x)
    if got != tuple(shape):
        raise FpadError(
            f"{where}: expected a nested list of shape {list(shape)}, got "
            f"{'a ragged list' if got is None else list(got)}"
        )
    flat = np.empty(int(np.prod(shape)) if shape else 1, dtype=object)
    for k, idx in enumerate(itertools.product(*(range(n) for n in shape))):
        v = x
        for i in idx:
            v = v[i]
        flat[k] = exact(v, f"{where}[{','.join(map(str, idx))}]")
    return flat.reshape(shape)


def _nested(a):
    """Fractions (scalar or array) -> nested lists of canonical strings, for to_dict()."""
    if isinstance(a, np.ndarray):
        return [_nested(e) for e in a] if a.ndim else str(a.item())
    if isinstance(a, list):
        return [_nested(e) for e in a]
    return str(a)


# -- the spec ---------------------------------------------------------------------------------------
class NetworkSpec:
    """A validated network description; see docs/DESIGN.md for the schema and :meth:`build`."""

    def __init__(self, d: dict, source: str = "<dict>"):
        self.source = source
        if not isinstance(d, dict):
            raise self._err("top level", f"expected a table, got {type(d).__name__}", "")
        self._check_keys(d, TOP_KEYS, "top level")
        self.description = str(d.get("description", ""))
        self._parse_inputs(d)
        self._parse_layers(d.get("layers"))
        self._parse_output(d.get("output", {"reduce": "sum"}))
        ad = d.get("ad", {})
        if not isinstance(ad, dict):
            raise self._err("[ad]", "must be a table", 'write [ad] then proxy = "pytorch"')
        self._check_keys(ad, ("proxy",), "[ad]")
        try:
            self.proxy: ProxyConvention = get_proxy(ad.get("proxy", "pytorch"))
        except FpadError as exc:
            raise FpadError(f"{self.source}: [ad].proxy: {exc}") from None
        self._parse_params(d.get("params", {}))

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> NetworkSpec:
        return cls(d, source)

    @classmethod
    def from_toml(cls, path) -> NetworkSpec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FpadError(f"network file {str(path)!r} does not exist; give the path of a .toml file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FpadError(f"cannot read network file {str(path)!r}: {exc.__class__.__name__}: {exc}") from None
        try:
            d = tomllib.loads(text, parse_float=_toml_float)
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise FpadError(
                f"{path}: malformed TOML: {exc}; 'fpad schema' prints the network file schema"
            ) from None
        return cls(d, str(path))

    # -- errors ------------------------------------------------------------------------------------
    def _err(self, place: str, what: str, fix: str) -> FpadError:
        return FpadError(f"{self.source}: {place}: {what}" + (f"; {fix}" if fix else ""))

    def _check_keys(self, d: dict, accepted, place: str) -> None:
        for k in d:
            if k not in accepted:
                raise self._err(place, f"unknown key {k!r}", f"accepted keys: {', '.join(accepted)}")

    def _int(self, v, place: str, lo: int = 1) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            what = f"{_show(v)} is not an integer >= {lo}"
            if isinstance(v, Fraction) and v.denominator == 1 and v >= lo:  # 2.0 or 1e3
                what = f"{_show(v)} is written as a decimal; integers take no decimal point or exponent"
            raise self._err(place, what, f"write e.g. {place.split('.')[-1]} = {max(lo, 1)}")
        return v

    def _ints(self, v, n: int, place: str, lo: int = 1) -> tuple[int, ...]:
        """An int (repeated n times) or a list of n ints."""
        if isinstance(v, list):
            if len(v) != n:
                raise self._err(place, f"needs {n} integers, got {len(v)}", f"write e.g. {place.split('.')[-1]} = {[2] * n}")
            return tuple(self._int(x, place, lo) for x in v)
        return (self._int(v, place, lo),) * n

    # -- parsing -----------------------------------------------------------------------------------
    def _parse_inputs(self, d: dict) -> None:
        x = d.get("inputs")
        if x is None:
            raise self._err("inputs", "missing", "write the minibatch as inputs = [[1.0], [3.0]] (one row per sample)")
        shape = _shape(x)
        if shape is None or len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
            raise self._err(
                "inputs", "must be a non-empty list of equal-length rows (one per sample)", "e.g. inputs = [[1.0], [3.0]]"
            )
        self.inputs = _as_array(x, shape, f"{self.source}: inputs")
        self.batch, n0 = shape
        if "input_shape" in d:
            s = d["input_shape"]
            if not isinstance(s, list) or len(s) not in (1, 2, 3):
                raise self._err("input_shape", f"{_show(s)} is not [N], [C, L] or [C, H, W]", "e.g. input_shape = [1, 5]")
            s = tuple(self._int(v, "input_shape") for v in s)
            if int(np.prod(s)) != n0:
                raise self._err(
                    "input_shape", f"{list(s)} has {int(np.prod(s))} entries but each input row has {n0}",
                    "make the product of input_shape equal the row length",
                )
            self.input_shape = s
        else:
            self.input_shape = (n0,)

    def _parse_layers(self, layers) -> None:
        if not isinstance(layers, list) or not layers:
            raise self._err("layers", "no layers", 'add at least one [[layers]] table with kind = "dense"')
        self.layers: list[Layer] = []
        shapes = [self.input_shape]  # shapes[l] = output shape of layer l (0 = input)
        for pos, entry in enumerate(layers):
            place = f"layers[{pos}]"
            if not isinstance(entry, dict):
                raise self._err(place, "must be a table", "write [[layers]] followed by kind = ...")
            kind = entry.get("kind")
            if kind not in KINDS:
                raise self._err(f"{place}.kind", f"unknown layer kind {_show(kind)}", f"accepted: {', '.join(KINDS)}")
            self._check_keys(entry, LAYER_KEYS[kind], f"{place} ({kind})")
            layer = self._parse_layer(pos + 1, kind, entry, shapes, place)
            self.layers.append(layer)
            shapes.append(layer.out_shape)

    def _activation(self, entry: dict, place: str, required: bool = False) -> Activation:
        if "activation" not in entry:
            if required:
                raise self._err(place, "missing activation", 'e.g. activation = "relu"')
            return get_activation("identity")
        try:
            return get_activation(entry["activation"])
        except FpadError as exc:
            raise FpadError(f"{self.source}: {place}.activation: {exc}") from None

    def _params(self, layer: Layer, entry: dict, wshape: tuple, place: str) -> None:
        """The layer's weights (constants given as ``weights``, else parameters L<l>.W) and bias."""
        if "weights" in entry:
            layer.const_weight = _as_array(entry["weights"], wshape, f"{self.source}: {place}.weights")
        else:
            layer.weight = Tensor(layer.index, "W", wshape)
        units = wshape[0]
        b = entry.get("bias", True)
        if b is True:
            layer.bias = "param"
        elif b is False:
            layer.bias = "none"
        elif b == "shared":
            layer.bias = "shared"
        elif isinstance(b, list):
            layer.bias = "const"
            layer.const_bias = list(_as_array(b, (units,), f"{self.source}: {place}.bias").reshape(-1))
        else:
            raise self._err(
                f"{place}.bias", f"{_show(b)} is not accepted",
                f"use true (parameters L{layer.index}.b[i]), false, \"shared\" (one parameter) or a list of {units} constants",
            )

    def _spatial_dims(self, kind: str, in_shape: tuple, place: str, fix: str) -> int:
        """1 or 2 (the kind's spatial dimensions), after checking the input is [C, L] or [C, H, W]."""
        dims = 1 if kind.endswith("1d") else 2
        if len(in_shape) != dims + 1:
            raise self._err(place, f"{kind} needs a {'[C, L]' if dims == 1 else '[C, H, W]'} input, got shape {list(in_shape)}", fix)
        return dims

    def _parse_layer(self, l: int, kind: str, entry: dict, shapes: list, place: str) -> Layer:
        in_shape = shapes[-1]
        raw = {"kind": kind}
        if kind == "dense":
            width = self._int(entry.get("width"), f"{place}.width")
            n_in = int(np.prod(in_shape))
            layer = Layer(l, kind, in_shape, (width,), activation=self._activation(entry, place))
            self._params(layer, entry, (width, n_in), place)
            raw.update(width=width)
        elif kind in ("conv1d", "conv2d"):
            dims = self._spatial_dims(kind, in_shape, place, "set input_shape at the top level (a dense layer's output is flat)")
            channels = self._int(entry.get("channels"), f"{place}.channels")
            kernel = self._ints(entry.get("kernel"), dims, f"{place}.kernel")
            stride = self._ints(entry.get("stride", 1), dims, f"{place}.stride")
            padding = self._ints(entry.get("padding", 0), dims, f"{place}.padding", lo=0)
            spatial = tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(in_shape[1:], padding, kernel, stride))
            if any(n + 2 * p < k for n, p, k in zip(in_shape[1:], padding, kernel)):
                raise self._err(f"{place}.kernel", f"{list(kernel)} is larger than the padded input {list(in_shape[1:])}", "use a smaller kernel or padding")
            layer = Layer(
                l, kind, in_shape, (channels, *spatial), activation=self._activation(entry, place),
                kernel=kernel, stride=stride, padding=padding,
            )
            self._params(layer, entry, (channels, in_shape[0], *kernel), place)
            raw.update(channels=channels, kernel=list(kernel), stride=list(stride), padding=list(padding))
        elif kind in ("maxpool1d", "maxpool2d"):
            dims = self._spatial_dims(kind, in_shape, place, "set input_shape at the top level or pool after a conv layer")
            window = self._ints(entry.get("window"), dims, f"{place}.window")
            stride = self._ints(entry.get("stride", list(window)), dims, f"{place}.stride")
            if any(w > n for w, n in zip(window, in_shape[1:])):
                raise self._err(f"{place}.window", f"{list(window)} is larger than the input {list(in_shape[1:])}", "use a smaller window")
            spatial = tuple((n - w) // s + 1 for n, w, s in zip(in_shape[1:], window, stride))
            layer = Layer(l, kind, in_shape, (in_shape[0], *spatial), window=window, stride=stride)
            raw.update(window=list(window), stride=list(stride))
        elif kind == "add":
            src = entry.get("from")
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < l - 1:
                raise self._err(
                    f"{place}.from", f"{_show(src)} is not an earlier layer",
                    f"write from = N with 0 <= N <= {l - 2} (layers count from 1, 0 is the input; "
                    "the previous layer is already the other summand)",
                )
            if shapes[src] != in_shape:
                raise self._err(
                    f"{place}.from", f"layer {src} has output shape {list(shapes[src])} but the previous layer has {list(in_shape)}",
                    "add layers of equal shape",
                )
            layer = Layer(l, kind, in_shape, in_shape, activation=self._activation(entry, place), source=src)
            raw.update({"from": src})
        else:  # activation
            layer = Layer(l, kind, in_shape, in_shape, activation=self._activation(entry, place, required=True))
        if layer.activation is not None:
            raw["activation"] = layer.activation.spec
        if kind in ("dense", "conv1d", "conv2d"):
            raw["bias"] = _nested(layer.const_bias) if layer.bias == "const" else {"param": True, "none": False, "shared": "shared"}[layer.bias]
            if layer.const_weight is not None:
                raw["weights"] = _nested(layer.const_weight)
        layer.raw = raw
        return layer

    def _parse_output(self, out) -> None:
        if not isinstance(out, dict):
            raise self._err("[output]", "must be a table", 'write [output] then reduce = "sum"')
        self._check_keys(out, OUTPUT_KEYS, "[output]")
        self.reduce = out.get("reduce", "sum")
        if self.reduce not in REDUCES:
            raise self._err("[output].reduce", f"unknown reduce {_show(self.reduce)}", f"accepted: {', '.join(REDUCES)}")
        n_out = int(np.prod(self.layers[-1].out_shape))
        self.out_weights = self.targets = None
        if self.reduce == "weighted":
            if "weights" not in out:
                raise self._err("[output]", "reduce = \"weighted\" needs weights", f"give weights = [...] with {n_out} numbers (one per output unit)")
            self.out_weights = _as_array(out["weights"], (n_out,), f"{self.source}: [output].weights")
        elif "weights" in out:
            raise self._err("[output].weights", "only used with reduce = \"weighted\"", "remove it or set reduce = \"weighted\"")
        if self.reduce == "squared_error":
            if "targets" not in out:
                raise self._err("[output]", "reduce = \"squared_error\" needs targets", f"give targets = [[...]] with {self.batch} rows of {n_out}")
            self.targets = _as_array(out["targets"], (self.batch, n_out), f"{self.source}: [output].targets")
        elif "targets" in out:
            raise self._err("[output].targets", "only used with reduce = \"squared_error\"", "remove it or set reduce = \"squared_error\"")

    def _parse_params(self, p) -> None:
        if not isinstance(p, dict):
            raise self._err("[params]", "must be a table", 'write [params] then free = ["L1.b"]')
        self._check_keys(p, PARAMS_KEYS, "[params]")
        self.tensors = {t.name: t for layer in self.layers for t in layer.tensors}
        self.param_names = [t.entry_name(i) for t in self.tensors.values() for i in t.entries()]
        self._index = {n: k for k, n in enumerate(self.param_names)}
        self.seed = p.get("seed", 0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise self._err("[params].seed", f"{_show(self.seed)} is not an integer >= 0", "e.g. seed = 0")
        free = p.get("free", [])
        if not isinstance(free, list) or not all(isinstance(s, str) for s in free):
            raise self._err("[params].free", "must be a list of names", 'e.g. free = ["L1.W", "L1.b[0]"]')
        self.free = list(free)
        free_idx = self.resolve(self.free, "[params].free") if self.free else []
        fixed = p.get("fixed", {})
        if not isinstance(fixed, dict):
            raise self._err("[params.fixed]", "must be a table", '"L2.W" = [[1.0, -0.5]]')
        self.fixed: dict[int, Fraction] = {}
        self._fixed_raw = {}
        for name, value in fixed.items():
            t, ent = self._parse_name(name, "[params.fixed]")
            if "." not in t:
                raise self._err("[params.fixed]", f"{name!r} is a layer", f"give a tensor such as \"{t}.W\" or an entry such as \"{t}.W[0,0]\"")
            idx = self.resolve([name], "[params.fixed]")
            if idx and set(idx) <= set(free_idx):
                # Every value under this key would be ignored. (A fixed tensor with only some
                # entries free is fine: the tensor syntax needs a value for every entry.)
                listed = ", ".join(self.param_names[k] for k in idx)
                raise self._err(
                    f"[params.fixed].{name}", f"{listed} {'is' if len(idx) == 1 else 'are'} also in "
                    "[params].free", "a free parameter takes every value of the format, so this "
                    "fixed value would be ignored; remove it from one of the two")
            where = f"{self.source}: [params.fixed].{name}"
            shape = self.tensors[t].shape if ent is None else ()
            arr = _as_array(value, shape, where).reshape(-1) if shape else [exact(value, where)]
            for k, v in zip(idx, arr):
                if k in self.fixed:
                    raise self._err("[params.fixed]", f"{self.param_names[k]} is given twice", "give each parameter once")
                self.fixed[k] = v
            self._fixed_raw[name] = _nested(np.asarray(arr, dtype=object).reshape(shape)) if shape else str(arr[0])

    # -- names -------------------------------------------------------------------------------------
    def _parse_name(self, name: str, place: str) -> tuple[str | None, tuple[int, ...] | None]:
        m = _NAME.match(name.replace(" ", ""))
        if not m:
            raise self._err(place, f"{name!r} is not a parameter name", self._valid_names_hint())
        l, kind, idx = m.groups()
        if kind is None:
            return f"L{int(l)}", None
        t = f"L{int(l)}.{kind}"
        if t not in self.tensors:
            raise self._err(place, f"no parameter tensor {t}", self._valid_names_hint())
        if idx is None:
            return t, None
        return t, tuple(int(i) for i in idx.split(","))

    def _valid_names_hint(self) -> str:
        if not self.tensors:
            return "this network has no parameters (all weights and biases are constants)"
        shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in self.tensors.values())
        return f"parameters are {shapes}; write a tensor (\"L1.W\"), an entry (\"L1.W[0,1]\") or a layer (\"L1\")"

    def resolve(self, names, place: str = "--free") -> list[int]:
        """Parameter indices of ``names`` in the order given, tensors and layers expanded row-major."""
        out: list[int] = []
        for name in names:
            t, ent = self._parse_name(name, place)
            if t.count(".") == 0:  # a whole layer
                ks = [self._index[n] for n in self.param_names if n.startswith(t + ".")]
                if not ks:
                    raise self._err(place, f"layer {t} has no parameters", self._valid_names_hint())
            elif ent is None:
                tensor = self.tensors[t]
                ks = [self._index[tensor.entry_name(i)] for i in tensor.entries()]
            else:
                full = self.tensors[t].entry_name(ent)
                if full not in self._index:
                    raise self._err(place, f"{name!r} is out of range", f"{t} has shape {list(self.tensors[t].shape)}")
                ks = [self._index[full]]
            for k in ks:
                if k in out:
                    raise self._err(place, f"{self.param_names[k]} is listed twice", "list each parameter once")
                out.append(k)
        return out

    # -- provenance ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A canonical dict (numbers as exact strings) that :meth:`from_dict` accepts back."""
        d = {
            "inputs": _nested(self.inputs),
            "layers": [dict(layer.raw) for layer in self.layers],
            "output": {"reduce": self.reduce},
            "ad": {"proxy": self.proxy.spec},
            "params": {"free": list(self.free), "seed": self.seed, "fixed": dict(self._fixed_raw)},
        }
        if self.description:
            d["description"] = self.description
        if self.input_shape != (self.inputs.shape[1],):
            d["input_shape"] = list(self.input_shape)
        if self.out_weights is not None:
            d["output"]["weights"] = _nested(self.out_weights)
        if self.targets is not None:
            d["output"]["targets"] = _nested(self.targets)
        return d

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict` (for provenance in results)."""
        return _hash(self.to_dict())

    # -- lowering -------------------------------------------------------------------------------------
    def build(self, fmt, free=None, wrt_all: bool = False) -> Problem:
        """Fix the format: validate fixed values against M, draw the others, lower to a Program.

        ``free`` (a list of names, e.g. from ``--free``) replaces ``[params].free``. With
        ``wrt_all=True`` the grid is still M^k over the free parameters, but differentiability is
        meant with respect to all parameters (``Problem.wrt`` lists them).
        """
        names = list(self.free if free is None else free)
        if not names:
            raise self._err(
                "[params].free", "no free parameters",
                "list the parameters to enumerate in [params].free or with --free; " + self._valid_names_hint(),
            )
        free_idx = self.resolve(names, "[params].free" if free is None else "--free")
        values = self._values(fmt)
        program, kinks = self._lower()
        d = self.to_dict()
        d["params"]["free"] = names
        d["wrt_all"] = bool(wrt_all)
        return Problem(
            program=program,
            param_names=list(self.param_names),
            free=free_idx,
            values=values,
            proxy=self.proxy,
            fmt=fmt,
            kinks_total=kinks,
            has_bias=self._bias_kinds(set(range(len(self.param_names))) if wrt_all else set(free_idx)),
            has_maxpool=any(layer.kind.startswith("maxpool") for layer in self.layers),
            wrt_all=bool(wrt_all),
            seed=self.seed,
            spec=self,
            spec_hash=_hash(d),
        )

    def _values(self, fmt) -> list[Fraction]:
        for k, v in self.fixed.items():
            if not fmt.contains(v):
                raise self._err(
                    f"[params.fixed] {self.param_names[k]}", f"{v} is not in {fmt.name}",
                    f"nearest values of {fmt.name}: {_neighbours_text(fmt, v)}",
                )
        missing = [k for k in range(len(self.param_names)) if k not in self.fixed]
        values: list[Fraction] = [self.fixed.get(k, Fraction(0)) for k in range(len(self.param_names))]
        if missing:
            table = fmt.values()
            rng = np.random.default_rng(self.seed)
            for k, i in zip(missing, rng.integers(0, len(table), size=len(missing))):
                values[k] = Fraction(float(table[i]))  # exact: a float64 is a dyadic rational
        return values

    def _bias_kinds(self, wrt: set[int]) -> dict[int, str]:
        """Per layer with a kinked activation: "distinct" (ICLR 2024 Condition 1: every unit has its
        own bias parameter), "shared" (Condition 2: each pre-activation entry gets exactly one bias
        parameter, e.g. a per-channel conv bias or one scalar), or "none" (no bias, a constant bias,
        or some bias entry not among the differentiation variables).

        An ``activation`` or ``add`` layer right after a dense/conv layer with the identity
        activation inherits that layer's kind: its pre-activation is that layer's output (plus, for
        ``add``, an earlier layer's output, which does not depend on that bias), so each bias still
        enters with coefficient 1.
        """
        out = {}
        for layer in self.layers:
            if layer.activation is None or layer.activation.n_kinks == 0:
                continue
            owner = layer
            if layer.kind in ("activation", "add") and layer.index > 1:
                prev = self.layers[layer.index - 2]
                if prev.kind in ("dense", "conv1d", "conv2d") and prev.activation.name == "identity":
                    owner = prev
            t = owner.bias_tensor
            if t is None or not all(self._index[t.entry_name(i)] in wrt for i in t.entries()):
                out[layer.index] = "none"
            elif owner.kind == "dense" and owner.bias == "param":
                out[layer.index] = "distinct"
            else:
                out[layer.index] = "shared"
        return out

    def _lower(self) -> tuple[Program, int]:
        prog = Program(list(self.param_names))
        lw = _Lowering(prog, self)
        terms = []
        for b in range(self.batch):
            z = lw.sample(b)
            if self.reduce == "sum":
                terms += [(Fraction(1), v) for v in z]
            elif self.reduce == "weighted":
                terms += list(zip(self.out_weights, z))
            else:
                for v, t in zip(z, self.targets[b]):
                    d = lw.lin([(Fraction(1), v)], -t)
                    terms.append((Fraction(1), lw.mul(d, d)))
        out = lw.lin(terms)
        prog.set_output(lw.node(out))
        kinks = ops.kinks_total(prog.nodes)
        return prog, kinks


NETS_DIR = Path(__file__).resolve().parent / "nets"


def shipped_nets() -> dict[str, Path]:
    """The example network files shipped with fpad (``fpad/nets/NAME.toml``), by name."""
    return {p.stem: p for p in sorted(NETS_DIR.glob("*.toml"))}


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _neighbours_text(fmt, v: Fraction) -> str:
    lo, hi = fmt.neighbours(v)
    return " and ".join(str(x) for x in (lo, hi) if x is not None) or "none"


class _Lowering:
    """Builds the Program for one spec. A value is a Fraction (constant) or an int (a node index)."""

    def __init__(self, prog: Program, spec: NetworkSpec):
        self.prog, self.spec = prog, spec
        self.params: dict[int, int] = {}
        self.consts: dict[Fraction, int] = {}

    # -- value algebra with constant folding -------------------------------------------------------------
    def node(self, v) -> int:
        if isinstance(v, Fraction):
            if v not in self.consts:
                self.consts[v] = self.prog.const(v)
            return self.consts[v]
        return v

    def param(self, k: int) -> int:
        if k not in self.params:
            self.params[k] = self.prog.param(k)
        return self.params[k]

    def lin(self, terms, const=Fraction(0)):
        """``const + sum c * v``: a Fraction if no term depends on parameters, else a node."""
        coefs: dict[int, Fraction] = {}
        for c, v in terms:
            if c == 0:
                continue
            if isinstance(v, Fraction):
                const += c * v
            else:
                coefs[v] = coefs.get(v, Fraction(0)) + c
        coefs = {n: c for n, c in coefs.items() if c != 0}
        if not coefs:
            return const
        if const == 0 and len(coefs) == 1:
            (n, c), = coefs.items()
            if c == 1:
                return n
        return self.prog.lin(((c, n) for n, c in coefs.items()), const)

    def mul(self, a, b):
        if isinstance(a, Fraction):
            return self.lin([(a, b)])
        if isinstance(b, Fraction):
            return self.lin([(b, a)])
        return self.prog.mul(a, b)

    def activate(self, act: Activation, v, tag: str):
        if act.n_kinks == 0:  # identity-like: exact pass-through of an affine map
            return self.lin([(act.slopes[0], v)], act.intercepts[0])
        return self.prog.act(act, self.node(v), tag)

    # -- layers --------------------------------------------------------------------------------------------
    def weight(self, layer: Layer, idx: tuple[int, ...]):
        if layer.const_weight is not None:
            return layer.const_weight[idx]
        return self.param(self.spec._index[layer.weight.entry_name(idx)])

    def bias(self, layer: Layer, unit: int):
        if layer.bias == "param":
            return self.param(self.spec._index[layer.bias_tensor.entry_name((unit,))])
        if layer.bias == "shared":
            return self.param(self.spec._index[layer.bias_tensor.entry_name((0,))])
        if layer.bias == "const":
            return layer.const_bias[unit]
        return Fraction(0)

    def sample(self, b: int) -> list:
        """Lower the network for sample b; returns the flat output values."""
        spec = self.spec
        outs = [np.array(list(spec.inputs[b]), dtype=object).reshape(spec.input_shape)]
        for layer in spec.layers:
            x = outs[-1]
            y = np.empty(layer.out_shape, dtype=object)
            if layer.kind == "dense":
                xf = x.reshape(-1)
                for i in range(layer.out_shape[0]):
                    terms = [(Fraction(1), self.mul(self.weight(layer, (i, j)), xf[j])) for j in range(len(xf))]
                    y[i] = self.lin(terms + [(Fraction(1), self.bias(layer, i))])
            elif layer.kind in ("conv1d", "conv2d"):
                for pos in itertools.product(*(range(n) for n in layer.out_shape)):
                    o, out_pos = pos[0], pos[1:]
                    terms = [(Fraction(1), self.bias(layer, o))]
                    for c in range(layer.in_shape[0]):
                        for kk in itertools.product(*(range(k) for k in layer.kernel)):
                            src = tuple(
                                p * s + k - pad for p, s, k, pad in zip(out_pos, layer.stride, kk, layer.padding)
                            )
                            if all(0 <= i < n for i, n in zip(src, layer.in_shape[1:])):  # else zero padding
                                terms.append((Fraction(1), self.mul(self.weight(layer, (o, c, *kk)), x[(c, *src)])))
                    y[pos] = self.lin(terms)
            elif layer.kind.startswith("maxpool"):
                for pos in itertools.product(*(range(n) for n in layer.out_shape)):
                    c, out_pos = pos[0], pos[1:]
                    # PyTorch scan order: row, then column inside the window (itertools.product order)
                    args = [
                        x[(c, *(p * s + k for p, s, k in zip(out_pos, layer.stride, kk)))]
                        for kk in itertools.product(*(range(w) for w in layer.window))
                    ]
                    if len(args) == 1:
                        y[pos] = args[0]
                    elif all(isinstance(a, Fraction) for a in args):
                        y[pos] = max(args)  # constant window: no dependence on parameters
                    else:
                        y[pos] = self.prog.max([self.node(a) for a in args], _tag(layer.index, pos, b))
                outs.append(y)
                continue
            elif layer.kind == "add":
                src = outs[layer.source]
                for pos in itertools.product(*(range(n) for n in layer.out_shape)):
                    y[pos] = self.lin([(Fraction(1), x[pos]), (Fraction(1), src[pos])])
            else:  # activation
                y = x.copy()
            for pos in itertools.product(*(range(n) for n in layer.out_shape)):
                y[pos] = self.activate(layer.activation, y[pos], _tag(layer.index, pos, b))
            outs.append(y)
        return list(outs[-1].reshape(-1))


# -- the problem ------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """A network lowered for one format: what the oracle and the counting engines consume.

    ``values`` holds every parameter's value (free ones too: they are overwritten per grid point by
    :meth:`full_point`). ``free`` lists the enumerated parameters' indices in enumeration order;
    ``wrt`` the differentiation variables (= ``free`` unless built with ``wrt_all=True``).
    ``has_bias`` maps each layer with a kinked activation to "distinct" / "shared" / "none" (see
    ``NetworkSpec._bias_kinds``), with respect to ``wrt``.
    """

    program: Program
    param_names: list[str]
    free: list[int]
    values: list[Fraction]
    proxy: ProxyConvention
    fmt: object
    kinks_total: int
    has_bias: dict[int, str]
    has_maxpool: bool
    wrt_all: bool
    seed: int
    spec: NetworkSpec
    spec_hash: str

    @property
    def free_names(self) -> list[str]:
        return [self.param_names[k] for k in self.free]

    @property
    def drawn(self) -> dict[str, Fraction]:
        """The fixed parameters drawn from M with ``seed`` (neither free nor in [params.fixed]),
        by name. They are drawn from the format's own values, so one file gives other values
        over another format."""
        free = set(self.free)
        return {self.param_names[k]: self.values[k] for k in range(len(self.param_names))
                if k not in free and k not in self.spec.fixed}

    @property
    def wrt(self) -> list[int]:
        """The differentiation variables: every parameter if ``wrt_all``, else the free ones."""
        return list(range(len(self.param_names))) if self.wrt_all else list(self.free)

    @property
    def has_bias_params(self) -> bool:
        """True iff every layer with a kinked activation has distinct or shared bias parameters
        among the differentiation variables (the hypothesis of the n/|M| bound and of ICLR 2024
        Thm 4 / Thm 6)."""
        return all(kind != "none" for kind in self.has_bias.values())

    def full_point(self, free_values) -> list[Fraction]:
        """Every parameter's value, with the free ones set to ``free_values`` (in ``free`` order)."""
        free_values = list(free_values)
        if len(free_values) != len(self.free):
            raise FpadError(f"expected {len(self.free)} free values ({', '.join(self.free_names)}), got {len(free_values)}")
        w = list(self.values)
        for k, v in zip(self.free, free_values):
            w[k] = v if type(v) is Fraction else Fraction(v)
        return w

    def parse_assignment(self, text: str) -> list[Fraction]:
        """Free values from ``"L1.W[0,0]=0.5,L1.b[0]=-0.5"`` (each value must lie in M, all free
        parameters must be assigned). Returns the values in ``free`` order."""
        if not isinstance(text, str) or not text.strip():
            raise FpadError(f"empty assignment; give every free parameter, e.g. {self._example()}")
        pos = {self.param_names[k]: i for i, k in enumerate(self.free)}
        got: dict[int, Fraction] = {}
        for item in split_names(text):
            name, eq, value = item.partition("=")
            name = name.replace(" ", "")
            if not eq or not name:
                raise FpadError(f"assignment item {item.strip()!r} should read NAME=VALUE, e.g. {self._example()}")
            if name not in pos:
                if name in self.param_names:
                    raise FpadError(
                        f"{name} is fixed, not free; free parameters: {', '.join(self.free_names)} (use --free to change)"
                    )
                raise FpadError(f"unknown parameter {name!r}; free parameters: {', '.join(self.free_names)}")
            v = exact(value, name)
            if not self.fmt.contains(v):
                raise FpadError(f"{name} = {value.strip()} is not in {self.fmt.name}; nearest values: {_neighbours_text(self.fmt, v)}")
            if pos[name] in got:
                raise FpadError(f"{name} is assigned twice")
            got[pos[name]] = v
        missing = [self.free_names[i] for i in range(len(self.free)) if i not in got]
        if missing:
            raise FpadError(f"no value for free parameter(s) {', '.join(missing)}; assign every free parameter")
        return [got[i] for i in range(len(self.free))]

    def _example(self) -> str:
        return ",".join(f"{n}=0" for n in self.free_names[:2])


def split_names(text: str) -> list[str]:
    """Split on commas (or semicolons) outside brackets: ``L1.W[0,1]=1,L1.b[0]=2`` or ``L1.W[0,1],L1.b``."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch in ",;" and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [s for s in items if s.strip()]
