"""Rounding throughput float64 -> e4m3fn / bf16: fpad's numba kernel vs ml_dtypes casts.

Run: python benchmarks/bench_rounding.py [--n 10000000] [--repeat 3] [--part all|casts|rounded]

For each format it measures, in the same run and on the same inputs (best of --repeat):
  fpad        Format.round's parallel kernel, float64 in, float64 out, ONE rounding;
  fpad 1t     the same kernel without threads (round_array_serial);
  fpad codes  Format.round_codes' kernel: float64 in, uint8/uint16 codes out (like ml_dtypes);
  ml f32      np.float32 array .astype(ml_dtypes type) (the input already float32, i.e. the
              cheapest ml_dtypes path, and correct only because the input is float32-exact);
  ml f64      float64 array .astype(ml_dtypes type) (ml_dtypes before 0.7 went through float32:
              two roundings; 0.7 rounds once).
and counts how many float64 inputs the installed ml_dtypes' f64 path rounds differently from fpad (fpad is checked
against an exact Fraction twin in tests/test_formats.py), on two input sets:
  random      log-uniform magnitudes over the format's normal range, random signs;
  near-ties   midpoints between adjacent values moved by a random relative offset below 2^-30
              (inside float32's rounding error: where double rounding bites).

Part ``rounded``: per-point rounded counts (``count_rounded``, arithmetic rounded:e4m3fn) of a
one-hidden-layer ReLU net (4 inputs, widths --rounded-widths, parameters uniform over e4m3fn's
values in [-1, 1]), timed end to end in the same run: the compiled kernel (fpad.rounded._kernels,
the exact model's touched points deferred to the slow path and included in its time) on
--kernel-points sampled points, the slow exact path on --slow-points; points/s and their ratio.
Both count exactly; the counts of the two samples are printed as a check, not compared.
"""

from __future__ import annotations

import argparse
import time

import ml_dtypes
import numpy as np

from fpad.formats import get_format, round_array, round_array_serial, round_codes_array


def _rounded_rates(widths, n_kernel: int, n_slow: int, seed: int):
    from fractions import Fraction

    from fpad.network import NetworkSpec
    from fpad.rounded.arith import parse_arith
    from fpad.rounded.count import count_rounded
    from fpad.sweeps import one_hidden_spec

    a = parse_arith("rounded:e4m3fn")
    for width in widths:
        p = NetworkSpec.from_dict(one_hidden_spec(width, inputs=(("0.3", "-1.7", "2.2", "0.9"),))
                                  ).build(get_format("e4m3fn"))
        rate, got = {}, {}
        count_rounded(p, a, sample=8, max_seconds=None, value_range=Fraction(1), kernel=True)  # compile / load
        for label, n, kernel in (("kernel", n_kernel, True), ("slow", n_slow, False)):
            t0 = time.perf_counter()
            r = count_rounded(p, a, sample=n, seed=seed, max_seconds=None, value_range=Fraction(1), kernel=kernel)
            rate[label] = n / (time.perf_counter() - t0)
            got[label] = r.extra["rounded"]
        print(f"rounded:e4m3fn relu width {width:3} ({len(p.free)} params) points/s: kernel {rate['kernel']:10,.0f}"
              f" ({n_kernel:,} points, {got['kernel']['deferred']} deferred)  slow {rate['slow']:8,.0f}"
              f" ({n_slow:,} points) | kernel / slow = {rate['kernel'] / rate['slow']:.0f}x"
              f" | flips {got['kernel']['flips']} of {n_kernel:,}, {got['slow']['flips']} of {n_slow:,}")


def _inputs(f, n, rng):
    lo, hi = np.log2(f.min_normal), np.log2(f.max)
    rand = np.exp2(rng.uniform(lo, hi, n)) * rng.choice([-1.0, 1.0], n)
    v = f.values()
    pos = v[v > 0]
    mids = (pos[:-1] + pos[1:]) / 2
    m = mids[rng.integers(0, len(mids), n)]
    near = m * (1 + rng.uniform(-(2.0**-30), 2.0**-30, n)) * rng.choice([-1.0, 1.0], n)
    return {"random": rand, "near-ties": near}


def _best(fns: dict, repeat: int) -> dict:
    """Best wall time of each function, the repeats interleaved so that load from other
    processes on a shared machine hits all methods alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def _same(a, b):
    return (a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", choices=("all", "casts", "rounded"), default="all")
    ap.add_argument("--rounded-widths", type=lambda t: [int(v) for v in t.split(",")], default=[1, 16])
    ap.add_argument("--kernel-points", type=int, default=100_000)
    ap.add_argument("--slow-points", type=int, default=500)
    args = ap.parse_args(argv)
    if args.part in ("all", "rounded"):
        _rounded_rates(args.rounded_widths, args.kernel_points, args.slow_points, args.seed)
    if args.part == "rounded":
        return
    rng = np.random.default_rng(args.seed)
    for name, mlt in [("e4m3fn", ml_dtypes.float8_e4m3fn), ("bf16", ml_dtypes.bfloat16)]:
        f = get_format(name)
        kargs = f.kernel_args()
        for label, x in _inputs(f, args.n, rng).items():
            x32 = x.astype(np.float32)
            out = np.empty_like(x)
            round_array(x[:8], out[:8], *kargs)  # compile / load the cache outside the timing
            round_array_serial(x[:8], out[:8], *kargs)
            codes = np.empty(x.shape, np.uint8 if f.nbits <= 8 else np.uint16)
            cargs = (*kargs, f.ebits, f.nan_code)
            round_codes_array(x[:8], codes[:8], *cargs)
            t = _best(
                {
                    "fpad": lambda: round_array(x, out, *kargs),
                    "fpad 1t": lambda: round_array_serial(x, out, *kargs),
                    "fpad codes": lambda: round_codes_array(x, codes, *cargs),
                    "ml f32": lambda: x32.astype(mlt),
                    "ml f64": lambda: x.astype(mlt),
                },
                args.repeat,
            )
            with np.errstate(all="ignore"):
                ml64 = x.astype(mlt).astype(np.float64)
            wrong = int((~_same(ml64, out)).sum())
            n = args.n
            rate = {k: f"{n / v / 1e6:7.1f}" for k, v in t.items()}
            print(
                f"{name:7} {label:9} M values/s: fpad {rate['fpad']}  fpad 1t {rate['fpad 1t']}"
                f"  fpad codes {rate['fpad codes']}  ml f32 {rate['ml f32']}  ml f64 {rate['ml f64']}"
                f" | fpad codes / ml f32 = {t['ml f32'] / t['fpad codes']:.2f}x"
                f" | ml_dtypes {ml_dtypes.__version__} f64 differs from exact: {wrong} of {n}"
            )


if __name__ == "__main__":
    main()
