"""Thin caller: `fpad sweep inc-table` (see fpad/sweeps.py); extra arguments are passed through.

    python analyses/inc_table.py [--formats ...] [--out DIR] [--json]
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", "inc-table", *sys.argv[1:]]))
