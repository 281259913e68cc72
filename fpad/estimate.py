"""Labelled estimates for grids too large to enumerate: which points, and the intervals.

Both estimators decide every point they look at *exactly* (the same kernels as an exhaustive
count); only the choice of points is random, so the counts they report are exact counts of the
sample, and the uncertainty is purely statistical. The interval endpoints are floats (they are
quantiles of Beta distributions); the counts and the sample proportion are exact.

* ``sample`` (``fpad count --sample N --seed S``): N points drawn uniformly from the |M|^k grid
  points, independently and with replacement, *by coordinates*: every free parameter of every
  point is an independent uniform digit in range(|M|) (numpy's unbiased ``integers``, one
  stream per block of rows, see :func:`sample_digits`), so the point is uniform on M^k and the
  compiled kernels decide it whatever the number of free parameters. The ndf count of the sample is then
  Binomial(N, p) with p the true ndf density, and :func:`clopper_pearson` gives the exact
  (conservative) Clopper-Pearson interval for p. Same for inc.

* ``line`` (``fpad count --line PARAM [--sample N] --seed S``): N lines, each the whole range
  of |M| values of PARAM with the other free parameters drawn uniformly (with replacement).
  Every line is enumerated exactly, which is cheap in the kernels and catches the structure of a
  kink along PARAM (a bias parameter crosses every kink of its neuron). The estimate of p is the
  mean of the per-line densities p_j; the p_j are independent and identically distributed with
  mean exactly p (uniform other parameters x all values of PARAM = uniform on the grid), but the
  |M| points of one line are *not* independent, so a binomial interval over all N|M| points would
  be too narrow. :func:`cluster_interval` treats lines as clusters: the Korn-Graubard (1998)
  modified Clopper-Pearson interval, i.e. Clopper-Pearson evaluated at the effective sample size
  n_eff = p(1-p)/Var(p_hat) estimated from the spread of the p_j, with the degrees-of-freedom
  correction (t quantiles with N-1 vs N|M|-1 degrees of freedom) and n_eff capped at N|M|. When
  the lines show no spread the design effect cannot be estimated. If no line has a point of the
  kind (or every point of every line is one) we take n_eff = N, one trial per line: the number of
  lines holding some such point is Binomial(N, q) with q >= p (p_j <= 1 whenever p_j > 0), so the
  Clopper-Pearson bound for q bounds p (Korn-Graubard would use the narrower N|M|). If every line
  has the same count strictly between 0 and |M| we follow Korn-Graubard: n_eff = N|M|.
"""

from __future__ import annotations

import random

import numpy as np

from fpad.errors import FpadError


def digit_stride(m: int, k: int, j: int) -> int:
    """Flat-index stride of free parameter ``j`` of ``k``: the grid is enumerated in
    ``itertools.product`` order, first free parameter most significant (index = sum_j
    digit_j * m^(k-1-j))."""
    return m ** (k - 1 - j)


# Draws come in blocks of this many, each block from its own stream (block 0 is
# random.Random(seed), fpad 0.1.1's single stream, so samples of up to 2^16 points are unchanged).
DRAW_BLOCK = 1 << 16


