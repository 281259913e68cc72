"""The compiled grid kernels against their slow exact twin (fpad.oracle on every point).

Every test compares real values: per-point verdict codes, counts, per-neuron counts, witnesses.
Grids: e2m1 (|M| = 15), e3m2 (63), e4m3fn (253, sub-ranges), bf16 (one block).
"""

import pickle

import numba
import numpy as np
import pytest

from fpad import enumerate as E
from fpad.errors import FpadError
from fpad.examples import EXAMPLES
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify

FP4 = get_format("e2m1")
FP6 = get_format("e3m2")
FP8 = get_format("e4m3fn")
BF16 = get_format("bf16")


def build(fmt, inputs, layers, free, proxy="pytorch", fixed=None, seed=0, **extra):
    d = {"inputs": inputs, "layers": layers, "ad": {"proxy": proxy},
         "params": {"free": free, "seed": seed, "fixed": fixed or {}}}
    d.update(extra)
    return NetworkSpec.from_dict(d).build(fmt)


def dense(width, activation="identity", bias=True, **kw):
    return {"kind": "dense", "width": width, "activation": activation, "bias": bias, **kw}


def oracle_codes(pb, compiled, indices):
    return np.array([E._oracle_code(classify(pb, compiled.free_values(int(i)))) for i in indices], np.int8)


def check_full_grid(pb):
    """Kernel == oracle on every point: codes, counts, per-neuron counts, witnesses."""
    ref_codes = []
    ref = E.count_exhaustive_reference(pb, codes=ref_codes)
    compiled = E.compile_problem(pb)
    got = E.count_exhaustive(pb, compiled=compiled)
    codes = E.point_codes(compiled, 0, compiled.n_points)
    assert codes.tolist() == ref_codes
    for f in ("points", "touched", "ndf", "inc", "clarke_ok", "per_neuron", "witnesses"):
        assert getattr(got, f) == getattr(ref, f), f
    return got


def check_range(pb, start, stop):
    compiled = E.compile_problem(pb)
    codes = E.point_codes(compiled, start, stop)
    assert codes.tolist() == oracle_codes(pb, compiled, range(start, stop)).tolist()
    c = E.count_range(compiled, start, stop)
    assert (c.points, c.touched, c.ndf, c.inc) == (
        stop - start, int((codes != 0).sum()), int(np.isin(codes, (2, 3)).sum()), int((codes == 5).sum()))
    assert c.clarke_ok == int((codes == 2).sum())
    return compiled, codes


