"""fpad.structured equals brute force (the oracle on every point) and the closed forms."""

import collections
from fractions import Fraction

import pytest

from fpad.enumerate import count_exhaustive, count_exhaustive_reference
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.structured import structured_count


def one_hidden(width, inputs, act="relu", bias=True, proxy="pytorch", free=None, reduce="sum", weights=None,
               fixed=None):
    out = {"reduce": reduce}
    if weights is not None:
        out["weights"] = weights
    d = {
        "inputs": inputs,
        "layers": [
            {"kind": "dense", "width": width, "bias": bias, "activation": act},
            {"kind": "dense", "width": 1, "bias": True, "activation": "identity"},
        ],
        "output": out,
        "ad": {"proxy": proxy},
        "params": {"free": free or (["L1.W", "L1.b", "L2.W", "L2.b"] if bias else ["L1.W", "L2.W", "L2.b"])},
    }
    if fixed:
        d["params"]["fixed"] = fixed
    return NetworkSpec.from_dict(d)


def counts(r):
    return (r.points, r.touched, r.ndf, r.inc, r.clarke_ok)


CASES = [
    # (format, network kwargs): every point of the grid goes through the oracle
    ("e2m0f", dict(width=2, inputs=[[1]], free=["L1.W", "L1.b"])),
    ("e2m0f", dict(width=2, inputs=[[1]], bias=False, free=["L1.W", "L2.W"])),
    ("e2m0f", dict(width=1, inputs=[[1], [-2]], act="relu6")),
    ("e2m0f", dict(width=1, inputs=[[0.5], [-1]], act="abs")),
    ("e2m0f", dict(width=1, inputs=[[1], [2]], act="leaky_relu:1/4", proxy="mix:1/2")),
    ("e2m0f", dict(width=1, inputs=[[1], [2]], proxy="const:7")),
    ("e2m0f", dict(width=1, inputs=[[1], [-1], [2]], act="hardtanh", free=["L1.W", "L1.b", "L2.W"])),
    # ICLR 2024 Lemma 3 mechanism: bias network, B = 2, HardSigmoid, PyTorch proxy -> inc != 0
    ("e2m1", dict(width=1, inputs=[[3], [-3]], act="hardsigmoid", free=["L1.W", "L1.b", "L2.W"])),
    ("e2m1", dict(width=1, inputs=[[1], [-1]], act="relu6", bias=False, free=["L1.W", "L2.W"])),
    ("e2m1", dict(width=2, inputs=[[1], [0.5]], act="relu", bias=False, proxy="right", free=["L1.W", "L2.W[0,0]"])),
]


@pytest.mark.parametrize("fmt,kw", CASES)
def test_structured_equals_oracle_on_every_point(fmt, kw):
    problem = one_hidden(**kw).build(get_format(fmt))
    got = structured_count(problem)
    assert got is not None and got.method == "structured"
    assert counts(got) == counts(count_exhaustive_reference(problem))


def test_lemma3_inc_through_the_oracle_path():
    # weight fixed to 1, (b, v) free: at b = 0 both samples sit on kinks (3 and -3) whose forms are
    # parallel, P is differentiable with dP/db = v/3 but AD returns 0: inc for every v != 0
    problem = one_hidden(1, [[3], [-3]], act="hardsigmoid", free=["L1.b", "L2.W"],
                         fixed={"L1.W": [[1]], "L2.b": [0]}).build(get_format("e2m1"))
    got = structured_count(problem)
    assert counts(got) == counts(count_exhaustive_reference(problem))
    assert got.inc == 14  # |M| - 1


def test_structured_equals_compiled_kernel_e3m2():
    # the compiled kernel as the brute-force reference on a larger grid (63^3 points)
    problem = one_hidden(2, [[1], [-0.5]], act="relu6", reduce="weighted", weights=[1],
                         free=["L1.W[0,0]", "L1.b[0]", "L1.b[1]"]).build(get_format("e3m2"))
    got = structured_count(problem)
    assert counts(got) == counts(count_exhaustive(problem))


def test_output_weight_zero_coefficient():
    # L2.W fixed to 0 for unit 1: its kinks are touched, never ndf (sigma = 0)
    problem = one_hidden(2, [[1]], free=["L1.W", "L1.b"], fixed={"L2.W": [[1, 0]], "L2.b": [0]})
    problem = problem.build(get_format("e2m0f"))
    assert counts(structured_count(problem)) == counts(count_exhaustive_reference(problem))


