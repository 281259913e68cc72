"""Compiled rounded counts: the fast twin of :func:`fpad.rounded.count.classify_rounded`.

Scope (:func:`prepare` says why a problem is out of it, and the slow path then counts): a dense
hidden layer with any activation, then a dense output layer with the identity, ``reduce = "sum"``,
any minibatch, parameter weights, biases that are parameters or absent; ``mul`` exact or a
format, ``acc`` and ``out`` formats following the IEEE scheme (signed zero, subnormals, ties to
even; overflow to +-inf, NaN or saturation), ``out`` with at most ``53 - p(M)`` bits.

Per grid point (given by coordinates: one value index per free parameter) the kernel returns a
flag byte: nonfinite, touched_rounded, flips, ad_branch_wrong, or DEFER. A point is deferred iff
some exact pre-activation lies on a kink (the exact model's touched points, where ndf / inc / DP
need the oracle); every other point is untouched in exact arithmetic (so differentiable with
AD = DP, and touched = ndf = inc = 0) and decided here, exactly.

Why every decision is exact (round to nearest, no fastmath):

* **Products.** Every parameter is a value of the grid format M (p(M) significant bits); every
  rounded activation and rounded input a value of F3 (p3 bits); p(M) + p3 <= 53 is checked, and
  the exponents keep the product far from float64's overflow and underflow (values of fpad's
  formats lie in 2^-340 .. 2^330), so ``w * z`` is the exact product.
* **Sums.** ``TwoSum(a, b) = (s, r)`` with ``s = fl(a + b)`` and ``s + r = a + b`` exactly (Knuth;
  no overflow here).
* **Rounding** ``RN_F(s + r)`` where ``s = fl(s + r)`` (:func:`_rn`): F's midpoints have at most
  p(F) + 1 <= 25 bits and lie in float64's range, so they are floats. fl is monotone, so when s is
  not a midpoint of F, s and the exact value lie on the same side of every midpoint and round
  alike; when s is a midpoint, the side is the sign of r (r = 0: a true tie, to even). When s is
  not a midpoint and sits on an F value, the exact value is within ulp53(s) of it and rounds to it
  (p(F) <= 52; at a power of two the finer spacing below is still 2^28 ulps wide). Then overflow:
  a magnitude above F's largest value after rounding with unbounded exponent overflows, as in
  :class:`fpad.rounded.arith.Rounding`. For fp64 (p = 53) the rule returns s = RN53 itself.
  inf and NaN (an F2 overflow on the bias add) pass through later roundings unchanged, as there.
* **Activations** ``rho(x) = (a x + d) / C`` on each piece, integers a, d, C = 2^sh c: ``a x`` is
  exact (bits(a) + p3 <= 53), ``a x + d`` a TwoSum pair, ``/ 2^sh`` exact; for c > 1
  (hardsigmoid's 1/6, leaky_relu's 1/100) :func:`_rn_ratio` takes the nearest F value c0 of the
  float quotient and decides between c0 and its neighbours by the exact signs of
  ``(a x + d) - m c`` at the two midpoints m (m c is exact: bits(c) + 26 <= 53), summed by
  expansion arithmetic.
* **The exact model's pieces.** With D the common denominator of the data and the kinks (X = D x,
  K = D k integers), ``D (sum_j w_ij x_j + b_i - k) = sum_j w_ij X_j + b_i D - K`` is a sum of
  exact float products whose sign Shewchuk's GROW-EXPANSION (nonoverlapping, zero-eliminated)
  gives exactly: the sign of its largest component.
* **Rounded pieces**: a rounded pre-activation (a float) against a kink k: exact when k is a
  float; else the float nearest k and the sign of k minus it decide.
* **ad_branch_wrong** (at untouched exact points, so DP is AD with the exact pieces' slopes): AD on
  the rounded branches differs from DP iff for some hidden unit i with u_i = sum_o v_oi != 0 the
  slope changes dS_bi (integers after scaling the slopes and proxies by their common
  denominator) give ``sum_b dS_bi != 0`` (b_i differentiated) or ``sum_b dS_bi X_bj != 0``
  (w_ij differentiated): integer sums below 2^53, checked in :func:`prepare`. (v's and the
  output bias's gradients are exact values, not slopes: they do not change.)
"""

from __future__ import annotations

import math
from collections import namedtuple
from fractions import Fraction

import numpy as np
from numba import njit, prange

