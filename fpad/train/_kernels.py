"""Numba kernels of the per-step tie sets (:func:`fpad.train.checks._classify_ties`): the scan of a
pool's windows for ties, and the verdict on each pair (i, i*) it lists.

Exact by construction: they compare floats for equality (a pool input entry with the pool's
output, pre-activations, input patches, all values of the training dtype) and with the kinks (in
float64, which holds both exactly), read booleans and integer indices, and compare AD's factors
(float64 copies of the slopes and proxies, times a sign) with each other and with 0, which
float64 decides exactly for these activations (:func:`fpad.train.checks._factor_table` checks
it). Their slow twin
is :func:`fpad.train.checks._classify_ties_slow` (a window scan in Python with exact rationals);
``tests/test_train_fast.py`` compares the two reports on real and crafted steps.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _window_pairs(cnt, live, star_tied):
    """Pass 1's verdict on a window: -1 not tied (fewer than two cells equal the maximum), 0 tied
    with nothing to list (no tied inside cell has a non-zero factor), else the number of pairs:
    the tied cells other than AD's routed one (one of them unless the maximum is NaN)."""
    return -1 if cnt < 2 else (cnt - star_tied if live else 0)


@njit(cache=True)
def _pass1(xf, mf, idf, nzf, npairs, P, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    """Pass 1 of :func:`pool_tie_pairs` for any window geometry (padding cells included)."""
    k = 0  # flat window index
    off = np.empty(kh * kw, dtype=np.uint64)  # the cells of a window, relative to its first
    for t in range(kh * kw):
        off[t] = (t // kw) * W + t % kw
    for p in range(P):
        for i in range(Ho):
            h0 = i * sh - ph  # the window's rows h0 + r, r < kh; inside: max(0, -h0) <= r < min(kh, H - h0)
            r0, r1 = max(0, -h0), min(kh, H - h0)
            for j in range(Wo):
                w0 = j * sw - pw
                q0, q1 = max(0, -w0), min(kw, W - w0)
                mv = mf[k]
                # padding cells are -inf (max_pool2d's padding): they equal the maximum iff it is -inf
                cnt = kh * kw - (r1 - r0) * (q1 - q0) if mv == -np.inf else 0
                live = 0  # inside cells equal to the maximum with a non-zero factor
                if r0 == 0 and r1 == kh and q0 == 0 and q1 == kw:  # no padding cell: one flat loop (faster)
                    base = np.uint64((p * H + h0) * W + w0)  # unsigned: no negative-index fix-up per read
                    for t in range(kh * kw):
                        c = base + off[t]
                        e = xf[c] == mv
                        cnt += e
                        live += e & nzf[c]
                    k += 1
                    npairs[k - 1] = _window_pairs(cnt, live, xf[p * H * W + idf[k - 1]] == mv)
                    continue
                for r in range(r0, r1):
                    base = (p * H + h0 + r) * W + w0
                    for q in range(q0, q1):
                        if xf[base + q] == mv:
                            cnt += 1
                            live += nzf[base + q]
                npairs[k] = _window_pairs(cnt, live, xf[p * H * W + idf[k]] == mv)
                k += 1


@njit(cache=True)
def pool_tie_pairs(x, m, idx, nz, kh, kw, sh, sw, ph, pw):
    """Tied windows of one max-pool and the pairs (i, i*) to classify.

    ``x`` (B, C, H, W) the pool input, ``m`` (B, C, Ho, Wo) its output, ``idx`` the flat index
    h * W + w of AD's routed entry i* per window, ``nz`` (B, C, H, W) AD's factor != 0. A window
    is tied when at least two of its cells equal its maximum (a padding cell is -inf, as in
    max_pool2d, so it counts when the maximum is -inf). Returns (number of tied windows, pairs):
    one row (b, c, h, w, h*, w*) per cell of a tied window equal to the maximum, other than i*,
    in the tied windows holding an inside cell equal to the maximum with a non-zero factor (a
    window where every tied factor vanishes is harmless); windows in row-major order, cells
    row-major inside each (kernel rows, then columns), the order of the slow twin's scan.
    """
    B, C, H, W = x.shape
    Ho, Wo = m.shape[2], m.shape[3]
    xf, mf, idf, nzf = x.ravel(), m.ravel(), idx.ravel(), nz.ravel().view(np.uint8)
    # pass 1: per window, its number of pairs to list (-1: not tied; 0: tied, nothing to list);
    # int16 holds any count (a window has at most kh * kw cells) in a quarter of int64's memory
    npairs = np.empty(B * C * Ho * Wo, dtype=np.int16)
    if kh == 2 and kw == 2 and ph == 0 and pw == 0:
        # the common 2x2 pool without padding (every window inside), unrolled: a constant trip
        # count and no per-window bounds make this loop 2-3x faster than the general one below;
        # unsigned indices (no negative-index fix-up per read) make it 1.4x faster again
        k, one, Wu = np.uint64(0), np.uint64(1), np.uint64(W)
        for p in range(B * C):
            pb = np.uint64(p * H * W)
            for i in range(Ho):
                rb = pb + np.uint64(i * sh * W)
                for j in range(Wo):
                    c0 = rb + np.uint64(j * sw)
                    mv = mf[k]
                    e0, e1, e2, e3 = xf[c0] == mv, xf[c0 + one] == mv, xf[c0 + Wu] == mv, xf[c0 + Wu + one] == mv
                    cnt = np.int64(e0) + e1 + e2 + e3
                    if cnt < 2:
                        npairs[k] = -1
                    else:
                        live = ((e0 and nzf[c0]) or (e1 and nzf[c0 + one]) or (e2 and nzf[c0 + Wu])
                                or (e3 and nzf[c0 + Wu + one]))
                        npairs[k] = _window_pairs(cnt, live, xf[pb + np.uint64(idf[k])] == mv)
                    k += one
    else:
        _pass1(xf, mf, idf, nzf, npairs, B * C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw)
    tied = 0
    total = 0
    for k in range(B * C * Ho * Wo):
        tied += npairs[k] >= 0
        total += max(npairs[k], 0)
    # pass 2: the pairs of the listed windows (i* is one of the cells equal to the maximum)
    out = np.empty((total, 6), dtype=np.int64)
    n = 0
    for k in range(B * C * Ho * Wo):
        if npairs[k] <= 0:
            continue
        p, i, j = k // (Ho * Wo), (k // Wo) % Ho, k % Wo
        h0, w0 = i * sh - ph, j * sw - pw
        mv = mf[k]
        hs, ws = idf[k] // W, idf[k] % W
        for r in range(kh):
            h = h0 + r
            for q in range(kw):
                w = w0 + q
                inside = 0 <= h < H and 0 <= w < W
                if (xf[(p * H + h) * W + w] == mv if inside else mv == -np.inf) and (h != hs or w != ws):
                    out[n, 0], out[n, 1], out[n, 2], out[n, 3], out[n, 4], out[n, 5] = p // C, p % C, h, w, hs, ws
                    n += 1
    return tied, out[:n]


@njit(cache=True)
def _factor(y, kinks, slopes, proxies):
    """AD's rho'(y): the slope of y's piece, the proxy at a kink (as :func:`fpad.train.checks.ad_factor`;
    float64 compares y, a value of the training dtype, with each kink exactly)."""
    d = slopes[0]
    for i in range(kinks.size):
        if y > kinks[i]:
            d = slopes[i + 1]
        elif y == kinks[i]:
            d = proxies[i]
    return d


# classify_pairs' verdicts on a pair (i, i*)
HARMLESS_ZERO, HARMLESS_EQUAL, UNDECIDED, REAL = 0, 1, 2, 3


@njit(cache=True)
def classify_pairs(pairs, y, C, H, W, act, kinks, slopes, proxies, sign, conv, scale_nz, z, zm, zm_all,
                   kh, kw, sh, sw, ph, pw):
    """The verdict on each pair (b, c, h, w, h*, w*) of :func:`pool_tie_pairs` (the rule of
    :func:`fpad.train.checks._classify_ties_slow`, exact: float equalities, and factors compared
    as the module docstring says):

    * HARMLESS_ZERO: both AD derivatives vanish (AD's factors, times ``sign``, are 0);
    * for a conv block, equal rows in layer l (equal factors, equal pre-activations, a channel
      with non-zero scale, equal input patches): HARMLESS_EQUAL if every entry of both patches
      has AD derivative 0 w.r.t. earlier parameters (mask ``zm``, or ``zm_all``), else UNDECIDED;
    * REAL otherwise (an exact row of the cone).

    ``y`` the flat pre-activations (the pool input without an activation, ``act`` False: factor
    1); ``z`` (B, C_in, H_in, W_in) the conv's input, read through its zero padding (ph, pw): a
    padding cell is 0 with derivative 0, as the conv pads.
    """
    n = pairs.shape[0]
    out = np.empty(n, dtype=np.int8)
    Cin, Hin, Win = z.shape[1], z.shape[2], z.shape[3]
    zf, zmf = z.ravel(), zm.ravel()  # flat reads with unsigned indices (no negative-index fix-up)
    for t in range(n):
        b, c, he, we, hs, ws = pairs[t, 0], pairs[t, 1], pairs[t, 2], pairs[t, 3], pairs[t, 4], pairs[t, 5]
        ye, ys = y[np.uint64(((b * C + c) * H + he) * W + we)], y[np.uint64(((b * C + c) * H + hs) * W + ws)]
        de = _factor(ye, kinks, slopes, proxies) * sign if act else 1.0 * sign
        ds = _factor(ys, kinks, slopes, proxies) * sign if act else 1.0 * sign
        if de == 0 and ds == 0:
            out[t] = HARMLESS_ZERO
            continue
        same = conv and de == ds and ye == ys and scale_nz[c]
        harmless = True
        h0e, w0e, h0s, w0s = he * sh - ph, we * sw - pw, hs * sh - ph, ws * sw - pw  # the patches' corners
        # channel by channel, row by row (1.5x faster than cell by cell over the channels)
        for ci in range(Cin if same else 0):
            pe = (b * Cin + ci) * Hin
            for r in range(kh):
                he_in, hs_in = h0e + r, h0s + r
                re_ok, rs_ok = 0 <= he_in < Hin, 0 <= hs_in < Hin
                re, rs = (pe + he_in) * Win, (pe + hs_in) * Win
                for q in range(kw):
                    we_in, ws_in = w0e + q, w0s + q
                    ie, i_s = re_ok and 0 <= we_in < Win, rs_ok and 0 <= ws_in < Win
                    ve = zf[np.uint64(re + we_in)] if ie else 0.0
                    vs = zf[np.uint64(rs + ws_in)] if i_s else 0.0
                    same &= ve == vs
                    if not zm_all:
                        harmless &= (not ie or zmf[np.uint64(re + we_in)]) and (not i_s or zmf[np.uint64(rs + ws_in)])
            if not same:
                break
        if not same:
            out[t] = REAL
        else:
            out[t] = HARMLESS_EQUAL if harmless else UNDECIDED
    return out
