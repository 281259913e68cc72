"""The training experiments (ICLR 2024 Section 4 at digits scale) as one :class:`fpad.sweeps.Analysis`.

* FNN 64-256-64-10 with ReLU6 / HardTanh / HardSigmoid: touches per run, the Thm 5 verdict at
  every touching step (and its labelled extensions), certified steps;
* CNNs with maxpools (vgg, vgg-bn, resnet; ReLU): Table 2 per maxpool layer (% of max ops with
  ties, steps with S_j \\ T_j non-empty, mean |S_j \\ T_j| per step), certified steps, and the
  disagreements between the joint exact check and the released code's per-window check;
* each in fp32, bf16 and e4m3fn (fake-quantised weights);
* the conservatism of the conditions on random tiny models against the exact oracle.

Without torch or scikit-learn the analysis returns no rows and a note saying how to install
them, so ``fpad reproduce`` still completes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fpad.sweeps import Analysis, provenance

FNN_ACTS = ("relu6", "hardtanh", "hardsigmoid")
CNNS = ("vgg", "vgg-bn", "resnet")
PRECISIONS = ("fp32", "bf16", "e4m3fn")
COLUMNS = ["scenario", "network", "activation", "precision", "seeds", "steps_per_run", "layer", "touches_per_run",
           "steps_with_touch", "thm5_pass", "tie_percent", "steps_s_minus_t", "mean_s_minus_t", "undecided",
           "certified_steps", "p_empty_steps", "p_undecided_steps", "repo_pass_exact_fail", "repo_fail_exact_pass", "test_accuracy"]


def _configs(quick: bool, seeds, epochs, cnn_seeds, cnn_epochs):
    if quick:
        return [("fnn", "relu6", "e4m3fn", 0, 1, 15), ("vgg-bn", "relu", "bf16", 0, 1, 6)]
    out = [(m, a, p, s, epochs, None) for a in FNN_ACTS for p in PRECISIONS for s in seeds for m in ("fnn",)]
    out += [(m, "relu", p, s, cnn_epochs, None) for m in CNNS for p in PRECISIONS for s in cnn_seeds]
    return out


def run_all(quick: bool = False, seeds=range(5), epochs: int = 3, cache: Path | None = None, progress=None,
            only: str | None = None, cnn_seeds=range(3), cnn_epochs: int = 2) -> list[dict]:
    """Every run's summary; with ``cache`` each finished run is stored and reused (resumable)."""
    from fpad.train.run import train
    summaries = []
    for model, act, prec, seed, ep, max_steps in _configs(quick, list(seeds), epochs, list(cnn_seeds), cnn_epochs):
        if only and (model == "fnn") != (only == "fnn"):
            continue
        key = f"{model}_{act}_{prec}_s{seed}_e{ep}" + (f"_m{max_steps}" if max_steps else "")
        path = cache / f"{key}.json" if cache else None
        if path and path.exists():
            summaries.append(json.loads(path.read_text()))
            continue
        t0 = time.perf_counter()
        s = train(model, act, prec, ep, seed, "exact", compare_repo=model != "fnn", max_steps=max_steps)
        if progress:
            progress(f"train {key}: {s['steps']} steps, {s['certified_steps']} certified, "
                     f"{s['touches_total']} touches ({time.perf_counter() - t0:.1f} s)")
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(s))
        summaries.append(s)
    return summaries


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def aggregate(summaries: list[dict], conservatism: dict | None) -> Analysis:
    groups: dict[tuple, list[dict]] = {}
    for s in summaries:
        c = s["config"]
        groups.setdefault((c["model"], c["activation"], c["precision"]), []).append(s)
    rows, series = [], {}
    for (model, act, prec), runs in groups.items():
        base = {"network": model, "activation": act, "precision": prec, "seeds": len(runs),
                "steps_per_run": runs[0]["steps"], "certified_steps": f"{sum(r['certified_steps'] for r in runs)}/{sum(r['steps'] for r in runs)}",
                "test_accuracy": round(_mean([r["test_accuracy"] for r in runs]), 4)}
        series[f"{model}/{act}/{prec}"] = {"touches": runs[0]["series"]["touches"], "ties": runs[0]["series"]["ties"]}
        if model == "fnn":
            t5 = [r["thm5"] for r in runs]
            rows.append(dict(base, scenario="fnn", layer="all",
                             touches_per_run=[r["touches_total"] for r in runs],
                             steps_with_touch=sum(r["steps_with_touch"] for r in runs),
                             thm5_pass=f"{sum(t['steps_pass'] for t in t5)}/{sum(t['steps_checked'] for t in t5)}",
                             repo_pass_exact_fail=0, repo_fail_exact_pass=0))
            continue
        d = [r["paper_repo_disagreements"] for r in runs]
        for layer in runs[0]["pools"]:
            ps = [r["pools"][layer] for r in runs]
            name = layer.split(":")[0]
            fails = [(k, v) for r in runs for k, v in r["failed_layers"].items() if k.split(" ")[0] == name]
            rows.append(dict(base, scenario="cnn", layer=layer.split(":")[0],
                             touches_per_run=[r["touches_total"] for r in runs],
                             steps_with_touch=sum(r["steps_with_touch"] for r in runs),
                             tie_percent=round(100.0 * sum(p["tied_windows"] for p in ps) / sum(p["max_ops"] for p in ps), 4),
                             steps_s_minus_t=sum(p["steps_s_minus_t"] for p in ps),
                             mean_s_minus_t=round(_mean([p["mean_s_minus_t"] for p in ps]), 4),
                             undecided=sum(p["undecided"] for p in ps),
                             p_empty_steps=sum(v for k, v in fails if not k.endswith("(undecided)")),
                             p_undecided_steps=sum(v for k, v in fails if k.endswith("(undecided)")),
                             repo_pass_exact_fail=sum(x["repo_pass_exact_fail"] for x in d),
                             repo_fail_exact_pass=sum(x["repo_fail_exact_pass"] for x in d)))
    notes = [
        "Touches and ties are exact equalities of the training-dtype values (no tolerance); every "
        "verdict is exact: ranks by modular elimination or fraction-free elimination, cones by "
        "fpad.exact with a verified certificate.",
        "certified_steps: steps where Thm 4/6, Thm 5 or Algorithm 1 (Thm 8, joint per layer) "
        "proves AD's output is in the Bouligand (hence Clarke) subdifferential of the minibatch loss.",
        "repo_pass_exact_fail: steps the released code's per-window check passes while the joint "
        "exact check finds P_l empty (or undecided).",
        "The checks treat the computed pre-activations as the exact values of the network at the "
        "rounded weights, as the paper does; rounding inside the forward pass is not modelled.",
    ]
    if conservatism:
        c = conservatism
        notes.append(
            f"Random tiny models vs the exact oracle: {c['decided']} decided, {c['certified']} certified, "
            f"certified but not Clarke: {c['certified_not_clarke']}; {c['not_certified_clarke']} of "
            f"{c['not_certified']} 'not certified' were in fact correct AD (the conditions' conservatism).")
    a = Analysis("train", "Training-time checks: touches, Table 2 ties, certified steps (digits)", COLUMNS, rows,
                 notes=notes, data={"series": series, "conservatism": conservatism or {}})
    a.provenance = provenance()
    return a


