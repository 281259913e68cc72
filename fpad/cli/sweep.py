"""``fpad sweep KIND``: one analysis of :mod:`fpad.sweeps`, with its parameters on the command line.

    fpad sweep precision --formats e2m1 e3m2 e4m3fn bf16
    fpad sweep width --formats e4m3fn bf16 --widths 1 8 64 1024 --deep-widths 1 2 4 --samples 500
    fpad sweep batch --formats e4m3fn --batches 1 2 4 8
    fpad sweep tightness | counterexample | inc-table | ad-map [--formats ...] [--out DIR] [--json]
    fpad sweep overhead [--depths ...] [--widths ...] [--batches ...] [--threads 1] [--json]   (fpad.cost)
    fpad sweep directional [--ps ...] [--relu-ps ...] | clarke [--ps ...] [--networks N]

Prints the table (Markdown) or, with ``--json``, the result object; with ``--out DIR`` also writes
DIR/results/<analysis>.json and the figure into DIR/figures. Ranges that would exceed the time
budget are refused before any work (exit status 2).
"""

from __future__ import annotations

import json

from fpad import plots, sweeps
from fpad.cost import analyses as cost_analyses
from fpad.errors import FpadError
from fpad.reproduce import (ANALYSES, Spec, write_figures, atomic_write, check_out_dir, markdown_table,
                            stderr_progress)

KINDS = ("precision", "width", "batch", "tightness", "counterexample", "inc-table", "ad-map", "rounded", "audit",
         *cost_analyses.KINDS)


def _what(kind: str) -> str:
    """One line on an analysis, from fpad reproduce's table (cost analyses are cost_<kind> there)."""
    name = kind.replace("-", "_")
    return ANALYSES[name if name in ANALYSES else f"cost_{name}"].what


def _ints(values, what):
    try:
        out = [int(v) for v in values]
    except ValueError:
        raise FpadError(f"{what} must be positive integers, got {' '.join(values)}") from None
    if any(v < 1 for v in out):
        raise FpadError(f"{what} must be positive integers, got {' '.join(values)}")
    return out


HELP = ("one analysis: precision | width | batch | tightness | counterexample | inc-table | ad-map | rounded | "
        "audit | overhead | directional | clarke")
DESCRIPTION = ("Run one analysis with its parameters on the command line: print its table (or, with --json, the "
               "result object); with --out DIR also write DIR/results/<analysis>.json and its figure. Ranges "
               "that would exceed the time budget, and formats too large for an analysis, are refused before any "
               "work. Analyses: " + "; ".join(f"{k}: {_what(k)}" for k in KINDS))
EPILOG = ("examples: fpad sweep width --formats e4m3fn bf16 --widths 1 8 64 1024 | fpad sweep ad-map --formats "
          "e3m2 --out DIR | fpad sweep inc-table --json")


