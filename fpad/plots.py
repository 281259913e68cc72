"""Figures of the analyses in :mod:`fpad.sweeps` (matplotlib, Agg backend, PNG).

Each ``plot_*`` function takes an :class:`fpad.sweeps.Analysis` and a directory, writes one PNG
sized for a README (7 x 4.5 in at 120 dpi unless the layout needs more) and returns its path.
Densities span decades, so density axes are logarithmic; sampled estimates are drawn with their
confidence intervals and labelled as estimates.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DPI = 120
SIZE = (7, 4.5)
COLORS = {"e4m3fn": "tab:blue", "e5m2": "tab:orange", "bf16": "tab:green", "e2m1": "tab:purple",
          "e3m2": "tab:brown", "fp16": "tab:olive"}
# e4m3fn (|M| = 253) and e5m2 (247) give nearly the same densities: hollow large markers on a thin
# line for one, small filled ones on top for the other, so neither hides the other.
_STYLE = {"e4m3fn": dict(marker="o", ms=3, lw=1.2, zorder=3),
          "e5m2": dict(marker="s", ms=7, lw=3, alpha=0.45, mfc="none", zorder=2)}


def _save(fig, out_dir, name: str) -> Path:
    out = Path(out_dir) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_precision(a, out_dir) -> Path:
    """log-log: exact ndf density against |M| per network, with its bound n/|M| (dashed)."""
    fig, ax = plt.subplots(figsize=SIZE)
    nets = list(dict.fromkeys(r["network"] for r in a.rows))
    for i, net in enumerate(nets):
        rows = sorted((r for r in a.rows if r["network"] == net), key=lambda r: r["M"])
        color = f"C{i}"
        M = [r["M"] for r in rows]
        ax.plot(M, [r["density_f"] for r in rows], "o", color=color, ms=4, label=f"{net} (n = {rows[0]['n']})")
        ax.plot(M, [r["bound_f"] for r in rows], "--", color=color, lw=1)
        for r in rows:
            if r["format"] in ("e4m3fn", "bf16", "e2m1", "e3m2") and i == 0:
                ax.annotate(r["format"], (r["M"], r["density_f"]), textcoords="offset points", xytext=(4, 6),
                            fontsize=7, color="0.3")
    ax.plot([], [], "--", color="0.4", lw=1, label="bound n/|M| (same colour)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|M|, number of distinct finite values of the format (e{E}m{M}, E=2..5, M=0..4, and named)")
    ax.set_ylabel("ndf density |ndf| / |M|^k (exact)")
    ax.set_title("Precision sweep: non-differentiable density against grid size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, out_dir, "precision.png")


def plot_width(a, out_dir) -> Path:
    """Two panels: 1 hidden layer exact (with bound and tight construction), 2 hidden layers sampled."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    fmts = list(dict.fromkeys(r["format"] for r in a.rows))
    for f in fmts:
        c = COLORS.get(f, None)
        one = sorted((r for r in a.rows if r["format"] == f and r["layers"] == 1), key=lambda r: r["width"])
        if one:
            N = [r["width"] for r in one]
            st = _STYLE.get(f, {})
            ax1.plot(N, [r["density_f"] for r in one], color=c, label=f"{f} (|M| = {one[0]['M']}) exact", **st)
            ax1.plot(N, [min(1.0, r["bound_f"]) for r in one], "--", color=c, lw=1)
            ax1.plot(N, [r["tight_f"] for r in one], ":", color=c, lw=1.5)
        two = sorted((r for r in a.rows if r["format"] == f and r["layers"] == 2), key=lambda r: r["width"])
        if two:
            hit = [r for r in two if r["density_f"] > 0]
            if hit:
                d = np.array([r["density_f"] for r in hit])
                ax2.errorbar([r["width"] for r in hit], d,
                             yerr=[d - np.array([r["ci_ndf"][0] for r in hit]),
                                   np.array([r["ci_ndf"][1] for r in hit]) - d],
                             fmt="s", color=c, ms=4, capsize=3, label=f"{f}: estimate, 95% CI")
            zero = [r for r in two if r["density_f"] == 0]
            if zero:  # nothing observed: only the upper end of the interval is informative
                ax2.plot([r["width"] for r in zero], [r["ci_ndf"][1] for r in zero], "v", color=c, ms=6,
                         label=f"{f}: 0 ndf in sample, upper 95% bound")
            ax2.plot([r["width"] for r in two], [min(1.0, r["bound_f"]) for r in two], "--", color=c, lw=1)
            above = [r for r in hit if r["density_f"] > r["bound_f"]]
            for r in above:  # a sample proportion may exceed the bound by chance; say whether it can
                inside = r["ci_ndf"][0] <= r["bound_f"]
                ax2.annotate("interval contains the bound" if inside else "ABOVE THE BOUND",
                             (r["width"], r["density_f"]), textcoords="offset points", xytext=(6, 4),
                             fontsize=6, color=c)
    ax1.plot([], [], "--", color="0.4", label="bound n/|M| = N/|M| (capped at 1), dashed in each format's colour")
    ax1.plot([], [], ":", color="0.4", label="tight construction 1-(1-1/|M|)^N, dotted, same colours")
    ax2.plot([], [], "--", color="0.4", label="bound n/|M| = 2N/|M|, dashed in each format's colour")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width N (neurons per layer)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    ax1.set_ylabel("ndf density (fraction of grid points)")
    ax1.set_title("1 hidden layer, x = 1, ReLU + bias, all params free: exact", fontsize=10)
    n_s = next((r["points"] for r in a.rows if r["layers"] == 2), "?")
    ax2.set_title(f"2 hidden layers (1-N-N-1), all free: sampled, {n_s} points", fontsize=10)
    fig.suptitle("Width sweep: ndf density against width (e4m3fn, e5m2, bf16)")
    return _save(fig, out_dir, "width.png")


