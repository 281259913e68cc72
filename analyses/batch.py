"""Thin caller: `fpad sweep batch` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/batch.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "batch", *sys.argv[1:]]))
