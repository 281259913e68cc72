"""Thin caller: `fpad sweep precision` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/precision.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "precision", *sys.argv[1:]]))
