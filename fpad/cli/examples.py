"""``fpad examples``: list the named examples and the network files shipped with fpad."""

from __future__ import annotations

import json

from fpad.cli.check import _catalogue
from fpad.network import NetworkSpec, shipped_nets


HELP = "list the catalogue of examples (use with 'fpad check --example NAME')"
DESCRIPTION = ("List the catalogued examples (paper counterexamples and theorems) and the network files "
               "shipped in fpad/nets. Run one with 'fpad check --example NAME --format F'.")


def arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")


def _describe(path) -> str:
    """The file's ``description``, else its first comment line (the issue's example has no key)."""
    desc = NetworkSpec.from_toml(path).description
    if desc:
        return desc
    first = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def handler(args) -> int:
    catalogue = {name: ex.description for name, ex in sorted(_catalogue().items())}
    files = {f"{name}.toml": (str(path), _describe(path)) for name, path in shipped_nets().items()}
    if args.json:
        print(json.dumps({"examples": catalogue, "files": {n: {"path": p, "description": d} for n, (p, d) in files.items()}}, indent=2))
        return 0
    width = max((len(n) for n in [*catalogue, *files]), default=0)
    if catalogue:
        print("examples (fpad check --example NAME [--format F] [--at ...]; default format and point built in):")
        for name, desc in catalogue.items():
            print(f"  {name:<{width}}  {desc}")
    if files:
        print("network files shipped in fpad/nets (fpad check --example NAME.toml --format F --at ...):")
        for name, (path, desc) in files.items():
            print(f"  {name:<{width}}  {desc or path}")
    return 0
