"""fpad.train: the paper's counterexamples built in torch are flagged, the theorems' cases are
certified, and on random tiny models "certified" always implies "AD in the Clarke set" (oracle)."""

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import fpad.train as ft  # noqa: E402
from fpad.errors import FpadError  # noqa: E402
from fpad.train.lower import LinearLoss, SquaredErrorLoss, exact_result  # noqa: E402


def _set(mod, weight=None, bias=None):
    with torch.no_grad():
        if weight is not None:
            mod.weight.copy_(torch.tensor(weight, dtype=torch.float32).reshape(mod.weight.shape))
        if bias is not None:
            mod.bias.copy_(torch.tensor(bias, dtype=torch.float32).reshape(mod.bias.shape))
    return mod


class Fn(nn.Module):
    """A one-parameter-layer model with a custom forward (App. H)."""

    def __init__(self, f, **layers):
        super().__init__()
        self.f = f
        for k, v in layers.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.f(self, x)


# -- the paper's counterexamples -------------------------------------------------------------------
def lemma2():
    # tau(X, w) = (X w, -X w) by weight sharing: a 1x1 conv over the input (1, -1); loss x1 - x2
    m = nn.Sequential(_set(nn.Conv2d(1, 1, 1, bias=False), [0.0]), nn.ReLU(), nn.Flatten())
    return m, torch.tensor([[[[1.0, -1.0]]]]), LinearLoss([1, -1])


def lemma3():
    # tau = X + b with the weight frozen; X = (3, -3); HardSigmoid (proxy 0 at both kinks); sum
    lin = _set(nn.Linear(1, 1), [1.0], [0.0])
    lin.weight.requires_grad_(False)
    return nn.Sequential(lin, nn.Hardsigmoid()), torch.tensor([[3.0], [-3.0]]), LinearLoss([1])


def lemma7(b=0.0, relu=False):
    layers = [_set(nn.Conv2d(1, 1, 1), [0.0], [b])] + ([nn.ReLU()] if relu else []) + [nn.MaxPool2d((1, 2)), nn.Flatten()]
    return nn.Sequential(*layers), torch.tensor([[[[1.0, 0.0, -1.0, 0.0]]]]), LinearLoss([1, -1])


def app_h_f2():
    conv = _set(nn.Conv2d(1, 1, 1, bias=False), [0.0])

    def f(s, x):
        y = s.c(x)
        return (torch.relu(y) - torch.clamp(y, min=0)).flatten(1)
    return Fn(f, c=conv), torch.tensor([[[[1.0]]]]), LinearLoss([1])


def app_h_f3():
    c1 = _set(nn.Conv2d(1, 1, 1, bias=False), [0.0])
    c2 = _set(nn.Conv2d(1, 1, 1, bias=False), [-1.0])
    c2.weight.requires_grad_(False)

    def f(s, x):
        return torch.clamp(s.c2(torch.clamp(s.c1(x), min=0)), min=0).flatten(1)
    return Fn(f, c1=c1, c2=c2), torch.tensor([[[[1.0]]]]), LinearLoss([1])


def app_h_f1_neg():
    conv = _set(nn.Conv2d(1, 1, 1, bias=False), [0.0])

    def f(s, x):
        y = s.c(x)
        return (torch.relu(y) - torch.relu(-y)).flatten(1)
    return Fn(f, c=conv), torch.tensor([[[[1.0]]]]), LinearLoss([1])


@pytest.mark.parametrize("build", [lemma2, lemma3, lemma7, app_h_f1_neg, app_h_f2, app_h_f3], ids=lambda f: f.__name__)
def test_counterexamples_are_flagged(build):
    m, x, loss = build()
    r = ft.check(m, x, loss)
    assert r.certified is False and r.kind is None
    assert any("Algorithm 1" in reason["condition"] for reason in r.reasons)
    assert r.n_touches + r.n_ties >= 1


@pytest.mark.parametrize("build,ad,dp", [
    (lemma2, ("0",), ("1",)),
    (lemma3, ("0",), ("1/6",)),
    (lemma7, ("2", "0"), ("1", "0")),
    (app_h_f3, ("-1",), ("0",)),
], ids=["lemma2", "lemma3", "lemma7", "app_h_f3"])
def test_oracle_confirms_counterexamples(build, ad, dp):
    m, x, loss = build()
    res = exact_result(m, x, loss)
    assert res.ad == tuple(Fraction(v) for v in ad)
    assert res.dp == tuple(Fraction(v) for v in dp)
    assert res.clarke_ok is False
    assert ft.exact_verdict(m, x, loss) is False