def test_factor_out_and_closed_forms():
    fmt = get_format("e4m3fn")
    M = fmt.n_values
    assert M == 253
    # width 8, all 25 parameters free: 8 identical blocks (u, b, v) and the output bias
    problem = one_hidden(8, [[1]]).build(fmt)
    r = structured_count(problem)
    assert len(problem.free) == 25 and r.points == M**25
    # per block: touched iff b = -u (always in the symmetric M), ndf iff additionally v != 0
    assert r.extra["factored_out"] == ["L2.b[0]"]
    assert r.extra["blocks"][0]["times"] == 8
    assert r.extra["blocks"][0]["ndf"] == M * (M - 1)  # density (|M|-1)/|M|^2 (paper 4.1c)
    assert r.ndf == M**25 - M * (M**3 - M * (M - 1)) ** 8
    assert r.touched == M**25 - M * (M**3 - M * M) ** 8
    assert r.inc == 0 and r.clarke_ok == r.ndf  # PyTorch's ReLU'(0) = 0 = D^- is in the Clarke set
    assert r.elapsed_s < 10


def test_sum_of_relu_biases_closed_form():
    fmt = get_format("e5m2")
    M = fmt.n_values
    n = 7
    d = {
        "inputs": [[0]],
        "layers": [{"kind": "dense", "width": n, "weights": [[0]] * n, "bias": True, "activation": "relu"}],
        "output": {"reduce": "sum"},
        "params": {"free": ["L1.b"]},
    }
    r = structured_count(NetworkSpec.from_dict(d).build(fmt))
    assert r.density == 1 - (1 - Fraction(1, M)) ** n
    assert r.inc == 0


def _chain(layers, free, **extra) -> dict:
    """Input 1, one-neuron dense layers given as (bias, activation), summed output."""
    return {
        "inputs": [[1]],
        "layers": [{"kind": "dense", "width": 1, "bias": b, "activation": a} for b, a in layers],
        "output": {"reduce": "sum"},
        "params": {"free": free},
        **extra,
    }


def test_no_reduction_returns_none():
    d = _chain([(True, "relu"), (True, "relu")], ["L1.W", "L1.b", "L2.W"])
    # the second pre-activation a * relu(u + b1) is not affine in the free parameters
    assert structured_count(NetworkSpec.from_dict(d).build(get_format("e2m1"))) is None


def test_factor_out_with_a_brute_force_block():
    # ReLU(a ReLU(u)) + c: the block (u, a) is neither scaled nor bias-solvable (no bias), so it is
    # brute-forced by the compiled kernel; c only contributes the factor |M|
    d = _chain([(False, "relu"), (False, "relu"), (True, "identity")], ["L1.W", "L2.W", "L3.b"],
               ad={"proxy": "right"})
    d["params"]["fixed"] = {"L3.W": [[1]]}
    problem = NetworkSpec.from_dict(d).build(get_format("e2m1"))
    got = structured_count(problem)
    assert got.extra["factored_out"] == ["L3.b[0]"] and got.extra["blocks"][0]["method"] == "kernel"
    assert counts(got) == counts(count_exhaustive_reference(problem))
    assert got.inc == 7 * 15  # u = 0, a < 0: P = 0 nearby, AD = a (proxy 1); times the 15 values of c


@pytest.mark.parametrize("seed", range(16))
def test_random_one_hidden_layer_networks_equal_oracle(seed):
    import random

    rng = random.Random(seed)
    width, batch = rng.randint(1, 2), rng.randint(1, 3)
    act = rng.choice(["relu", "leaky_relu:1/4", "relu6", "hardtanh", "hardsigmoid", "abs"])
    bias = rng.random() < 0.6
    inputs = [[rng.choice(["1", "-1", "1/2", "3", "-3", "2"])] for _ in range(batch)]
    spec = one_hidden(width, inputs, act=act, bias=bias, proxy=rng.choice(["pytorch", "right", "mix:1/2", "const:3"]))
    names = spec.param_names
    spec = one_hidden(width, inputs, act=act, bias=bias, proxy=spec.to_dict()["ad"]["proxy"],
                      free=rng.sample(names, min(len(names), 3)))
    d = spec.to_dict()
    d["params"]["seed"] = seed  # the fixed parameters are drawn from M with this seed
    problem = NetworkSpec.from_dict(d).build(get_format("e2m1"))
    got = structured_count(problem)
    if got is not None:
        assert counts(got) == counts(count_exhaustive_reference(problem)), (d, got.extra)


BIAS_SOLVE_CASES = [
    # (format, network kwargs): blocks that Lemma B solves, with float-unfriendly constants too
    ("e4m3fn", dict(width=2, inputs=[[1], ["-1/2"], ["3/4"]])),
    ("e4m3fn", dict(width=1, inputs=[["3/10"], ["-17/10"]], act="relu6")),
    ("e4m3fn", dict(width=1, inputs=[[3], [-3]], act="hardsigmoid", free=["L1.W", "L1.b", "L2.W"])),
    ("e5m2", dict(width=1, inputs=[["1/3"], [6]], act="hardtanh")),
    ("bf16", dict(width=1, inputs=[[1], ["-1/2"]])),
    # 3 - w x inexact in float64 for tiny w: rows decided without a candidate (few-bit beta)
    ("bf16", dict(width=1, inputs=[[3], ["-3/4"]], act="hardsigmoid")),
]


