"""Figures of the cost analyses (matplotlib, Agg, PNG; the conventions of :mod:`fpad.plots`).

Each function takes the :class:`fpad.sweeps.Analysis` of one cost analysis and a directory and
returns the list of PNG paths it wrote (empty when the analysis was skipped and has no rows).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fpad.plots import _save  # also selects the Agg backend

_SWEEPS = ("depth", "width", "batch")


def plot_overhead(a, out_dir) -> list:
    """omega against depth, width and batch (measured median with IQR, and the op-count model);
    hollow markers: rows flagged as dispatch-dominated; a fourth panel: the hidden programs."""
    if not a.rows:
        return []
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
    default = a.data.get("default", {})
    for ax, sweep in zip(axes, _SWEEPS):
        rows = sorted((r for r in a.rows if r["sweep"] == sweep), key=lambda r: r["value"])
        x = [r["value"] for r in rows]
        y = [r["omega_time"] for r in rows]
        err = [[r["omega_time"] - r["omega_time_q25"] for r in rows], [r["omega_time_q75"] - r["omega_time"] for r in rows]]
        ax.errorbar(x, y, yerr=err, fmt="-", color="tab:blue", lw=1, capsize=3, label="measured (median, IQR)")
        for r in rows:
            hollow = r["regime"] == "dispatch"
            ax.plot(r["value"], r["omega_time"], "o", color="tab:blue", mfc="white" if hollow else "tab:blue", ms=6)
        ax.plot(x, [r["omega_ops"] for r in rows], "s--", color="tab:orange", ms=4, label="operation count")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{sweep} (others at default {', '.join(f'{k}={v}' for k, v in default.items() if k != sweep)})",
                      fontsize=8)
        ax.set_ylim(0, max(6.0, max(y) * 1.1))
        ax.grid(True, alpha=0.3)
        ax.set_title(f"omega vs {sweep}")
    axes[0].set_ylabel("omega = time(fwd + bwd) / time(fwd)")
    axes[0].plot([], [], "o", color="tab:blue", mfc="white", label="dispatch-dominated (flagged)")
    axes[0].legend(fontsize=7, loc="lower right")
    prog = [r for r in a.rows if r["sweep"] == "program"]
    ax = axes[3]
    if prog:
        names = [r["value"] for r in prog]
        ax.bar(range(len(prog)), [r["omega_time"] for r in prog], color="tab:blue", alpha=0.7,
               yerr=[[r["omega_time"] - r["omega_time_q25"] for r in prog],
                     [r["omega_time_q75"] - r["omega_time"] for r in prog]], capsize=3, label="measured")
        ax.plot(range(len(prog)), [r["omega_ops"] for r in prog], "s", color="tab:orange", label="operation count")
        ax.set_xticks(range(len(prog)), names, rotation=40, fontsize=8)
        ax.set_title("hidden program at default size")
        ax.legend(fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    prov = a.provenance
    fig.suptitle(f"Backprop overhead, MLP + cross-entropy on digits, torch {prov.get('torch')} CPU float32, "
                 f"{prov.get('torch_threads')} thread(s) (shared machine: noisy)", fontsize=10)
    fig.tight_layout()
    return [_save(fig, out_dir, "cost_overhead.png")]


def plot_directional(a, out_dir) -> list:
    """time(p directional derivatives) / time(forward) against p, vmap and loop, with backprop's."""
    if not a.rows:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    titles = {"mlp": "MLP loss, p directions in weight space", "relu_Ax": "s(x) = c . ReLU(Ax), A p x p"}
    for ax, prog in zip(axes, ("mlp", "relu_Ax")):
        rows = sorted((r for r in a.rows if r["program"] == prog), key=lambda r: r["p"])
        if not rows:
            continue
        p = [r["p"] for r in rows]
        ax.plot(p, [r["ratio"] for r in rows], "o-", label="p jvps (vmap)")
        ax.plot(p, [r["ratio_loop"] for r in rows], "^-", label="p jvps (loop)")
        ax.plot(p, [r["backprop_ratio"] for r in rows], "s-", label="backprop (one gradient)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("p")
        ax.set_title(titles[prog], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time / time(one forward)")
    axes[0].legend(fontsize=8)
    fig.suptitle("The alternative: p directional derivatives grow with p, backprop does not "
                 "(shared machine: noisy)", fontsize=10)
    fig.tight_layout()
    return [_save(fig, out_dir, "cost_directional.png")]


def plot_clarke(a, out_dir) -> list:
    """Exact Clarke set at 0 (median and max time, explored choices) against p, beside the
    polynomial-time pair of AD-conservative elements."""
    rows = [r for r in a.rows if r.get("oracle_s_median") is not None]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    p = [r["p"] for r in rows]
    ax.plot(p, [r["oracle_s_median"] for r in rows], "o-", color="tab:red", label="exact Clarke set (median)")
    ax.plot(p, [r["oracle_s_max"] for r in rows], "v:", color="tab:red", label="exact Clarke set (max)")
    ax.plot(p, [r["poly_s_median"] for r in rows], "s-", color="tab:green", label="two AD-conservative elements")
    ax.set_yscale("log")
    ax.set_xlabel(f"p (input dimension = hidden width; {a.data.get('hidden_layers')} hidden layers, "
                  "entries in {-1, 0, 1})")
    ax.set_ylabel("seconds per network")
    ax2 = ax.twinx()
    ax2.plot(p, [r["explored_median"] for r in rows], "x--", color="0.5", label="explored choices (median)")
    ax2.set_yscale("log")
    ax2.set_ylabel("explored one-sided choices", color="0.4")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("The price of exactness: F(x) = M_L ReLU(... M_1 x) at x = 0")
    return [_save(fig, out_dir, "cost_clarke.png")]