def arguments(p) -> None:
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=" | ".join(KINDS))
    p.add_argument("--formats", nargs="+", metavar="F", help="formats (default: the analysis's own)")
    p.add_argument("--widths", nargs="+", metavar="N", help="width: exact one-hidden-layer widths; rounded, overhead: widths")
    p.add_argument("--deep-widths", nargs="*", metavar="N", help="width: two-hidden-layer widths (sampled)")
    p.add_argument("--samples", type=int, metavar="N",
                   help="width: points sampled per two-hidden-layer network; rounded: points per cell")
    p.add_argument("--seed", type=int, default=0, help="width, rounded, clarke: sampling seed (default 0)")
    p.add_argument("--batches", nargs="+", metavar="B", help="batch, overhead: minibatch sizes")
    c = p.add_argument_group("overhead | directional | clarke (fpad.cost; overhead and directional need "
                             "PyTorch: pip install 'fpad[train]')")
    c.add_argument("--depths", nargs="+", type=int, metavar="L", help="overhead: hidden-layer counts")
    c.add_argument("--programs", nargs="+", metavar="NAME", help="overhead: hidden programs (relu relu_d0 relu_d1 "
                   "abs hardtanh maxpool maxout)")
    c.add_argument("--features", type=int, default=64, choices=(64, 784), help="overhead: 64 (digits) or 784 "
                   "(upsampled to 28 x 28)")
    c.add_argument("--threads", type=int, metavar="N", help="torch threads, pinned (default 1)")
    c.add_argument("--repeats", type=int, metavar="N", help="timed repeats per row (default 15; 5 with --quick)")
    c.add_argument("--ps", nargs="+", type=int, metavar="P", help="directional: MLP direction counts; clarke: "
                   "input dimensions")
    c.add_argument("--relu-ps", nargs="+", type=int, metavar="P", help="directional: dimensions of ReLU(Ax)")
    c.add_argument("--networks", type=int, metavar="N", help="clarke: random networks per p")
    p.add_argument("--quick", action="store_true", help="the quick defaults of fpad reproduce --quick")
    p.add_argument("--out", metavar="DIR", help="also write DIR/results/<analysis>.json and DIR/figures/*.png")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def handler(args) -> int:
    out = check_out_dir(args.out) if args.out else None
    prog = None if args.json else stderr_progress
    kw = {"quick": args.quick, "progress": prog}
    if args.formats:
        kw["formats"] = tuple(args.formats)
        for f in args.formats:
            sweeps.get_format(f)  # unknown format: refused before any work
        sweeps.check_formats_budget(args.kind.replace("-", "_"), args.formats)
    if args.seed < 0:  # Random(-7) draws what Random(7) draws, under another label
        raise FpadError(f"--seed must be an integer >= 0, got {args.seed}")
    k = args.kind
    if k in cost_analyses.KINDS:
        args.widths = _ints(args.widths, "--widths") if args.widths else None
        args.batches = _ints(args.batches, "--batches") if args.batches else None
        a = cost_analyses.run_sweep(args, prog)
        spec = Spec(None, cost_analyses.plotter(k), "")
    elif k == "width":
        widths = _ints(args.widths, "--widths") if args.widths else None
        deep = _ints(args.deep_widths, "--deep-widths") if args.deep_widths is not None else None
        sweeps.check_width_budget(widths or [1024], deep if deep is not None else [8], args.samples or 1000,
                                  len(args.formats or (1, 2, 3)))
        a = sweeps.width_sweep(widths=widths, deep_widths=deep, deep_samples=args.samples, seed=args.seed, **kw)
        spec = Spec(None, plots.plot_width, "")
    elif k == "precision":
        if args.formats:
            sweeps.check_precision_budget(args.formats)
        a = sweeps.precision_sweep(**kw)
        spec = ANALYSES["precision"]
    elif k == "batch":
        a = sweeps.batch_sweep(batches=_ints(args.batches, "--batches") if args.batches else None, **kw)
        spec = ANALYSES["batch"]
    elif k == "tightness":
        a = sweeps.tightness(**kw)
        spec = ANALYSES["tightness"]
    elif k == "counterexample":
        a = sweeps.counterexample(**kw)
        spec = ANALYSES["counterexample"]
    elif k == "inc-table":
        a = sweeps.inc_table(**kw)
        spec = ANALYSES["inc_table"]
    elif k == "rounded":
        from fpad.rounded.sweep import rounded_sweep

        widths = _ints(args.widths, "--widths") if args.widths else None
        a = rounded_sweep(widths=widths, samples=args.samples, seed=args.seed, **kw)
        spec = ANALYSES["rounded"]
    elif k == "audit":
        from fpad.rounded.sweep import audit_sweep

        a = audit_sweep(**kw)
        spec = ANALYSES["audit"]
    else:
        a = sweeps.ad_maps(**kw)
        spec = ANALYSES["ad_map"]
    if out is not None:
        write_figures(spec, a, out / "figures")
        with sweeps.long_ints():
            atomic_write(out / "results" / f"{a.name}.json", json.dumps(a.to_json(), indent=1, default=str))
    if args.json:
        with sweeps.long_ints():
            print(json.dumps(a.to_json(), indent=1, default=str))
    else:
        print(f"## {a.title}\n\n{markdown_table(a)}\n")
        for n in a.notes:
            print(f"- {n}")
    return 0
