"""Thin caller: `fpad sweep tightness` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/tightness.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "tightness", *sys.argv[1:]]))
