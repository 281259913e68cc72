"""Low-precision number formats as data: the finite value set M, codes, and exact rounding.

A :class:`Format` holds only the independent facts of a format (exponent bits E, mantissa bits M,
bias, family, signedness, subnormals, zero, tie rule); everything else (precision, max, smallest
normal, |M|, ...) is a derived property whose docstring states its definition. No format is
special-cased in code: ``e4m3fn`` and ``bf16`` are instances in :data:`NAMED`.

Encoding of a code ``c`` (``n = E + M + signed`` bits): sign bit on top (if signed), then the
exponent field ``e`` (E bits), then the mantissa field ``m`` (M bits). Finite non-special codes
decode to ``(-1)^s * 2^(e - bias) * (1 + m / 2^M)`` for normal fields and, if the format has a
zero, to ``(-1)^s * 2^(1 - bias) * (m / 2^M)`` for ``e = 0`` (subnormals; flushed to +-0 when the
format has no subnormals). Families say which codes are special:

==========  =====================================================================================
family      specials
==========  =====================================================================================
``ieee``    top exponent field: ``m = 0`` is +-inf, ``m != 0`` is NaN (IEEE 754 style)
``fn``      no inf; the single all-ones pattern ``S.1..1.1..1`` (per sign) is NaN (OCP E4M3)
``fnuz``    no inf, no -0: the code ``1.0..0.0..0`` is the single NaN; default bias one higher
``finite``  no inf, no NaN: every code is a finite value (OCP MX FP6/FP4)
==========  =====================================================================================

Names (see :func:`get_format`): generic ``e{E}m{M}[b{BIAS}][fn|fnuz|f]`` with 1 <= E <= 8,
0 <= M <= 10 (no suffix = ``ieee``, ``f`` = ``finite``), optional modifiers ``:nosub`` (no
subnormal values), ``:ties=even`` / ``:ties=up``; named formats and aliases in :data:`NAMED` and
:data:`ALIASES` (ml_dtypes names included) take precedence, so ``e2m1``/``e2m3``/``e3m2`` (and
ml_dtypes' ``e2m1fn``...) are the OCP ``finite`` formats.

Rounding (:meth:`Format.round`) is round-to-nearest from float64 with ONE rounding (no double
rounding through float32), ties to the neighbour with the even encoding (= IEEE ties-to-even;
for p = 1 formats: the even biased exponent) unless the format's ``ties`` is ``"up"`` (larger
magnitude wins; ``e8m0`` uses this, as ml_dtypes and PyTorch do). Overflow (the correctly
rounded magnitude exceeds ``max``, or the input is +-inf): ``ieee`` -> +-inf, ``fn``/``fnuz``
-> NaN, ``finite`` -> +-max; ``saturate=True`` gives +-max for every family. NaN input gives
NaN. Unsigned formats give NaN for negative inputs; formats without a zero give NaN for 0 and
round positive values below the smallest value up to it (ml_dtypes' e8m0 behaviour).
:meth:`Format.round_exact` is the slow exact twin (any real, incl. Fractions, so it also rounds
exact rationals once); :meth:`Format.round_codes` returns codes, like ml_dtypes' ``astype``.

Kernels (numba, for compiled engine loops; parameters are plain numbers from
:meth:`Format.kernel_args`): ``round_scalar`` (alias ``round_kernel``) and the array kernels
``round_array`` / ``round_codes_array``; ``index_scalar`` / ``index_array`` map a value to its
index in :attr:`Format.value_table` (= :meth:`Format.values`), -1 if it is not in M;
``code_scalar`` gives the bit pattern of a rounded value. The rounding rule is a separate pure
function of (x, parameters), so other evaluation semantics can reuse it. Caveat for callers:
``round_scalar`` rounds the float64 it is given; it is a single rounding of a real only if that
real is exactly the float64 (use ``round_exact`` for Fractions).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from fpad.errors import FpadError

FAMILIES = ("ieee", "fn", "fnuz", "finite")
TIES = ("even", "up")
_E_RANGE = (1, 8)
_M_RANGE = (0, 10)
_BIAS_RANGE = (0, 300)  # keeps every value and midpoint a normal float64 (|exponent| < 330)


# -- numba kernels ----------------------------------------------------------------------------
# The kernels take a format's parameters as plain numbers, ``Format.kernel_args(saturate)`` =
# (p, emin, emax, bias, xmax, over, n_pos, flags), so compiled engine loops can call them:
#   round_scalar(x, *args) -> float64       index_scalar(v, *args) -> int64 (-1 if v not in M)
FLAG_SIGNED = 1  # the format has a sign bit
FLAG_NEGZERO = 2  # -0 is a value (signed, has zero, not fnuz)
FLAG_SUBNORMALS = 4  # exponent field 0 holds subnormal values
FLAG_ZERO = 8  # the format has a zero (else field 0 is a normal binade)
FLAG_TIES_UP = 16  # ties go to the larger magnitude (else to the even encoding)
_SIGN = np.int64(-0x8000000000000000)  # the float64 sign bit as an int64 mask


@intrinsic
def _bits(typingctx, x):
    """Reinterpret a float64 as int64 (a bitcast, no conversion)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@njit(cache=True, inline="always")
def _pow2(k):
    """2.0**k for a normal-range exponent k (-1022 <= k <= 1023), built from its bit pattern."""
    return _float((k + 1023) << 52)


