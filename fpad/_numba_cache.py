"""Where numba's ``cache=True`` files go: a per-user cache directory, never inside the package.

numba's default puts its cache files in ``__pycache__`` beside the source. For an installed fpad
that is ``site-packages/fpad/__pycache__``: pip does not record those files, so ``pip uninstall``
leaves a ``site-packages/fpad/`` directory without ``__init__.py`` behind, which Python then
imports as a namespace package that shadows a later editable install (``cannot import name
'__version__' from 'fpad'``). A read-only install cannot hold them either.

So, before numba is imported (``fpad/__init__`` calls :func:`configure`), ``NUMBA_CACHE_DIR`` is
set to ``$XDG_CACHE_HOME/fpad/numba`` (default ``~/.cache/fpad/numba``), or to a per-user
directory under the system temp directory when that cannot be created. A ``NUMBA_CACHE_DIR`` the
user set is kept. numba keys each cache file on the full path, size and time stamp of its source
file, so several installations share the directory safely.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fpad-write-test-"):
            pass
        return True
    except OSError:
        return False


def cache_dir(kind: str = "numba") -> Path:
    """The directory fpad's ``kind`` cache files go to (created if need be): ``numba`` for the
    kernels (``NUMBA_CACHE_DIR`` when the user set it), ``jax`` for JAX's compilations."""
    if kind == "numba" and os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (Path(base) / "fpad" / kind,
                      Path(tempfile.gettempdir()) / f"fpad-{kind}-{_user()}"):
        if _writable_dir(candidate):
            return candidate
    return Path(base) / "fpad" / kind  # nothing writable: the caller runs without its cache


def _user() -> str:
    try:
        return str(os.getuid())
    except AttributeError:  # pragma: no cover - Windows
        return os.environ.get("USERNAME", "user")


def configure() -> Path:
    """Point numba's cache at :func:`cache_dir` (also when numba was imported before fpad)."""
    path = cache_dir()
    os.environ.setdefault(ENV, str(path))
    numba = sys.modules.get("numba")
    if numba is not None and not getattr(numba.config, "CACHE_DIR", ""):
        numba.config.CACHE_DIR = str(path)
    return path
