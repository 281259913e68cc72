"""The activations PyTorch computes, as fpad activations plus the derivative AD uses at each kink.

Each traced call (``F.relu``, ``torch.clamp``, ``nn.ReLU6`` -> ``F.hardtanh``, ...) becomes a
:class:`TorchAct`: the exact piecewise-linear function (:mod:`fpad.activations`) and, per kink,
the value torch's backward uses there. Those values were read from ATen's backward formulas and
are checked against ``torch.autograd`` at every kink by ``tests/test_train_adapter.py``:

* ``relu``, ``hardtanh`` (so ``relu6`` and ``nn.ReLU6``), ``hardsigmoid``: the gradient passes
  only on the open interval, so the proxy is 0 at every kink (D^- at the lower kink, D^+ at the
  upper one);
* ``leaky_relu``: ``x > 0 ? g : slope * g``, so the proxy at 0 is the slope (D^-);
* ``clamp`` / ``clamp_min`` / ``clamp_max`` / ``clip``: the gradient passes on the *closed*
  interval, so the proxy is 1 at every kink (D^+ at the lower kink, D^- at the upper one).

``side[k]`` is ``"-"`` or ``"+"``: the one-sided derivative the proxy equals (every torch proxy is
Bouligand, so Theorem 8 of ICLR 2024 applies); ``lam`` is the single lambda of Theorems 4/6 when
one exists (proxy = lam D^- + (1 - lam) D^+ at every kink), else None.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction

from fpad.activations import Activation, get_activation
from fpad.errors import FpadError


@dataclass(frozen=True)
class TorchAct:
    """One traced activation call: the function, AD's value at each kink, and derived facts."""

    call: str  # the torch function name as traced
    act: Activation
    proxies: tuple[Fraction, ...]
    proxy_spec: str  # fpad proxy rule reproducing ``proxies`` for this activation ("pytorch", "const:1")

    def __hash__(self) -> int:
        # computed once: the per-step checks key caches on activations (hashing the Fractions
        # of the activation each time cost more than the lookups)
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.call, self.act, self.proxies, self.proxy_spec))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict:
        # only the fields: a cached hash is per process (str hashes are salted)
        return {k: self.__dict__[k] for k in ("call", "act", "proxies", "proxy_spec")}

    @property
    def kinks(self) -> tuple[Fraction, ...]:
        return self.act.kinks

    @cached_property
    def side(self) -> tuple[str, ...]:
        out = []
        for i, p in enumerate(self.proxies):
            lo, hi = self.act.slopes[i], self.act.slopes[i + 1]
            out.append("-" if p == lo else "+" if p == hi else "interior")
        return tuple(out)

    @cached_property
    def lam(self) -> Fraction | None:
        lam = None
        for i, p in enumerate(self.proxies):
            lo, hi = self.act.slopes[i], self.act.slopes[i + 1]
            here = (p - hi) / (lo - hi)
            if not 0 <= here <= 1 or (lam is not None and here != lam):
                return None
            lam = here
        return Fraction(1) if lam is None else lam

    def ad_derivative(self, y: Fraction) -> Fraction:
        """What torch's backward multiplies by at input y (exact)."""
        k = self.act.kink_index(y)
        return self.proxies[k] if k >= 0 else self.act.derivative(y)


def _arg(args, kwargs, pos, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


def _num(v, what: str) -> Fraction:
    if hasattr(v, "item"):
        v = v.item()
    try:
        return Fraction(v)
    except (TypeError, ValueError):
        raise FpadError(f"fpad.train: {what} = {v!r} is not a number") from None


_SAME = ("relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardsigmoid", "leaky_relu", "leaky_relu_",
         "clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_")
NAMES = frozenset(_SAME)


def from_call(name: str, args, kwargs) -> TorchAct:
    """The :class:`TorchAct` of a traced call ``name(*args, **kwargs)`` (name in :data:`NAMES`)."""
    base = name.rstrip("_")
    if base == "relu":
        act = get_activation("relu")
        return TorchAct(name, act, (Fraction(0),), "pytorch")
    if base == "relu6":
        return TorchAct(name, get_activation("relu6"), (Fraction(0), Fraction(0)), "pytorch")
    if base == "hardtanh":
        lo = _num(_arg(args, kwargs, 1, "min_val", -1.0), "hardtanh min_val")
        hi = _num(_arg(args, kwargs, 2, "max_val", 1.0), "hardtanh max_val")
        if (lo, hi) == (0, 6):
            return TorchAct(name, get_activation("relu6"), (Fraction(0), Fraction(0)), "pytorch")
        return TorchAct(name, get_activation(f"hardtanh:{lo}:{hi}"), (Fraction(0), Fraction(0)), "pytorch")
    if base == "hardsigmoid":
        return TorchAct(name, get_activation("hardsigmoid"), (Fraction(0), Fraction(0)), "pytorch")
    if base == "leaky_relu":
        slope = _num(_arg(args, kwargs, 1, "negative_slope", 0.01), "leaky_relu negative_slope")
        act = get_activation(f"leaky_relu:{slope}")
        return TorchAct(name, act, (act.slopes[0],), "pytorch")
    # clamp family: the gradient passes on the closed interval [min, max]
    lo = hi = None
    if base in ("clamp", "clip"):
        lo, hi = _arg(args, kwargs, 1, "min"), _arg(args, kwargs, 2, "max")
    elif base == "clamp_min":
        lo = _arg(args, kwargs, 1, "min")
    else:
        hi = _arg(args, kwargs, 1, "max")
    lo = None if lo is None else _num(lo, "clamp min")
    hi = None if hi is None else _num(hi, "clamp max")
    if lo is not None and hi is not None:
        if lo >= hi:
            raise FpadError(f"fpad.train: clamp({lo}, {hi}) is constant; use min < max")
        act = get_activation("relu6") if (lo, hi) == (0, 6) else get_activation(f"hardtanh:{lo}:{hi}")
        return TorchAct(name, act, (Fraction(1), Fraction(1)), "const:1")
    if lo is not None:  # max(x, lo) = relu(x - lo) + lo
        if lo != 0:
            raise FpadError(f"fpad.train: clamp(min={lo}) without max is supported only for min = 0")
        return TorchAct(name, get_activation("relu"), (Fraction(1),), "const:1")
    raise FpadError("fpad.train: clamp with only a max (or neither bound) is not supported; use clamp(min, max)")