# -- every point of small grids -------------------------------------------------------------------
NETS = {
    # issue-style: 2 relu units with bias, minibatch 2, first-layer weights + one bias free
    "relu-bias": lambda: build(FP4, [[1], [3]], [dense(2, "relu"), dense(1)],
                               ["L1.W[0,0]", "L1.W[1,0]", "L1.b[0]"], fixed={"L2.W": [[1, "-1/2"]]}),
    # no bias parameters, an output weight free (a MUL node between two varying values)
    "relu-nobias-mul": lambda: build(FP4, [[1], [-3]], [dense(2, "relu", bias=False), dense(1, bias=False)],
                                     ["L1.W[0,0]", "L1.W[1,0]", "L2.W[0,0]"], fixed={"L2.W": [[1, -2]]}),
    # the inner parameter in the first of two hidden layers: the general per-point path
    "two-hidden": lambda: build(FP4, [["0.5"]], [dense(2, "relu"), dense(2, "relu"), dense(1)],
                                ["L1.W[0,0]", "L1.b[0]", "L1.b[1]"],
                                fixed={"L1.W": [[1], [-1]], "L2.W": [[1, -1], ["0.5", 2]], "L2.b": [-1, 1]}),
    # the same with a third hidden unit fixed on its kink (0 x + 0): a constant touched node, so
    # every point is touched (base_touched) while the per-point path runs
    "two-hidden-const-kink": lambda: build(FP4, [["0.5"]], [dense(3, "relu"), dense(2, "relu"), dense(1)],
                                           ["L1.W[0,0]", "L1.b[0]", "L1.b[1]"],
                                           fixed={"L1.W": [[1], [-1], [0]], "L1.b": [0, 0, 0],
                                                  "L2.W": [[1, -1, 1], ["0.5", 2, -1]], "L2.b": [-1, 1]}),
    # a non-dyadic input on the per-point path: error-bounded LIN nodes, inner kink tests that the
    # filter decides or defers
    "two-hidden-thirds": lambda: build(FP4, [["1/3"]], [dense(2, "relu"), dense(2, "relu"), dense(1)],
                                       ["L1.W[0,0]", "L1.b[0]", "L1.b[1]"],
                                       fixed={"L1.W": [[3], [-3]], "L2.W": [[1, -1], ["0.5", 2]], "L2.b": [-1, 1]}),
    # the same with the inner parameter a weight times 1/3 (an inexact inner coefficient) and
    # error-bounded activations on the per-point path
    "two-hidden-thirds-w": lambda: build(FP4, [["1/3"], [3]], [dense(2, "relu"), dense(2, "relu"), dense(1)],
                                         ["L1.b[0]", "L1.b[1]", "L1.W[0,0]"],
                                         fixed={"L1.W": [[3], [-1]], "L2.W": [[1, -1], ["0.5", 2]],
                                                "L2.b": [-1, 1]}),
    # two-kink activations on the per-point path (inner kink tests over two kinks each)
    "two-hidden-relu6-hardtanh": lambda: build(FP4, [["0.5"], [-1]], [dense(2, "relu6"), dense(2, "hardtanh"),
                                                                      dense(1)],
                                               ["L1.W[0,0]", "L1.b[0]", "L1.b[1]"],
                                               fixed={"L1.W": [[1], [-1]], "L2.W": [[1, -1], ["0.5", 2]],
                                                      "L2.b": [-1, 1]}),
    # no biases, a second-layer weight free: a MUL of two varying values on the per-point path
    "deep-mul": lambda: build(FP4, [[1], [-2]], [dense(2, "relu", bias=False), dense(2, "relu", bias=False),
                                                 dense(1, bias=False)],
                              ["L2.W[0,0]", "L1.W[1,0]", "L1.W[0,0]"],
                              fixed={"L2.W": [[1, -1], ["0.5", 2]], "L3.W": [[1, -1]]}),
    # the same with that weight inner: the MUL's varying per-point argument comes first
    "deep-mul-w": lambda: build(FP4, [[1], [-2]], [dense(2, "relu", bias=False), dense(2, "relu", bias=False),
                                                   dense(1, bias=False)],
                                ["L1.W[1,0]", "L1.W[0,0]", "L2.W[0,0]"],
                                fixed={"L2.W": [[1, -1], ["0.5", 2]], "L3.W": [[1, -1]]}),
    # ties of a max pool (Lemma 7 shape, relu before the pool), three free parameters
    "maxpool": lambda: build(FP4, [[1, 0, -1, 2]], [
        {"kind": "conv1d", "channels": 1, "kernel": 2, "bias": True, "activation": "relu"},
        {"kind": "maxpool1d", "window": 3}], ["L1.W", "L1.b"], input_shape=[1, 4],
        output={"reduce": "weighted", "weights": [1]}),
    "lemma7": lambda: EXAMPLES["lemma7"].problem(FP4),
    # Lemma 3's network with its weight free too: HS(3w + b) + HS(-3w + b), times an output weight
    # (w = 1, b = 0 touches both kinks; with w free the two linear forms are independent: ndf)
    # non-dyadic kinks and inputs: every value carries an error bound, touches need the oracle
    "hardtanh-thirds": lambda: build(FP4, [["1/3"], [-2]], [dense(1, "hardtanh:-1/3:1/3"), dense(1)],
                                     ["L1.W", "L1.b", "L2.W"]),
    "hardsigmoid-shared": lambda: build(FP4, [[3], [-3]], [dense(1, "hardsigmoid", bias="shared"), dense(1)],
                                            ["L1.W", "L1.b", "L2.W"]),
}
ACTS = [("leaky_relu:1/64", "pytorch"), ("relu6", "left"), ("hardtanh", "right"), ("hardsigmoid", "mix:1/2"),
        ("abs", "pytorch"), ("relu6", "pytorch"), ("relu", "const:2")]
