"""Thin caller: `fpad sweep width` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/width.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "width", *sys.argv[1:]]))
