"""Pointwise activations, each a continuous piecewise-linear function declared as data.

An activation is ``rho(x) = slopes[i] * x + intercepts[i]`` on the i-th piece, where the pieces are
``(-inf, k_0], [k_0, k_1], ..., [k_{m-1}, +inf)`` for kinks ``k_0 < ... < k_{m-1}``. Continuity at
every kink is checked at construction. Because every activation is such data, everything else
(AD, the oracle, the numba kernels) is written once for all of them: the one-sided derivatives at
kink ``k_i`` are ``D^- = slopes[i]`` and ``D^+ = slopes[i+1]``, and a point is *on a kink* iff it
equals some ``k_i`` exactly. All numbers are :class:`fractions.Fraction`, so every evaluation and
every comparison with a kink is exact.

Adding an activation means adding one constructor to :data:`REGISTRY`; the generic battery in
``tests/test_activations.py`` then checks it (declared kinks = observed kinks, one-sided derivatives
= exact difference quotients, continuity).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fpad.errors import FpadError
from fpad.exact import float_with_error


def _q(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(x)


@dataclass(frozen=True)
class Activation:
    """A continuous piecewise-linear activation (see the module docstring)."""

    name: str
    kinks: tuple[Fraction, ...]
    slopes: tuple[Fraction, ...]
    intercepts: tuple[Fraction, ...]

    def __post_init__(self):
        if len(self.slopes) != len(self.kinks) + 1 or len(self.intercepts) != len(self.slopes):
            raise ValueError(f"activation {self.name}: need len(kinks)+1 slopes and intercepts")
        if any(b <= a for a, b in zip(self.kinks, self.kinks[1:])):
            raise ValueError(f"activation {self.name}: kinks must be strictly increasing")
        for i, k in enumerate(self.kinks):
            left = self.slopes[i] * k + self.intercepts[i]
            right = self.slopes[i + 1] * k + self.intercepts[i + 1]
            if left != right:
                raise ValueError(f"activation {self.name}: discontinuous at kink {k}")
            if self.slopes[i] == self.slopes[i + 1]:
                raise ValueError(f"activation {self.name}: {k} is not a kink (equal slopes)")

    # -- exact scalar semantics -------------------------------------------------------------
    def piece(self, x: Fraction) -> int:
        """Index of the piece containing x (at a kink: the piece to its right)."""
        i = 0
        while i < len(self.kinks) and x >= self.kinks[i]:
            i += 1
        return i

    def __call__(self, x) -> Fraction:
        i = self.piece(_q(x))
        return self.slopes[i] * x + self.intercepts[i]

    def kink_index(self, x) -> int:
        """Index of the kink equal to x, or -1 when x is not a kink (exact comparison)."""
        try:
            return self.kinks.index(_q(x))
        except ValueError:
            return -1

    def derivative(self, x) -> Fraction:
        """rho'(x) off the kinks; raises at a kink, where rho is not differentiable."""
        if self.kink_index(x) >= 0:
            raise ValueError(f"{self.name} is not differentiable at its kink {x}")
        return self.slopes[self.piece(_q(x))]

    def d_left(self, x) -> Fraction:
        """Left derivative D^- rho(x)."""
        x = _q(x)
        i = self.kink_index(x)
        return self.slopes[i] if i >= 0 else self.slopes[self.piece(x)]

    def d_right(self, x) -> Fraction:
        """Right derivative D^+ rho(x)."""
        x = _q(x)
        i = self.kink_index(x)
        return self.slopes[i + 1] if i >= 0 else self.slopes[self.piece(x)]

    def directional(self, x, dx) -> Fraction:
        """rho'(x; dx), the one-sided directional derivative (exact)."""
        dx = _q(dx)
        if dx > 0:
            return self.d_right(x) * dx
        if dx < 0:
            return self.d_left(x) * dx
        return Fraction(0)

    @property
    def n_kinks(self) -> int:
        return len(self.kinks)

    @property
    def spec(self) -> str:
        """The string that :func:`get_activation` turns back into this activation."""
        return self.name

    # -- arrays for numba kernels --------------------------------------------------------------
    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """(kinks, kink_err, slopes, slope_err, intercepts, intercept_err) as float64 arrays: each
        number as its nearest float and a bound of the rounding error (0 iff the float is exact,
        :func:`fpad.exact.float_with_error`), the form the compiled kernels read. Dyadic data
        (relu, 1/64) is exact; 1/6 (hardsigmoid) carries a bound and the kernels' error-bounded
        arithmetic keeps its decisions exact."""
        out = []
        for numbers in (self.kinks, self.slopes, self.intercepts):
            pairs = [float_with_error(v) for v in numbers]
            out.append(np.array([f for f, _ in pairs], dtype=np.float64))
            out.append(np.array([e for _, e in pairs], dtype=np.float64))
        return tuple(out)


def _pwl(name, kinks, slopes, intercepts) -> Activation:
    return Activation(
        name,
        tuple(_q(k) for k in kinks),
        tuple(_q(s) for s in slopes),
        tuple(_q(c) for c in intercepts),
    )


def identity() -> Activation:
    return _pwl("identity", [], [1], [0])


def relu() -> Activation:
    return _pwl("relu", [0], [0, 1], [0, 0])


def leaky_relu(slope="1/100") -> Activation:
    a = Fraction(slope)
    if a == 1:
        raise FpadError("leaky_relu slope 1 is the identity; use activation = \"identity\"")
    return _pwl(f"leaky_relu:{a}", [0], [a, 1], [0, 0])


def relu6() -> Activation:
    return _pwl("relu6", [0, 6], [0, 1, 0], [0, 0, 6])


def hardtanh(lo="-1", hi="1") -> Activation:
    lo, hi = Fraction(lo), Fraction(hi)
    if not lo < hi:
        raise FpadError(f"hardtanh needs lo < hi, got lo={lo}, hi={hi}")
    name = "hardtanh" if (lo, hi) == (-1, 1) else f"hardtanh:{lo}:{hi}"
    return _pwl(name, [lo, hi], [0, 1, 0], [lo, 0, hi])


def hardsigmoid() -> Activation:
    # PyTorch: x/6 + 1/2 clipped to [0, 1]; kinks at -3 and 3.
    return _pwl("hardsigmoid", [-3, 3], [0, Fraction(1, 6), 0], [0, Fraction(1, 2), 1])


def abs_() -> Activation:
    return _pwl("abs", [0], [-1, 1], [0, 0])


REGISTRY = {
    "identity": identity,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "relu6": relu6,
    "hardtanh": hardtanh,
    "hardsigmoid": hardsigmoid,
    "abs": abs_,
}


def get_activation(spec) -> Activation:
    """Parse ``"relu"``, ``"leaky_relu:1/64"``, ``"hardtanh:-2:2"`` (or pass an Activation through)."""
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str) or not spec:
        raise FpadError(f"activation must be a name such as 'relu', got {spec!r}")
    name, *args = spec.split(":")
    if name not in REGISTRY:
        raise FpadError(
            f"unknown activation {spec!r}; accepted: {', '.join(sorted(REGISTRY))} "
            "(leaky_relu:SLOPE and hardtanh:LO:HI take parameters)"
        )
    try:
        return REGISTRY[name](*args)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        if isinstance(exc, FpadError):
            raise
        raise FpadError(f"bad parameters in activation {spec!r}: {exc}") from None