def test_per_window_passes_joint_fails():
    # Lemma 7 with b = 1 and a ReLU: every tie is at 1 > 0, so the released code's Algorithm 2 looks
    # at both windows; each window alone is feasible (x_u > 0, resp. x_u < 0), jointly empty.
    m, x, loss = lemma7(b=1.0, relu=True)
    repo = ft.check(m, x, loss, mode="paper-repo")
    joint = ft.check(m, x, loss)
    assert repo.certified is True
    assert list(repo.pools.values())[0]["s_minus_t"] == 2
    assert joint.certified is False
    assert list(joint.pools.values())[0] == {"max_ops": 2, "tied_windows": 2, "s_minus_t": 2, "undecided": 0}
    assert ft.exact_verdict(m, x, loss) is False


# -- the theorems' cases are certified ---------------------------------------------------------------------
def test_thm1_single_sample_relu6_certified():
    # B = 1, distinct biases, ReLU6 (no single lambda): Thm 1 says AD is correct; Algorithm 1 certifies
    lin = _set(nn.Linear(2, 2), [[1.0, 1.0], [0.5, -1.0]], [-2.0, 6.5])  # y = (0, 6): both kinks touched
    m = nn.Sequential(lin, nn.ReLU6(), _set(nn.Linear(2, 1), [[1.0, -1.0]], [0.0]))
    x = torch.tensor([[1.0, 1.0]])
    r = ft.check(m, x, LinearLoss([1]))
    assert r.static["holds"] is False
    assert r.touches["0.weight:relu6#2"] == {"0": 1, "6": 1}
    assert r.certified and r.kind == "bouligand"
    assert ft.exact_verdict(m, x, LinearLoss([1])) is True


def test_thm4_relu_minibatch_certified_statically():
    lin = _set(nn.Linear(1, 1), [[1.0]], [0.0])
    m = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[0.0], [0.0], [1.0]])  # two samples on the kink
    r = ft.check(m, x, LinearLoss([1]))
    assert r.static["holds"] and r.certified and r.kind == "bouligand"
    assert r.n_touches == 2
    assert ft.exact_verdict(m, x, LinearLoss([1])) is True


def test_structure_facts_follow_the_model_between_checks():
    """The per-structure cache (blocks, Thm 4/6 facts): freezing the bias between two checks of
    one model changes the verdict, and editing a returned report does not reach the next one."""
    lin = _set(nn.Linear(1, 1), [[1.0]], [0.0])
    m = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[0.0], [0.0], [1.0]])
    r = ft.check(m, x, LinearLoss([1]))
    assert r.static["holds"] and r.static["why_not"] == []
    r.static["why_not"].append("edited")
    r.static["lambdas"].clear()
    lin.bias.requires_grad_(False)
    r2 = ft.check(m, x, LinearLoss([1]))
    assert not r2.static["holds"] and r2.static["why_not"] == ["0.weight: no trainable bias"]
    lin.bias.requires_grad_(True)
    r3 = ft.check(m, x, LinearLoss([1]))
    assert r3.static["holds"] and r3.static["why_not"] == [] and r3.static["lambdas"] == {"0.weight": ["1"]}


def test_thm6_conv_shared_bias_certified():
    m = nn.Sequential(_set(nn.Conv2d(1, 2, 2), [0.0] * 8, [0.0, 1.0]), nn.ReLU(), nn.Flatten())
    x = torch.zeros(2, 1, 3, 3)
    r = ft.check(m, x, LinearLoss([1] * 8))
    assert r.static["holds"] and r.static["kind"] == "bouligand" and r.certified
    assert r.n_touches == 8  # channel 0 is exactly 0 at 4 positions x 2 samples


def test_thm5_rank_conditions_and_conservatism():
    # X = (1, -1), one hidden ReLU neuron without bias at weight 0: Psi = |a|, AD = 0 is correct, but
    # rank z_0 = 1 < B = 2 (Thm 5 fails) and Algorithm 1 is empty: not certified although AD is right.
    m = nn.Sequential(_set(nn.Linear(1, 1, bias=False), [[0.0]]), nn.ReLU())
    x = torch.tensor([[1.0], [-1.0]])
    r = ft.check(m, x, LinearLoss([1]))
    t5 = r.thm5["layers"]["0.weight"]
    assert (t5["rank"], t5["B"], t5["pass"], t5["ext_touched_columns_pass"]) == (1, 2, False, False)
    assert r.certified is False
    assert ft.exact_verdict(m, x, LinearLoss([1])) is True
    # independent columns: Thm 5 passes
    m2 = nn.Sequential(_set(nn.Linear(2, 1, bias=False), [[0.0, 0.0]]), nn.ReLU())
    r2 = ft.check(m2, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), LinearLoss([1]))
    assert r2.thm5["layers"]["0.weight"]["pass"] and r2.certified


