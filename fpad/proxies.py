"""Proxy conventions: the number AD uses for rho'(x) when x is exactly a kink of rho.

Off the kinks every convention returns the true derivative; at kink ``k_i`` of an activation the
convention returns one exact rational, the *proxy*. The two one-sided derivatives there are
``D^- = slopes[i]`` and ``D^+ = slopes[i+1]`` (:mod:`fpad.activations`).

Conventions (``get_proxy(spec)``):

* ``pytorch``: what ``torch.autograd`` returns (paper_iclr2024.md section 3, read in ATen source):
  ReLU'(0) = 0 (D^-); LeakyReLU'(0) = alpha, the negative slope (D^-); ReLU6, HardTanh and
  HardSigmoid: 0 at both kinks (the backward passes the gradient only on the open interval, so
  D^- at the lower kink and D^+ at the upper one); abs: 0, because ``torch.sign(0) = 0``
  (= (D^- + D^+)/2, a Clarke but not a Bouligand value). ``identity`` has no kinks.
* ``tensorflow``: the same values. Confirmed in source for ReLU (``gradient * (x > 0)``), ReLU6
  (``0 < x < 6``) and LeakyReLU (``x > 0 ? g : alpha g``); ``tf.abs``'s gradient is ``sign(x)``,
  0 at 0. UNCONFIRMED: TensorFlow has no native HardTanh, and Keras' hard_sigmoid differs between
  versions (some use 0.2x + 0.5 with kinks at +-2.5); we use PyTorch's values for both.
* ``left`` (D^-), ``right`` (D^+), ``mix:LAMBDA`` (LAMBDA D^- + (1 - LAMBDA) D^+, LAMBDA an exact
  rational in [0, 1] written ``1/2`` or ``0.5``), ``const:C`` (the rational C at every kink).
* Per-activation overrides: a dict ``{"default": "pytorch", "relu6": "left"}`` or the equivalent
  string ``"pytorch,relu6=left"``; keys are activation base names (``leaky_relu``, not
  ``leaky_relu:1/64``).

Every convention routes a MAX node's gradient to the *first* maximiser in argument order
(``max_rule = "first"``): PyTorch's pooling kernels choose by strict ``>`` in scan order, and the
one TensorFlow observation agrees (paper_iclr2024.md section 3).

The paper's conditions are queries on a convention: :meth:`ProxyConvention.single_lambda` (Thm 4 /
Thm 6: one lambda at every kink of an activation), :meth:`ProxyConvention.is_bouligand`
(Thm 8 / ICML 2023 Thm 3.6: the proxy is D^- or D^+ at every kink) and
:meth:`ProxyConvention.is_clarke` (ICLR 2024 Thm 1: the proxy lies between D^- and D^+).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from fpad.activations import REGISTRY, Activation
from fpad.errors import FpadError

ACCEPTED = "pytorch | tensorflow | left | right | mix:LAMBDA (0<=LAMBDA<=1, e.g. mix:1/2) | const:C"
FRAMEWORKS = ("pytorch", "tensorflow")

# The framework proxy of each registered activation, as a function of the activation (so that
# parametrised activations such as leaky_relu:ALPHA and hardtanh:LO:HI are covered).
# Keys must cover REGISTRY; tests/test_proxies.py checks it, so a new activation cannot be
# added without deciding its framework proxy.
_FRAMEWORK_VALUES = {
    "identity": lambda act, i: None,  # no kinks; never called
    "relu": lambda act, i: Fraction(0),
    "leaky_relu": lambda act, i: act.slopes[0],  # alpha: x > 0 ? g : alpha * g
    "relu6": lambda act, i: Fraction(0),
    "hardtanh": lambda act, i: Fraction(0),
    "hardsigmoid": lambda act, i: Fraction(0),
    "abs": lambda act, i: Fraction(0),  # sign(0) = 0
}


def base_name(act: Activation) -> str:
    """``"leaky_relu"`` for ``leaky_relu:1/64``: the key used by per-activation overrides."""
    return act.name.split(":")[0]


@dataclass(frozen=True)
class Rule:
    """One convention for all kinks of one activation: ``kind`` and, for mix/const, ``arg``."""

    kind: str  # "pytorch" | "tensorflow" | "left" | "right" | "mix" | "const"
    arg: Fraction = Fraction(0)

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.arg}" if self.kind in ("mix", "const") else self.kind

    def value(self, act: Activation, i: int) -> Fraction:
        d_minus, d_plus = act.slopes[i], act.slopes[i + 1]
        if self.kind == "left":
            return d_minus
        if self.kind == "right":
            return d_plus
        if self.kind == "mix":
            return self.arg * d_minus + (1 - self.arg) * d_plus
        if self.kind == "const":
            return self.arg
        name = base_name(act)
        if name not in _FRAMEWORK_VALUES:
            raise FpadError(
                f"no {self.kind} proxy is known for activation {act.name!r}; "
                "choose one explicitly, e.g. proxy = {default = \"" + self.kind + f"\", {name} = \"left\"}}"
            )
        return _FRAMEWORK_VALUES[name](act, i)


def parse_rule(text) -> Rule:
    """Parse one rule such as ``pytorch``, ``mix:1/2``, ``const:0``."""
    if not isinstance(text, str):
        raise FpadError(f"proxy must be a string, got {text!r}; accepted: {ACCEPTED}")
    t = text.strip()
    if t in (*FRAMEWORKS, "left", "right"):
        return Rule(t)
    kind, sep, arg = t.partition(":")
    if sep and kind in ("mix", "const"):
        try:
            value = Fraction(arg.strip())
        except (ValueError, ZeroDivisionError):
            raise FpadError(f"proxy {text!r}: {arg!r} is not an exact rational such as 1/2 or 0.5") from None
        if kind == "mix" and not 0 <= value <= 1:
            raise FpadError(f"proxy {text!r}: LAMBDA must lie in [0, 1] (0 = right, 1 = left)")
        return Rule(kind, value)
    raise FpadError(f"unknown proxy {text!r}; accepted: {ACCEPTED}, or per activation 'pytorch,relu6=left'")


@dataclass(frozen=True)
class ProxyConvention:
    """A default :class:`Rule` plus per-activation overrides (sorted (base name, Rule) pairs)."""

    default: Rule
    overrides: tuple[tuple[str, Rule], ...] = ()
    max_rule: str = "first"  # MAX nodes: AD routes the gradient to the first maximiser

    def rule(self, act: Activation) -> Rule:
        name = base_name(act)
        for key, rule in self.overrides:
            if key == name:
                return rule
        return self.default

    def value(self, act: Activation, kink_index: int) -> Fraction:
        """The proxy AD uses for rho'(k) at ``act.kinks[kink_index]`` (exact)."""
        if not 0 <= kink_index < act.n_kinks:
            raise ValueError(f"{act.name} has no kink {kink_index}")
        return Fraction(self.rule(act).value(act, kink_index))

    def values(self, act: Activation) -> tuple[Fraction, ...]:
        """The proxy at every kink of ``act``, in kink order."""
        return tuple(self.value(act, i) for i in range(act.n_kinks))

    def derivative(self, act: Activation, x) -> Fraction:
        """What AD uses for rho'(x): the true derivative off the kinks, the proxy on them."""
        i = act.kink_index(x)
        return self.value(act, i) if i >= 0 else act.derivative(x)

    def single_lambda(self, act: Activation) -> Fraction | None:
        """The lambda in [0, 1] with proxy = lambda D^- + (1-lambda) D^+ at EVERY kink, else None.

        This is the condition of ICLR 2024 Thm 4 / Thm 6 for one layer. An activation without kinks
        imposes nothing; we report lambda = 1 for it. For one kink the lambda is unique because
        D^- != D^+ there.
        """
        lam = None
        for i in range(act.n_kinks):
            d_minus, d_plus = act.slopes[i], act.slopes[i + 1]
            here = (self.value(act, i) - d_plus) / (d_minus - d_plus)
            if not 0 <= here <= 1 or (lam is not None and here != lam):
                return None
            lam = here
        return Fraction(1) if lam is None else lam

    def is_bouligand(self, act: Activation) -> bool:
        """Proxy in {D^-, D^+} at every kink (ICML 2023 Thm 3.6, ICLR 2024 Thm 8)."""
        return all(
            self.value(act, i) in (act.slopes[i], act.slopes[i + 1]) for i in range(act.n_kinks)
        )

    def side(self, act: Activation, kink_index: int) -> str:
        """Where the proxy lies at kink ``kink_index``: ``"-"`` (= D^-), ``"+"`` (= D^+),
        ``"interior"`` (strictly between them) or ``"other"`` (outside [D^-, D^+])."""
        p = self.value(act, kink_index)
        d_minus, d_plus = act.slopes[kink_index], act.slopes[kink_index + 1]
        if p == d_minus:
            return "-"
        if p == d_plus:
            return "+"
        return "interior" if min(d_minus, d_plus) < p < max(d_minus, d_plus) else "other"

    def in_clarke(self, act: Activation, kink_index: int) -> bool:
        """The proxy lies in the Clarke set [min(D^-, D^+), max(D^-, D^+)] at this kink: then
        AD's output at a point where only this kink is touched lies in conv{g_-, g_+}."""
        return self.side(act, kink_index) != "other"

    def is_clarke(self, act: Activation) -> bool:
        """Proxy in the Clarke set at every kink (ICLR 2024 Thm 1)."""
        return all(self.in_clarke(act, i) for i in range(act.n_kinks))

    @property
    def spec(self) -> str:
        """Canonical string, accepted back by :func:`get_proxy`: ``pytorch`` or ``pytorch,relu6=left``."""
        return ",".join([self.default.spec, *(f"{k}={r.spec}" for k, r in self.overrides)])


