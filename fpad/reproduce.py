"""``fpad reproduce``: run every analysis on built-in defaults, write results, a report, figures.

Layout of the output directory ``DIR`` (default ``./fpad-out``)::

    DIR/results/<analysis>.json   one file per analysis: rows, notes, provenance
    DIR/figures/<name>.png        the figures (fpad.plots)
    DIR/report.md                 the tables in Markdown, and which analyses are missing

Crash safety: every file is written to a temporary name in the same directory and renamed into
place when complete (``os.replace`` is atomic), so a file that exists is whole. The report is
rewritten after each analysis; until the last one finishes it starts with an INCOMPLETE banner
listing the analyses that have not finished, so an interrupted run never reads as complete.

Bad input is refused before any work: an unknown analysis name, an output directory that cannot
be written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fpad import interrupt, plots, sweeps
from fpad.cost import analyses as cost_analyses
from fpad.errors import FpadError


@dataclass(frozen=True)
class Spec:
    """One analysis: how to run it (quick or full), how to draw it, and the optional extras it
    needs (``needs``: import names; without them the analysis is skipped, and the report says so)."""

    run: Callable[[bool, Callable | None], sweeps.Analysis]
    plot: Callable | None
    what: str
    needs: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        import importlib.util

        return [m for m in self.needs if importlib.util.find_spec(m) is None]


def _rounded(q, p):
    from fpad.rounded.sweep import rounded_sweep

    return rounded_sweep(quick=q, samples=100 if q else None, progress=p)


def _audit(q, p):
    from fpad.rounded.sweep import audit_sweep

    return audit_sweep(quick=q, progress=p)


def _plot_rounded(a, out):
    from fpad.rounded.plots import plot_rounded

    return plot_rounded(a, out)


ANALYSES: dict[str, Spec] = {
    "precision": Spec(lambda q, p: sweeps.precision_sweep(quick=q, progress=p), plots.plot_precision,
                      "exact ndf density vs |M| over e{E}m{M} and named formats, with n/|M|"),
    "width": Spec(lambda q, p: sweeps.width_sweep(quick=q, progress=p), plots.plot_width,
                  "ndf density vs width 1..1024 (exact) and 2 hidden layers (sampled)"),
    "batch": Spec(lambda q, p: sweeps.batch_sweep(batches=[1, 2, 4, 8] if q else [1, 2, 4, 8, 16], quick=q,
                                                  progress=p), plots.plot_batch,
                  "ndf density vs minibatch size"),
    "tightness": Spec(lambda q, p: sweeps.tightness(quick=q, progress=p), plots.plot_tightness,
                      "sum_i ReLU(b_i) and v*ReLU(u+b) against the bound"),
    "counterexample": Spec(lambda q, p: sweeps.counterexample(
        formats=("e2m1", "e3m2", "e4m3fn") if q else ("e2m1", "e3m2", "e4m3fn", "e5m2"), quick=q, progress=p),
        None, "the all-grid counterexample: inc = |M| for proxies 0 and 1, 0 for 1/2"),
    "inc_table": Spec(lambda q, p: sweeps.inc_table(quick=q, progress=p), None,
                      "inc with and without bias parameters, exhaustive"),
    "ad_map": Spec(lambda q, p: sweeps.ad_maps(quick=q, progress=p), plots.plot_ad_maps,
                   "every point of M x M: clean / ndf / inc"),
    "rounded": Spec(_rounded, _plot_rounded, "rounded arithmetic: touched_rounded, flips, ad_branch_wrong "
                    "against width (sampled, each point exact)"),
    "audit": Spec(_audit, None, "PyTorch's autograd at every grid point per op spelling and dtype, classified "
                  "exactly", needs=("torch",)),
    # issue 12 (fpad.cost); the two torch analyses are skipped with a note when torch is absent
    "cost_overhead": Spec(cost_analyses.overhead, cost_analyses.plotter("overhead"),
                          "backprop's overhead ratio omega vs depth / width / batch, measured and op-count"),
    "cost_directional": Spec(cost_analyses.directional, cost_analyses.plotter("directional"),
                             "p directional derivatives (jvp) vs p, beside backprop"),
    "cost_clarke": Spec(cost_analyses.clarke, cost_analyses.plotter("clarke"),
                        "exact Clarke set of ReLU programs at 0 vs p, and two cheap AD-conservative elements"),
    # issue 11 (fpad.train)
    "train": Spec(lambda q, p: _train().train_analysis(quick=q, progress=p), lambda a, d: _train().plot_train(a, d),
                  "training-time checks on digits (needs the train extra; skipped with a note without it)",
                  needs=("torch", "sklearn")),
}


def _train():
    from fpad.train import experiments  # imports torch only when the analysis runs
    return experiments


def check_names(only) -> list[str]:
    names = [n.replace("-", "_") for n in only] if only else list(ANALYSES)  # inc-table == inc_table
    bad = [n for n in names if n not in ANALYSES]
    if bad:
        raise FpadError(f"unknown analysis {', '.join(bad)}; available: "
                        f"{', '.join(k.replace('_', '-') for k in ANALYSES)}")
    return list(dict.fromkeys(names))


def check_out_dir(out) -> Path:
    """Create ``out`` (and results/, figures/) and prove it is writable, before any work."""
    out = Path(out)
    try:
        for d in (out, out / "results", out / "figures"):
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".fpad-write-test-"):
                pass
    except OSError as exc:
        raise FpadError(f"cannot write to output directory {str(out)!r} ({exc.strerror or exc}); "
                        "choose another with --out DIR") from None
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_figures(spec: Spec, a: sweeps.Analysis, fig_dir: Path) -> list[str]:
    """Draw into a temporary directory next to ``fig_dir``, then rename every PNG into place."""
    if spec.plot is None:
        return []
    fig_dir.mkdir(parents=True, exist_ok=True)  # a fresh --out (analyses/ scripts call this directly)
    with tempfile.TemporaryDirectory(dir=fig_dir, prefix=".tmp-") as tmp:
        made = spec.plot(a, tmp)
        made = made if isinstance(made, list) else [made]
        names = []
        for p in made:
            os.replace(p, fig_dir / Path(p).name)
            names.append(Path(p).name)
    return names


def run(out=".", *, quick: bool = False, only=None, progress: Callable | None = None) -> dict:
    """Run the analyses; returns {"out": dir, "analyses": {name: summary}, "complete": bool}."""
    names = check_names(only)
    out = check_out_dir(out)
    res_dir = out / "results"
    t0 = time.perf_counter()
    done: dict[str, dict] = {}
    tables: dict[str, sweeps.Analysis] = {}
    earlier = _earlier_outputs(res_dir)
    if not only:  # a whole run: result files of analyses that no longer exist are stale
        for name in set(earlier) - set(names):
            _remove(res_dir / f"{name}.json", *(out / "figures" / f for f in earlier[name]))
    atomic_write(out / "report.md", render_report(tables, names, done, quick, complete=False))
    with interrupt.saying(f"the analyses finished so far are in {res_dir} and {out / 'report.md'} is "
                          "marked INCOMPLETE; a re-run computes every analysis again"):
        for name in names:
            _run_one(name, quick, progress, done, tables, names, out)
            # figures an earlier run of this analysis drew and this one did not (other formats)
            now = {Path(f).name for f in done[name]["figures"]}
            _remove(*(out / "figures" / f for f in set(earlier.get(name, ())) - now))
    return {"out": str(out), "quick": quick, "analyses": done, "complete": True,
            "elapsed_s": round(time.perf_counter() - t0, 2)}


def _earlier_outputs(res_dir: Path) -> dict[str, list[str]]:
    """analysis -> figure names, from the result files an earlier ``fpad reproduce`` wrote in
    ``res_dir`` (recognised by their provenance; other files are never touched)."""
    found = {}
    for f in res_dir.glob("*.json"):
        try:
            prov = json.loads(f.read_text(encoding="utf-8")).get("provenance", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(prov, dict) and prov.get("analysis") == f.stem and "fpad_version" in prov:
            found[f.stem] = [Path(x).name for x in prov.get("figures", []) if isinstance(x, str)]
    return found


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _run_one(name, quick, progress, done, tables, names, out) -> None:
    """Run one analysis, write its figures and result file, rewrite the report."""
    res_dir, fig_dir = out / "results", out / "figures"
    spec = ANALYSES[name]
    if spec.missing():
        need = ", ".join(spec.missing())
        done[name] = {"skipped": f"needs {need}, not installed: pip install \"fpad[train]\"", "figures": []}
        if progress:
            progress(f"[{len(done)}/{len(names)}] {name}: skipped ({done[name]['skipped']})")
        atomic_write(out / "report.md", render_report(tables, names, done, quick, complete=len(done) == len(names)))
        return
    if progress:
        progress(f"[{len(done) + 1}/{len(names)}] {name}: {spec.what}")
    a = spec.run(quick, progress)
    figures = write_figures(spec, a, fig_dir)
    payload = a.to_json()
    payload["provenance"].update({"analysis": name, "quick": quick, "figures": figures})
    with sweeps.long_ints():
        text = json.dumps(payload, indent=1, default=str)
    atomic_write(res_dir / f"{name}.json", text)
    done[name] = {"file": str(res_dir / f"{name}.json"), "figures": [str(fig_dir / f) for f in figures],
                  "elapsed_s": round(a.elapsed_s, 2), "rows": len(a.rows)}
    tables[name] = a
    atomic_write(out / "report.md", render_report(tables, names, done, quick, complete=len(done) == len(names)))


# -- the report ----------------------------------------------------------------------------------------------
def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    s = str(v)
    if len(s) > 24 and s.replace("/", "").isdigit():  # an exact number with many digits: see the JSON
        num = s.split("/")[0]
        return f"{num[0]}.{num[1:4]}e{len(num) - 1}{'/...' if '/' in s else ''} (exact in JSON)"
    return s


def _md(s: str) -> str:
    """Escape the table separator inside a cell (|M| would split the cell)."""
    return str(s).replace("|", "\\|")


def markdown_table(a: sweeps.Analysis) -> str:
    cols, rows = a.display if a.display else (a.columns, a.rows)
    lines = ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_md(_cell(r.get(c, ""))) for c in cols) + " |")
    return "\n".join(lines)


def render_report(tables: dict, names: list[str], done: dict, quick: bool, complete: bool) -> str:
    prov = sweeps.provenance()
    head = ["# fpad reproduction report", ""]
    if not complete:
        missing = [n for n in names if n not in done]
        head += [f"**INCOMPLETE: {len(done)} of {len(names)} analyses finished; missing: {', '.join(missing)}.** "
                 "The run was interrupted or is still running; re-run `fpad reproduce` to complete it.", ""]
    where = (f"commit {prov['git_commit']}" if prov["git_commit"] else "installed package (not a git checkout)")
    head += [f"fpad {prov['fpad_version']}, {where}, code identity {prov['code_identity']}, "
             f"{'--quick' if quick else 'full run'}, written {prov['created']}.",
             "Every count is exact unless its method is `sample` (a labelled estimate with a 95% "
             "Clopper-Pearson interval). Exact values (fractions) are in `results/<analysis>.json`.", ""]
    body = headline(tables)
    for name in names:
        if name not in done:
            body += [f"## {name}", "", "_missing: not completed in this run_", ""]
            continue
        if "skipped" in done[name]:
            body += [f"## {name}", "", f"_skipped: {done[name]['skipped']}_", ""]
            continue
        a = tables[name]
        body += [f"## {name}: {a.title}", ""]
        for f in done[name]["figures"]:
            body.append(f"![{name}](figures/{Path(f).name})")
        body += ["", markdown_table(a), ""]
        body += [f"- {n}" for n in a.notes]
        body += [f"- elapsed {done[name]['elapsed_s']} s; results: `results/{name}.json`", ""]
    return "\n".join(head + body) + "\n"


def headline(tables: dict) -> list[str]:
    """The headline table (Markdown lines) from whichever analyses finished."""
    lines = []
    if "inc_table" in tables:
        rows = tables["inc_table"].rows
        single = [r for r in rows if r["bias"] and not r["architecture"].startswith("B=2")]
        batch = [r for r in rows if r["bias"] and r["architecture"].startswith("B=2") and r["inc"] != "0"]
        nob = [r for r in rows if not r["bias"] and r["inc"] != "0"]
        lines.append(f"| inc = empty for bias networks (single input), exhaustive | "
                     f"{sum(r['inc'] == '0' for r in single)} of {len(single)} cells have inc = 0 |")
        lines.append("| minibatch B = 2 with bias (ICLR 2024 Lemma 3 mechanism) | inc != 0 in: "
                     + (", ".join(sorted({f"{r['activation']}/{r['proxy']}/{r['format']}" for r in batch})) or "none")
                     + " |")
        lines.append(f"| no bias parameters: inc can be non-empty | {len(nob)} cells with inc != 0 |")
    if "width" in tables:
        for r in tables["width"].rows:
            if r["layers"] == 1 and r["format"] in ("e4m3fn", "bf16") and r["width"] in (1, 16, 256, 1024):
                lines.append(f"| width {r['width']}, {r['format']}: ndf density (exact) vs bound N/|M| | "
                             f"{r['density_f']:.4g} vs {r['bound_f']:.4g} |")
    if "tightness" in tables:
        for r in tables["tightness"].rows:
            if r["construction"] == f"sum_i ReLU(b_i), N={r['M']}" or (r["M"] == 253 and r["n"] == 253):
                lines.append(f"| sum_i ReLU(b_i), N = |M| = {r['M']} ({r['format']}): density / bound | "
                             f"{r['ratio']:.4f} (1 - 1/e = 0.6321), closed form matches: {r['matches']} |")
    if "counterexample" in tables:
        for r in tables["counterexample"].rows:
            lines.append(f"| all-grid counterexample, {r['format']}, {r['proxy']}: inc / |M| | "
                         f"{r['inc']} / {r['M']} |")
    if not lines:
        return []
    cells = [ln[2:-2].rsplit(" | ", 1) for ln in lines]  # "| claim | measured |"; measured has no " | "
    return ["## Headline results", "", "| claim | measured |", "|---|---|",
            *(f"| {_md(c)} | {_md(m)} |" for c, m in cells), ""]


def stderr_progress(msg: str) -> None:
    print(f"fpad: {msg}", file=sys.stderr, flush=True)
