"""One training run on scikit-learn's digits with the per-step checks, a JSONL log and a summary.

``train(...)`` trains with SGD (momentum 0.9, weight decay 5e-4) and a cosine learning-rate
schedule, minibatch 32, on a fixed 1440/357 split of the 1797 8x8 digits (pixel values 0..16
divided by 16: exact dyadics). Precision:

* ``fp32``: float32 everywhere;
* ``bf16``: the model and inputs in bfloat16 (the loss in float32), so pre-activations are bf16
  values;
* ``e4m3fn``: fake quantisation with :mod:`fpad.formats`: the forward and backward passes see every
  parameter rounded to OCP e4m3fn (saturating), re-rounded after each optimiser step; the step
  itself updates a float32 master copy (without it, updates below half an e4m3fn spacing are
  lost and training stalls at chance level, which we observed).

Each step the training forward runs inside :class:`fpad.train.trace.Capture` (unless
``check="off"``) and the step report is computed after the optimiser step from the captured
values (which precede the step). The log gets one JSON line per step; ``summary.json`` is written
first with ``"complete": false`` and rewritten at the end, so an interrupted run is visibly
incomplete (the log then ends with an ``{"event": "interrupted"}`` line).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.train.checks import check_trace
from fpad.train.models import build
from fpad.train.trace import Capture

PRECISIONS = ("fp32", "bf16", "e4m3fn")
CHECKS = ("exact", "paper-repo", "off")
BATCH = 32


def digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test) as torch tensors; images (N, 1, 8, 8), values k/16."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        from fpad.train import INSTALL_HINT
        raise FpadError(INSTALL_HINT) from None
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = np.random.default_rng(0).permutation(len(y))  # one fixed split for every run
    tr, te = perm[:1440], perm[1440:]
    return x[tr], y[tr], x[te], y[te]


def _quantise(model, fmt) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(fmt.round(p.detach().double().numpy(), saturate=True)).to(p.dtype))


class RunStats:
    """Running totals for the summary: touches per layer and kink, Table 2 per pool layer, verdicts."""

    def __init__(self):
        self.steps = self.certified = self.train_steps = 0
        self.kinds: dict[str, int] = {}
        self.touches: dict[str, dict[str, int]] = {}
        self.steps_with_touch = 0
        self.pools: dict[str, dict] = {}
        self.thm5 = {"steps_checked": 0, "steps_pass": 0, "ext_touched_pass": 0, "ext_augmented_pass": 0}
        self.failed_layers: dict[str, int] = {}
        self.repo_disagree = {"repo_pass_exact_fail": 0, "repo_fail_exact_pass": 0, "compared": 0}
        self.series = {"touches": [], "ties": {}, "certified": []}
        self.time = {"step_s": 0.0, "capture_s": 0.0, "check_s": 0.0, "sets_s": 0.0, "lp_s": 0.0}

    def add(self, rep, repo=None) -> None:
        self.steps += 1
        self.certified += rep.certified
        self.kinds[str(rep.kind)] = self.kinds.get(str(rep.kind), 0) + 1
        n = 0
        for layer, counts in rep.touches.items():
            d = self.touches.setdefault(layer, {})
            for k, v in counts.items():
                d[k] = d.get(k, 0) + v
                n += v
        self.steps_with_touch += n > 0
        self.series["touches"].append(n)
        self.series["certified"].append(int(rep.certified))
        for layer, st in rep.pools.items():
            self.series["ties"].setdefault(layer, []).append(st["tied_windows"])
        for layer, st in rep.pools.items():
            p = self.pools.setdefault(layer, {"max_ops": 0, "tied_windows": 0, "steps_with_ties": 0,
                                              "steps_s_minus_t": 0, "s_minus_t": 0, "undecided": 0, "steps": 0})
            p["steps"] += 1
            p["max_ops"] += st["max_ops"]
            p["tied_windows"] += st["tied_windows"]
            p["steps_with_ties"] += st["tied_windows"] > 0
            p["steps_s_minus_t"] += st["s_minus_t"] > 0
            p["s_minus_t"] += st["s_minus_t"]
            p["undecided"] += st.get("undecided", 0)
        if rep.thm5.get("applies") and rep.thm5.get("layers"):
            t = self.thm5
            t["steps_checked"] += 1
            t["steps_pass"] += all(v["pass"] for v in rep.thm5["layers"].values())
            t["ext_touched_pass"] += all(v["ext_touched_columns_pass"] for v in rep.thm5["layers"].values())
            t["ext_augmented_pass"] += all(v["ext_augmented_pass"] for v in rep.thm5["layers"].values())
        for layer, v in rep.layers.items():
            if not v["nonempty"]:
                key = f"{layer} ({'empty' if v.get('empty') else 'undecided'})"
                self.failed_layers[key] = self.failed_layers.get(key, 0) + 1
        if repo is not None:
            d = self.repo_disagree
            d["compared"] += 1
            d["repo_pass_exact_fail"] += repo.certified and not rep.certified
            d["repo_fail_exact_pass"] += rep.certified and not repo.certified

    def to_json(self) -> dict:
        pools = {}
        for layer, p in self.pools.items():
            pools[layer] = dict(p, tie_percent=100.0 * p["tied_windows"] / p["max_ops"] if p["max_ops"] else 0.0,
                                mean_s_minus_t=p["s_minus_t"] / p["steps"] if p["steps"] else 0.0)
        return {"steps": self.train_steps, "checked_steps": self.steps, "certified_steps": self.certified, "kinds": self.kinds,
                "touches": self.touches, "touches_total": sum(sum(v.values()) for v in self.touches.values()),
                "steps_with_touch": self.steps_with_touch, "pools": pools, "thm5": self.thm5,
                "failed_layers": self.failed_layers, "paper_repo_disagreements": self.repo_disagree,
                "series": self.series,
                "time": {k: round(v, 4) for k, v in self.time.items()}}


def forward_backward(net, xb, yb, cap=None):
    """One training forward (inside the capture ``cap`` when given) and backward of the
    cross-entropy; returns (loss, seconds spent in the forward)."""
    t0 = time.perf_counter()
    if cap is not None:
        with cap:
            logits = net(xb)
    else:
        logits = net(xb)
    t1 = time.perf_counter()
    loss = nn.functional.cross_entropy(logits.float(), yb)
    loss.backward()
    return loss, t1 - t0


def train(model: str = "fnn", activation: str = "relu", precision: str = "fp32", epochs: int = 1, seed: int = 0,
          check: str = "exact", out: str | None = None, compare_repo: bool = False, max_steps: int | None = None,
          progress=None) -> dict:
    """Train one run; returns the summary dict (also written to ``out``/summary.json when given)."""
    if precision not in PRECISIONS:
        raise FpadError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if check not in CHECKS:
        raise FpadError(f"unknown check mode {check!r}; choose one of {', '.join(CHECKS)}")
    if epochs < 1:
        raise FpadError(f"--epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = digits()
    net = build(model, activation)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    net = net.to(dtype)
    fmt = get_format("e4m3fn") if precision == "e4m3fn" else None
    master = None
    if fmt:
        master = [p.detach().clone() for p in net.parameters()]
        _quantise(net, fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = (len(ytr) + BATCH - 1) // BATCH
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    config = {"model": model, "activation": activation, "precision": precision, "epochs": epochs, "seed": seed,
              "check": check, "batch": BATCH, "steps_planned": total, "optimizer": "SGD(lr=0.05, momentum=0.9, wd=5e-4)",
              "schedule": "cosine", "data": "sklearn digits 8x8, fixed 1440/357 split, x/16"}
    stats = RunStats()
    out_dir = Path(out) if out else None
    log = None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_summary(out_dir, config, stats, complete=False)
        log = open(out_dir / "steps.jsonl", "w", encoding="utf-8")
    g = torch.Generator().manual_seed(seed)
    cap = Capture(net) if check != "off" else None  # one capture object, re-entered every step
    step = 0
    try:
        for epoch in range(epochs):
            perm = torch.randperm(len(ytr), generator=g)
            for i in range(0, len(ytr), BATCH):
                if step >= total:
                    break
                idx = perm[i:i + BATCH]
                xb, yb = xtr[idx].to(dtype), ytr[idx]
                net.train()
                t0 = time.perf_counter()
                opt.zero_grad()
                loss, t_fwd = forward_backward(net, xb, yb, cap)
                t1 = t0 + t_fwd
                if master is not None:  # step the float32 master weights, then round them again
                    with torch.no_grad():
                        for p, m in zip(net.parameters(), master):
                            p.copy_(m)
                opt.step()
                sched.step()
                if master is not None:
                    master = [p.detach().clone() for p in net.parameters()]
                    _quantise(net, fmt)
                t2 = time.perf_counter()
                line = {"step": step, "epoch": epoch, "loss": float(loss.detach())}
                if check != "off":
                    rep = check_trace(cap.trace, check)
                    repo = check_trace(cap.trace, "paper-repo") if compare_repo and check == "exact" else None
                    stats.add(rep, repo)
                    line.update(certified=rep.certified, kind=rep.kind, n_touches=rep.n_touches, touches=rep.touches,
                                pools=rep.pools, reasons=rep.reasons[:3])
                    if repo is not None:
                        line["paper_repo_certified"] = repo.certified
                    stats.time["check_s"] += time.perf_counter() - t2
                    stats.time["sets_s"] += rep.timing.get("sets_s", 0.0)
                    stats.time["lp_s"] += rep.timing.get("lp_s", 0.0)
                stats.train_steps += 1
                stats.time["step_s"] += t2 - t0
                stats.time["capture_s"] += t1 - t0
                if log:
                    log.write(json.dumps(line) + "\n")
                    log.flush()
                step += 1
            if progress:
                progress(f"epoch {epoch + 1}/{epochs}: {step} steps, loss {float(loss.detach()):.4f}")
    except KeyboardInterrupt:
        if log:
            log.write(json.dumps({"event": "interrupted", "step": step}) + "\n")
            log.close()
            _write_summary(out_dir, config, stats, complete=False)
        raise
    net.eval()
    with torch.no_grad():
        acc = float((net(xte.to(dtype)).float().argmax(1) == yte).float().mean())
    summary = _summary(config, stats, complete=True, test_accuracy=acc)
    if log:
        log.close()
        _write_summary(out_dir, config, stats, complete=True, test_accuracy=acc)
    return summary


def _summary(config, stats, complete, **extra) -> dict:
    from fpad.sweeps import provenance
    return {"complete": complete, "config": config, **extra, **stats.to_json(), "provenance": provenance()}


def _write_summary(out_dir: Path, config, stats, complete: bool, **extra) -> None:
    from fpad.reproduce import atomic_write
    atomic_write(out_dir / "summary.json", json.dumps(_summary(config, stats, complete, **extra), indent=1))
