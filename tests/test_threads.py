"""numba's OpenMP threads wait passively (fpad/_threads.py: spinning threads made 2 threads far
slower than 1 on a loaded 2-core machine), unless the user chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = "import os, fpad; print(os.environ.get('OMP_WAIT_POLICY'))"


def _policy(**env_extra):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_sets_passive_waiting():
    assert _policy() == "PASSIVE"


def test_users_policy_is_kept():
    assert _policy(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