# flag bits of one point
NONFINITE, TOUCHED, FLIPS, WRONG, DEFER = 1, 2, 4, 8, 16
_BLOCK = 64

#: kernel data (numba passes a named tuple as a typed record)
RData = namedtuple("RData", "w0 free_pos W1 B1 W2 B2 xr X D KD kf kdir pa pd pc psh slopeS proxyS wrtW wrtB rnd")


# -- exact float helpers ---------------------------------------------------------------------------
@njit(cache=True)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True)
def _rn(h, lo, p, emin):
    """RN_F(h + lo), ties to even, unbounded exponent (F: p bits, normal exponents >= emin,
    subnormals), for h = fl(h + lo). See the module docstring."""
    if h == 0.0:
        return 0.0  # fl(h + lo) = 0 only if h + lo = 0 (sums of floats do not underflow)
    a = abs(h)
    t = lo if h > 0.0 else -lo  # the tail, in the direction of the magnitude
    e = math.frexp(a)[1] - 1  # 2^e <= a < 2^(e+1)
    qe = max(e, emin) - (p - 1)  # F's spacing at a is 2^qe
    x = math.ldexp(a, -qe)  # exact: a power-of-two scaling into [0, 2^p)
    n = math.floor(x)
    f = x - n  # exact
    if f > 0.5 or (f == 0.5 and (t > 0.0 or (t == 0.0 and n % 2.0 == 1.0))):
        n += 1.0
    r = math.ldexp(n, qe)
    return r if h > 0.0 else -r


@njit(cache=True)
def _spacing_up(a, p, emin):
    """F's spacing above the F value a >= 0."""
    if a == 0.0:
        return math.ldexp(1.0, emin - p + 1)
    return math.ldexp(1.0, max(math.frexp(a)[1] - 1, emin) - p + 1)


@njit(cache=True)
def _succ(c, p, emin):
    """The next F value above c (unbounded exponent)."""
    if c >= 0.0:
        return c + _spacing_up(c, p, emin)
    a = -c
    m, e = math.frexp(a)
    ee = e - 1
    if m == 0.5 and ee > emin:
        ee -= 1  # a = 2^(ee + 1): the spacing below a power of two is the binade's below
    return -(a - math.ldexp(1.0, max(ee, emin) - p + 1))


@njit(cache=True)
def _even(c, p, emin):
    """Whether the F value c has an even significand (0 counts as even)."""
    if c == 0.0:
        return True
    a = abs(c)
    return (a / _spacing_up(a, p, emin)) % 2.0 == 0.0


@njit(cache=True)
def _grow(e, n, b):
    """Shewchuk's GROW-EXPANSION with zero elimination, in place: e[:n] (nonoverlapping, increasing
    magnitude) plus the float b; returns the new length (the last component always kept)."""
    q = b
    k = 0
    for i in range(n):
        q, h = _two_sum(q, e[i])
        if h != 0.0:
            e[k] = h
            k += 1
    e[k] = q
    return k + 1


@njit(cache=True)
def _sign(e, n):
    """The exact sign of a nonoverlapping expansion: that of its largest nonzero component."""
    for i in range(n - 1, -1, -1):
        if e[i] > 0.0:
            return 1
        if e[i] < 0.0:
            return -1
    return 0


@njit(cache=True)
def _sign3(a, b, c, buf):
    n = _grow(buf, 0, a)
    n = _grow(buf, n, b)
    return _sign(buf, _grow(buf, n, c))


@njit(cache=True)
def _rn_ratio(nh, nl, c, p, emin, buf):
    """RN_F((nh + nl) / c) for an odd integer c > 1 (nh = fl(nh + nl)), unbounded exponent.

    q = fl(nh / c) is within 2 ulp53 of the exact quotient y, and F's values are 2^28 ulp53 apart
    at least, so RN_F(y) is c0 = RN_F(q) or a neighbour; the exact signs of y - m at the midpoints
    m between them decide (y - m has the sign of nh + nl - m c, m c exact)."""
    if nh == 0.0:
        return 0.0
    c0 = _rn(nh / c, 0.0, p, emin)
    lo = -_succ(-c0, p, emin)
    hi = _succ(c0, p, emin)
    m = (lo + c0) * 0.5
    s = _sign3(nh, nl, -(m * c), buf)
    if s < 0:
        return lo
    if s == 0:
        return lo if _even(lo, p, emin) else c0
    m = (c0 + hi) * 0.5
    s = _sign3(nh, nl, -(m * c), buf)
    if s > 0:
        return hi
    if s == 0:
        return c0 if _even(c0, p, emin) else hi
    return c0


