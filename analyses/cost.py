"""Thin caller: the three cost analyses of issue 12 (fpad/cost/), results/cost_*.json and figures/cost_*.png.

    python analyses/cost.py --out .            # full runs (a few minutes; overhead/directional need torch)
    python analyses/cost.py --quick --out /tmp/x
Extra arguments are passed through to each `fpad sweep overhead | directional | clarke`.
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    codes = [main(["sweep", kind, *sys.argv[1:]]) for kind in ("overhead", "directional", "clarke")]
    sys.exit(max(codes))
