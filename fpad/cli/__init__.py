"""The ``fpad`` command line: one entry point, one sub-module per subcommand.

Each sub-module of :mod:`fpad.cli` defines ``register(subparsers)``, which adds its parser and sets
``func`` to a handler ``handler(args) -> int``. Handlers raise :class:`fpad.errors.FpadError` for bad
input; :func:`main` turns it into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fpad import __version__
from fpad.errors import FpadError

# Sub-modules, in the order they appear in ``fpad --help``.
COMMANDS = ["formats", "check", "examples", "count", "sweep", "reproduce", "train"]


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
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except FpadError as exc:
        print(f"fpad: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `fpad ... --json | head`: the reader left; end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("fpad: interrupted; completed chunks are saved and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