@pytest.mark.parametrize("fmt,kw", BIAS_SOLVE_CASES)
def test_bias_solve_float_filter_equals_rational_loop(fmt, kw, monkeypatch):
    """Lemma B's float64 filter (confirmed exactly) finds the same hits as the rational loop,
    point by point, and so the same counts."""
    from fpad import structured

    problem = one_hidden(**kw).build(get_format(fmt))
    seen = []
    fast_hits = structured._Counter._bias_hits

    def split(stream, leaf_data):
        """(single-hit rest points counted per (sigma, hull_ok, leaf), the other points in order):
        the fast path counts its exact single hits in bulk, the slow twin lists every point."""
        single, rows = collections.Counter(), []
        for p, h in stream:
            if p is None:
                for (li, k), n in h.items():
                    single[(leaf_data[li][5], leaf_data[li][6][k], li)] += n
            elif all(len(hs) == 1 for hs in h.values()):
                single.update(hs[0] for hs in h.values())
            else:
                rows.append((p, list(h.items())))
        return single, rows

    def both(self, leaf_data, n_rest):
        fast = list(fast_hits(self, leaf_data, n_rest))
        slow = list(self._bias_hits_reference(leaf_data, n_rest))
        assert split(fast, leaf_data) == split(slow, leaf_data)
        seen.append(sum(len(h) for _, h in slow))
        return iter(fast)

    monkeypatch.setattr(structured._Counter, "_bias_hits", both)
    assert structured_count(problem) is not None
    assert seen and sum(seen) > 0  # Lemma B ran, and the filter found hits


@pytest.mark.parametrize("name", ["allgrid", "allgrid-const1", "allgrid-mix"])
def test_bias_solve_decides_multi_touch_points_on_the_touched_nodes(name):
    # the all-grid counterexample over e3m2, P(x) = x: at every grid point two of its 2|M| = 126
    # ReLUs touch, the other 124 do not; the oracle on those two alone must give the whole
    # program's verdicts (differentiable everywhere, AD wrong everywhere unless ReLU'(0) = 1/2)
    from fpad.examples import EXAMPLES
    from fpad.sweeps import _build

    fmt = get_format("e3m2")
    problem = _build(EXAMPLES[name].build(fmt), fmt)
    got = structured_count(problem)
    assert got.extra["blocks"][0]["method"] == "bias-solve"
    assert counts(got) == counts(count_exhaustive_reference(problem))
    assert (got.touched, got.ndf) == (fmt.n_values, 0)
    assert got.inc == (0 if name == "allgrid-mix" else fmt.n_values)


@pytest.mark.parametrize("fmt", ["e2m1", "e4m3fn", "bf16"])
@pytest.mark.parametrize("extra_bit", [0, 1])
def test_bias_solve_few_bit_beta_rule_at_its_bound(fmt, extra_bit):
    """Lemma B's rule "d exact but not a float64, beta with at most 53 - p bits: no hit", at the
    bound: b in M with p bits, beta = 2^(53 - p + extra_bit) - 1, d = b * beta split into floats
    kappa - f. With 53 - p bits d is a float (a hit through the exact path); with one bit more d
    is not a float64, the rule must not apply, and the hit is still found."""
    from fpad import structured

    f_ = get_format(fmt)
    p = f_.p
    counter = structured._Counter(f_, None, None, None)
    b = max(v for v in counter.Mvals if v and structured._form(v)[0] == p)
    beta = Fraction(2 ** (53 - p + extra_bit) - 1)
    d = b * beta
    unit = Fraction(abs(d.numerator) & -abs(d.numerator), d.denominator)
    f0 = -unit  # kappa = d + f0 and f0 are floats; kappa - f0 = d
    leaf = [(0, f0, [], beta, (d + f0,), Fraction(1), [True])]
    assert (Fraction(float(d)) == d) == (extra_bit == 0)
    fast = list(counter._bias_hits(leaf, 1))
    slow = list(counter._bias_hits_reference(leaf, 1))
    assert sum(len(h) for _, h in slow) == len(counter.Mvals)  # b hit at every rest point

    def hits(stream):
        out = collections.Counter()
        for pt, h in stream:
            if pt is None:
                out.update(h)
            else:
                out.update({(0, 0): len(h)})
        return out

    assert hits(fast) == hits(slow) == collections.Counter({(0, 0): len(counter.Mvals)})
