"""Analyses of rounded arithmetic: ``fpad sweep rounded`` and ``fpad sweep audit``.

* :func:`rounded_sweep`: one-hidden-layer ReLU networks with bias (4 inputs, all parameters free)
  over e4m3fn and bf16, for each arithmetic in :data:`ARITHS`: the densities of
  ``touched_rounded``, ``flips`` and ``ad_branch_wrong`` against width, from sampled grid points
  (each decided exactly; 95% Clopper-Pearson intervals), beside the exact model's touched / ndf /
  inc of the same points and its bound n/|M| (inc = 0 in the exact model: bias, one sample).
* :func:`audit_sweep`: :func:`fpad.audit.core.run` with PyTorch (and JAX when installed) on small
  built-in networks over whole grids (PyTorch needed; skipped with a note without it).
"""

from __future__ import annotations

import time

from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.rounded.arith import parse_arith
from fpad.rounded.count import ROUNDED_KEYS, count_rounded
from fpad.sweeps import Analysis, _done, _say, one_hidden_spec

ARITHS = ("rounded:e4m3fn", "rounded:bf16", "rounded:e4m3fn/fp32")
# Fixed data, not dyadic and of mixed signs, as a real minibatch row would be.
INPUTS = (("0.3", "-1.7", "2.2", "0.9"),)
# Parameters drawn from the format's values in [-1, 1], a trained network's scale: uniform draws
# from all of M (up to 448 in e4m3fn, 3e38 in bf16) overflow the rounded pass at most points.
VALUE_RANGE = 1


def rounded_network(width: int) -> dict:
    return one_hidden_spec(width, inputs=INPUTS)


def rounded_sweep(formats=("e4m3fn", "bf16"), widths=None, ariths=ARITHS, samples: int | None = None,
                  seed: int = 0, quick: bool = False, progress=None) -> Analysis:
    t0 = time.perf_counter()
    widths = widths or ((1, 16) if quick else (1, 16, 256))
    rows = []
    for f in formats:
        fmt = get_format(f)
        for width in widths:
            p = NetworkSpec.from_dict(rounded_network(width)).build(fmt)
            n = samples or (300 if quick else (100_000 if width <= 16 else 5000))
            for a in ariths:
                _say(progress, f"rounded: width {width} over {f}, {a}, {n} points")
                r = count_rounded(p, parse_arith(a), sample=n, seed=seed, max_seconds=None, value_range=VALUE_RANGE)
                rd = r.extra["rounded"]
                row = {"format": f, "width": width, "arith": a, "points": n, "touched": r.touched, "ndf": r.ndf,
                       "inc": r.inc, **{k: rd[k] for k in ROUNDED_KEYS},
                       "M_range": rd["values"], "bound_f": r.kinks_total / int(rd["values"].split("(")[1].split()[0]),
                       "touched_f": r.touched / n}
                for k in ROUNDED_KEYS[:3]:
                    row[f"{k}_f"] = rd[k] / max(n - rd["nonfinite"], 1)
                    row[f"{k}_ci"] = rd["ci"][k]
                rows.append(row)
    a = Analysis("rounded", "rounded arithmetic: kinks touched, branch flips and AD on wrong branches (sampled)",
                 ["format", "width", "arith", "points", "touched", "ndf", "inc", *ROUNDED_KEYS], rows)
    a.notes += [
        f"one hidden ReLU layer with bias, inputs {INPUTS[0]} (rounded to the output format first), every "
        f"parameter free and drawn uniformly from the format's values in [-{VALUE_RANGE}, {VALUE_RANGE}]; "
        "each point decided exactly in both arithmetics "
        "(a labelled estimate: 95% Clopper-Pearson intervals in results/rounded.json).",
        "exact model: inc = 0 at every point (bias, one sample); touched/ndf are rare (bound n/|M|). "
        "Under rounding, touched_rounded and ad_branch_wrong are what hardware's forward pass would "
        "make AD do.",
    ]
    return _done(a, t0, progress)


AUDIT_NETWORKS = {
    "relu, x = (1, -0.5), (w, b) free": lambda: one_hidden_spec(
        1, act="relu", inputs=(("1",), ("-0.5",)), free=["L1.W", "L1.b"], fixed={"L2.W": [["1"]], "L2.b": ["0"]}),
    "relu, 4 inputs, 2 weights free": lambda: one_hidden_spec(
        1, act="relu", inputs=INPUTS, free=["L1.W[0,0]", "L1.W[0,1]"],
        fixed={"L1.W": [["0", "0", "2", "1.5"]], "L1.b": ["0.5"], "L2.W": [["1"]], "L2.b": ["0"]}),
    "relu6, x = (3, -3), (b, v) free": lambda: one_hidden_spec(
        1, act="relu6", inputs=(("3",), ("-3",)), free=["L1.b", "L2.W"], fixed={"L1.W": [["1"]], "L2.b": ["0"]}),
    "hardsigmoid, x = (3, -3), (b, v) free": lambda: one_hidden_spec(
        1, act="hardsigmoid", inputs=(("3",), ("-3",)), free=["L1.b", "L2.W"], fixed={"L1.W": [["1"]], "L2.b": ["0"]}),
}


def audit_sweep(formats=("e4m3fn",), quick: bool = False, progress=None) -> Analysis:
    """The audit of every framework installed (PyTorch; JAX when present) on :data:`AUDIT_NETWORKS`."""
    import importlib.util

    from fpad.audit import core, torch_audit

    torch_audit._torch()  # without PyTorch: one line naming the install, before any work
    t0 = time.perf_counter()
    formats = ("e2m1",) if quick and formats == ("e4m3fn",) else formats
    adapters = [torch_audit]
    if importlib.util.find_spec("jax") is not None:
        from fpad.audit import jax_audit

        adapters.append(jax_audit)
    rows, kinks = [], {}
    for f in formats:
        for name, build in AUDIT_NETWORKS.items():
            problem = NetworkSpec.from_dict(build()).build(get_format(f))
            for adapter in adapters:
                _say(progress, f"audit: {name} over {f}, {adapter.NAME}")
                res = adapter.audit(problem)
                rows += [{"network": name, "format": f, **r} for r in res["rows"]]
                kinks.update(res["kink_derivatives"])
    a = Analysis("audit", "Framework autograd (PyTorch, JAX) at every grid point, classified exactly",
                 ["network", "format", "framework", "dtype", "ops", "points", *core.CLASSES], rows)
    a.data = {"kink_derivatives": kinks}
    a.notes += [
        "equal_ad: = fpad's exact AD with PyTorch's proxies; equal_dp: = the true derivative only; rounding: "
        "the exact forward's branches, no kink touched; kink_rule: same branches at a touched kink (the op's "
        "own derivative there); wrong_branch: some activation input computed on another piece.",
        "kink derivatives measured per op and dtype: " + "; ".join(f"{k}: {v}" for k, v in kinks.items() if v),
        "frameworks: " + ", ".join(a.NAME for a in adapters) + ("" if len(adapters) > 1 else
                                                                 ' (JAX not installed: pip install "fpad[jax]")'),
    ]
    return _done(a, t0, progress)
