"""Cost of the training-time checks: step time with and without them, same run, same seed.

    python benchmarks/bench_train.py                 # fnn, vgg, vgg-bn, resnet; 40 steps each
    python benchmarks/bench_train.py --steps 20 --models vgg resnet --precision bf16
    python benchmarks/bench_train.py --models vgg vgg-bn resnet --width 4 --batch 256   # scaling

Two copies of a model start from the same seed and see the same minibatches; their steps are
interleaved (off, on, off, on, ...) so that load from other processes on a shared machine hits
both alike. "off" is a plain training step (forward, cross-entropy, backward, SGD); "on" is the
same step with the forward inside fpad.train.Capture, plus the exact step check. Printed per
model: median step time off and on, the overhead ratio on/off - 1 (target <= 10% on the CNNs; the
anchor is +77% per epoch for the released code), the same ratio in the thread's CPU time (which
other processes on the machine do not inflate; time a hypervisor steals from a virtual machine
does), and where the check's time goes: capture (the
extra forward time under the tracing mode), S/T sets (touches, tie windows, harmless ties), LP
(the exact cones). Medians, since the machine is shared and single steps are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fpad.train.checks import check_trace
from fpad.train.models import build
from fpad.train.run import BATCH, digits, forward_backward
from fpad.train.trace import Capture


def _step(net, opt, xb, yb, cap):
    t0, c0 = time.perf_counter(), time.thread_time()
    opt.zero_grad()
    _, t_fwd = forward_backward(net, xb, yb, cap)
    opt.step()
    rep = None if cap is None else check_trace(cap.trace)  # after the step, as fpad.train.run does
    return time.perf_counter() - t0, time.thread_time() - c0, t_fwd, rep


def bench(model: str, steps: int, precision: str, width: int = 1, batch: int = BATCH) -> dict:
    xtr, ytr, _, _ = digits()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = build(model, "relu", width).to(dtype)
        nets.append((net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)))
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(ytr), generator=g)
    off, on, cpu_off, cpu_on, fwd_off, fwd_on, sets, lp = [], [], [], [], [], [], [], []
    cap = Capture(nets[1][0])
    for s in range(steps):
        idx = perm[(s * batch) % (len(ytr) - batch):][:batch]
        xb, yb = xtr[idx].to(dtype), ytr[idx]
        t, c, f, _ = _step(*nets[0], xb, yb, None)
        off.append(t)
        cpu_off.append(c)
        fwd_off.append(f)
        t, c, f, rep = _step(*nets[1], xb, yb, cap)
        on.append(t)
        cpu_on.append(c)
        fwd_on.append(f)
        sets.append(rep.timing["sets_s"])
        lp.append(rep.timing["lp_s"])
    med = statistics.median
    return {"model": model, "off_ms": 1e3 * med(off), "on_ms": 1e3 * med(on), "overhead": med(on) / med(off) - 1,
            "cpu_overhead": med(cpu_on) / med(cpu_off) - 1,
            "capture_ms": 1e3 * (med(fwd_on) - med(fwd_off)), "sets_ms": 1e3 * med(sets), "lp_ms": 1e3 * med(lp)}


def main():
    ap = argparse.ArgumentParser(description="step time with and without fpad.train checks")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--models", nargs="+", default=["fnn", "vgg", "vgg-bn", "resnet"])
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--width", type=int, default=1, help="multiply the conv channels (scaling check)")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"minibatch size (default {BATCH}, as in the runs)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'model':8} {'off ms':>8} {'on ms':>8} {'overhead':>9} {'CPU ovh':>8} {'capture ms':>11} {'S/T ms':>8} "
          f"{'LP ms':>7}")
    for m in args.models:
        r = bench(m, args.steps, args.precision, args.width, args.batch)
        print(f"{r['model']:8} {r['off_ms']:8.2f} {r['on_ms']:8.2f} {100 * r['overhead']:8.1f}% "
              f"{100 * r['cpu_overhead']:7.1f}% {r['capture_ms']:11.2f} {r['sets_ms']:8.2f} {r['lp_ms']:7.2f}")


if __name__ == "__main__":
    main()
