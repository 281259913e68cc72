"""fpad: exact non-differentiability and AD-correctness counts on low-precision parameter grids."""

__version__ = "0.1.1"

from fpad import _numba_cache  # noqa: E402

_numba_cache.configure()  # before any numba import: cache files never land inside the package

from fpad import _threads  # noqa: E402

_threads.configure()  # before numba's thread pool starts: idle threads wait without spinning

from fpad.errors import FpadError  # noqa: E402

__all__ = ["FpadError", "__version__", "get_format"]


def get_format(spec):
    """Return the :class:`fpad.formats.Format` named by ``spec`` (see :func:`fpad.formats.get_format`)."""
    from fpad.formats import get_format as _get

    return _get(spec)
