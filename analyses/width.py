"""Thin caller: `fpad sweep width` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/width.py [--formats ...] [--out DIR] [--json]

The full two-hidden-layer panel (N up to 64, 10^6 points each) takes longer than one sweep's time
budget and its exact oracle is single-threaded, so it is run in pieces, one per process, each
with ``--json > piece.json``, and merged (rows of later pieces replace equal (layers, width,
format) rows of earlier ones; the table and figure are redrawn):

    python analyses/width.py --merge piece1.json piece2.json ... --out DIR
"""

import json
import sys
from pathlib import Path

from fpad.cli import main

_ORDER = ("e4m3fn", "e5m2", "bf16")


def merge(paths, out) -> None:
    from fpad.reproduce import ANALYSES, atomic_write, check_out_dir, write_figures
    from fpad.sweeps import Analysis

    pieces = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    rows: dict = {}
    for piece in pieces:
        for r in piece["rows"]:
            rows[(r["format"], r["layers"], r["width"])] = r
    first = pieces[0]
    a = Analysis(first["name"], first["title"], first["columns"],
                 sorted(rows.values(), key=lambda r: (_ORDER.index(r["format"]) if r["format"] in _ORDER
                                                      else len(_ORDER), r["format"], r["layers"], r["width"])),
                 notes=list(dict.fromkeys(n for p in pieces for n in p["notes"])),
                 provenance=first["provenance"], elapsed_s=sum(p["elapsed_s"] for p in pieces))
    a.notes.append(f"merged from {len(pieces)} runs (analyses/width.py --merge); the elapsed time is their sum")
    out = check_out_dir(out)
    write_figures(ANALYSES["width"], a, out / "figures")
    atomic_write(out / "results" / "width.json", json.dumps(a.to_json(), indent=1, default=str))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--merge"]:
        if "--out" not in args or args.index("--out") + 1 >= len(args):
            sys.exit("usage: python analyses/width.py --merge PIECE.json ... --out DIR")
        i = args.index("--out")
        merge(args[1:i], args[i + 1])
        sys.exit(0)
    sys.exit(main(["sweep", "width", *args]))
