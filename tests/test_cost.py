"""fpad.cost without torch: the op-count model by hand, exact Clarke sets of hand-derived ReLU
programs at 0, the AD-conservative elements and their exact membership, the Fraction twin of the
AB reduction, and the skip / error paths when torch is absent."""

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from fpad import cost
from fpad.ad import ad_gradient
from fpad.cli import main
from fpad.cost import analyses, clarke, opcount
from fpad.cost.directional import exact_relu_affine_directional
from fpad.errors import FpadError
from fpad.oracle import classify_program
from fpad.proxies import get_proxy

F = Fraction


# -- the operation-count model ---------------------------------------------------------------------
def test_opcount_hand_computed_relu_net():
    # 2 features -> 3 ReLU units -> 2 logits, batch 1 (conventions in fpad/cost/opcount.py):
    # forward: matmul 2*1*2*3 = 12, bias 3, relu 3, matmul 2*3*2 = 12, bias 2, CE 5*2 + 3 = 13 -> 45
    # backward: CE 2*2 + 1 = 5; out dW 12 + db 2 + dx 12; relu 2*3 = 6; L1 dW 12 + db 3 (no dx) -> 52
    oc = opcount.mlp_ops(2, 3, 1, 1, classes=2)
    assert (oc.forward, oc.backward) == (45, 52)
    assert oc.omega == F(97, 45)


def test_opcount_hand_computed_variants():
    # maxout K=8, 1 feature -> 1 unit -> 1 logit, batch 1:
    # fwd: matmul 2*8 = 16, bias 8, max 7, out matmul 2, bias 1, CE 8 = 42
    # bwd: dW 16 (no dx), db 8, route 1, out dW 2 + dx 2, db 1, CE 3 = 33
    oc = opcount.mlp_ops(1, 1, 1, 1, classes=1, variant="maxout")
    assert (oc.forward, oc.backward) == (42, 33)
    # maxpool adds (3 - 1) * 3 = 6 forward and 3 backward to the ReLU net of the first test
    oc = opcount.mlp_ops(2, 3, 1, 1, classes=2, variant="maxpool")
    assert (oc.forward, oc.backward) == (51, 55)
    # hardtanh: 2 per entry forward, 3 backward (relu: 1 and 2): +3 and +3
    oc = opcount.mlp_ops(2, 3, 1, 1, classes=2, variant="hardtanh")
    assert (oc.forward, oc.backward) == (48, 55)
    # the kink choice does not change the count
    assert opcount.mlp_ops(64, 256, 2, 128, variant="relu_d1").omega == opcount.mlp_ops(64, 256, 2, 128).omega


def test_opcount_limits_two_and_three():
    # dominated by the first layer (no dx): close to 2; deep and wide: close to 3, never above 3
    assert F(19, 10) < opcount.mlp_ops(784, 1, 1, 64).omega < F(21, 10)
    deep = opcount.mlp_ops(64, 2048, 16, 128).omega
    assert F(299, 100) < deep < 3
    with pytest.raises(FpadError, match="unknown hidden-layer program"):
        opcount.mlp_ops(2, 3, 1, 1, variant="gelu")


# -- exact Clarke sets at 0 of hand-derived networks -------------------------------------------------
RELU = [[[1]], [[1]]]                                 # ReLU(x): [0, 1]
IDENTITY = [[[1], [-1]], [[1, -1]]]                   # ReLU(x) - ReLU(-x) = x: {1}
ABS = [[[1], [-1]], [[1, 1]]]                         # |x|: [-1, 1]
SUM2 = [[[1, 0], [0, 1]], [[1, 1]]]                   # ReLU(x1) + ReLU(x2): [0, 1]^2
DEEP_RELU = [[[1], [-1]], [[1, -1]], [[1]]]           # ReLU(ReLU(x) - ReLU(-x)) = ReLU(x)
MAX2 = [[[1, -1], [0, 1], [0, -1]], [[1, 1, -1]]]     # ReLU(x1 - x2) + x2 = max(x1, x2)


@pytest.mark.parametrize("mats,grads,differentiable", [
    (RELU, {(0,), (1,)}, False),
    (IDENTITY, {(1,)}, True),
    (ABS, {(-1,), (1,)}, False),
    (SUM2, {(0, 0), (1, 0), (0, 1), (1, 1)}, False),
    (DEEP_RELU, {(0,), (1,)}, False),
    (MAX2, {(1, 0), (0, 1)}, False),
])
def test_clarke_at_zero_hand_derived(mats, grads, differentiable):
    c = clarke.clarke_at_zero(mats)
    assert set(c.gradients) == {tuple(F(v) for v in g) for g in grads}
    assert c.differentiable is differentiable
    assert c.ad == (F(0),) * len(mats[0][0])  # PyTorch: every ReLU'(0) = 0


@pytest.mark.parametrize("mats,ad0,ad1,path,e1", [
    # network, ReLU'(0)=0 in Clarke, ReLU'(0)=1 in Clarke, path element in Clarke, path element
    (RELU, True, True, True, (1,)),
    (IDENTITY, False, False, True, (1,)),       # J(I) = 1 + 1 = 2, J(0) = 0, Clarke = {1}
    (ABS, True, True, True, (1,)),              # J(I) = 1 - 1 = 0
    (DEEP_RELU, True, False, True, (1,)),       # J(I) = 2 is outside [0, 1]
    (MAX2, False, False, False, (1, -1)),       # Clarke = segment (1,0)-(0,1); J(I) = (1, 1)
])
def test_conservative_elements_membership_by_hand(mats, ad0, ad1, path, e1):
    s = clarke.study(mats)
    assert (s["ad0"], s["ad1"], s["path"]) == (ad0, ad1, path)
    (z, e), _ = clarke.path_elements(mats)
    assert z == (F(0),) * len(e1) and e == tuple(F(v) for v in e1) and z != e


