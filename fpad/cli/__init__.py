"""The ``fpad`` command line: one entry point, one sub-module per subcommand.

Each sub-module of :mod:`fpad.cli` defines its ``HELP`` line, ``DESCRIPTION`` (and optionally
``EPILOG``), ``arguments(parser)`` adding its options (optional), and ``handler(args) -> int``;
:func:`build_parser` makes the sub-parser from them. Handlers raise :class:`fpad.errors.FpadError` for bad
input; :func:`main` turns it into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from fpad import __version__
from fpad import interrupt
from fpad.errors import FpadError

# Sub-modules, in the order they appear in ``fpad --help``.
COMMANDS = ["formats", "check", "examples", "count", "sweep", "reproduce", "schema", "train"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors also end with exit status 2 and one clear line."""

    def error(self, message):  # pragma: no cover - exercised through main()
        raise FpadError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fpad",
        description="Exact answers to: where on a low-precision parameter grid is my network "
        "non-differentiable, and where does automatic differentiation return a wrong derivative?",
    )
    parser.add_argument("--version", action="version", version=f"fpad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"fpad.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name == f"fpad.cli.{name}":
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.DESCRIPTION, epilog=getattr(mod, "EPILOG", None))
        getattr(mod, "arguments", lambda p: None)(p)
        p.set_defaults(func=mod.handler)
    return parser


class _Interrupts:
    """Ctrl-C, however it surfaces. Python raises KeyboardInterrupt between bytecodes, but an
    interrupt that lands inside numba (a compiled kernel returning, the compiler writing its
    cache through a ctypes callback) or inside Dask comes back as another exception (SystemError
    "returned a result with an exception set", RuntimeError "no compiled object yet") or as an
    "Exception ignored" report. So the SIGINT handler records that it fired, and whatever
    exception then ends the command is reported as the interruption it is."""

    def __init__(self):
        self.fired = False
        self._old_handler = None
        self._old_hook = None

    def _on_sigint(self, signum, frame):
        self.fired = True
        interrupt.request()  # long loops stop at their next step even if this raise is swallowed
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    def _unraisable(self, info):
        if not (self.fired or isinstance(info.exc_value, KeyboardInterrupt)):
            self._old_hook(info)

    def __enter__(self):
        try:
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread (main() called from a thread): leave it
            self._old_handler = None
        self._old_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc):
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
        sys.unraisablehook = self._old_hook
        return False


def main(argv: list[str] | None = None) -> int:
    interrupt.reset()
    with _Interrupts() as ctrl_c:  # before anything slow (the subcommands' imports), so Ctrl-C is ours
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if not getattr(args, "func", None):
                parser.print_help()
                return 0
            return int(args.func(args) or 0)
        except FpadError as exc:
            if not ctrl_c.fired:
                print(f"fpad: error: {exc}", file=sys.stderr)
                return 2
        except BrokenPipeError:  # e.g. `fpad ... --json | head`: the reader left; end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (KeyboardInterrupt, Exception):
            if not ctrl_c.fired and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise
        print(f"fpad: interrupted; {interrupt.note()}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