def train_analysis(quick: bool = False, progress=None, seeds=range(5), epochs: int = 3, cache=None,
                   cnn_seeds=range(3), cnn_epochs: int = 2) -> Analysis:
    """The analysis ``fpad reproduce`` runs (skipped with a note without torch / scikit-learn)."""
    t0 = time.perf_counter()
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        from fpad.train import INSTALL_HINT
        a = Analysis("train", "Training-time checks (skipped)", COLUMNS, [],
                     notes=[f"skipped: {INSTALL_HINT}"])
        a.provenance = provenance()
        return a
    from fpad.train.tiny import compare_with_oracle
    summaries = run_all(quick, seeds, epochs, cache, progress, cnn_seeds=cnn_seeds, cnn_epochs=cnn_epochs)
    cons = compare_with_oracle(40 if quick else 400, seed=11)
    a = aggregate(summaries, cons)
    a.provenance.update({"fnn_seeds": 1 if quick else len(list(seeds)), "fnn_epochs": epochs,
                         "cnn_seeds": 1 if quick else len(list(cnn_seeds)), "cnn_epochs": cnn_epochs, "quick": quick})
    a.elapsed_s = time.perf_counter() - t0
    return a


def _bars(ax, labels, precs, value) -> None:
    """Grouped bars: one group per label, one bar per precision; ``value(label_index, precision)``."""
    width = 0.8 / len(precs)
    for k, prec in enumerate(precs):
        ax.bar([i + k * width for i in range(len(labels))], [value(i, prec) for i in range(len(labels))], width, label=prec)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels, fontsize=7)
    ax.legend()


def plot_train(a, out_dir) -> list:
    """Touches per step (FNN), tie rates per pool layer (CNN), touches per run by precision."""
    if not a.rows:
        return []
    import matplotlib.pyplot as plt

    from fpad.plots import _save
    out = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, s in a.data["series"].items():
        if key.startswith("fnn/"):
            cum = [sum(s["touches"][:i + 1]) for i in range(len(s["touches"]))]
            ax.plot(cum, label=key[4:])
    ax.set(xlabel="training step (seed 0)", ylabel="cumulative kink touches",
           title="FNN 64-256-64-10 on digits: exact kink touches")
    ax.legend(fontsize=7)
    out.append(str(_save(fig, out_dir, "train_touches.png")))
    cnn = [r for r in a.rows if r["scenario"] == "cnn"]
    if cnn:
        precs = list(dict.fromkeys(r["precision"] for r in cnn))
        keys = list(dict.fromkeys((r["network"], r["layer"]) for r in cnn))
        tie = {(r["network"], r["layer"], r["precision"]): r["tie_percent"] for r in cnn}
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _bars(ax, [f"{n}\n{lay}" for n, lay in keys], precs, lambda i, p: tie.get((*keys[i], p), 0.0))
        ax.set(ylabel="% of max ops with a tie", title="Ties per maxpool layer (Table 2), by precision")
        out.append(str(_save(fig, out_dir, "train_ties.png")))
    fnn = [r for r in a.rows if r["scenario"] == "fnn"]
    if fnn:
        acts = list(dict.fromkeys(r["activation"] for r in fnn))
        per = {(r["activation"], r["precision"]): _mean(r["touches_per_run"]) for r in fnn}
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _bars(ax, acts, list(dict.fromkeys(r["precision"] for r in fnn)), lambda i, p: per.get((acts[i], p), 0.0))
        ax.set_yscale("symlog")
        ax.set(ylabel="kink touches per run (mean over seeds)", title="FNN: touches per run by precision")
        out.append(str(_save(fig, out_dir, "train_precision.png")))
    return out
