"""fpad.sweeps: the analyses' numbers against independent computations (closed forms, derivations
by hand, the compiled exhaustive kernel)."""

from fractions import Fraction

import numpy as np

from fpad import sweeps
from fpad.enumerate import count_exhaustive, count_exhaustive_reference
from fpad.formats import get_format
from fpad.network import NetworkSpec


def test_tightness_matches_closed_forms():
    a = sweeps.tightness(formats=("e2m1", "e4m3fn"), ns=(1, 16, 253))
    assert all(r["matches"] for r in a.rows)
    by = {(r["format"], r["construction"]): r for r in a.rows}
    r = by[("e4m3fn", "sum_i ReLU(b_i), N=253")]
    assert Fraction(r["density"]) == 1 - (1 - Fraction(1, 253)) ** 253
    assert round(r["ratio"], 4) == 0.6328  # passes 1 - 1/e at N = |M| (paper_icml2023.md 7, H3)
    assert by[("e4m3fn", "v*ReLU(u+b)")]["density"] == "252/64009"  # (|M|-1)/|M|^2, paper 4.1c
    assert by[("e2m1", "v*ReLU(u+b)")]["density"] == "14/225"


def test_counterexample_inc_is_whole_grid_for_proxies_0_and_1():
    a = sweeps.counterexample(formats=("e2m1", "e3m2"))
    for r in a.rows:
        M = r["M"]
        assert r["ndf"] == "0"  # P(x) = x is affine
        if r["proxy"].endswith("1/2"):
            assert r["inc"] == "0" and r["ad_value"] == "1"
        else:
            assert r["inc"] == str(M)
            assert r["ad_value"] in (str(Fraction(M - 1, M)), str(Fraction(M + 1, M)))


def test_width_sweep_exact_rows_and_labelled_estimates():
    a = sweeps.width_sweep(formats=("e2m0fn",), widths=[1, 2, 5], deep_widths=[1], deep_samples=20)
    M = get_format("e2m0fn").n_values
    one = [r for r in a.rows if r["layers"] == 1]
    for r in one:
        # independent blocks (w_j, b_j, v_j), each ndf iff b = -w and v != 0
        assert Fraction(r["density"]) == 1 - (1 - Fraction(M - 1, M * M)) ** r["width"]
        assert r["method"] == "structured"
    # width 1 (4 parameters) by the compiled exhaustive kernel
    p = NetworkSpec.from_dict(sweeps.one_hidden_spec(1)).build(get_format("e2m0fn"))
    assert one[0]["ndf"] == str(count_exhaustive(p).ndf)
    deep = [r for r in a.rows if r["layers"] == 2]
    assert deep[0]["method"] == "sample" and deep[0]["points"] == "20" and len(deep[0]["ci_ndf"]) == 2


def test_precision_rows_equal_brute_force():
    a = sweeps.precision_sweep(formats=["e2m0fn", "e2m1"])
    nets = sweeps.precision_networks()
    for r in a.rows:
        if r["k"] > 4 or r["M"] ** r["k"] > 1000:
            continue
        fmt = get_format(r["format"])
        p = NetworkSpec.from_dict(nets[r["network"]]).build(fmt)
        ref = count_exhaustive_reference(p)
        assert (r["ndf"], r["inc"], r["touched"]) == (str(ref.ndf), str(ref.inc), str(ref.touched))
        assert r["bound_holds"]


def test_inc_table_cells_derived_by_hand():
    a = sweeps.inc_table(formats=("e2m1",), activations=("relu", "hardsigmoid"), proxies=("pytorch", "right"))
    cell = {(r["architecture"], r["activation"], r["proxy"], r["bias"]): r["inc"] for r in a.rows}
    # bias, single input: inc empty
    assert all(v == "0" for (arch, _, _, bias), v in cell.items() if bias and not arch.startswith("B=2"))
    # Lemma 3: HS(3 + b) + HS(-3 + b) times v, PyTorch proxy: wrong at b = 0 for each of the 14 v != 0
    assert cell[("B=2 neuron x=(3,-3)", "hardsigmoid", "pytorch", True)] == "14"
    # ReLU(a ReLU(u)), proxy 1: at u = 0 and a < 0, P = 0 nearby but AD gives a: the 7 negative a
    assert cell[("1-1-1-1 deep", "relu", "right", False)] == "7"
    assert cell[("1-1-1-1 deep", "relu", "pytorch", False)] == "0"


def test_ad_map_codes():
    net = "no bias: ReLU(a ReLU(u)), proxy ReLU'(0)=1, (u, a) free"
    a = sweeps.ad_map(net, "e2m1")
    codes = a.data["codes"]
    vals = np.array(a.data["values"])
    assert codes.shape == (15, 15)
    u0 = int(np.flatnonzero(vals == 0)[0])
    assert a.rows[0]["inc"] == 7
    assert all(codes[u0, j] == 5 for j in range(15) if vals[j] < 0)  # same cells as the inc table
    assert a.rows[0]["clean"] + a.rows[0]["touched_ok"] + a.rows[0]["ndf"] + a.rows[0]["inc"] == 225