@njit(cache=True)
def _finish(r, top, over):
    """Overflow: above F's largest value after rounding, the format family's overflow value."""
    if abs(r) <= top:
        return r
    return over if r > 0.0 else -over  # -nan is nan


@njit(cache=True)
def round_pair(h, lo, rnd, which):
    """RN of the exact h + lo (h = fl(h + lo)) into rounding ``which`` (0 mul, 1 acc, 2 out) of
    the table ``rnd`` (rows: kind, p, emin, top, over; kind 0 = exact, only where h is exact).
    inf and NaN (an F2 overflow on the bias add) stay what they are, as in Rounding."""
    if rnd[which, 0] == 0.0 or not math.isfinite(h):
        return h
    return _finish(_rn(h, lo, int(rnd[which, 1]), int(rnd[which, 2])), rnd[which, 3], rnd[which, 4])


@njit(cache=True)
def _act_round(x, t, d, rnd, buf):
    """F3(rho(x)) on piece t of the activation: (pa x + pd) / (2^psh pc), rounded once."""
    nh, nl = _two_sum(d.pa[t] * x, d.pd[t])
    sh = d.psh[t]
    nh, nl = math.ldexp(nh, -sh), math.ldexp(nl, -sh)  # exact: far from underflow
    if d.pc[t] == 1.0:
        return round_pair(nh, nl, rnd, 2)
    p, emin = int(rnd[2, 1]), int(rnd[2, 2])
    return _finish(_rn_ratio(nh, nl, d.pc[t], p, emin, buf), rnd[2, 3], rnd[2, 4])


@njit(cache=True)
def _dot(w, widx, row, zvals, bidx, rnd):
    """F3 of the F2-accumulated F1 products w[widx[row, j]] * zvals[j], the bias last (nan-free
    check by the caller)."""
    acc = 0.0
    first = True
    for j in range(widx.shape[1]):
        p = round_pair(w[widx[row, j]] * zvals[j], 0.0, rnd, 0)
        if not math.isfinite(p):
            return p
        if first:
            acc = round_pair(p, 0.0, rnd, 1)
            first = False
        else:
            s, r = _two_sum(acc, p)
            acc = round_pair(s, r, rnd, 1)
        if not math.isfinite(acc):
            return acc
    if bidx[row] >= 0:
        b = w[bidx[row]]
        if first:
            acc = round_pair(b, 0.0, rnd, 1)
        else:
            s, r = _two_sum(acc, b)
            acc = round_pair(s, r, rnd, 1)
    return round_pair(acc, 0.0, rnd, 2)


@njit(cache=True)
def _rounded_piece(x, d):
    """(piece, on a kink) of the float x against the activation's rational kinks."""
    t = 0
    on = False
    for k in range(d.kf.shape[0]):
        kf = d.kf[k]
        if x > kf or (x == kf and d.kdir[k] <= 0.0):  # x >= k exactly
            t = k + 1
            on = x == kf and d.kdir[k] == 0.0
        else:
            break
    return t, on


@njit(cache=True)
def _exact_piece(w, d, b, i, buf, buf2):
    """(piece, on a kink) of the exact pre-activation sum_j w_ij x_bj + b_i (scaled by D)."""
    n = 0
    for j in range(d.W1.shape[1]):
        t = w[d.W1[i, j]] * d.X[b, j]
        if t != 0.0:
            n = _grow(buf, n, t)
    if d.B1[i] >= 0:
        t = w[d.B1[i]] * d.D
        if t != 0.0:
            n = _grow(buf, n, t)
    piece = 0
    on = False
    for k in range(d.KD.shape[0]):
        if d.KD[k] == 0.0:
            s = _sign(buf, n)
        else:
            buf2[:n] = buf[:n]
            s = _sign(buf2, _grow(buf2, n, -d.KD[k]))
        if s < 0:
            break
        piece = k + 1
        on = s == 0
    return piece, on