def test_ad_element_against_fpad_ad_with_proxies():
    rng = np.random.default_rng(3)
    for _ in range(10):
        mats = clarke.random_net(3, [3, 2], rng)
        prog = clarke.relu_net_program(mats)
        for value, proxy in ((0, "pytorch"), (1, "const:1")):
            want = ad_gradient(prog, [F(0)] * 3, [0, 1, 2], get_proxy(proxy))
            assert list(clarke.ad_element(mats, clarke.constant_diags(mats, value))) == want


def test_piece_certificates_give_the_piece_gradients():
    # slow twin of the oracle's pieces: at each piece's certified interior direction d, reverse-mode
    # AD (no kink on a moving input there) is the gradient of F, which must be the piece's gradient
    rng = np.random.default_rng(5)
    for _ in range(6):
        mats = clarke.random_net(3, [3, 3], rng)
        prog = clarke.relu_net_program(mats)
        r = classify_program(prog, [F(0)] * 3, [0, 1, 2], get_proxy("pytorch"))
        for piece in r.pieces:
            assert tuple(ad_gradient(prog, list(piece.direction), [0, 1, 2], get_proxy("pytorch"))) == piece.gradient


def test_membership_in_one_dimension_is_an_interval_test():
    rng = np.random.default_rng(11)
    for _ in range(15):
        mats = clarke.random_net(1, [2, 2], rng)
        g = [x[0] for x in clarke.clarke_at_zero(mats).gradients]
        for v in (F(-2), F(-1), F(0), F(1, 2), F(1), F(2), F(3)):
            assert clarke.in_clarke([(x,) for x in g], (v,)) == (min(g) <= v <= max(g))


def test_no_path_means_zero_function_and_singleton():
    mats = [[[1, 0], [0, 0]], [[0, 1]]]  # the only unit fed by an input has weight 0 to the output
    assert clarke.find_path(mats) is None and clarke.path_elements(mats) is None
    c = clarke.clarke_at_zero(mats)
    assert c.differentiable and c.gradients == [(F(0), F(0))]
    assert clarke.ad_element(mats, clarke.constant_diags(mats, 1)) == (F(0), F(0))


def test_random_pairs_are_distinct_and_sweep_counts_are_consistent():
    a = clarke.clarke_sweep(ps=[1, 2, 3], networks=4, seed=1)
    for r in a.rows:
        assert r["decided"] + r["refused"] == 4
        assert 0 <= r["pair_in_clarke"] <= r["path_in_clarke"] <= r["with_path"] <= r["decided"]
        assert r["ad0_in_clarke"] <= r["decided"] and r["oracle_s_median"] > 0
    rng = np.random.default_rng(2)
    for _ in range(20):
        mats = clarke.random_net(3, [3, 3], rng)
        pair = clarke.path_elements(mats)
        if pair is not None:
            (e0, e1), (d0, d1) = pair
            assert e0 != e1 and all(0 <= v <= 1 for d in d0 + d1 for v in d)
            assert clarke.ad_element(mats, d1) == e1


def test_bad_networks_refused():
    with pytest.raises(FpadError, match="single row"):
        clarke.check_mats([[[1]], [[1], [1]]])
    with pytest.raises(FpadError, match="columns"):
        clarke.check_mats([[[1, 1]], [[1, 1]]])
    with pytest.raises(FpadError, match="1..10"):
        clarke.clarke_sweep(ps=[11])


# -- the reduction, exactly ------------------------------------------------------------------------------
def test_exact_directional_derivatives_recover_AB():
    A = [[1, -2, 0], [3, 1, -1], [0, 0, 2]]
    B = [[2, -1], [1, 1], [-3, 4]]
    plus = exact_relu_affine_directional(A, [0, 0, 0], B)
    minus = exact_relu_affine_directional(A, [0, 0, 0], [[-v for v in row] for row in B])
    AB = [[sum(A[i][k] * B[k][j] for k in range(3)) for j in range(2)] for i in range(3)]
    assert plus == [[F(max(v, 0)) for v in row] for row in AB]
    assert [[p - m for p, m in zip(r1, r2)] for r1, r2 in zip(plus, minus)] == AB


# -- without torch ----------------------------------------------------------------------------------------
def test_without_torch_sweep_is_one_line_exit_2_and_reproduce_skips(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cost, "have_train", lambda: False)
    assert main(["sweep", "overhead", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'fpad[train]'" in err and "\n" not in err
    assert main(["reproduce", "--quick", "--only", "cost_overhead", "cost_directional", "--out", str(tmp_path),
                 "--json"]) == 0
    capsys.readouterr()
    data = json.loads((tmp_path / "results" / "cost_overhead.json").read_text())
    assert data["rows"] == [] and "skipped" in data["notes"][0] and data["provenance"]["figures"] == []
    assert "skipped: PyTorch and scikit-learn are not installed" in (tmp_path / "report.md").read_text()
    assert analyses.directional(True).rows == []


def test_importing_fpad_cli_and_cost_does_not_import_torch():
    code = ("import sys, fpad.cli, fpad.reproduce, fpad.cost.analyses, fpad.cost.clarke, fpad.cost.opcount, "
            "fpad.cost.overhead, fpad.cost.directional; print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
