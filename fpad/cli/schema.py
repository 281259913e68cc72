"""``fpad schema``: the network file schema (an annotated TOML example) and the parameter names."""

from __future__ import annotations

from fpad.schema import NAMES, SCHEMA


HELP = "print the network file schema (annotated TOML) and parameter names"
DESCRIPTION = ("Print the network file schema: an annotated TOML network with every key, then how parameters "
               "and nodes are named.")


def handler(args) -> int:
    print(SCHEMA + "\n" + NAMES, end="")
    return 0
