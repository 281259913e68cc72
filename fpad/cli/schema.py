"""``fpad schema``: the network file schema (an annotated TOML example) and the parameter names."""

from __future__ import annotations

from fpad.schema import NAMES, SCHEMA


def register(subparsers) -> None:
    p = subparsers.add_parser("schema", help="print the network file schema (annotated TOML) and parameter names",
                              description="Print the network file schema: an annotated TOML network with "
                              "every key, then how parameters and nodes are named.")
    p.set_defaults(func=lambda args: print(SCHEMA + "\n" + NAMES, end="") or 0)