def plot_batch(a, out_dir) -> Path:
    fig, ax = plt.subplots(figsize=SIZE)
    for f in dict.fromkeys(r["format"] for r in a.rows):
        rows = sorted((r for r in a.rows if r["format"] == f), key=lambda r: r["batch"])
        c = COLORS.get(f)
        B = [r["batch"] for r in rows]
        ax.plot(B, [r["density_f"] for r in rows], color=c, label=f"{f} exact", **_STYLE.get(f, dict(marker="o", ms=4)))
        ax.plot(B, [min(1.0, r["bound_f"]) for r in rows], "--", color=c, lw=1)
    ax.plot([], [], "--", color="0.4", label="bound n/|M|, n = width x B, dashed in each format's colour")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("minibatch size B (samples summed in the objective)")
    ax.set_ylabel("ndf density (exact)")
    w = a.rows[0]["width"] if a.rows else "?"
    ax.set_title(f"Minibatch sweep: 1 hidden layer of width {w}, ReLU + bias, all free")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "batch.png")


def plot_tightness(a, out_dir) -> Path:
    """density / bound of sum_i ReLU(b_i) against N per format, with 1 - 1/e."""
    fig, ax = plt.subplots(figsize=SIZE)
    for f in dict.fromkeys(r["format"] for r in a.rows):
        rows = [r for r in a.rows if r["format"] == f and r["construction"].startswith("sum")]
        rows.sort(key=lambda r: r["n"])
        M = rows[0]["M"]
        # ratio to min(1, bound): the best a density can be
        ax.plot([r["n"] / M for r in rows], [r["density_f"] / min(1.0, r["bound_f"]) for r in rows], "o-",
                color=COLORS.get(f), ms=4, label=f"{f} (|M| = {M})")
    ax.axhline(1 - 1 / math.e, color="0.4", ls=":", label="1 - 1/e")
    ax.axhline(1, color="0.4", ls="--", lw=1, label="the bound")
    ax.set_xscale("log")
    ax.set_xlabel("N / |M| (kinks per grid value)")
    ax.set_ylabel("density / min(1, N/|M|)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Tightness: sum_i ReLU(b_i) (exact) against the bound, per format", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, out_dir, "tightness.png")


# code -> (class, colour); codes from fpad.enumerate.point_codes
_CLASSES = [("clean (untouched)", "#f2f2f2", (0,)), ("on a kink, differentiable, AD right", "#9ecae1", (1,)),
            ("ndf (AD in Clarke set)", "#fd8d3c", (2,)), ("ndf (AD outside Clarke set)", "#7f2704", (3,)),
            ("inc: differentiable, AD wrong", "#d7301f", (5,))]