for act, proxy in ACTS:
    NETS[f"{act}-{proxy}"] = (lambda act=act, proxy=proxy: build(
        FP4, [[1], [-2]], [dense(1, act), dense(1)], ["L1.W", "L1.b", "L2.W"], proxy=proxy))


@pytest.mark.parametrize("name", sorted(NETS))
def test_kernel_equals_oracle_on_every_point(name):
    got = check_full_grid(NETS[name]())
    assert got.points in (15**3, 15**2) and got.touched > 0


@pytest.mark.parametrize("name", ["two-hidden", "two-hidden-const-kink", "two-hidden-relu6-hardtanh", "deep-mul",
                                  "deep-mul-w", "two-hidden-thirds", "two-hidden-thirds-w", "maxpool"])
def test_the_per_point_path_over_rows_equals_the_range_path(name):
    # the per-point nets through classify_points (rows, not flat ranges): counts equal the codes
    # of the range path at the same points, repeats included
    compiled = E.compile_problem(NETS[name]())
    assert not compiled.S.fast[0]
    codes = np.array(E.point_codes(compiled, 0, compiled.n_points))
    idx = np.random.default_rng(3).integers(0, compiled.n_points, 700)
    got = E.classify_points(compiled, compiled.digits_array(idx))
    c = codes[idx]
    assert (got.points, got.touched, got.ndf, got.inc, got.clarke_ok) == (
        700, int((c != 0).sum()), int(np.isin(c, (2, 3)).sum()), int((c == 5).sum()), int((c == 2).sum()))


def test_the_nets_cover_every_verdict():
    seen = set()
    for f in NETS.values():
        compiled = E.compile_problem(f())
        seen |= set(E.point_codes(compiled, 0, compiled.n_points).tolist())
    assert seen == {0, 1, 2, 3, 5}  # untouched, touched-ok, ndf (Clarke / not), inc


def test_counts_of_the_relu_bias_net_by_hand():
    # units i: w_i x + b_i with x in {1, 3}; only L1.b[0] is free, so unit 1's bias is fixed
    pb = NETS["relu-bias"]()
    got = E.count_exhaustive(pb)
    assert got.points == 3375 and got.inc == 0 and got.ndf == got.touched == got.clarke_ok
    assert got.extra["fallback"] < got.touched


def test_minibatch_three_relu6_on_e3m2():
    pb = build(FP6, [[1], [2], [-1]], [dense(1, "relu6"), dense(1)], ["L1.W", "L1.b"], proxy="pytorch")
    check_full_grid(pb)


def test_e4m3fn_subranges_with_multi_touch_blocks():
    # B1 shape (one neuron with bias, minibatch 4), free (w, b): block w = 0 has b = 0 touching
    # all four samples (K = 4, oracle path) and w = +-smallest blocks
    pb = build(FP8, [[1], ["-0.5"], ["0.75"], [3]], [dense(1, "relu"), dense(1)], ["L1.W", "L1.b"])
    m = FP8.n_values
    zero = int(np.searchsorted(FP8.values(), 0.0))
    for blk in (zero, zero + 1, 7):
        compiled, codes = check_range(pb, blk * m, (blk + 1) * m)
    compiled, codes = check_range(pb, zero * m, (zero + 1) * m)
    assert codes[zero] in (1, 2, 3)  # w = b = 0: all samples on the kink


def test_e3m2_k3_subrange():
    pb = build(FP6, [[1], [-2]], [dense(1, "relu"), dense(1)], ["L1.W", "L1.b", "L2.W"])
    m = FP6.n_values
    zero = int(np.searchsorted(FP6.values(), 0.0))
    start = (zero * m + zero) * m  # w = b = 0, every v
    check_range(pb, start - 40, start + m + 40)


