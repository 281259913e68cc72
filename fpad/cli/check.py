"""``fpad check``: classify one parameter point of a network exactly.

    fpad check NET.toml --format e4m3fn --at "L1.W[0,0]=0.5,L1.b[0]=-0.5" [--free ...] [--json]
    fpad check --example lemma3 [--format e4m3fn] [--at ...]
    fpad check --example lemma3.toml --format e4m3fn --at "L1.b[0]=0"

The network comes from a TOML file (docs/DESIGN.md schema), from the catalogue
:data:`fpad.examples.EXAMPLES` (with a default format and point), or from a file shipped in
``fpad/nets`` (``--example NAME.toml``). The point is lowered by
:mod:`fpad.network` and classified by :func:`fpad.oracle.classify`: touched kinks and ties, the
realisable one-sided pieces, the true derivative DP (if it exists), AD's output, and the verdict
(ok / inc / ndf, with Bouligand and Clarke membership on ndf).
"""

from __future__ import annotations

import json

from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.network import NetworkSpec, shipped_nets, split_names
from fpad.proxies import get_proxy


HELP = "classify one parameter point exactly (ndf / inc / ok, DP, AD, Clarke)"
DESCRIPTION = ("Classify one point of the free-parameter grid of a network exactly: is P differentiable "
               "there, what is its derivative, and is AD's output right?")


def network_arguments(p, format_help: str) -> None:
    """The network arguments ``fpad check`` and ``fpad count`` share: a file or ``--example``, and
    ``--format`` (see :func:`load_spec`)."""
    p.add_argument("network", nargs="?", help="network file (.toml); or use --example")
    p.add_argument("--example", metavar="NAME", help="a catalogued example or shipped net (see 'fpad examples')")
    p.add_argument("--format", "-f", metavar="F", help=format_help)


def arguments(p) -> None:
    network_arguments(p, "number format, e.g. e4m3fn, e5m2, bf16, e2m1 (catalogued examples have a default)")
    p.add_argument(
        "--at", metavar="ASSIGN",
        help='values of every free parameter, e.g. "L1.W[0,0]=0.5,L1.b[0]=-0.5" (each must lie in M); '
        "examples have a default point",
    )
    p.add_argument("--free", nargs="+", metavar="NAME", help='free parameters, replacing [params].free: "L1.W" "L1.b[0]" or "L1.W,L1.b"')
    p.add_argument("--proxy", metavar="SPEC", help="proxy convention replacing [ad].proxy: pytorch, tensorflow, left, right, mix:1/2, const:0, 'pytorch,relu6=left'")
    p.add_argument("--wrt-all", action="store_true", help="differentiate with respect to all parameters (the grid stays over the free ones)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")


def load_spec(network: str | None, example: str | None, format_spec: str | None):
    """(NetworkSpec, Format, default point or None) named by the command-line arguments.

    ``--example NAME`` looks in :data:`fpad.examples.EXAMPLES` (which supply a default format and
    point); ``--example NAME.toml`` names a file shipped in ``fpad/nets``.
    """
    if (network is None) == (example is None):
        raise FpadError("give either a network file or --example NAME (see 'fpad examples'), not both or neither")
    catalogue = _catalogue()
    ex = catalogue.get(example) if example is not None else None
    nets = {f"{name}.toml": path for name, path in shipped_nets().items()}
    if example is not None and ex is None and example not in nets:
        names = [*sorted(catalogue), *nets]
        raise FpadError(f"unknown example {example!r}; available: {', '.join(names) or 'none'} (see 'fpad examples')")
    if format_spec is None and ex is None:
        raise FpadError("give the number format with --format F, e.g. --format e4m3fn (see 'fpad formats')")
    fmt = get_format(format_spec if format_spec is not None else ex.default_format)
    if network is not None:
        return NetworkSpec.from_toml(network), fmt, None
    if ex is not None:
        built = ex.build(fmt)
        spec = built if isinstance(built, NetworkSpec) else NetworkSpec.from_dict(built, source=f"example {example}")
        return spec, fmt, ex.default_at(fmt)
    return NetworkSpec.from_toml(nets[example]), fmt, None


def _catalogue() -> dict:
    """:data:`fpad.examples.EXAMPLES`, or {} while that module is not installed."""
    try:
        from fpad.examples import EXAMPLES
    except ModuleNotFoundError as exc:
        if exc.name != "fpad.examples":
            raise
        return {}
    return EXAMPLES


def handler(args) -> int:
    from fpad.oracle import classify

    spec, fmt, default_at = load_spec(args.network, args.example, args.format)
    if args.proxy is not None:
        spec.proxy = get_proxy(args.proxy)
    free = [n for item in args.free for n in split_names(item)] if args.free else None
    problem = spec.build(fmt, free=free, wrt_all=args.wrt_all)
    at = args.at if args.at is not None else default_at
    if at is None:
        raise FpadError(
            f"give the point with --at, e.g. --at \"{'=0,'.join(problem.free_names)}=0\" "
            f"(values in {fmt.name}); free parameters: {', '.join(problem.free_names)}"
        )
    free_values = problem.parse_assignment(at)
    result = classify(problem, free_values, wrt_all=problem.wrt_all)
    fixed = [(n, v) for k, (n, v) in enumerate(zip(problem.param_names, problem.values)) if k not in set(problem.free)]
    if args.json:
        out = {
            "network": spec.source,
            "spec_hash": problem.spec_hash,
            "format": fmt.name,
            "M": fmt.n_values,
            "proxy": problem.proxy.spec,
            "free": problem.free_names,
            "fixed": {n: str(v) for n, v in fixed},
            "seed": problem.seed,
            "kinks_total": problem.kinks_total,
            "has_bias": {str(k): v for k, v in problem.has_bias.items()},
            "result": result.to_json(),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"network: {spec.source}" + (f"  ({spec.description})" if spec.description else ""))
    print(f"format: {fmt.name} (|M| = {fmt.n_values}); proxy: {problem.proxy.spec}; n (kinks) = {problem.kinks_total}")
    print(f"free: {', '.join(problem.free_names)}" + ("; derivative w.r.t. all parameters" if problem.wrt_all else ""))
    if fixed:
        shown = ", ".join(f"{n} = {v}" for n, v in fixed[:12])
        print(f"fixed: {shown}" + (f", ... ({len(fixed)} in all; seed {problem.seed})" if len(fixed) > 12 else ""))
    print(result.to_text())
    return 0
