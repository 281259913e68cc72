"""Figure of :func:`fpad.rounded.sweep.rounded_sweep`: what rounding does to kinks, per width."""

from __future__ import annotations

from pathlib import Path

from fpad.plots import DPI, _save, plt

_ARITH_STYLE = {"rounded:e4m3fn": ("tab:red", "o"), "rounded:bf16": ("tab:green", "s"),
                "rounded:e4m3fn/fp32": ("tab:purple", "^")}


def plot_rounded(a, out_dir) -> Path:
    """Per grid format a panel: touched_rounded (filled) and ad_branch_wrong (hollow) densities
    against width for each arithmetic, with 95% intervals; zero counts drawn as their upper bound;
    the exact model's bound n/|M| (dashed) and inc = 0."""
    fmts = list(dict.fromkeys(r["format"] for r in a.rows))
    fig, axes = plt.subplots(1, len(fmts), figsize=(5.5 * len(fmts), 4.6), squeeze=False, sharey=True)
    for ax, f in zip(axes[0], fmts):
        rows = [r for r in a.rows if r["format"] == f]
        for arith in dict.fromkeys(r["arith"] for r in rows):
            c, mk = _ARITH_STYLE.get(arith, ("0.3", "o"))
            sel = sorted((r for r in rows if r["arith"] == arith), key=lambda r: r["width"])
            for key, filled, dx in (("touched_rounded", True, 0.97), ("ad_branch_wrong", False, 1.03)):
                seen = [r for r in sel if r[key]]
                ax.errorbar([r["width"] * dx for r in seen], [r[f"{key}_f"] for r in seen],
                            yerr=[[r[f"{key}_f"] - r[f"{key}_ci"][0] for r in seen],
                                  [r[f"{key}_ci"][1] - r[f"{key}_f"] for r in seen]],
                            fmt="-" + mk, color=c, ms=5, capsize=3, lw=1, mfc=c if filled else "none",
                            label=f"{arith}: {'kink touched after rounding' if filled else 'AD on a wrong branch'}")
                none = [r for r in sel if not r[key]]  # nothing seen: only the interval's upper end says something
                ax.plot([r["width"] * dx for r in none], [r[f"{key}_ci"][1] for r in none], "v", color=c, ms=6,
                        mfc=c if filled else "none", ls="none")
        ws = sorted({r["width"] for r in rows})
        bound = {r["width"]: r["bound_f"] for r in rows}
        ax.plot(ws, [min(1.0, bound[w]) for w in ws], "--", color="0.35", lw=1,
                label="exact model: bound n/|M| on ndf (capped at 1); inc = 0 at every point")
        ax.plot([], [], "v", color="0.35", ls="none", label="none seen in the sample: upper end of its 95% interval")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width N (one ReLU layer with bias, 4 inputs)")
        ax.set_title(f"parameters in {f} ∩ [-1, 1], sampled; each point exact", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of grid points (estimate, 95% interval)")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=7, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Rounded arithmetic: kinks the forward pass touches, and AD following a wrong branch")
    return _save(fig, out_dir, "rounded.png")


__all__ = ["plot_rounded", "DPI"]