# -- examples with known grid counts ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, ex in EXAMPLES.items() if ex.grid is not None))
def test_examples_grid_counts(name):
    ex = EXAMPLES[name]
    fmt = FP6 if name.startswith("allgrid") else FP4
    pb = ex.problem(fmt)
    got = E.count_exhaustive(pb)
    want = ex.grid(fmt)
    for key, value in want.items():
        assert getattr(got, key) == value, key


def test_allgrid_counterexample_inc_everywhere_on_e3m2():
    pb = EXAMPLES["allgrid"].problem(FP6)
    got = check_full_grid(pb)
    assert got.points == got.inc == got.touched == FP6.n_values == 63 and got.ndf == 0


# -- independence of chunking, order and threads -------------------------------------------------------
def _b1(fmt):
    return build(fmt, [[1], ["-0.5"], ["0.75"], [3]], [dense(1, "relu"), dense(1)],
                 ["L1.W", "L1.b", "L2.W", "L2.b"])


def test_a_group_deferring_more_than_its_buffer_is_rerun_with_the_same_result(monkeypatch):
    # the w = b = 0 blocks of B1 on e3m2 defer 63^2 points; with a buffer of 7 per group every
    # group holding them overflows and is rerun alone (ranges, recorded codes and point rows)
    compiled = E.compile_problem(_b1(FP6))
    m = FP6.n_values
    zero = int(np.searchsorted(FP6.values(), 0.0))
    a, b = (zero * m + zero - 1) * m * m, (zero * m + zero + 2) * m * m
    rows = compiled.digits_array(np.arange(a, b, 97))
    want = (E.count_range(compiled, a, b).to_json(), E.point_codes(compiled, a, b).tolist(),
            E.classify_points(compiled, rows).to_json())
    assert want[0]["fallback"] == m * m
    monkeypatch.setattr(E, "_DEFER_CAP", 7)
    got = (E.count_range(compiled, a, b).to_json(), E.point_codes(compiled, a, b).tolist(),
           E.classify_points(compiled, rows).to_json())
    assert got == want


