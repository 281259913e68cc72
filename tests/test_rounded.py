"""Rounded arithmetic (issue 13): exact rounding, the rounded forward pass against an independent
rational-then-round reference, and the rounded counts against brute force on whole small grids."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import numpy as np
import pytest

from fpad.ad import forward as exact_forward
from fpad.cli import main
from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.graph import ACT, MAX
from fpad.network import NetworkSpec, shipped_nets
from fpad.rounded.arith import EXACT, Rounding, parse_arith, round_binary
from fpad.rounded.count import count_rounded
from fpad.rounded.forward import forward
from fpad.sweeps import one_hidden_spec


def test_round_binary_is_correctly_rounded():
    rng = random.Random(5)
    for _ in range(3000):
        q = Fraction(rng.randrange(-10**25, 10**25), rng.randrange(1, 10**25)) * Fraction(2) ** rng.randrange(-1100, 1000)
        r = round_binary(q, 53, -1022, 1023)
        want = float(q) if abs(q) < Fraction(2) ** 1024 else None  # int / int is correctly rounded
        if want is not None and abs(want) != float("inf"):
            assert r == Fraction(want)
        # binary32 from a float32-exact-plus-tail value: compare with the exact twin's neighbours
        s = round_binary(q, 24, -126, 127)
        if s not in (float("inf"), -float("inf")) and s != 0:
            f32 = np.float32(s)
            assert Fraction(float(f32)) == s  # representable in float32
            lo, hi = np.nextafter(f32, np.float32(-np.inf)), np.nextafter(f32, np.float32(np.inf))
            assert abs(q - s) <= min(abs(q - Fraction(float(lo))), abs(q - Fraction(float(hi))))
    # ties to even, subnormals, overflow
    assert round_binary(Fraction(1) + Fraction(1, 2**24), 24, -126, 127) == 1
    assert round_binary(Fraction(1) + Fraction(3, 2**24), 24, -126, 127) == 1 + Fraction(2, 2**23)
    assert round_binary(Fraction(1, 2**150), 24, -126, 127) == 0  # half the smallest subnormal: to even 0
    assert round_binary(Fraction(3, 2**151), 24, -126, 127) == Fraction(1, 2**149)
    assert round_binary(Fraction(2) ** 128, 24, -126, 127) == float("inf")


def test_parse_arith():
    assert parse_arith("exact") is EXACT
    assert parse_arith("rounded:bf16").spec == "rounded:mul=bf16,acc=bf16,out=bf16"
    assert parse_arith("rounded:e4m3fn/fp32").spec == "rounded:mul=exact,acc=fp32,out=e4m3fn"
    assert parse_arith("rounded:out=e2m1,mul=float64,acc=exact").spec == "rounded:mul=fp64,acc=exact,out=e2m1"
    for bad, what in (("rounded", "not an arithmetic"), ("rounded:e9m9", "format"),
                      ("rounded:mul=bf16,acc=bf16", "name each of mul, acc, out"), ("fp8", "not an arithmetic")):
        with pytest.raises(FpadError, match=what):
            parse_arith(bad)


def test_exact_pass_equals_the_programs_exact_values():
    """The layer walker in exact arithmetic gives the program's exact value at every kinked
    activation input and every max-pool window (conv, pooling, residual, minibatch nets)."""
    rng = random.Random(0)
    for name, path in shipped_nets().items():
        spec = NetworkSpec.from_toml(path)
        for fmt in ("e2m1", "e3m2"):
            p = spec.build(get_format(fmt))
            vals = p.fmt.values_fraction()
            for _ in range(20):
                w = p.full_point([rng.choice(vals) for _ in p.free])
                ex = exact_forward(p.program, w)
                res = forward(spec, w, EXACT)
                seen = 0
                for n in p.program.nodes:
                    if n.op == ACT and n.act.n_kinks:
                        assert res.pre[n.tag] == ex[n.args[0]], (name, n.tag)
                        seen += 1
                    elif n.op == MAX and len(n.args) > 1:
                        assert res.windows[n.tag] == [ex[a] for a in n.args], (name, n.tag)
                        seen += 1
                assert seen > 0


# -- an independent reference: one hidden layer, one input x, P = sum_i v_i relu(w_i x + b_i) ------------
def _reference(w, b, v, x, r1, r2, r3):
    """(nonfinite, touched_rounded, flips, ad_branch_wrong, ndf) at one point, from scratch."""
    xr = r3(Fraction(x))
    pre_e = [wi * x + bi for wi, bi in zip(w, b)]
    pre_r = []
    for wi, bi in zip(w, b):
        t = r3(r2(r2(r1(wi * xr)) + bi)) if all(isinstance(u, Fraction) for u in (xr,)) else None
        if not isinstance(t, Fraction):
            return True, False, False, False, None
        pre_r.append(t)
    ndf = any(p == 0 and vi != 0 for p, vi in zip(pre_e, v))
    touched = any(p == 0 for p in pre_r)
    flips = any((p > 0, p == 0) != (q > 0, q == 0) for p, q in zip(pre_r, pre_e))  # relu: piece, on kink
    wrong = False
    if not ndf:
        for p, q, vi in zip(pre_r, pre_e, v):
            d_ad, d_true = (1 if p > 0 else 0), (1 if q > 0 else 0)  # PyTorch: ReLU'(0) = 0
            if vi * d_ad * x != vi * d_true * x or vi * d_ad != vi * d_true:
                wrong = True
    return False, touched, flips, wrong, ndf


def _ref_rounding(name):
    r = Rounding(name)
    return lambda q: r(q) if isinstance(q, Fraction) else q


@pytest.mark.parametrize("grid,x,arith", [
    ("e2m1", "0.3", "rounded:e2m1"),                           # input 0.3 -> 0.5, products underflow to 0
    ("e2m1", "1.25", "rounded:mul=e2m1,acc=e3m2,out=e2m1"),
    ("e3m2", "3", "rounded:mul=exact,acc=exact,out=e3m1fn"),   # 28 x 3 overflows e3m1fn (max 16) to NaN
])
def test_rounded_counts_equal_brute_force(grid, x, arith):
    fmt = get_format(grid)
    free = ["L1.W", "L1.b", "L2.W"] if grid == "e2m1" else ["L1.W", "L1.b"]
    spec = NetworkSpec.from_dict(one_hidden_spec(1, inputs=((x,),), free=free, fixed={"L2.b": ["0"], "L2.W": [["1"]]}
                                                 if grid != "e2m1" else {"L2.b": ["0"]}))
    p = spec.build(fmt)
    a = parse_arith(arith)
    res = count_rounded(p, a, max_seconds=None)
    r1, r2, r3 = (_ref_rounding(f.name) for f in (a.mul, a.acc, a.out))
    vals = fmt.values_fraction()
    want = dict(nonfinite=0, touched_rounded=0, flips=0, ad_branch_wrong=0)
    ndf = 0
    for wv in vals:
        for bv in vals:
            for vv in (vals if grid == "e2m1" else [Fraction(1)]):
                nf, t, fl, wr, nd = _reference([wv], [bv], [vv], Fraction(x), r1, r2, r3)
                want["nonfinite"] += nf
                want["touched_rounded"] += t
                want["flips"] += fl
                want["ad_branch_wrong"] += wr
                ndf += bool(nd) if nd is not None else any(wv * Fraction(x) + bv == 0 and vv != 0 for _ in [0])
    got = {k: res.extra["rounded"][k] for k in want}
    assert got == want and res.ndf == ndf
    assert res.points == len(vals) ** len(p.free)
    if grid == "e3m2":
        assert want["nonfinite"] > 0  # the overflow case really overflows
    else:
        assert want["flips"] > 0 and want["ad_branch_wrong"] > 0  # and the others really flip


def test_cli_arith(capsys):
    assert main(["count", "--example", "lemma3", "--format", "e2m1", "--json"]) == 0
    base = json.loads(capsys.readouterr()[0])
    assert main(["count", "--example", "lemma3", "--format", "e2m1", "--json", "--arith", "exact"]) == 0
    same = json.loads(capsys.readouterr()[0])
    assert {k: same[k] for k in ("points", "touched", "ndf", "inc")} == {k: base[k] for k in ("points", "touched", "ndf", "inc")}
    assert same["arith"] == "exact" and "flips" not in same
    assert main(["count", "--example", "lemma3", "--format", "e2m1", "--json", "--arith", "rounded:e2m1"]) == 0
    r = json.loads(capsys.readouterr()[0])
    assert (r["points"], r["ndf"], r["inc"]) == (base["points"], base["ndf"], base["inc"])
    assert r["arith"] == "rounded:mul=e2m1,acc=e2m1,out=e2m1" and r["nonfinite"] == 0
    assert main(["count", "--example", "lemma3", "--format", "e2m1", "--arith", "rounded:q9"]) == 2
    assert capsys.readouterr()[1].count("\n") == 1


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e4m3fnuz", "e4m3", "e3m4", "e2m1", "e3m2", "bf16", "fp16",
                                  "e3m1fn", "e8m0"])
def test_integer_rounding_equals_the_formats_exact_twin(name):
    """Rounding uses an integer algorithm (fast) where the format follows the IEEE scheme; it
    must equal Format.round_exact on every midpoint, its neighbours and overflow, and at random."""
    import math

    f, r = get_format(name), Rounding(name)
    vals = f.values_fraction()
    if len(vals) > 1000:
        vals = vals[:300] + vals[len(vals) // 2 - 300:len(vals) // 2 + 300] + vals[-300:]
    rng = random.Random(11)
    qs = [f_ for v, w in zip(vals, vals[1:]) for m in [(v + w) / 2] for f_ in (m, m + Fraction(1, 10**40), m - Fraction(1, 10**40))]
    qs += [Fraction(rng.randrange(-10**12, 10**12), rng.randrange(1, 10**12)) * Fraction(2) ** rng.randrange(-140, 140)
           for _ in range(500)]
    top = Fraction(f.max)
    qs += [top * Fraction(1000001, 1000000), -top * 3 / 2, top + top / 2 ** (f.p + 1), top]
    for q in qs:
        a, b = r(q), f.round_exact(q)
        b = Fraction(b) if math.isfinite(b) else b
        assert a == b or (math.isnan(a) and math.isnan(b)), (name, q, a, b)


def test_review_findings_on_arith():
    """From the independent review: format modifiers in the shorthand, repeated keys, and
    non-Fraction inputs (ints and floats are exact rationals, rounded once)."""
    assert parse_arith("rounded:e2m1:ties=up").spec == "rounded:mul=e2m1:ties=up,acc=e2m1:ties=up,out=e2m1:ties=up"
    with pytest.raises(FpadError, match="name each of mul, acc, out once"):
        parse_arith("rounded:mul=bf16,acc=bf16,out=bf16,mul=e2m1")
    assert Rounding("e2m1")(7) == 6 and Rounding("e2m1")(0.3) == Fraction(1, 2)
    assert Rounding("exact")(0.1) == Fraction(0.1)  # the double 0.1, exactly