def plot_ad_map(a, out_dir, name: str | None = None) -> Path:
    """The whole M x M grid as an image; axes are the format's values (ticks at a few of them)."""
    d = a.data
    codes = np.asarray(d["codes"])
    vals = d["values"]
    M = len(vals)
    img = np.zeros_like(codes, dtype=np.int8)
    for i, (_, _, cs) in enumerate(_CLASSES):
        img[np.isin(codes, cs)] = i
    img = _widen(img)
    fig, ax = plt.subplots(figsize=(7, 6.2))
    cmap = ListedColormap([c for _, c, _ in _CLASSES])
    # image rows = y (second parameter), columns = x (first parameter)
    ax.imshow(img.T, origin="lower", cmap=cmap, vmin=0, vmax=len(_CLASSES) - 1, interpolation="nearest",
              aspect="equal")
    inc_x, inc_y = np.nonzero(codes == 5)
    if 0 < len(inc_x) <= 20:  # a few isolated inc points would be single pixels: ring them
        ax.scatter(inc_x, inc_y, s=60, facecolors="none", edgecolors="#d7301f", linewidths=1.2)
    # ticks: a few powers of two, plus the columns / rows where something happens (if few)
    xt, yt = _value_ticks(vals), _value_ticks(vals)
    hot_x, hot_y = np.nonzero(codes != 0)
    for ticks, hot in ((xt, hot_x), (yt, hot_y)):
        extra = [int(i) for i in np.nonzero(np.bincount(hot, minlength=M) >= M // 2)[0]]
        if len(extra) <= 6:
            ticks[:] = [t for t in ticks if all(abs(t - e) > M // 40 for e in extra)] + extra
    ax.set_xticks(xt)
    ax.set_xticklabels([_fmt_val(vals[t]) for t in xt], rotation=90, fontsize=7)
    ax.set_yticks(yt)
    ax.set_yticklabels([_fmt_val(vals[t]) for t in yt], fontsize=7)
    ax.set_xlabel(f"{d['x']} (grid value; axis in value order, not to scale)")
    ax.set_ylabel(f"{d['y']} (grid value)")
    row = a.rows[0]
    ax.set_title(f"{d['network']}\nevery point of {d['format']} x {d['format']} ({M}^2 = {M * M} points): "
                 f"ndf {row['ndf']}, inc {row['inc']}", fontsize=9)
    counts = [int(np.sum(np.isin(codes, cs))) for _, _, cs in _CLASSES]
    handles = [Patch(facecolor=_CLASSES[i][1], edgecolor="0.5", label=f"{_CLASSES[i][0]}: {counts[i]}")
               for i in range(len(_CLASSES)) if counts[i]]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
              title=f"exact counts of the {M * M} points\n(marked points drawn {2 * _WIDEN + 1} pixels\nwide to be seen)"
              if M > 64 else None, title_fontsize=7)
    return _save(fig, out_dir, name or f"ad_map_{d['format']}.png")


_WIDEN = 1  # on maps wider than 64 values, each marked point is drawn this many pixels further out


def _widen(img):
    """For display only: on a large map a line of marked points is one pixel among hundreds and
    vanishes when the figure is scaled; spread every non-clean class over clean neighbours (the
    higher class wins where two meet). Counts come from the codes, never from this image."""
    if img.shape[0] <= 64:
        return img
    k, (h, w) = _WIDEN, img.shape
    pad = np.pad(img, k)  # clean (0) beyond the edges: nothing wraps around
    out = img.copy()
    for dx in range(2 * k + 1):
        for dy in range(2 * k + 1):
            out = np.maximum(out, pad[dx:dx + h, dy:dy + w])  # classes are ordered clean < ... < inc
    return out


def plot_ad_maps(a, out_dir) -> list[Path]:
    """One PNG per map of :func:`fpad.sweeps.ad_maps`: ad_map_<network number>_<format>.png."""
    from fpad.sweeps import Analysis

    nets = list(dict.fromkeys(m["network"] for m in a.data["maps"]))
    out = []
    for m, row in zip(a.data["maps"], a.rows):
        one = Analysis("ad_map", a.title, a.columns, [row], data=m)
        out.append(plot_ad_map(one, out_dir, f"ad_map_{nets.index(m['network']) + 1}_{m['format']}.png"))
    return out


def _value_ticks(vals) -> list[int]:
    """Indices of 0, +-1 and a few powers of two spread across the axis."""
    want = [0.0]
    big = max(abs(v) for v in vals)
    p = 2.0 ** math.floor(math.log2(big)) if big > 0 else 1.0
    steps = 0
    while p >= 2.0 ** -3 and steps < 5:
        want += [p, -p]
        p /= 4 if len(vals) > 100 else 2
        steps += 1
    want += [1.0, -1.0]
    idx = sorted({int(np.argmin([abs(v - w) for v in vals])) for w in want})
    return idx


def _fmt_val(v: float) -> str:
    return f"{v:g}"
