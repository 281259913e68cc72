"""Thin caller: `fpad reproduce` (see fpad/reproduce.py); extra arguments are passed through.

    python analyses/reproduce_all.py --quick --out .
"""

import sys

from fpad.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