@njit(cache=True)
def _wrong(w, d, dS, buf):
    """AD on the rounded branches != DP at an untouched point (module docstring)."""
    H, N = d.W1.shape
    O = d.W2.shape[0]
    B = dS.shape[0]
    for i in range(H):
        changed = False
        for b in range(B):
            if dS[b, i] != 0.0:
                changed = True
        if not changed:
            continue
        n = 0
        for o in range(O):
            v = w[d.W2[o, i]]
            if v != 0.0:
                n = _grow(buf, n, v)
        if n == 0 or _sign(buf, n) == 0:
            continue
        if d.wrtB[i]:
            s = 0.0
            for b in range(B):
                s += dS[b, i]
            if s != 0.0:
                return True
        for j in range(N):
            if d.wrtW[i, j]:
                s = 0.0
                for b in range(B):
                    s += dS[b, i] * d.X[b, j]
                if s != 0.0:
                    return True
    return False


@njit(cache=True)
def _point(w, d, z, dS, buf, buf2):
    H = d.W1.shape[0]
    O = d.W2.shape[0]
    B = d.xr.shape[0]
    nonfinite = False
    touched_r = False
    flips = False
    touched_e = False
    rnd = d.rnd
    for b in range(B):
        for i in range(H):
            pe, oe = _exact_piece(w, d, b, i, buf, buf2)
            touched_e = touched_e or oe
            if nonfinite:
                continue
            pre = _dot(w, d.W1, i, d.xr[b], d.B1, rnd)
            if not math.isfinite(pre):
                nonfinite = True
                continue
            pr, orr = _rounded_piece(pre, d)
            touched_r = touched_r or orr
            if pr != pe or orr != oe:
                flips = True
            sr = d.proxyS[pr - 1] if orr else d.slopeS[pr]
            dS[b, i] = sr - d.slopeS[pe]
            z[i] = _act_round(pre, pr, d, rnd, buf)
            if not math.isfinite(z[i]):
                nonfinite = True
        if not nonfinite:
            for o in range(O):
                if not math.isfinite(_dot(w, d.W2, o, z, d.B2, rnd)):
                    nonfinite = True
                    break
    if touched_e:
        return DEFER
    if nonfinite:
        return NONFINITE
    code = (TOUCHED if touched_r else 0) | (FLIPS if flips else 0)
    if flips and _wrong(w, d, dS, buf):
        code |= WRONG
    return code


@njit(cache=True, parallel=True)
def rounded_flags(digits, vals, d, flags):
    """flags[r] = the flag byte of the point with value indices digits[r] (module docstring)."""
    n, k = digits.shape
    H, N = d.W1.shape
    B = d.xr.shape[0]
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for blk in prange(nblocks):
        w = d.w0.copy()
        z = np.zeros(H)
        dS = np.zeros((B, H))
        size = max(N, d.W2.shape[0]) + 8
        buf = np.zeros(size)
        buf2 = np.zeros(size)
        for r in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            for f in range(k):
                w[d.free_pos[f]] = vals[digits[r, f]]
            flags[r] = _point(w, d, z, dS, buf, buf2)


# -- preparation ------------------------------------------------------------------------------------
def _bits(n: int) -> int:
    return abs(int(n)).bit_length()


def _rnd_row(r, p_max: int | None):
    """(kind, p, emin, top, over) of a Rounding, or a reason it is out of the kernel's scope."""
    if r.name == "exact":
        return (0.0, 0.0, 0.0, 0.0, 0.0) if p_max is None else "exact rounding here"
    plan = r._plan
    if plan is None:
        return f"{r.name} is not an IEEE-scheme format (no subnormals, no zero, unsigned or ties up)"
    p, emin, top, over = plan
    if p_max is not None and p > p_max:
        return f"{r.name} has {p} bits, more than {p_max} here"
    return (1.0, float(p), float(emin), float(top), float(over))


