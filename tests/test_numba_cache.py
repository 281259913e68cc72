"""numba's cache files never land inside the package (issue 8: a pip-uninstalled fpad left
``site-packages/fpad/__pycache__/*.nbi`` behind, a namespace package that shadowed the next
install). The full Quickstart sequence runs in ``.ci/run``; here, the mechanism."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fpad

_PROBE = (
    "import numpy as np{pre}; import fpad; from fpad.formats import get_format; "
    "print(get_format('e4m3fn').round(np.array([1 + 2.0**-4 + 2.0**-40])).tolist())"
)


def _run(tmp_path, env_extra, pre=""):
    pkg = tmp_path / "site"
    shutil.copytree(Path(fpad.__file__).parent, pkg / "fpad",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(pkg), **env_extra)
    out = subprocess.run([sys.executable, "-c", _PROBE.format(pre=pre)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1.125]"
    inside = [p.name for p in (pkg / "fpad").rglob("*") if p.suffix in (".nbi", ".nbc")]
    return inside


def _cache_files(d: Path) -> list[str]:
    return [p.name for p in d.rglob("*.nbi")]


def test_cache_goes_to_the_user_cache_dir(tmp_path):
    xdg = tmp_path / "xdg"
    assert _run(tmp_path, {"XDG_CACHE_HOME": str(xdg)}) == []
    assert any(n.startswith("formats.round_array") for n in _cache_files(xdg / "fpad" / "numba"))


def test_users_numba_cache_dir_is_kept(tmp_path):
    mine = tmp_path / "mine"
    assert _run(tmp_path, {"NUMBA_CACHE_DIR": str(mine), "XDG_CACHE_HOME": str(tmp_path / "x")}) == []
    assert _cache_files(mine) and not (tmp_path / "x").exists()


def test_numba_imported_before_fpad(tmp_path):
    xdg = tmp_path / "xdg"
    assert _run(tmp_path, {"XDG_CACHE_HOME": str(xdg)}, pre="; import numba") == []
    assert _cache_files(xdg / "fpad" / "numba")