def _overrides(pairs, where: str) -> tuple[tuple[str, Rule], ...]:
    out = {}
    for key, text in pairs:
        key = str(key).strip()
        if key not in REGISTRY:
            raise FpadError(
                f"proxy override {key!r} in {where} is not an activation name; accepted keys: "
                f"default, {', '.join(sorted(REGISTRY))}"
            )
        out[key] = parse_rule(text)
    return tuple(sorted(out.items()))


def get_proxy(spec="pytorch") -> ProxyConvention:
    """Parse a convention: a rule string, ``"pytorch,relu6=left"``, or ``{"default": ..., "relu6": ...}``."""
    if isinstance(spec, ProxyConvention):
        return spec
    if isinstance(spec, dict):
        if "default" not in spec:
            raise FpadError(
                f"proxy table {spec!r} needs a 'default' entry, e.g. {{default = \"pytorch\", relu6 = \"left\"}}"
            )
        rest = [(k, v) for k, v in spec.items() if k != "default"]
        return ProxyConvention(parse_rule(spec["default"]), _overrides(rest, "the proxy table"))
    if isinstance(spec, str):
        default, *items = [s.strip() for s in spec.split(",")]
        pairs = []
        for item in items:
            key, eq, text = item.partition("=")
            if not eq:
                raise FpadError(f"proxy {spec!r}: {item!r} should read ACTIVATION=RULE, e.g. relu6=left")
            pairs.append((key, text))
        return ProxyConvention(parse_rule(default), _overrides(pairs, f"proxy {spec!r}"))
    raise FpadError(f"proxy must be a string or a table, got {spec!r}; accepted: {ACCEPTED}")