def test_bn_train_mode_tie_rows():
    # conv -> BN (train) -> ReLU -> maxpool over an image whose two halves are equal: harmless ties
    conv = _set(nn.Conv2d(1, 1, 1), [1.0], [0.0])
    m = nn.Sequential(conv, nn.BatchNorm2d(1), nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Flatten())
    m.train()
    x = torch.tensor([[[[2.0, 2.0, 0.0, 1.0]]], [[[0.0, 3.0, 1.0, 1.0]]]])
    r = ft.check(m, x, LinearLoss([1, 1]))
    st = list(r.pools.values())[0]
    assert st["tied_windows"] == 3 and st["s_minus_t"] == 0  # equal patches, or both at 0: T_j
    assert r.certified
    assert float(m[1].running_mean[0]) == 0.0  # check() leaves BN statistics untouched


# -- the adapter refuses what it cannot reason about -----------------------------------------------------------
def test_unknown_layer_is_named():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.ReLU())
    with pytest.raises(FpadError, match=r"layer '1' \(Dropout\)"):
        ft.check(m, torch.zeros(1, 2))


def test_unknown_function_is_named():
    m = Fn(lambda s, x: torch.nn.functional.gelu(s.l(x)), l=nn.Linear(2, 2))
    with pytest.raises(FpadError, match="gelu"):
        ft.check(m, torch.zeros(1, 2))


def test_op_tables_cover_every_op_and_name_an_unknown_one():
    from fpad.train import checks, lower
    from fpad.train.trace import OPS, Capture, OpTable

    for table in (checks._OWNER_STEP, checks._ATTACH, checks._ZERO_DERIVATIVE, lower._LOWER):
        assert set(table) == set(OPS)
    with pytest.raises(RuntimeError, match="the lowering table covers"):
        OpTable("the lowering", {"input": None})
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with torch.no_grad(), Capture(m) as cap:
        m(torch.zeros(2, 2))
    tr = cap.trace
    # the input is node 0 and no other node (what Trace.is_input relies on)
    assert [n.op for n in tr.nodes] == ["input", "linear", "act"]
    assert [i for i in range(len(tr.nodes)) if tr.is_input(i)] == [0]
    tr.nodes[1].op = "gelu"  # a node kind the checks have no rule for
    with pytest.raises(FpadError, match=r"the block assignment: unknown traced op 'gelu'"):
        checks.blocks_of(tr)
    with pytest.raises(FpadError, match=r"the block owner search: unknown traced op 'gelu'"):
        checks._owner(tr, 1)
    with pytest.raises(FpadError, match=r"the zero-derivative rule: unknown traced op 'gelu'"):
        checks.zero_derivative(tr, 1)
    with pytest.raises(FpadError, match=r"lowering to a network description: unknown traced op 'gelu'"):
        lower.lowering(tr, LinearLoss([1.0, 1.0]))


def test_squared_error_lowering():
    m = nn.Sequential(_set(nn.Linear(1, 1), [[1.0]], [-1.0]), nn.ReLU())
    x, t = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [0.0]])
    res = exact_result(m, x, SquaredErrorLoss(), t)
    # Psi = (relu(w + b) - 1/2)^2 + (relu(2w + b))^2 at w = 1, b = -1: first sample on the kink
    assert res.ndf is True and res.clarke_ok is True
    assert ft.check(m, x, SquaredErrorLoss(), t).certified


def test_linear_on_sequences_is_refused():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(FpadError, match=r"layer '0.weight' has output shape \[1, 3, 2\]"):
        ft.check(m, torch.zeros(1, 3, 2))


def test_thm5_needs_trainable_weights():
    # a frozen weight: Thm 5 does not apply (its proof perturbs the weights), whatever the rank;
    # with B = 1 the bias alone makes Algorithm 1's cone non-empty
    lin = _set(nn.Linear(1, 1), [1.0], [0.0])
    lin.weight.requires_grad_(False)
    r = ft.check(nn.Sequential(lin, nn.Hardsigmoid()), torch.tensor([[3.0]]), LinearLoss([1]))
    assert r.thm5["applies"] is False
    assert r.certified  # B = 1 with a bias: Algorithm 1 (one touch, bias coordinate) is non-empty
