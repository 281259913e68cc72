"""Rounding throughput float64 -> e4m3fn / bf16: fpad's numba kernel vs ml_dtypes casts.

Run: python benchmarks/bench_rounding.py [--n 10000000] [--repeat 3]

For each format it measures, in the same run and on the same inputs (best of --repeat):
  fpad        Format.round's parallel kernel, float64 in, float64 out, ONE rounding;
  ml f32      np.float32 array .astype(ml_dtypes type) (the input already float32, i.e. the
              cheapest ml_dtypes path, and correct only because the input is float32-exact);
  ml f64      float64 array .astype(ml_dtypes type) (ml_dtypes goes through float32: two
              roundings).
and counts how many float64 inputs the ml f64 path rounds differently from fpad (fpad is checked
against an exact Fraction twin in tests/test_formats.py), on two input sets:
  random      log-uniform magnitudes over the format's normal range, random signs;
  near-ties   midpoints between adjacent values moved by a random relative offset below 2^-30
              (inside float32's rounding error: where double rounding bites).
"""

from __future__ import annotations

import argparse
import time

import ml_dtypes
import numpy as np

from fpad.formats import get_format, round_array


def _inputs(f, n, rng):
    lo, hi = np.log2(f.min_normal), np.log2(f.max)
    rand = np.exp2(rng.uniform(lo, hi, n)) * rng.choice([-1.0, 1.0], n)
    v = f.values()
    pos = v[v > 0]
    mids = (pos[:-1] + pos[1:]) / 2
    m = mids[rng.integers(0, len(mids), n)]
    near = m * (1 + rng.uniform(-(2.0**-30), 2.0**-30, n)) * rng.choice([-1.0, 1.0], n)
    return {"random": rand, "near-ties": near}


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _same(a, b):
    return (a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for name, t in [("e4m3fn", ml_dtypes.float8_e4m3fn), ("bf16", ml_dtypes.bfloat16)]:
        f = get_format(name)
        kargs = f.kernel_args()
        for label, x in _inputs(f, args.n, rng).items():
            x32 = x.astype(np.float32)
            out = np.empty_like(x)
            round_array(x[:8], out[:8], *kargs)  # compile / load the cache outside the timing
            t_fpad = _best(lambda: round_array(x, out, *kargs), args.repeat)
            t_32 = _best(lambda: x32.astype(t), args.repeat)
            t_64 = _best(lambda: x.astype(t), args.repeat)
            with np.errstate(all="ignore"):
                ml64 = x.astype(t).astype(np.float64)
            wrong = int((~_same(ml64, out)).sum())
            n = args.n
            print(
                f"{name:7} {label:9}  fpad {n / t_fpad / 1e6:7.1f} M/s   ml f32 {n / t_32 / 1e6:7.1f} M/s"
                f"   ml f64 {n / t_64 / 1e6:7.1f} M/s   fpad/ml_f32 {t_32 / t_fpad:5.2f}x"
                f"   ml f64 wrong: {wrong} of {n}"
            )


if __name__ == "__main__":
    main()