def draws(bound: int, start: int, stop: int, seed: int) -> list[int]:
    """Draws number ``start`` .. ``stop - 1`` of the uniform sequence ``randrange(bound)`` of ``seed``.

    Draw j depends on (seed, j) only, not on how the sequence is cut into chunks: block
    ``j // DRAW_BLOCK`` has its own stream (``random.Random(seed)`` for block 0, else one seeded
    by the string ``"fpad-estimate:SEED:BLOCK"``). So a sample of 10^9 points is drawn one chunk
    at a time (never all at once, never before the budget check), a resumed run redraws exactly
    the chunks it lacks, and every chunking gives the same points."""
    out: list[int] = []
    for b in range(start // DRAW_BLOCK, -(-stop // DRAW_BLOCK)):
        rng = random.Random(seed) if b == 0 else random.Random(f"fpad-estimate:{seed}:{b}")
        lo = b * DRAW_BLOCK
        block = [rng.randrange(bound) for _ in range(min(stop, lo + DRAW_BLOCK) - lo)]
        out.extend(block[max(start - lo, 0):])
    return out


def digit_block(k: int) -> int:
    """Rows per stream of :func:`sample_digits`: 2^16, fewer for many parameters (a block of
    rows holds at most 2^22 digits, 32 MB), a power of two. A function of k only."""
    return max(1, min(DRAW_BLOCK, 1 << max(0, ((1 << 22) // max(k, 1)).bit_length() - 1)))


def sample_digits(m: int, k: int, n: int, seed: int, start: int = 0) -> np.ndarray:
    """Points ``start .. start + n - 1`` of the sample of ``seed`` as digit rows (shape (n, k),
    int64): every digit an independent uniform draw from range(m). Row j depends on (seed, m, k,
    j) only: block ``j // digit_block(k)`` has its own numpy stream, seeded from the string
    ``"fpad-sample:SEED:BLOCK"``, so chunks, resumed runs and workers draw the same points."""
    rows = digit_block(k)
    out = []
    for b in range(start // rows, -(-(start + n) // rows)):
        rng = np.random.default_rng(random.Random(f"fpad-sample:{seed}:{b}").getrandbits(128))
        lo = b * rows
        block = rng.integers(0, m, size=(min(start + n, lo + rows) - lo, k), dtype=np.int64)
        out.append(block[max(start - lo, 0):])
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def line_bases(n_points: int, m: int, stride: int, n: int, seed: int, start: int = 0) -> list[int]:
    """Starts of lines ``start .. start + n - 1`` along the digit with ``stride``: each base has
    that digit 0 and the other digits uniform (independent, see :func:`draws`); the line is
    ``base + v * stride`` for v in range(m)."""
    return [(r // stride) * stride * m + r % stride for r in draws(n_points // m, start, start + n, seed)]


def _check_level(level: float) -> float:
    if not 0 < level < 1:
        raise FpadError(f"confidence level must lie strictly between 0 and 1, got {level}")
    return 1 - level


def clopper_pearson(x: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """The two-sided Clopper-Pearson interval for a binomial proportion with ``x`` successes in
    ``n`` trials: Beta(a/2; x, n-x+1) and Beta(1-a/2; x+1, n-x) quantiles (0 and 1 at the
    ends). ``x`` and ``n`` may be non-integer (the effective counts of :func:`cluster_interval`).
    The quantiles come from scipy.special (what scipy.stats' beta.ppf computes, without the
    0.3-0.45 s import of scipy.stats)."""
    from scipy.special import betaincinv

    a = _check_level(level)
    if n <= 0:
        return 0.0, 1.0
    lo = 0.0 if x <= 0 else float(betaincinv(x, n - x + 1, a / 2))
    hi = 1.0 if x >= n else float(betaincinv(x + 1, n - x, 1 - a / 2))
    return lo, hi


def cluster_interval(counts: list[int], m: int, level: float = 0.95) -> tuple[float, float]:
    """Interval for the density from per-line counts (``counts[j]`` of ``m`` points on line j):
    the Korn-Graubard effective-sample-size Clopper-Pearson interval (see the module docstring)."""
    from scipy.special import stdtrit  # Student's t quantile (scipy.stats' t.ppf)

    a = _check_level(level)
    n_lines = len(counts)
    if n_lines < 2:
        raise FpadError("a line estimate needs at least 2 lines for an interval")
    total = n_lines * m
    p = sum(counts) / total
    dens = [c / m for c in counts]
    var = sum((d - p) ** 2 for d in dens) / (n_lines - 1) / n_lines  # Var(mean of the p_j)
    if var > 0:
        n_eff = min(total, p * (1 - p) / var)
        n_eff *= (stdtrit(total - 1, 1 - a / 2) / stdtrit(n_lines - 1, 1 - a / 2)) ** 2
    elif sum(counts) in (0, total):
        n_eff = n_lines
    else:
        n_eff = total
    return clopper_pearson(p * n_eff, n_eff, level)


def sample_interval(ndf: int, inc: int, n: int, level: float = 0.95) -> dict:
    """The ``ci`` entry of a sample estimate: Clopper-Pearson intervals for the ndf and inc
    densities."""
    return {"ndf": list(clopper_pearson(ndf, n, level)), "inc": list(clopper_pearson(inc, n, level)),
            "level": level, "interval": "clopper-pearson"}


def line_interval(lines: list[list[int]], m: int, level: float = 0.95) -> dict:
    """The ``ci`` entry of a line estimate from per-line ``[ndf, inc]`` counts."""
    return {"ndf": list(cluster_interval([r[0] for r in lines], m, level)),
            "inc": list(cluster_interval([r[1] for r in lines], m, level)),
            "level": level, "interval": "korn-graubard, lines as clusters"}

