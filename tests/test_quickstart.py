"""The installed ``fpad`` command works from outside the checkout.

``.ci/run`` runs the README's two Quickstart commands verbatim in a fresh venv; this test runs
inside the second one, after its install, so it sees what a newcomer sees next: before issue 8's
fix, numba cache files left in ``site-packages/fpad/`` by command 1 survived the uninstall of
command 2 as a namespace package, and every ``fpad`` command failed with ``cannot import name
'__version__' from 'fpad'``. Run from a temporary directory so the checkout is not on sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fpad

BIN = Path(sys.executable).parent


def _fpad_cmd() -> list[str]:
    exe = BIN / "fpad"
    if exe.exists():
        return [str(exe)]
    if shutil.which("fpad"):
        return ["fpad"]
    pytest.skip("the fpad script is not installed in this environment (pip install -e . makes it)")


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_fpad_package_resolves_to_a_regular_package(tmp_path):
    out = _run([sys.executable, "-c", "import fpad; print(fpad.__file__, fpad.__version__)"], tmp_path)
    assert out.returncode == 0, out.stderr
    path, version = out.stdout.split()
    assert path.endswith("__init__.py") and version == fpad.__version__


def test_installed_fpad_command_by_hand(tmp_path):
    cmd = _fpad_cmd()
    v = _run(cmd + ["--version"], tmp_path)
    assert v.returncode == 0, v.stderr
    assert v.stdout.strip() == f"fpad {fpad.__version__}"
    c = _run(cmd + ["count", "--example", "lemma3", "--format", "e2m1", "--json"], tmp_path)
    assert c.returncode == 0, c.stderr
    res = json.loads(c.stdout)
    # Lemma 3 over e2m1: 15 biases, 3 touch a kink, 2 of them ndf, 1 where PyTorch's proxy is wrong
    assert (res["points"], res["touched"], res["ndf"], res["inc"]) == (15, 3, 2, 1)
