"""``fpad reproduce``: every analysis on built-in defaults -> results/*.json, figures/*.png, report.md.

    fpad reproduce --quick                 # the README's main job, < 3 minutes on 2 cores
    fpad reproduce --quick --out .         # regenerates the repository's figures/ and report.md
    fpad reproduce --only width precision --out /tmp/run --json
"""

from __future__ import annotations

import json

from fpad.reproduce import ANALYSES, run, stderr_progress


HELP = "run every analysis (sweeps, tightness, counterexamples, AD maps): results, report, figures"
DESCRIPTION = ("Run the reproduction analyses on built-in defaults; write DIR/results/<analysis>.json (with "
               "provenance), DIR/report.md (the tables) and DIR/figures/*.png. Analyses: "
               + "; ".join(f"{k.replace('_', '-')}: {v.what}" for k, v in ANALYSES.items()))


def arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="smaller defaults; finishes in under 3 minutes on 2 cores")
    p.add_argument("--out", metavar="DIR", default="fpad-out", help="output directory (default ./fpad-out)")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these analyses ({', '.join(k.replace('_', '-') for k in ANALYSES)})")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout (no progress lines)")


def handler(args) -> int:
    summary = run(args.out, quick=args.quick, only=args.only, progress=None if args.json else stderr_progress)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {args.out}/report.md, {len(summary['analyses'])} result files in {args.out}/results, "
              f"figures in {args.out}/figures ({summary['elapsed_s']} s)")
    return 0
