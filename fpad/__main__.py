import sys

from fpad.cli import main

sys.exit(main())
