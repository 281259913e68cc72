"""Thin caller: `fpad sweep ad-map` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/ad_map.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "ad-map", *sys.argv[1:]]))
