"""``python -m fpad ...`` is the ``fpad`` command."""

import sys

from fpad.cli import main

sys.exit(main())
