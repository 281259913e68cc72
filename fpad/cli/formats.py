"""``fpad formats``: the number formats fpad knows (table, one format in detail, its values)."""

from __future__ import annotations

import json
import math

from fpad.formats import ALIASES, NAMED, Format, get_format

_GENERIC_HELP = (
    "Generic formats: e{E}m{M}[b{BIAS}][fn|fnuz|f] with E in 1..8, M in 0..10 (no suffix: IEEE-like "
    "with inf/NaN; fn: no inf, NaN = all ones; fnuz: no inf, no -0, NaN = 0x80; f: no specials), "
    "optionally followed by :nosub and :ties=even|up. Named formats and aliases take precedence."
)


def _num(x: float | None) -> str:
    """A short exact rendering: integers as integers, other powers of two as 2^k."""
    if x is None:
        return "-"
    if x == int(x) and abs(x) < 1e7:
        return str(int(x))
    m, e = math.frexp(x)
    return f"2^{e - 1}" if m == 0.5 else repr(x)


def _aliases(name: str) -> list[str]:
    return sorted(a for a, n in ALIASES.items() if n == name)


def _describe(f: Format) -> dict:
    """Facts of a format as JSON-ready data (floats are exact: they round-trip through repr)."""
    return {
        "name": f.name,
        "aliases": _aliases(f.name),
        "family": f.family,
        "E": f.ebits,
        "M": f.mbits,
        "bias": f.bias,
        "signed": f.signed,
        "bits": f.nbits,
        "p": f.p,
        "emin": f.emin,
        "emax": f.emax,
        "W": f.W,
        "quantum": f.quantum,
        "n_values": f.n_values,
        "n_positive": f.n_positive,
        "max": f.max,
        "min_normal": f.min_normal,
        "min_subnormal": f.min_subnormal,
        "specials": f.specials,
        "overflow": f.overflow_rule,
        "ties": f.ties,
    }


def _table(args) -> int:
    rows = [_describe(f) for f in NAMED.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = ["name", "E/M", "bias", "|M|", "max", "min normal", "min subnormal", "W", "specials", "overflow", "ties"]
    body = [
        [r["name"], f"{r['E']}/{r['M']}", str(r["bias"]), str(r["n_values"]), _num(r["max"]),
         _num(r["min_normal"]), _num(r["min_subnormal"]), str(r["W"]), r["specials"], r["overflow"], r["ties"]]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    for row in [head] + body:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print()
    print(_GENERIC_HELP)
    return 0


def _show(args) -> int:
    f = get_format(args.name)
    d = _describe(f)
    if args.json or args.show_json:
        if args.values:
            d["values"] = [float(v) for v in f.values()]
        print(json.dumps(d, indent=2))
        return 0
    for k, v in d.items():
        if k == "aliases":
            v = ", ".join(v) or "-"
        elif isinstance(v, float) or v is None:
            v = _num(v) + (f" ({v!r})" if "^" in _num(v) else "")
        print(f"{k:13} {v}")
    if args.values:
        print(f"values ({f.n_values}, sorted):")
        for v in f.values():
            print(repr(float(v)))
    return 0


HELP = "list the number formats (|M|, max, smallest values, specials)"
DESCRIPTION = "Table of the named formats; 'fpad formats show NAME' for one format."
EPILOG = _GENERIC_HELP
handler = _table


def arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    sub = p.add_subparsers(dest="formats_action", metavar="ACTION")
    show = sub.add_parser("show", help="all facts of one format", epilog=_GENERIC_HELP)
    show.add_argument("name", help="a named, alias or generic format (e.g. e4m3fn, bf16, e5m3fnuz)")
    show.add_argument("--values", action="store_true", help="also list every value of M")
    show.add_argument("--json", dest="show_json", action="store_true", help="print as JSON")
    show.set_defaults(func=_show)
