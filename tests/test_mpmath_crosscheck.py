"""Independent cross-check of exact evaluation with mpmath at a precision proven sufficient.

Every value of a format F is an integer multiple of its quantum q with magnitude below
2^(emax+1), so a sum of N products of k such factors (times dyadic constants) is an integer
multiple of the product of the quanta below 2^(sum W + ceil(log2 N)) times that quantum
(anchors_formats.md section 6). With mp.prec at least that width plus a margin, mpmath performs no
rounding at all, so it must agree *exactly* with the Fraction evaluation of fpad.graph.Program.
"""

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from fpad.formats import get_format
from fpad.network import NetworkSpec


def _net(width, inputs):
    return {
        "inputs": inputs,
        "layers": [
            {"kind": "dense", "width": width, "bias": True, "activation": "relu"},
            {"kind": "dense", "width": 1, "bias": True, "activation": "identity"},
        ],
        "params": {"free": ["L1", "L2"], "seed": 3},
    }


@pytest.mark.parametrize("fmt_name", ["e4m3fn", "e5m2", "bf16"])
def test_mpmath_at_proven_precision_equals_fractions(fmt_name):
    fmt = get_format(fmt_name)
    inputs = [[1, "-0.5"], ["0.75", 3]]
    problem = NetworkSpec.from_dict(_net(3, inputs)).build(fmt)
    program = problem.program
    vals = fmt.values()
    rng = np.random.default_rng(7)
    # Width bound: two factors (weight x weight) times an input with <= 3 significant bits, summed
    # over <= 8 terms; generous margin on top.
    prec = 2 * fmt.W + 3 + 8 + 64
    with mpmath.workprec(prec):
        for _ in range(20):
            w = [Fraction(float(v)) for v in rng.choice(vals, size=problem.program.n_params)]
            exact_vals = program.evaluate(w)
            mp_vals = _mp_evaluate(program, w)
            for node, (e, m) in enumerate(zip(exact_vals, mp_vals)):
                num, den = e.numerator, e.denominator
                assert m * den == num, f"node {node}: mpmath {m} != {e}"


def _mp_evaluate(program, w):
    from fpad import graph

    out = []
    for n in program.nodes:
        if n.op == graph.PARAM:
            v = mpmath.mpf(w[n.param].numerator) / w[n.param].denominator
        elif n.op == graph.CONST:
            v = mpmath.mpf(n.const.numerator) / n.const.denominator
        elif n.op == graph.LIN:
            v = mpmath.mpf(n.const.numerator) / n.const.denominator
            for c, a in zip(n.coefs, n.args):
                v += (mpmath.mpf(c.numerator) / c.denominator) * out[a]
        elif n.op == graph.MUL:
            v = out[n.args[0]] * out[n.args[1]]
        elif n.op == graph.ACT:
            x = out[n.args[0]]
            i = sum(1 for k in n.act.kinks if x >= mpmath.mpf(k.numerator) / k.denominator)
            s, c = n.act.slopes[i], n.act.intercepts[i]
            v = (mpmath.mpf(s.numerator) / s.denominator) * x + mpmath.mpf(c.numerator) / c.denominator
        else:
            v = max(out[a] for a in n.args)
        out.append(v)
    return out
