"""Headline ratios of issue 12 (fpad/cost/), every ratio against a baseline timed in the same run.

Run: python benchmarks/bench_cost.py [--threads 1] [--repeats 9] [--quick]

  omega         time(forward + backward) / time(plain forward) of the digits MLP with softmax
                cross-entropy (PyTorch CPU float32), at the default size and a large one, with the
                operation-count model's omega beside it; ReLU'(0) = 0 vs = 1 (custom Functions)
  directional   time(p jvps under vmap) / time(forward) against backprop's ratio, for the MLP
                (p = 1, 16, 64 directions) and for s(x) = c . ReLU(Ax) (p = 512), and against one
                p x p matrix product there
  exactness     time(fpad's exact Clarke set at 0) / time(the polynomial-time pair of distinct
                AD-conservative elements), random {-1, 0, 1} ReLU networks, p = 3 and 5 (6 each)

The machine is shared (2 cores, other processes running): read medians, expect noise.
"""

from __future__ import annotations

import argparse

import numpy as np

from fpad.cost import clarke, directional, overhead, timing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    args = ap.parse_args(argv)
    kw = dict(repeats=args.repeats, min_block_s=0.004 if args.quick else 0.02)
    big = (2, 256, 128) if args.quick else (2, 1024, 512)
    with timing.pinned_threads(args.threads) as n:
        print(f"torch threads: {n}; {timing.NOISE_NOTE}")
        print("\nomega = time(fwd + bwd) / time(fwd)   [median (IQR)]   op-count omega")
        for label, (d, w, b), var in (("default depth 2, width 256, batch 128", (2, 256, 128), "relu"),
                                      (f"large depth {big[0]}, width {big[1]}, batch {big[2]}", big, "relu"),
                                      ("default, ReLU'(0) = 0 (custom Function)", (2, 256, 128), "relu_d0"),
                                      ("default, ReLU'(0) = 1 (custom Function)", (2, 256, 128), "relu_d1")):
            r = overhead.measure(d, w, b, variant=var, **kw)
            print(f"  {label:44s} {r['omega_time']:6.2f} ({r['omega_time_iqr']:.2f})   {r['omega_ops']:.3f}"
                  f"   [{r['regime']}]")
        print("\np directional derivatives: time / time(fwd)   vmap   loop   backprop   vs one A@V")
        for prog, p in (("mlp", 1), ("mlp", 16), ("mlp", 64 if not args.quick else 16),
                        ("relu_Ax", 512 if not args.quick else 128)):
            r = directional.measure(prog, p, **kw)
            mm = f"{r['vs_matmul']:.2f}" if r["vs_matmul"] is not None else "-"
            print(f"  {prog:8s} p = {p:4d}   {r['ratio']:8.1f} {r['ratio_loop']:8.1f} {r['backprop_ratio']:8.2f}   {mm}")
    print("\nexact Clarke set at 0 vs the polynomial-time pair (median over 6 networks, 2 hidden layers of width p)")
    rng = np.random.default_rng(0)
    for p in ((3,) if args.quick else (3, 5)):
        st = [clarke.study(clarke.random_net(p, [p, p], rng)) for _ in range(6)]
        ex, po = np.median([s["oracle_s"] for s in st]), np.median([s["poly_s"] for s in st])
        print(f"  p = {p}: exact {ex * 1e3:9.2f} ms   pair {po * 1e3:7.3f} ms   ratio {ex / po:9.0f}")


if __name__ == "__main__":
    main()