def prepare(problem, arith, vals) -> RData | str:
    """The kernel data for ``problem`` under ``arith`` with grid values ``vals`` (Fractions), or a
    one-line reason why the kernel does not apply (the slow path then counts)."""
    spec = problem.spec
    if len(spec.layers) != 2 or any(L.kind != "dense" for L in spec.layers):
        return "not one dense hidden layer and a dense output layer"
    L1, L2 = spec.layers
    if any(L.const_weight is not None or L.bias not in ("param", "none") for L in (L1, L2)):
        return "constant weights or a shared / constant bias"
    if L2.activation.name != "identity" or spec.reduce != "sum":
        return "output layer not identity with reduce = \"sum\""
    p_m = problem.fmt.p
    rows = [_rnd_row(arith.mul, None), _rnd_row(arith.acc, 53), _rnd_row(arith.out, 53 - p_m)]
    for what, row in zip(("mul", "acc", "out"), rows):
        if isinstance(row, str):
            return f"{what}: {row}"
    p3 = int(rows[2][1])  # products of M values (p_m bits) and F3 values (p3 bits) are exact
    act = L1.activation
    index = spec._index
    H, N, O, B = L1.out_shape[0], int(np.prod(L1.in_shape)), L2.out_shape[0], spec.batch
    out = arith.out
    xr, inputs = [], [list(x) for x in spec.inputs]
    for x in inputs:
        r = [out(Fraction(v)) for v in x]
        if not all(isinstance(v, Fraction) for v in r):
            return "an input overflows the output format"
        xr.append([float(v) for v in r])
    D = 1
    for v in [*(v for x in inputs for v in x), *act.kinks]:
        D = D * Fraction(v).denominator // math.gcd(D, Fraction(v).denominator)
    X = [[Fraction(v) * D for v in x] for x in inputs]
    lim = 53 - p_m
    if _bits(D) > lim or any(_bits(v) > lim for x in X for v in x) or any(_bits(k * D) > 52 for k in act.kinks):
        return "data or kinks need too many bits for exact float products"
    # pieces: (a x + d) / (2^sh c)
    pa, pd, pc, psh = [], [], [], []
    for s, c in zip(act.slopes, act.intercepts):
        C = s.denominator * c.denominator // math.gcd(s.denominator, c.denominator)
        sh = (C & -C).bit_length() - 1
        a, dd = s * C, c * C
        # a x exact (x: p3 bits), d a float, m c exact for midpoints m of F3 (p3 + 1 bits)
        if _bits(a) + p3 > 53 or _bits(dd) > 52 or _bits(C >> sh) + p3 + 1 > 53:
            return f"activation {act.name}: slopes / intercepts too wide for exact products"
        pa.append(float(a))
        pd.append(float(dd))
        pc.append(float(C >> sh))
        psh.append(sh)
    kf = [float(k) for k in act.kinks]
    kdir = [float((k > Fraction(f)) - (k < Fraction(f))) for k, f in zip(act.kinks, kf)]
    proxies = problem.proxy.values(act)
    Sd = 1
    for v in (*act.slopes, *proxies):
        Sd = Sd * v.denominator // math.gcd(Sd, v.denominator)
    slopeS, proxyS = [s * Sd for s in act.slopes], [v * Sd for v in proxies]
    smax = max(abs(int(v)) for v in (*slopeS, *proxyS, 1))
    xmax = max([abs(int(v)) for x in X for v in x] + [1, D])
    if 2 * smax * xmax * B >= 2**53:
        return "slopes and data too wide for the exact gradient test"
    wrt = set(problem.wrt)

    def idx(tensor, shape):
        return np.array([index[tensor.entry_name(t)] for t in np.ndindex(*shape)], dtype=np.int64).reshape(shape)

    W1, W2 = idx(L1.weight, (H, N)), idx(L2.weight, (O, H))
    B1 = idx(L1.bias_tensor, (H,)) if L1.bias == "param" else np.full(H, -1, np.int64)
    B2 = idx(L2.bias_tensor, (O,)) if L2.bias == "param" else np.full(O, -1, np.int64)
    f64 = lambda a: np.array(a, dtype=np.float64)  # noqa: E731
    return RData(
        w0=f64([float(v) for v in problem.values]), free_pos=np.array(problem.free, dtype=np.int64),
        W1=W1, B1=B1, W2=W2, B2=B2, xr=f64(xr).reshape(B, N), X=f64([[float(v) for v in x] for x in X]).reshape(B, N),
        D=float(D), KD=f64([float(k * D) for k in act.kinks]), kf=f64(kf), kdir=f64(kdir),
        pa=f64(pa), pd=f64(pd), pc=f64(pc), psh=np.array(psh, dtype=np.int64),
        slopeS=f64([float(v) for v in slopeS]), proxyS=f64([float(v) for v in proxyS] or [0.0]),
        wrtW=np.array([[W1[i, j] in wrt for j in range(N)] for i in range(H)], dtype=np.bool_).reshape(H, N),
        wrtB=np.array([B1[i] >= 0 and B1[i] in wrt for i in range(H)], dtype=np.bool_),
        rnd=f64(rows).reshape(3, 5),
    )


def flags(data: RData, digits: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """The flag byte of each point (rows of value indices ``digits`` into the floats ``vals``)."""
    out = np.zeros(digits.shape[0], dtype=np.int8)
    rounded_flags(np.ascontiguousarray(digits, dtype=np.int64), vals, data, out)
    return out
