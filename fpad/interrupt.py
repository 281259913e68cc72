"""What an interrupted command can truthfully say about the work it leaves behind.

The CLI turns Ctrl-C anywhere into one line and exit status 130 (:func:`fpad.cli.main`). What
that line says depends on what was running: a counting run with a progress store has its
completed chunks saved and resumes on a re-run; a run without one (or a single chunk, a sample
drawn in memory, a sweep) keeps nothing. Long-running code says which with :func:`saying`::

    with interrupt.saying(f"completed chunks are saved in {path}; run the same command again to resume"):
        ...

and :func:`note` is what the handler prints (the innermost note, or that nothing was saved).
"""

from __future__ import annotations

from contextlib import contextmanager

NOTHING_SAVED = "nothing was saved; a re-run starts over"
_requested: list[bool] = []  # set by the CLI's SIGINT handler
_notes: list[str] = []
_unwound: list[str] = []  # the note of the innermost block an exception left (kept for the handler)


@contextmanager
def saying(text: str):
    _notes.append(text)
    try:
        yield
    except BaseException:
        if not _unwound:
            _unwound.append(text)
        raise
    finally:
        _notes.pop()


def note() -> str:
    """What to print: the note of the innermost block running or just left by the exception."""
    if _notes:
        return _notes[-1]
    return _unwound[0] if _unwound else NOTHING_SAVED




def request() -> None:
    """Ctrl-C was pressed (called by the CLI's SIGINT handler)."""
    _requested.append(True)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed. Long loops call this between their steps:
    an interrupt that lands inside numba's compiler can be swallowed there (a ctypes callback
    reports it as "Exception ignored" and compilation goes on), and this makes it count at the
    next step instead of after the whole run."""
    if _requested:
        raise KeyboardInterrupt


def reset() -> None:
    """Forget an earlier command's notes and interrupt (each CLI command starts clean)."""
    _unwound.clear()
    _requested.clear()