def test_chunking_indices_and_threads_do_not_change_counts():
    compiled = E.compile_problem(_b1(FP6))  # 63^4 = 15.8M points, 63^2 at w = b = 0 deferred
    n = compiled.n_points
    whole = E.count_range(compiled, 0, n).to_json()
    cuts = [0, 1, 62, 4000, n // 3, n // 3 + 63 * 63 * 63 + 5, n - 1, n]
    parts = None
    for a, b in zip(cuts, cuts[1:]):
        c = E.count_range(compiled, a, b)
        parts = c if parts is None else parts.merge(c)
    assert parts.to_json() == whole
    assert whole["points"] == n and whole["fallback"] == 63 * 63 and whole["inc"] == 0
    # the 63^2 points with w = b = 0 (all four samples on the kink) need the oracle once per value
    # of v: the memo key is the local first-order data (kink states, MUL partner v)
    assert len(compiled.memo) == 63
    shipped = pickle.loads(pickle.dumps(compiled))  # Dask ships it to workers; the memo stays home
    assert shipped.memo == {} and E.count_range(shipped, 0, n).to_json() == whole
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = E.count_range(compiled, 0, n).to_json()
    finally:
        numba.set_num_threads(threads)
    assert one == whole
    rng = np.random.default_rng(1)
    idx = rng.integers(0, n, 3000).tolist() + [5, 5]
    by_idx = E.classify_indices(compiled, idx)
    singles = None
    for i in idx[::-1]:
        c = E.count_range(compiled, i, i + 1)
        singles = c if singles is None else singles.merge(c)
    assert by_idx.to_json() == singles.to_json()


def test_chunk_counts_json_round_trip_and_merge():
    compiled = E.compile_problem(NETS["relu-bias"]())
    a = E.count_range(compiled, 0, 1000)
    b = E.count_range(compiled, 1000, compiled.n_points)
    ab = a.merge(b)
    assert E.ChunkCounts.from_json(ab.to_json()) == ab
    assert ab.to_json() == E.count_range(compiled, 0, compiled.n_points).to_json()


# -- exactness -----------------------------------------------------------------------------------------
def test_exactness_analysis():
    assert E.compile_problem(_b1(FP8)).all_exact  # e4m3fn: products of two values, sums of few
    three = build(BF16, [[1, 1]], [dense(1, "relu"), dense(1)], ["L1.W[0,0]", "L1.W[0,1]"],
                  fixed={"L1.b": [-2**30]})
    c = E.compile_problem(three)
    assert not c.all_exact  # bf16 values spread over 2^261: a three-term sum may round


def test_bf16_per_point_tiles_against_the_oracle():
    # the node-major per-point path works in tiles of 256 inner digits: 700-point sub-ranges that
    # start mid-tile and cross two tile boundaries, around the inner digits where kinks are
    # touched, every code equal to the oracle's (exact nodes; then error-bounded ones)
    vals = BF16.values()
    m = BF16.n_values
    pb = build(BF16, [["0.5"]], [dense(2, "relu"), dense(2, "relu"), dense(1)], ["L1.W[0,0]", "L1.b[0]", "L1.b[1]"],
               fixed={"L1.W": [[1], [-1]], "L2.W": [[1, -1], ["0.5", 2]], "L2.b": [-1, 1]})
    compiled = E.compile_problem(pb)
    assert compiled.S.vec[0] and not compiled.S.fast[0]
    w, b0, b1 = (int(np.searchsorted(vals, v)) for v in (1.0, 0.5, 0.5))  # h0 = 1, h1 = relu(b1 - 1/2)
    start = (w * m + b0) * m + b1 - 300
    _, codes = check_range(pb, start, start + 700)
    # b1 <= 1/2 (the first 301 digits, across two tiles): h1 = 0 puts the second layer's first
    # unit on its kink (1 - 0 - 1 = 0); above, nothing is touched
    assert (codes[:301] != 0).all() and not codes[301:].any()
    # relu(w0 + w1 + b) with b = -2^30 fixed, inner w1: error-bounded LIN, deferred where undecided
    pb = build(BF16, [[1, 1]], [dense(1, "relu"), dense(1)], ["L1.W[0,0]", "L1.W[0,1]"], fixed={"L1.b": [-2**30]})
    assert E.compile_problem(pb).S.vec[0]
    start = int(np.searchsorted(vals, 2.0**-32)) * m + int(np.searchsorted(vals, 2.0**30)) - 350
    check_range(pb, start, start + 700)
    start = int(np.searchsorted(vals, 0.0)) * m + int(np.searchsorted(vals, 2.0**30)) - 350
    _, codes = check_range(pb, start, start + 700)
    assert (codes != 0).sum() == 1  # w0 = 0, w1 = 2^30: on the kink


def test_bf16_cancellation_naive_float64_wrong_kernel_right():
    # y = b + w0 + w1 with b = -2^30 fixed; in the block w0 = 2^-32 the point w1 = 2^30 gives
    # plain float64 (-2^30 + 2^-32) + 2^30 = 0 (on the kink), exactly 2^-32 (off it)
    pb = build(BF16, [[1, 1]], [dense(1, "relu"), dense(1)], ["L1.W[0,0]", "L1.W[0,1]"],
               fixed={"L1.b": [-2**30]})
    compiled = E.compile_problem(pb)
    vals = BF16.values()
    m = compiled.m
    blk = int(np.searchsorted(vals, 2.0**-32))
    start, stop = blk * m, (blk + 1) * m
    naive = E.naive_float64_touched(compiled, start, stop)
    codes = E.point_codes(compiled, start, stop)
    wrong = np.flatnonzero(naive != (codes != 0))
    j = int(np.searchsorted(vals, 2.0**30))
    assert j in wrong.tolist()
    assert naive[j] and codes[j] == 0
    assert not codes.any()  # 2^30 - 2^-32 is not a bf16 value: nothing in this block is touched
    # the kernel's verdicts agree with the oracle where naive float64 is wrong and on a sample
    sample = sorted(set(wrong.tolist()[:20]) | {0, 1, m // 2, m - 1, j})
    assert codes[sample].tolist() == oracle_codes(pb, compiled, [start + i for i in sample]).tolist()


# -- bad input -----------------------------------------------------------------------------------------
def test_bad_ranges_and_options_are_one_line_errors():
    compiled = E.compile_problem(NETS["relu-bias"]())
    with pytest.raises(FpadError, match="outside the grid|not inside"):
        E.count_range(compiled, 0, compiled.n_points + 1)
    with pytest.raises(FpadError):
        E.classify_indices(compiled, [-1])
    spec = NetworkSpec.from_dict({"inputs": [[1]], "layers": [dense(1, "relu")], "params": {"free": ["L1.b"]}})
    with pytest.raises(FpadError, match="wrt_all"):
        E.compile_problem(spec.build(FP4, wrt_all=True))


def test_undecided_bulk_verdict_counts_every_point():
    """Review regression: P = relu(relu(u)+1)/3 - relu(relu(u)+1)/3 + b has sigma exactly 0 but
    not provably so in float64, so the K = 1 verdict of a whole block is deferred; every one of the
    block's points must reach the oracle (the kernel once bulk-counted one and dropped the rest)."""
    from fpad.enumerate import count_exhaustive, count_exhaustive_reference

    spec = NetworkSpec.from_dict({
        "inputs": [[1]],
        "layers": [
            {"kind": "dense", "width": 2, "bias": False, "activation": "relu"},
            {"kind": "dense", "width": 3, "bias": [1, 1, 1], "weights": [[1, 0], [1, 0], [0, 1]],
             "activation": "relu"},
            {"kind": "dense", "width": 1, "bias": True, "weights": [["1/3", "-1/3", 1]]},
        ],
        "params": {"free": ["L1.W[0,0]", "L3.b[0]"]},
    })
    p = spec.build(get_format("e2m1"))
    got = count_exhaustive(p)
    want = count_exhaustive_reference(p)
    assert (got.points, got.touched, got.ndf, got.inc) == (225, 15, 0, 0)
    assert (want.points, want.touched, want.ndf, want.inc) == (225, 15, 0, 0)


def test_points_by_coordinates_beyond_62_parameters_match_the_oracle():
    """A 1-8-8-1 ReLU network with all 97 parameters free (253^97 points: no flat int64 index):
    sampled points, some put on a first-layer kink by hand, decided by the kernels from their
    coordinates, equal the oracle's verdicts point by point."""
    from fpad.estimate import sample_digits
    from fpad.sweeps import two_hidden_spec

    pb = NetworkSpec.from_dict(two_hidden_spec(8)).build(FP8)
    compiled = E.compile_problem(pb)
    assert compiled.k == 97 and compiled.n_points > 2**640
    rows = sample_digits(compiled.m, compiled.k, 120, seed=11)
    pos = {float(v): i for i, v in enumerate(compiled.table)}
    names = pb.free_names
    for r in range(0, 120, 3):  # b = -w: unit (r mod 8) of the first layer on its kink (input 1)
        j = r % 8
        w = compiled.table[rows[r, names.index(f"L1.W[{j},0]")]]
        rows[r, names.index(f"L1.b[{j}]")] = pos[-w + 0.0]
    want = [E._oracle_code(classify(pb, compiled.values_of(row))) for row in rows]
    got = E.classify_points(compiled, rows)
    assert got.points == 120 and got.fallback < 120
    assert got.touched == sum(c != 0 for c in want) >= 40
    assert got.ndf == sum(c in (2, 3) for c in want) and got.inc == sum(c == 5 for c in want)
    assert got.clarke_ok == sum(c == 2 for c in want)
    assert all(int(i) < compiled.n_points for i in got.witness_index.get("ndf", []))


def test_flat_index_of_long_digit_rows():
    """index_of splits a row in halves (a digit loop is quadratic in the number of parameters):
    the same integer as the digit-by-digit definition, on both sides of the split threshold."""
    import random

    from fpad.enumerate import _horner

    rng = random.Random(3)
    for k in (0, 1, 63, 64, 65, 129, 1000):
        digits = [rng.randrange(253) for _ in range(k)]
        want = 0
        for d in digits:
            want = want * 253 + d
        assert _horner(digits, 253) == want
    assert _horner([252] * 200, 253) == 253**200 - 1