@intrinsic
def _float(typingctx, i):
    """Reinterpret an int64 as float64."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(cache=True, inline="always")
def _rne(a, b, p, emin, emax):
    """(r, ue): |x| = a (bits b) rounded to a multiple of u = 2^ue, ties to the even multiple.

    Why it is exact: let ``e`` be the exponent of ``a`` and ``u = 2^(max(e, emin) - p + 1)`` the
    spacing of the format at ``a`` (subnormal spacing below ``2^emin``). With ``c = 2^52 u``,
    ``a < 2^p u <= c / 2`` (p <= 11), so ``a + c`` lies in ``[c, 2c)`` where float64 spacing is
    exactly ``u``: the hardware add rounds ``a`` to a multiple of ``u`` ONCE, ties to the even
    multiple, and ``- c`` is exact (Sterbenz). An even multiple of ``u`` is an even mantissa field
    (or the next binade's ``2^p u``), so this is RNE on the encoding for p >= 2, with overflow
    decided afterwards on the rounded value as IEEE 754 does. NaN needs no test: NaN + c - c is
    NaN and fails every comparison. Clamping e to emax + 1 keeps c a normal float64; any
    a >= 2^(emax+2) still gives r > xmax (if a <= c, r >= 2^(emax+2) as a multiple of u; if
    a > c, fl(a+c) - c >= c > xmax), and so does +-inf.
    """
    e = ((b >> 52) & 0x7FF) - 1023
    ue = min(max(e, emin), emax + 1) - p + 1
    c = _pow2(ue + 52)
    return (a + c) - c, ue


@njit(cache=True)
def round_scalar(x, p, emin, emax, bias, xmax, over, n_pos, flags):
    """Round one float64 to the nearest value of the format (one rounding, see module docstring).

    Core: :func:`_rne`. ``a - r`` is exact (both are multiples of 2^(e-52) because
    u >= 2^(e-p+1); if r != 0 then a >= u/2, so |a - r| <= u/2 spans at most 2^52 such units; if
    r = 0, d = a), which detects ties exactly for the ``up`` rule and for p = 1, where the
    multiple's parity is not the encoding's parity. Results below 2^emin in magnitude take the
    zero/flush/no-zero rules; the sign is put back by bit-or.
    """
    b = _bits(x)
    sign = b & _SIGN
    if x < 0.0 and not (flags & FLAG_SIGNED):
        return np.nan  # negative input to an unsigned format (-0.0 rounds to +0 below)
    a = abs(x)
    r, ue = _rne(a, b, p, emin, emax)
    if p == 1 or (flags & FLAG_TIES_UP):
        half = _pow2(ue - 1)
        d = a - r
        if d == half and (flags & FLAG_TIES_UP):
            r = a + half  # tie, rounded down: take the larger neighbour
        elif d == -half and not (flags & FLAG_TIES_UP) and ((((_bits(r) >> 52) - 1023 + bias) & 1) == 1):
            r = a - half  # p = 1 tie went up to an odd exponent field: take the even one
    mn = _pow2(emin)
    if r < mn:
        if not (flags & FLAG_ZERO):
            if a == 0.0:
                return np.nan  # no zero to round to (ml_dtypes' e8m0 rule)
            r = mn  # no zero: the smallest value is the nearest
        elif not (flags & FLAG_SUBNORMALS):
            # only 0 and 2^emin are near: tie (a = 2^emin / 2) goes to 0, or up under "up"
            r = mn if (a > 0.5 * mn or (a == 0.5 * mn and (flags & FLAG_TIES_UP))) else 0.0
        if r == 0.0 and not (flags & FLAG_NEGZERO):
            sign = 0
    r = over if r > xmax else r
    return _float(_bits(r) | sign)


_BLOCK = 4096  # elements per block of the parallel kernel (input and output stay in L1/L2)


@njit(cache=True)
def _rne_range(x, out, lo, hi, p, emin, emax, xmax, over, lim, negzero):
    """out[lo:hi] = the common path of round_scalar in a branch-free, vectorisable loop: RNE
    (subnormal spacing below 2^emin), overflow, the sign put back by bit-or except on a zero
    result of a format without -0. Returns how many results are below ``lim`` (2^emin for a
    format without subnormals, whose flush rule this loop does not apply; else 0)."""
    small = 0
    for i in range(lo, hi):
        b = _bits(x[i])
        r, ue = _rne(abs(x[i]), b, p, emin, emax)
        r = over if r > xmax else r
        small += r < lim
        keep = (r != 0.0) | negzero
        out[i] = _float(_bits(r) | ((b & _SIGN) if keep else np.int64(0)))
    return small


@njit(cache=True)
def _round_range(x, out, lo, hi, p, emin, emax, bias, xmax, over, n_pos, flags):
    """out[lo:hi] = round_scalar(x[lo:hi]). For signed formats with a zero and p >= 2 under RNE,
    round_scalar's other branches only act on results below 2^emin and then only flush (no
    subnormals) or drop the sign of a zero (no -0); the fast loop applies the latter, so only
    results below 2^emin of formats without subnormals are redone."""
    if p > 1 and not (flags & FLAG_TIES_UP) and (flags & FLAG_SIGNED) and (flags & FLAG_ZERO):
        lim = 0.0 if (flags & FLAG_SUBNORMALS) else _pow2(emin)
        negzero = (flags & FLAG_NEGZERO) != 0
        if _rne_range(x, out, lo, hi, p, emin, emax, xmax, over, lim, negzero) == 0:
            return
        for i in range(lo, hi):
            if abs(out[i]) < lim:
                out[i] = round_scalar(x[i], p, emin, emax, bias, xmax, over, n_pos, flags)
        return
    for i in range(lo, hi):
        out[i] = round_scalar(x[i], p, emin, emax, bias, xmax, over, n_pos, flags)


@njit(parallel=True, cache=True)
def round_array(x, out, p, emin, emax, bias, xmax, over, n_pos, flags):
    """out[i] = round_scalar(x[i], ...) for 1-D float64 arrays, in parallel blocks."""
    n = x.shape[0]
    for j in prange((n + _BLOCK - 1) // _BLOCK):
        _round_range(x, out, j * _BLOCK, min(n, (j + 1) * _BLOCK), p, emin, emax, bias, xmax, over, n_pos, flags)


@njit(cache=True)
def round_array_serial(x, out, p, emin, emax, bias, xmax, over, n_pos, flags):
    """round_array without threads: waking the thread pool costs more than small arrays take."""
    _round_range(x, out, 0, x.shape[0], p, emin, emax, bias, xmax, over, n_pos, flags)


_PARALLEL_MIN = 1 << 16  # below this many elements the serial loops are faster

round_kernel = round_scalar  # the name docs/DESIGN.md uses for the numba-callable rounding


@njit(cache=True)
def code_scalar(r, p, emin, bias, ebits, flags, nan_code):
    """Code (bit pattern) of a result r of round_scalar: a value of M, +-0, +-inf or NaN.

    A normal r = 2^e (1 + m/2^M) has field e + bias and mantissa field = the top M bits of r's
    float64 fraction (exact: r has p = M + 1 significant bits); a subnormal r has field 0 and
    mantissa r / q (an exact power-of-two scaling, r >= q).
    """
    if r != r:
        return nan_code
    m = p - 1
    b = _bits(r)
    a = abs(r)
    sign = ((b >> 63) & 1) << (ebits + m) if (flags & FLAG_SIGNED) else 0
    if a == np.inf:
        return sign | (((1 << ebits) - 1) << m)
    if a == 0.0:
        return sign
    e = ((b >> 52) & 0x7FF) - 1023
    if e < emin:
        return sign | np.int64(a * _pow2(p - 1 - emin))
    return sign | ((e + bias) << m) | ((b >> (52 - m)) & ((1 << m) - 1))


@njit(cache=True, inline="always")
def _normal_code(b, m, bias):
    """Magnitude code of |x| (float64 bits b) rounded to p = m + 1 bits by integer RNE on the
    bit pattern, valid when the result is a normal value of the format (see _round_codes_range).

    Adding 2^(sh-1) - 1 + lsb to the 63 magnitude bits and shifting right by sh = 52 - m rounds
    the significand to m fraction bits, ties to even (lsb = last kept bit); a carry out of the
    significand increments the exponent field, which is the right rollover to the next binade.
    Subtracting (1023 - bias) << m re-biases the exponent field.
    """
    sh = 52 - m
    ab = b & np.int64(0x7FFFFFFFFFFFFFFF)
    return ((ab + ((np.int64(1) << (sh - 1)) - 1) + ((ab >> sh) & 1)) >> sh) - ((1023 - bias) << m)


@njit(cache=True, inline="always")
def _fast_code(x, m, bias, mn, c_sub, inv_q):
    """Magnitude code of round_scalar(x) for signed RNE formats with zero and subnormals, valid
    unless it exceeds code(max) or x is NaN (see _round_codes_range)."""
    b = _bits(x)
    cn = _normal_code(b, m, bias)
    # |x| < 2^emin: round to a multiple of q with the _rne add (min() keeps the int conversion
    # in range and maps NaN to 2^emin; NaN is redone anyway)
    cs = np.int64((((min(abs(x), mn)) + c_sub) - c_sub) * inv_q)
    return cn if cn >= (np.int64(1) << m) else cs


@njit(cache=True)
def _round_codes_range(x, out, lo, hi, p, emin, emax, bias, xmax, over, n_pos, flags, ebits, nan_code):
    """out[lo:hi] = codes of round_scalar(x[lo:hi]).

    For signed RNE formats with a zero, a vectorisable loop (_fast_code) gives the magnitude
    code c: if the integer rounding of _normal_code gives a normal code (>= 2^m) it equals
    round_scalar's, because (i) for |x| >= 2^emin the format's spacing is the p-bit spacing
    used; (ii) for |x| < 2^emin the finer p-bit rounding gives 2^m (= 2^emin) only if
    |x| >= 2^emin - q/4, where rounding with spacing q also gives 2^emin. Otherwise |x| rounds
    below or to 2^emin with spacing q, which the _rne add computes exactly (c = r / q). The sign
    bit is dropped from a zero of a format without -0. Redone through round_scalar and
    code_scalar: NaN, c > code(max) (overflow, inf), and for formats without subnormals every
    c < 2^m (the flush rule).
    """
    m = p - 1
    if p > 1 and not (flags & FLAG_TIES_UP) and (flags & FLAG_SIGNED) and (flags & FLAG_ZERO):
        hi_code = code_scalar(xmax, p, emin, bias, ebits, flags, nan_code)
        lim_code = 0 if (flags & FLAG_SUBNORMALS) else (np.int64(1) << m)
        negzero = (flags & FLAG_NEGZERO) != 0
        mn, c_sub, inv_q = _pow2(emin), _pow2(emin - m + 52), _pow2(m - emin)
        redo = 0
        for i in range(lo, hi):
            c = _fast_code(x[i], m, bias, mn, c_sub, inv_q)
            redo += (c > hi_code) | (c < lim_code) | (x[i] != x[i])
            keep = (c != 0) | negzero
            out[i] = c | (((_bits(x[i]) >> 63) & 1) << (ebits + m) if keep else np.int64(0))
        if redo == 0:
            return
        for i in range(lo, hi):
            c = _fast_code(x[i], m, bias, mn, c_sub, inv_q)
            if c > hi_code or c < lim_code or x[i] != x[i]:
                out[i] = code_scalar(round_scalar(x[i], p, emin, emax, bias, xmax, over, n_pos, flags), p, emin, bias, ebits, flags, nan_code)
        return
    for i in range(lo, hi):
        out[i] = code_scalar(round_scalar(x[i], p, emin, emax, bias, xmax, over, n_pos, flags), p, emin, bias, ebits, flags, nan_code)


@njit(parallel=True, cache=True)
def round_codes_array(x, out, p, emin, emax, bias, xmax, over, n_pos, flags, ebits, nan_code):
    """out[i] = code of round_scalar(x[i], ...) (what ml_dtypes' astype returns), in parallel."""
    n = x.shape[0]
    for j in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = j * _BLOCK, min(n, (j + 1) * _BLOCK)
        _round_codes_range(x, out, lo, hi, p, emin, emax, bias, xmax, over, n_pos, flags, ebits, nan_code)


@njit(cache=True)
def round_codes_array_serial(x, out, p, emin, emax, bias, xmax, over, n_pos, flags, ebits, nan_code):
    """round_codes_array without threads, for small arrays."""
    _round_codes_range(x, out, 0, x.shape[0], p, emin, emax, bias, xmax, over, n_pos, flags, ebits, nan_code)


@njit(cache=True)
def index_scalar(v, p, emin, emax, bias, xmax, over, n_pos, flags):
    """Index of v in the sorted value table (``Format.values()``), or -1 if v is not in M.

    Exact: for ``a = |v|`` with exponent ``e >= emin``, ``k = a / 2^(e - p + 1)`` is a float64
    product by a power of two (exact), and ``a`` is in M iff k is an integer (then
    ``2^(p-1) <= k < 2^p``) and ``a <= xmax``; below ``2^emin`` the same holds with k = a / q
    once ``a >= q`` (smaller a are not in M, and scaling them could underflow in float64).
    Ranks: positives are counted from the smallest, zero (if any) sits between the signs.
    """
    if v != v or abs(v) > xmax:
        return -1
    z = 1 if (flags & FLAG_ZERO) else 0
    base = n_pos if (flags & FLAG_SIGNED) else 0
    a = abs(v)
    if a == 0.0:
        return base if z == 1 else -1
    if v < 0.0 and not (flags & FLAG_SIGNED):
        return -1
    e = ((_bits(a) >> 52) & 0x7FF) - 1023
    half_binade = 1 << (p - 1)
    if e < emin:
        if not ((flags & FLAG_SUBNORMALS) and z == 1) or a < _pow2(emin - p + 1):
            return -1  # (a >= q also keeps the scaling below exact: no float64 underflow)
        k = a * _pow2(p - 1 - emin)
        if k != np.floor(k):
            return -1
        r0 = np.int64(k) - 1
    else:
        k = a * _pow2(p - 1 - e)
        if k != np.floor(k):
            return -1
        s = half_binade - 1 if ((flags & FLAG_SUBNORMALS) and z == 1) else 0
        r0 = s + (e - emin) * half_binade + (np.int64(k) - half_binade)
    if v < 0.0:
        return base - 1 - r0
    return base + z + r0


@njit(parallel=True, cache=True)
def index_array(v, out, p, emin, emax, bias, xmax, over, n_pos, flags):
    """out[i] = index_scalar(v[i], ...) for 1-D arrays, in parallel."""
    for i in prange(v.shape[0]):
        out[i] = index_scalar(v[i], p, emin, emax, bias, xmax, over, n_pos, flags)


@njit(cache=True)
def index_array_serial(v, out, p, emin, emax, bias, xmax, over, n_pos, flags):
    """index_array without threads, for small arrays."""
    for i in range(v.shape[0]):
        out[i] = index_scalar(v[i], p, emin, emax, bias, xmax, over, n_pos, flags)



@dataclass(frozen=True)
class Format:
    """A binary floating-point format given by its independent facts (see the module docstring).

    ``bias``: exponent bias (field ``e`` means ``2^(e - bias)``). ``family``: one of
    :data:`FAMILIES`. ``signed``: has a sign bit. ``subnormals``: exponent field 0 holds
    subnormal values (else those codes are flushed to +-0). ``zero``: the format has a zero; if
    False, exponent field 0 is an ordinary normal binade (E8M0). ``ties``: tie rule of
    :meth:`round`, ``"even"`` or ``"up"``.
    """

    name: str
    ebits: int
    mbits: int
    bias: int
    family: str = "ieee"
    signed: bool = True
    subnormals: bool = True
    zero: bool = True
    ties: str = "even"

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise FpadError(f"format {self.name}: unknown family {self.family!r}; use one of {', '.join(FAMILIES)}")
        if self.ties not in TIES:
            raise FpadError(f"format {self.name}: unknown tie rule {self.ties!r}; use 'even' or 'up'")
        if not (_E_RANGE[0] <= self.ebits <= _E_RANGE[1] and _M_RANGE[0] <= self.mbits <= _M_RANGE[1]):
            raise FpadError(
                f"format {self.name}: E={self.ebits}, M={self.mbits} out of range; "
                f"fpad tabulates E in {_E_RANGE[0]}..{_E_RANGE[1]} and M in {_M_RANGE[0]}..{_M_RANGE[1]}"
            )
        if not _BIAS_RANGE[0] <= self.bias <= _BIAS_RANGE[1]:
            raise FpadError(f"format {self.name}: bias {self.bias} out of range {_BIAS_RANGE[0]}..{_BIAS_RANGE[1]}")
        if self.family == "fnuz" and not self.signed:
            raise FpadError(f"format {self.name}: fnuz needs a sign bit (its NaN is the -0 code)")
        if not self.zero and self.subnormals:
            raise FpadError(f"format {self.name}: a format without zero has no subnormals; pass subnormals=False")
        if self.family == "ieee" and self.mbits == 0:
            raise FpadError(
                f"format {self.name}: an IEEE-like format needs M >= 1 for its NaN codes; "
                f"use the fn, fnuz or f suffix (e.g. e{self.ebits}m0fn)"
            )
        if self._top_field < (1 if self.zero else 0):
            raise FpadError(
                f"format {self.name}: has no normal values (E={self.ebits} leaves only specials and "
                f"subnormals); use more exponent bits or the fn/fnuz/f suffix"
            )

    # -- derived facts (each a definition) ------------------------------------------------------
    @property
    def nbits(self) -> int:
        """Bits per code: E + M + (1 if signed)."""
        return self.ebits + self.mbits + (1 if self.signed else 0)

    @property
    def n_codes(self) -> int:
        """Number of bit patterns, 2^nbits."""
        return 1 << self.nbits

    @property
    def p(self) -> int:
        """Precision in bits including the hidden bit: M + 1."""
        return self.mbits + 1

    @property
    def _top_field(self) -> int:
        """Largest exponent field holding a finite normal value."""
        top = (1 << self.ebits) - 1
        if self.family == "ieee" or (self.family == "fn" and self.mbits == 0):
            top -= 1  # the whole top field is special
        return top

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value: floor(log2(max))."""
        return self._top_field - self.bias

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value: 1 - bias (or -bias for a format without zero)."""
        return (1 if self.zero else 0) - self.bias

    @property
    def _max_mant(self) -> int:
        """Largest mantissa field of a finite value in the top exponent field."""
        full = (1 << self.mbits) - 1
        return full - 1 if (self.family == "fn" and self.mbits > 0) else full

    @property
    def max(self) -> float:
        """Largest finite value: 2^emax * (1 + max mantissa / 2^M)."""
        return math.ldexp(1.0 + self._max_mant / (1 << self.mbits), self.emax)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value: 2^emin."""
        return math.ldexp(1.0, self.emin)

    @property
    def quantum(self) -> float:
        """q = 2^(emin - p + 1): every finite value is an integer multiple of q (anchors §6)."""
        return math.ldexp(1.0, self.emin - self.p + 1)

    @property
    def min_subnormal(self) -> float | None:
        """Smallest positive subnormal value, q; None if the format has no subnormal values."""
        return self.quantum if (self.subnormals and self.zero and self.mbits > 0) else None

    @property
    def min(self) -> float:
        """Smallest positive finite value."""
        return self.min_subnormal or self.min_normal

    @property
    def W(self) -> int:
        """Integer width per factor, emax - emin + p: every |value| / q is an integer < 2^W (anchors §6)."""
        return self.emax - self.emin + self.p

    @property
    def has_inf(self) -> bool:
        """Whether +-inf are codes (ieee family only)."""
        return self.family == "ieee"

    @property
    def has_negzero(self) -> bool:
        """Whether -0 is a code distinct from +0 (signed formats with a zero, except fnuz)."""
        return self.signed and self.zero and self.family != "fnuz"

    @property
    def n_nan_codes(self) -> int:
        """Number of codes that decode to NaN."""
        signs = 2 if self.signed else 1
        if self.family == "ieee":
            return signs * ((1 << self.mbits) - 1)
        if self.family == "fn":
            return signs
        return 1 if self.family == "fnuz" else 0

    @property
    def n_positive(self) -> int:
        """Number of positive finite values: normal fields * 2^M - NaN patterns in them + subnormals."""
        fields = self._top_field + (0 if self.zero else 1)  # normal fields 1..top (or 0..top)
        normals = fields * (1 << self.mbits)
        if self.family == "fn" and self.mbits > 0:
            normals -= 1  # the all-ones NaN pattern inside the top field
        subs = (1 << self.mbits) - 1 if (self.zero and self.subnormals) else 0
        return normals + subs

    @property
    def n_values(self) -> int:
        """|M|: distinct finite reals (+0 and -0 merged) = (2 if signed else 1) * n_positive + zero."""
        return (2 if self.signed else 1) * self.n_positive + (1 if self.zero else 0)

    @property
    def specials(self) -> str:
        """Human description of the special codes (zeros, infinities, NaNs)."""
        parts = ["+-0" if self.has_negzero else ("+0 only" if self.zero else "no zero")]
        parts.append("+-inf" if self.has_inf else "no inf")
        n = self.n_nan_codes
        parts.append(f"{n} NaN code{'s' if n != 1 else ''}" if n else "no NaN")
        if not self.signed:
            parts.append("unsigned")
        if self.zero and not self.subnormals and self.mbits > 0:
            parts.append("no subnormals")
        return ", ".join(parts)

    @property
    def overflow_rule(self) -> str:
        """What :meth:`round` gives for |x| beyond max (without saturate): +-inf, NaN, or +-max."""
        return {"ieee": "+-inf", "fn": "NaN", "fnuz": "NaN", "finite": "saturate to +-max"}[self.family]

    # -- codes and values -----------------------------------------------------------------------
    def decode(self, codes) -> np.ndarray:
        """Values (float64, NaN/inf for special codes) of integer codes, vectorised and exact."""
        c = np.asarray(codes, dtype=np.int64)
        if np.any((c < 0) | (c >= self.n_codes)):
            raise FpadError(f"format {self.name}: codes must be integers in 0..{self.n_codes - 1}")
        mfull = (1 << self.mbits) - 1
        efull = (1 << self.ebits) - 1
        m = c & mfull
        e = (c >> self.mbits) & efull
        neg = ((c >> (self.ebits + self.mbits)) & 1).astype(bool) if self.signed else np.zeros(c.shape, bool)
        frac = m.astype(np.float64) / (1 << self.mbits)
        normal = np.ldexp(1.0 + frac, (e - self.bias).astype(np.int32))
        if self.zero:
            sub = np.ldexp(frac, 1 - self.bias) if self.subnormals else np.zeros(c.shape)
            mag = np.where(e == 0, sub, normal)
        else:
            mag = normal
        val = np.where(neg, -mag, mag)
        if self.family == "ieee":
            top = e == efull
            val = np.where(top & (m == 0), np.where(neg, -np.inf, np.inf), val)
            val = np.where(top & (m != 0), np.nan, val)
        elif self.family == "fn":
            val = np.where((e == efull) & (m == mfull), np.nan, val)
        elif self.family == "fnuz":
            val = np.where(c == (1 << (self.nbits - 1)), np.nan, val)
        return val

    @cached_property
    def _all_decoded(self) -> np.ndarray:
        v = self.decode(np.arange(self.n_codes))
        v.setflags(write=False)
        return v

    def codes(self) -> np.ndarray:
        """All codes that decode to a finite value, in increasing code order (int64)."""
        return np.flatnonzero(np.isfinite(self._all_decoded)).astype(np.int64)

    @cached_property
    def _table(self) -> np.ndarray:
        """Sorted distinct finite values, +-0 merged into +0 (float64, read-only)."""
        v = np.unique(self._all_decoded[np.isfinite(self._all_decoded)] + 0.0)  # + 0.0 maps -0 to +0
        v.setflags(write=False)
        return v

    @cached_property
    def _table_list(self) -> list[float]:
        return [float(t) for t in self._table]

    def values(self, signed_zero: bool = False) -> np.ndarray:
        """Sorted float64 array of the distinct finite values M (a copy).

        With ``signed_zero=True`` and a format that has -0, both zero codes are kept: -0.0 comes
        right before +0.0.
        """
        v = self._table.copy()
        if signed_zero and self.has_negzero:
            i = int(np.searchsorted(v, 0.0))
            v = np.concatenate([v[:i], [-0.0], v[i:]])
        return v

    @cached_property
    def _fractions(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(t) for t in self._table_list)

    def values_fraction(self) -> list[Fraction]:
        """The sorted distinct finite values as exact Fractions (a new list; built once)."""
        return list(self._fractions)

    def contains(self, x) -> bool:
        """Exact membership of a real x (int, float, Fraction, Decimal) in M."""
        try:
            f = Fraction(x)
        except (ValueError, OverflowError, TypeError):
            return False  # NaN, inf, or not a real number
        try:
            fl = float(f)
        except OverflowError:
            return False
        if Fraction(fl) != f:
            return False  # every value of M is a float64, so a non-float64 real is not in M
        i = bisect.bisect_left(self._table_list, fl)
        return i < len(self._table_list) and self._table_list[i] == fl

    def neighbours(self, x) -> tuple[float | None, float | None]:
        """(largest value of M < x or None, smallest value of M > x or None), decided exactly."""
        try:
            f = Fraction(x)
        except (ValueError, OverflowError, TypeError):
            raise FpadError(f"neighbours: {x!r} is not a finite real number") from None
        t = self._table_list
        # list elements are floats; float-vs-Fraction comparisons in Python are exact
        lo = bisect.bisect_left(t, f)
        hi = bisect.bisect_right(t, f)
        return (t[lo - 1] if lo > 0 else None, t[hi] if hi < len(t) else None)

    # -- rounding and encoding ------------------------------------------------------------------
    @property
    def value_table(self) -> np.ndarray:
        """The sorted distinct finite values (read-only float64; index i <-> index_scalar)."""
        return self._table

    def overflow_value(self, saturate: bool = False) -> float:
        """Magnitude an overflowing input rounds to: max if saturating or finite, inf (ieee), else NaN."""
        if saturate or self.family == "finite":
            return self.max
        return math.inf if self.family == "ieee" else math.nan

    def kernel_args(self, saturate: bool = False) -> tuple:
        """(p, emin, emax, bias, xmax, over, n_pos, flags): the plain numbers the numba kernels take."""
        flags = (
            (FLAG_SIGNED if self.signed else 0)
            | (FLAG_NEGZERO if self.has_negzero else 0)
            | (FLAG_SUBNORMALS if (self.subnormals and self.zero) else 0)
            | (FLAG_ZERO if self.zero else 0)
            | (FLAG_TIES_UP if self.ties == "up" else 0)
        )
        return (self.p, self.emin, self.emax, self.bias, self.max, self.overflow_value(saturate), self.n_positive, flags)

    def round(self, x, saturate: bool = False):
        """Round to the nearest value of the format (rules in the module docstring).

        Float64 inputs (scalars or arrays of any shape) go through the compiled kernel; Python
        ints, Fractions and Decimals are rounded exactly by :meth:`round_exact`. Returns float64
        (NaN/inf where the family's rule says so): a float for scalar input, else an array.
        """
        if isinstance(x, (int, Fraction)) and not isinstance(x, bool) or type(x).__name__ == "Decimal":
            return self.round_exact(x, saturate)
        arr = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(arr).ravel()
        out = np.empty_like(flat)
        kernel = round_array if flat.size >= _PARALLEL_MIN else round_array_serial
        kernel(flat, out, *self.kernel_args(saturate))
        return float(out[0]) if arr.ndim == 0 else out.reshape(arr.shape)

    @cached_property
    def _pos(self) -> tuple[list[float], list[int]]:
        """Non-negative values (sorted) and their canonical (smallest) codes, for round_exact."""
        i = int(np.searchsorted(self._table, 0.0))
        return self._table_list[i:], [int(c) for c in self._enc_table[i:]]

    def round_exact(self, x, saturate: bool = False) -> float:
        """Slow exact twin of :meth:`round`: nearest value by exact Fraction comparisons with the
        midpoints of the decoded value table; ties by the parity of the neighbours' codes.

        Accepts any real (float, int, Fraction, Decimal), so it also rounds exact rationals
        (e.g. results of exact arithmetic) with a single rounding.
        """
        over = self.overflow_value(saturate)
        if isinstance(x, float) and math.isnan(x):
            return math.nan
        neg = (math.copysign(1.0, x) < 0) if isinstance(x, float) else x < 0
        if isinstance(x, float) and math.isinf(x):
            return math.nan if (neg and not self.signed) else (-over if neg else over)
        f = abs(Fraction(x))
        if f == 0:
            if not self.zero:
                return math.nan
            return -0.0 if (neg and self.has_negzero) else 0.0
        if neg and not self.signed:
            return math.nan
        vals, codes = self._pos
        key = abs(float(x)) if isinstance(x, float) else f  # float-float compares are exact too
        i = bisect.bisect_right(vals, key) - 1  # vals[i] <= f < vals[i+1]; exact float-Fraction compares
        if i < 0:  # below the smallest value of a format without zero
            r = vals[0]
        elif vals[i] == f:
            r = vals[i]
        else:
            lo, clo = vals[i], codes[i]
            if i + 1 < len(vals):
                hi, chi = vals[i + 1], codes[i + 1]
            else:  # above max: the virtual next value max + 2^(emax - M) with the next code
                hi, chi = Fraction(lo) + Fraction(2) ** (self.emax - self.mbits), clo + 1
            mid = (Fraction(lo) + Fraction(hi)) / 2
            if f != mid:
                r = lo if f < mid else hi
            elif self.ties == "up":
                r = hi
            else:  # even encoding; 0 vs 2^emin without subnormals (both even) goes to 0
                r = hi if (clo % 2 == 1 and chi % 2 == 0) else lo
            r = over if r == hi and i + 1 == len(vals) else float(r)
        if neg:
            return 0.0 if (r == 0 and not self.has_negzero) else -r
        return r

    @cached_property
    def _enc_table(self) -> np.ndarray:
        """Canonical code of each value of the sorted table: the smallest code decoding to it."""
        fin = self.codes()
        v = self._all_decoded[fin] + 0.0
        uniq, first = np.unique(v, return_index=True)  # np.unique keeps the first (smallest) code
        assert np.array_equal(uniq, self._table)
        return fin[first]

    @property
    def nan_code(self) -> int:
        """Canonical NaN code (ieee: +, top field, quiet bit; fn: +, all ones; fnuz: 0x80); -1 if none."""
        efull, mfull = (1 << self.ebits) - 1, (1 << self.mbits) - 1
        if self.family == "ieee":
            return (efull << self.mbits) | (1 << (self.mbits - 1))
        if self.family == "fn":
            return (efull << self.mbits) | mfull
        return 1 << (self.nbits - 1) if self.family == "fnuz" else -1

    def round_codes(self, x, saturate: bool = False) -> np.ndarray:
        """Codes (uint8/16/32) of :meth:`round` of float64 x: the one-rounding analogue of
        ml_dtypes' ``astype``. NaN results get :attr:`nan_code`; a NaN-less format given NaN
        raises FpadError."""
        arr = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(arr).ravel()
        if self.n_nan_codes == 0 and np.isnan(flat).any():
            raise FpadError(f"format {self.name} has no NaN code and the input holds NaN")
        out = np.empty(flat.shape, self._code_dtype())
        kernel = round_codes_array if flat.size >= _PARALLEL_MIN else round_codes_array_serial
        kernel(flat, out, *self.kernel_args(saturate), self.ebits, self.nan_code)
        return out.reshape(arr.shape)

    def _code_dtype(self):
        return np.uint8 if self.nbits <= 8 else (np.uint16 if self.nbits <= 16 else np.uint32)

    def index(self, values) -> np.ndarray:
        """Indices of exact members in the sorted table (:meth:`values`), -1 for non-members (int64)."""
        arr = np.asarray(values, dtype=np.float64)
        flat = np.ascontiguousarray(arr).ravel()
        out = np.empty(flat.shape, np.int64)
        kernel = index_array if flat.size >= _PARALLEL_MIN else index_array_serial
        kernel(flat, out, *self.kernel_args())
        return out.reshape(arr.shape)

    def encode(self, values) -> np.ndarray:
        """Codes (uint8/16/32) of values that are exactly in the format (incl. -0, NaN, inf where
        the format has them); anything else raises FpadError (round it first)."""
        arr = np.asarray(values, dtype=np.float64)
        flat = np.ascontiguousarray(arr).ravel()
        idx = self.index(flat)
        out = self._enc_table[np.maximum(idx, 0)].astype(np.int64)
        sign = 1 << (self.nbits - 1)
        if self.has_negzero:
            out[(flat == 0) & np.signbit(flat)] = sign
        nan = np.isnan(flat)
        if nan.any():
            if self.n_nan_codes == 0:
                raise FpadError(f"format {self.name} has no NaN code; round with saturate=True or avoid NaN")
            out[nan] = self.nan_code
        inf = np.isinf(flat)
        if inf.any():
            if not self.has_inf:
                raise FpadError(f"format {self.name} has no infinity; round with saturate=True to get +-max")
            out[inf] = ((1 << self.ebits) - 1) << self.mbits
            out[inf & (flat < 0)] |= sign
        bad = (idx < 0) & ~nan & ~inf
        if bad.any():
            x = float(flat[bad][0])
            lo, hi = self.neighbours(x)
            raise FpadError(f"{x!r} is not a value of {self.name} (neighbours {lo}, {hi}); round it first")
        return out.astype(self._code_dtype()).reshape(arr.shape)

    def __str__(self) -> str:
        return self.name


# -- named formats and parsing ----------------------------------------------------------------
def _fmt(name, e, m, family="ieee", bias=None, **kw) -> Format:
    if bias is None:
        bias = (1 << (e - 1)) - (0 if family == "fnuz" else 1)
    return Format(name, e, m, bias, family, **kw)


NAMED: dict[str, Format] = {
    f.name: f
    for f in [
        _fmt("e4m3fn", 4, 3, "fn"),  # OCP OFP8 E4M3 (anchors table 1: max 448, |M| = 253)
        _fmt("e5m2", 5, 2, "ieee"),  # OCP OFP8 E5M2 (max 57344, |M| = 247)
        _fmt("e4m3fnuz", 4, 3, "fnuz"),
        _fmt("e5m2fnuz", 5, 2, "fnuz"),
        _fmt("e4m3", 4, 3, "ieee"),  # ml_dtypes float8_e4m3 (IEEE-like, max 240)
        _fmt("e4m3b11fnuz", 4, 3, "fnuz", bias=11),
        _fmt("e3m4", 3, 4, "ieee"),
        _fmt("e3m2", 3, 2, "finite"),  # OCP MX FP6
        _fmt("e2m3", 2, 3, "finite"),  # OCP MX FP6
        _fmt("e2m1", 2, 1, "finite"),  # OCP MX FP4
        _fmt("bf16", 8, 7, "ieee"),
        _fmt("fp16", 5, 10, "ieee"),
        # OCP MX scale: unsigned powers of two 2^-127..2^127, NaN 0xFF, no zero. Ties up as in
        # ml_dtypes and PyTorch (the frameworks that produce such scales); gfloat uses ties=even.
        _fmt("e8m0", 8, 0, "fn", bias=127, signed=False, subnormals=False, zero=False, ties="up"),
    ]
}

ALIASES: dict[str, str] = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "fp4": "e2m1",
    "e2m1fn": "e2m1",
    "e2m3fn": "e2m3",
    "e3m2fn": "e3m2",
    "e8m0fnu": "e8m0",
    # ml_dtypes dtype names
    "float8_e4m3fn": "e4m3fn",
    "float8_e5m2": "e5m2",
    "float8_e4m3fnuz": "e4m3fnuz",
    "float8_e5m2fnuz": "e5m2fnuz",
    "float8_e4m3": "e4m3",
    "float8_e4m3b11fnuz": "e4m3b11fnuz",
    "float8_e3m4": "e3m4",
    "float6_e3m2fn": "e3m2",
    "float6_e2m3fn": "e2m3",
    "float4_e2m1fn": "e2m1",
    "float8_e8m0fnu": "e8m0",
}

_GENERIC = re.compile(r"e(\d+)m(\d+)(?:b(\d+))?(fnuz|fn|f)?")
_SUFFIX_FAMILY = {None: "ieee", "fn": "fn", "fnuz": "fnuz", "f": "finite"}
_ACCEPTED = (
    "accepted: a named format (" + ", ".join(NAMED) + "), an alias such as bfloat16 or "
    "float8_e4m3fn, a generic e{E}m{M}[b{BIAS}][fn|fnuz|f] with E in 1..8 and M in 0..10, "
    "optionally followed by :nosub and/or :ties=even|up, or an ml_dtypes/numpy dtype"
)


def _parse_base(base: str) -> Format:
    if base in NAMED:
        return NAMED[base]
    if base in ALIASES:
        return NAMED[ALIASES[base]]
    mt = _GENERIC.fullmatch(base)
    if not mt:
        raise FpadError(f"unknown format {base!r}; {_ACCEPTED}")
    e, m = int(mt.group(1)), int(mt.group(2))
    if not (_E_RANGE[0] <= e <= _E_RANGE[1] and _M_RANGE[0] <= m <= _M_RANGE[1]):
        raise FpadError(f"format {base!r}: E={e}, M={m} out of range; E must be in 1..8 and M in 0..10")
    family = _SUFFIX_FAMILY[mt.group(4)]
    bias = int(mt.group(3)) if mt.group(3) is not None else None
    return _fmt(base, e, m, family, bias=bias)


def get_format(spec, *, subnormals: bool | None = None, ties: str | None = None) -> Format:
    """The :class:`Format` named by ``spec``: a name, alias, generic string, Format, or dtype.

    Generic strings are ``e{E}m{M}[b{BIAS}][fn|fnuz|f]`` (see the module docstring), optionally
    followed by ``:nosub`` (drop the subnormal values) and ``:ties=even`` / ``:ties=up``. The
    keywords ``subnormals=False`` and ``ties=...`` do the same (and win over the modifiers).
    Equal specs give the same object, so its value tables are built once.
    """
    if isinstance(spec, Format):
        return _variant(spec, subnormals, ties)
    if isinstance(spec, str):
        return _from_string(spec.strip().lower(), subnormals, ties)
    try:
        name = np.dtype(spec).name
    except TypeError:
        raise FpadError(f"unknown format {spec!r}; {_ACCEPTED}") from None
    if name not in NAMED and name not in ALIASES:
        raise FpadError(f"dtype {name} is not a low-precision format fpad tabulates; {_ACCEPTED}")
    return _from_string(name, subnormals, ties)


@functools.lru_cache(maxsize=512)
def _from_string(spec: str, subnormals: bool | None, ties: str | None) -> Format:
    base, *mods = spec.split(":")
    for mod in mods:
        if mod == "nosub":
            subnormals = False if subnormals is None else subnormals
        elif mod.startswith("ties=") and mod[5:] in TIES:
            ties = mod[5:] if ties is None else ties
        else:
            raise FpadError(f"format {spec!r}: unknown modifier {mod!r}; accepted: :nosub, :ties=even, :ties=up")
    return _variant(_parse_base(base), subnormals, ties)


@functools.lru_cache(maxsize=512)
def _variant(fmt: Format, subnormals: bool | None, ties: str | None) -> Format:
    """fmt with its subnormals / tie rule changed (named with the :nosub / :ties= modifiers)."""
    # subnormals only mean something for a format with a zero and mantissa bits
    sub = fmt.subnormals if (subnormals is None or not fmt.zero or fmt.mbits == 0) else subnormals
    tie = fmt.ties if ties is None else ties
    if (sub, tie) == (fmt.subnormals, fmt.ties):
        return fmt
    base = fmt.name.split(":")[0]
    default_ties = NAMED[base].ties if base in NAMED else "even"
    name = base + ("" if sub or not fmt.zero or fmt.mbits == 0 else ":nosub")
    name += f":ties={tie}" if tie != default_ties else ""
    new = Format(name, fmt.ebits, fmt.mbits, fmt.bias, fmt.family, fmt.signed, sub, fmt.zero, tie)
    return NAMED[base] if NAMED.get(base) == new else new
