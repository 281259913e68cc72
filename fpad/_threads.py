"""How numba's worker threads wait between parallel regions: passively, unless the user says.

numba's default threading layer here is OpenMP (GNU libgomp), whose idle threads spin for a while
after each parallel region. The engine runs one region per chunk (about a thousand per run); on
a 2-core machine shared with other work, a spinning thread steals the core its partner needs,
and 2 threads became far slower than 1. Measured on B1 exhaustive (4.1e9 points, 977 chunks),
wall seconds, three runs each:

=====================================  ================  ================
                                       1 thread          2 threads
=====================================  ================  ================
two other sessions running, default    2.7 / 2.8 / 2.9   14.5 / 27.0 / 29.1
same, ``OMP_WAIT_POLICY=PASSIVE``      2.7 / 3.2 / 3.6   2.7 / 2.7 / 4.4
plus two busy loops, default           5.2 / 13.1 / 13.4 27.3 / 31.0 / 42.7
same, ``OMP_WAIT_POLICY=PASSIVE``      4.4 / 9.0 / 9.4   5.9 / 6.6 / 8.9
=====================================  ================  ================

So :func:`configure` sets ``OMP_WAIT_POLICY=PASSIVE`` before numba starts its thread pool
(``fpad/__init__`` calls it first); libgomp reads it when it is loaded, at the first parallel
call. A value the user set is kept (``OMP_WAIT_POLICY=ACTIVE`` for a dedicated machine).
"""

from __future__ import annotations

import os

ENV = "OMP_WAIT_POLICY"


def configure() -> str:
    """Set ``OMP_WAIT_POLICY`` to ``PASSIVE`` unless it is set; return the value in force."""
    return os.environ.setdefault(ENV, "PASSIVE")
