"""Arithmetic semantics: ``exact`` or ``rounded:mul=F1,acc=F2,out=F3`` (see DESIGN.md).

Each F is a format name of :mod:`fpad.formats` (``e4m3fn``, ``bf16``, ...), ``fp32``, ``fp64`` or
``exact``. Every product is rounded to F1, every partial sum to F2, every pre-activation and
activation output stored in F3; round to nearest, ties to even, overflow by the format's family
(IEEE-like and fp32/fp64: +-inf; fn/fnuz: NaN; no-specials formats saturate). Shorthands:
``rounded:bf16`` = all three bf16; ``rounded:e4m3fn/fp32`` = products exact, accumulation fp32,
output e4m3fn (tensor-core style: an fp8 product of two fp8 numbers is exact in fp32 anyway).

Rounding is exact: a rational is rounded once (:meth:`fpad.formats.Format.round_exact` for fpad's
formats; an integer algorithm for binary32/binary64, which fpad's tabulated formats do not hold).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from fpad.errors import FpadError

# binary32 / binary64: precision p (with the implicit bit), minimum normal exponent, maximum exponent
_IEEE = {"fp32": (24, -126, 127), "fp64": (53, -1022, 1023)}
ALIASES = {"float32": "fp32", "float64": "fp64", "binary32": "fp32", "binary64": "fp64"}

INF = math.inf


def _round_unbounded(q: Fraction, p: int, emin: int) -> Fraction:
    """``q`` rounded once to precision ``p`` with subnormals below ``2^emin`` and no largest
    exponent, ties to even: integer arithmetic only."""
    if q == 0:
        return q
    num, den = abs(q.numerator), q.denominator
    e = num.bit_length() - den.bit_length()  # 2^(e-1) < num/den < 2^(e+1)
    if (num << max(-e, 0)) < (den << max(e, 0)):
        e -= 1  # now 2^e <= num/den < 2^(e+1)
    qe = max(e, emin) - (p - 1)  # the spacing of representable values around q is 2^qe
    n, rem = divmod(num << max(-qe, 0), den << max(qe, 0))
    twice, d = 2 * rem, den << max(qe, 0)
    if twice > d or (twice == d and n & 1):
        n += 1
    r = Fraction(n << qe) if qe >= 0 else Fraction(n, 1 << -qe)
    return r if q > 0 else -r


def round_binary(q: Fraction, p: int, emin: int, emax: int):
    """``q`` rounded once to the IEEE binary format with precision ``p``, normal exponents
    ``emin..emax`` and subnormals: a Fraction, or +-inf on overflow. Ties to even."""
    r = _round_unbounded(q, p, emin)
    if abs(r) > (2 - Fraction(2) ** (1 - p)) * Fraction(2) ** emax:
        return INF if q > 0 else -INF
    return r


@dataclass(frozen=True)
class Rounding:
    """One rounding target: a format name, ``fp32``/``fp64``, or ``exact`` (no rounding)."""

    name: str

    def __post_init__(self):
        if self.name not in ("exact", *_IEEE):
            from fpad.formats import get_format

            get_format(self.name)  # an unknown name is refused here, naming the accepted ones

    @functools.cached_property
    def _plan(self):
        """(p, emin, largest value, what overflow gives) for the integer rounding, or None to
        use :meth:`fpad.formats.Format.round_exact` (formats whose rules the IEEE scheme does not
        cover: no subnormals, no zero, unsigned, ties up)."""
        if self.name in _IEEE:
            p, emin, emax = _IEEE[self.name]
            return p, emin, (2 - Fraction(2) ** (1 - p)) * Fraction(2) ** emax, INF
        from fpad.formats import get_format

        f = get_format(self.name)
        if not (f.signed and f.zero and f.subnormals and f.ties == "even"):
            return None
        over = f.overflow_value()
        return f.p, f.emin, Fraction(f.max), (Fraction(over) if math.isfinite(over) else over)

    def __call__(self, q):
        """``q`` (a Fraction, int or float: an exact rational; or +-inf / nan) rounded once: a
        Fraction, or a float inf / nan."""
        if isinstance(q, float) and not math.isfinite(q):
            return q  # inf and nan stay what they are
        if not isinstance(q, Fraction):
            q = Fraction(q)  # ints and floats are exact rationals
        if self.name == "exact":
            return q
        plan = self._plan
        if plan is None:
            from fpad.formats import get_format

            r = get_format(self.name).round_exact(q)
            return Fraction(r) if math.isfinite(r) else r
        p, emin, top, over = plan
        r = _round_unbounded(q, p, emin)
        if abs(r) <= top:  # overflow: the magnitude rounded with an unbounded exponent exceeds max
            return r
        return over if isinstance(over, float) and math.isnan(over) else (over if q > 0 else -over)


@dataclass(frozen=True)
class Arith:
    """The arithmetic semantics of an evaluation: ``exact``, or rounded with (mul, acc, out)."""

    mul: Rounding | None = None
    acc: Rounding | None = None
    out: Rounding | None = None

    @property
    def exact(self) -> bool:
        return self.mul is None

    @property
    def spec(self) -> str:
        if self.exact:
            return "exact"
        return f"rounded:mul={self.mul.name},acc={self.acc.name},out={self.out.name}"


EXACT = Arith()


def parse_arith(text: str) -> Arith:
    """``exact`` | ``rounded:F`` | ``rounded:F_OUT/F_ACC`` | ``rounded:mul=F1,acc=F2,out=F3``."""
    how = "give exact, rounded:bf16, rounded:e4m3fn/fp32 or rounded:mul=F1,acc=F2,out=F3"
    t = (text or "").strip()
    if t == "exact":
        return EXACT
    if not t.startswith("rounded:") or not t[len("rounded:"):]:
        raise FpadError(f"--arith {text!r} is not an arithmetic; {how}")
    body = t[len("rounded:"):]

    def rnd(name: str, where: str) -> Rounding:
        name = ALIASES.get(name.strip(), name.strip())
        try:
            return Rounding(name)
        except FpadError as exc:
            raise FpadError(f"--arith {text!r}: {where} {name!r} is not a format ({exc}); "
                            "use a format name, fp32, fp64 or exact") from None

    if body.split("=", 1)[0].strip() in ("mul", "acc", "out"):  # not e2m1:ties=up
        items = [item.split("=", 1) if "=" in item else (item, "") for item in body.split(",")]
        parts = {k.strip(): v for k, v in items}
        if len(items) != 3 or set(parts) != {"mul", "acc", "out"}:
            raise FpadError(f"--arith {text!r}: name each of mul, acc, out once; {how}")
        return Arith(rnd(parts["mul"], "mul"), rnd(parts["acc"], "acc"), rnd(parts["out"], "out"))
    if "/" in body:
        out, acc = body.split("/", 1)
        return Arith(Rounding("exact"), rnd(acc, "acc"), rnd(out, "out"))
    f = rnd(body, "format")
    return Arith(f, f, f)
