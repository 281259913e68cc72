"""Thin caller: `fpad sweep counterexample` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/counterexample.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "counterexample", *sys.argv[1:]]))
