"""Thin caller: the training experiments of fpad/train/experiments.py at full size.

    python analyses/train_runs.py [--seeds 5] [--epochs 3] [--cnn-seeds 3] [--cnn-epochs 1] [--cache DIR]

Writes results/train.json (rows, notes, provenance) and figures/train_*.png. Finished runs are
kept in the cache directory, so an interrupted run resumes. `fpad reproduce` runs the quick
version of the same analysis.
"""

import argparse
import json
from pathlib import Path

from fpad.reproduce import ANALYSES, atomic_write, write_figures
from fpad.sweeps import long_ints
from fpad.train.experiments import train_analysis

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cnn-seeds", type=int, default=3)
    ap.add_argument("--cnn-epochs", type=int, default=1)
    ap.add_argument("--cache", default="/tmp/fpad-train-cache")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    a = train_analysis(False, lambda m: print(m, flush=True), seeds=range(args.seeds), epochs=args.epochs,
                       cache=Path(args.cache), cnn_seeds=range(args.cnn_seeds), cnn_epochs=args.cnn_epochs)
    out = Path(args.out)
    figures = write_figures(ANALYSES["train"], a, out / "figures")
    payload = a.to_json()
    payload["provenance"].update({"analysis": "train", "quick": False, "figures": figures})
    with long_ints():
        atomic_write(out / "results" / "train.json", json.dumps(payload, indent=1, default=str))
    print(f"wrote {out}/results/train.json and {', '.join(figures)}")
