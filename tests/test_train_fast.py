"""fpad.train's fast step check against its straightforward twin: the same report (verdicts,
touches, Table-2 statistics, per-layer cone verdicts and paths) on real training steps of the
experiment networks, on random tiny models, and on crafted convolution/pool nets whose values lie
on a coarse dyadic grid, so that ties, touches, padding, overlapping windows, batch norm in
training mode and undecided ties all occur."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
nn = torch.nn

from fpad.train import acts  # noqa: E402
from fpad.train.checks import _factor_nonzero, _factor_table, _touch_entries, ad_factor, check_trace  # noqa: E402
from fpad.train.models import build  # noqa: E402
from fpad.train.run import digits, forward_backward  # noqa: E402
from fpad.train.tiny import random_traces  # noqa: E402
from fpad.train.trace import Capture  # noqa: E402

CALLS = [("relu", (), {}), ("relu6", (), {}), ("hardtanh", (-1.0, 1.0), {}), ("hardtanh", (-0.5, 0.25), {}),
         ("hardtanh", (-0.1, 0.1), {}), ("hardsigmoid", (), {}), ("leaky_relu", (0.25,), {}),
         ("clamp", (-1.0, 1.0), {}), ("clamp", (), {"min": 0.0})]


def _report(trace, fast):
    d = check_trace(trace, fast=fast).to_json()
    d.pop("timing")
    return d


def _same(trace) -> dict:
    a, b = _report(trace, True), _report(trace, False)
    assert a == b
    return a


@pytest.mark.parametrize("name,args,kwargs", CALLS)
def test_factor_nonzero_and_touches_agree_with_slow_forms(name, args, kwargs):
    ta = acts.from_call(name, (None, *args), kwargs)
    ks = [float(k) for k in ta.kinks]
    grid = sorted({v + d for v in ks + [0.0, 3.0, -3.0, 6.0] for d in (-2.0, -0.5, -2.0 ** -20, 0.0, 2.0 ** -20, 0.5, 2.0)})
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        y = torch.tensor(grid, dtype=torch.float64).to(dtype)
        y64 = y.double().numpy()
        want = ad_factor(ta, y64) != 0
        got = _factor_nonzero(ta, y.float().numpy() if dtype == torch.bfloat16 else y.numpy())
        assert got.tolist() == want.tolist(), (name, dtype)
        assert _touch_entries(ta, y, True) == _touch_entries(ta, y, False), (name, dtype)
    # a kink on the grid is found as a touch (float32, exact)
    y = torch.tensor(ks, dtype=torch.float32)
    if all(float(np.float32(k)) == k for k in ks):
        assert [len(e) for _, e in _touch_entries(ta, y)] == [1] * len(ks)


def _steps(model, dtype, steps, seed=0):
    xtr, ytr, _, _ = digits()
    torch.manual_seed(seed)
    net = build(model, "relu").to(dtype)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    cap = Capture(net)
    for s in range(steps):
        xb, yb = xtr[s * 16:(s + 1) * 16].to(dtype), ytr[s * 16:(s + 1) * 16]
        opt.zero_grad()
        forward_backward(net, xb, yb, cap)
        yield cap.trace
        opt.step()


@pytest.mark.parametrize("model", ["vgg", "vgg-bn", "resnet"])
def test_fast_equals_slow_on_real_cnn_steps(model):
    ties = s_minus_t = 0
    for dtype in (torch.float32, torch.bfloat16):
        for tr in _steps(model, dtype, 1):
            rep = _same(tr)
            ties += sum(p["tied_windows"] for p in rep["pools"].values())
            s_minus_t += sum(p["s_minus_t"] for p in rep["pools"].values())
    assert ties > 100 and s_minus_t > 0  # the comparison saw tie sets, harmless and not


def test_fast_equals_slow_on_random_tiny_models():
    rng = np.random.default_rng(7)
    pooled = 0
    for tr in random_traces(rng, 80):
        pooled += bool(_same(tr)["pools"])
    assert pooled >= 20


class _Crafted(nn.Module):
    """conv -> [bn] -> act -> pool (or pool -> act) -> conv -> act -> pool, parameters on a grid."""

    def __init__(self, rng, act, bn, pool_first, k, s, p):
        super().__init__()
        c1, c2 = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        self.c1 = nn.Conv2d(1, c1, int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)), bias=bool(rng.random() < 0.7))
        self.bn = nn.BatchNorm2d(c1) if bn else None
        self.c2 = nn.Conv2d(c1, c2, 1, bias=bool(rng.random() < 0.7))
        self.act, self.pool_first, self.k, self.s, self.p = act, pool_first, k, s, p
        grid = (-1.0, -0.5, 0.0, 0.5, 1.0)
        with torch.no_grad():
            for prm in self.parameters():
                prm.copy_(torch.tensor(rng.choice(grid, size=tuple(prm.shape)), dtype=torch.float32))
            if bn:
                self.bn.weight.copy_(torch.tensor(rng.choice((0.0, 1.0, -1.0), size=c1), dtype=torch.float32))

    def _pool(self, x):
        return nn.functional.max_pool2d(x, self.k, self.s, self.p)

    def forward(self, x):
        name, args, kwargs = self.act
        f = getattr(torch, name, None) if name == "clamp" else getattr(nn.functional, name)
        y = self.c1(x)
        if self.bn is not None:
            y = self.bn(y)
        y = f(self._pool(y), *args, **kwargs) if self.pool_first else self._pool(f(y, *args, **kwargs))
        return nn.functional.max_pool2d(f(self.c2(y), *args, **kwargs), 2, 1).flatten(1)


def test_fast_equals_slow_on_crafted_tie_cases():
    rng = np.random.default_rng(12)
    seen = {"tied": 0, "s_minus_t": 0, "undecided": 0, "touches": 0, "empty": 0}
    for case in range(45):
        k = int(rng.integers(1, 4))
        s = int(rng.integers(1, k + 1))
        p = int(rng.integers(0, k // 2 + 1))
        m = _Crafted(rng, CALLS[case % len(CALLS)], bn=bool(rng.random() < 0.3), pool_first=bool(rng.random() < 0.2),
                     k=k, s=s, p=p)
        m.train(bool(rng.random() < 0.5))
        x = torch.tensor(rng.choice((-1.0, 0.0, 0.0, 0.5, 1.0), size=(int(rng.integers(1, 3)), 1, 7, 7)), dtype=torch.float32)
        with torch.no_grad(), Capture(m) as cap:
            m(x)
        rep = _same(cap.trace)
        seen["tied"] += sum(v["tied_windows"] for v in rep["pools"].values())
        seen["s_minus_t"] += sum(v["s_minus_t"] for v in rep["pools"].values())
        seen["undecided"] += sum(v["undecided"] for v in rep["pools"].values())
        seen["touches"] += rep["n_touches"]
        seen["empty"] += any(v.get("empty") for v in rep["layers"].values())
    assert seen["tied"] > 500 and seen["s_minus_t"] > 50 and seen["undecided"] > 0
    assert seen["touches"] > 100 and seen["empty"] > 0


def test_hand_built_ties_harmless_and_not():
    # a 1x1 conv (weight 1, bias 0) on (2, 2 | 0, 1), ReLU, one 2x2 window: the two 2s tie with
    # equal patches from the input layer, so equal AD rows: harmless (T_j), S_j minus T_j empty
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.0)
    m = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    with torch.no_grad(), Capture(m) as cap:
        m(torch.tensor([[[[2.0, 2.0], [0.0, 1.0]]]]))
    rep = _same(cap.trace)
    assert list(rep["pools"].values()) == [{"max_ops": 1, "tied_windows": 1, "s_minus_t": 0, "undecided": 0}]
    # equal outputs 2, 2 from unequal patches (2, 0) and (0, 2) of a 1x2 conv: one pair in S_j
    # minus T_j, whose row (2, -2) leaves the cone non-empty: certified
    conv2 = nn.Conv2d(1, 1, (1, 2), bias=False)
    with torch.no_grad():
        conv2.weight.fill_(1.0)
    m2 = nn.Sequential(conv2, nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Flatten())
    with torch.no_grad(), Capture(m2) as cap:
        m2(torch.tensor([[[[2.0, 0.0, 2.0]]]]))
    rep = _same(cap.trace)
    assert list(rep["pools"].values()) == [{"max_ops": 1, "tied_windows": 1, "s_minus_t": 1, "undecided": 0}]
    assert rep["certified"] and rep["layers"]["0.weight"]["cones"] == 1


def test_fast_equals_slow_on_pools_without_a_layer():
    # a max-pool whose input no linear/conv2d produces (the network input; a reshaped activation)
    # belongs to the "<no parameters>" block, which has no channel facts: the fast form used to
    # index them and fail. Both forms count the tie (factor 1 on each side) and do not certify.
    m = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1), nn.ReLU())
    with torch.no_grad(), Capture(m) as cap:
        m(torch.tensor([[[[1.0, 1.0], [0.0, 0.5]]]]))
    rep = _same(cap.trace)
    assert rep["pools"] == {"<no parameters>:pool#1": {"max_ops": 1, "tied_windows": 1, "s_minus_t": 1, "undecided": 0}}
    assert rep["certified"] is False

    m = _PoolOfReshape()
    with torch.no_grad(), Capture(m) as cap:
        m(torch.tensor([[0.5, 1.0, 1.0]]))  # windows (pad, 0.5) and (1, 1): one tie
    rep = _same(cap.trace)
    assert rep["pools"] == {"<no parameters>:pool#4": {"max_ops": 2, "tied_windows": 1, "s_minus_t": 1, "undecided": 0}}
    assert rep["certified"] is False


class _PoolOfReshape(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(3))

    def forward(self, x):
        y = nn.functional.relu(self.lin(x)).reshape(-1, 1, 1, 3)
        return nn.functional.max_pool2d(y, (1, 2), padding=(0, 1)).flatten(1)


def test_pool_kernel_matches_window_scan():
    """The tie-scan kernel against a plain window scan (padding cells -inf, as max_pool2d pads):
    the tied-window count and the pairs (i, i*), in order, on random grids with -inf entries."""
    from fpad.train._kernels import pool_tie_pairs

    rng = np.random.default_rng(3)
    seen_inf = seen_pairs = 0
    for case in range(72):
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, k[0] + 1)), int(rng.integers(1, k[1] + 1)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        if case < 12:  # the kernel's unrolled 2x2 path (no padding; strides 1 and 2)
            k, s, p = (2, 2), ((1, 1), (2, 2), (2, 1))[case % 3], (0, 0)
        x = rng.choice((-np.inf, -1.0, 0.0, 0.5), size=(2, 2, int(rng.integers(k[0], 7)), int(rng.integers(k[1], 7))))
        x = x.astype(np.float32 if case % 2 else np.float64)
        nz = rng.random(x.shape) < 0.5
        m, idx = torch.nn.functional.max_pool2d_with_indices(torch.from_numpy(x), k, s, p)
        m, idx = m.numpy(), idx.numpy()
        B, C, H, W = x.shape
        tied, pairs = 0, []
        for b, c, i, j in np.ndindex(*m.shape):
            cells = [(i * s[0] + r - p[0], j * s[1] + q - p[1]) for r in range(k[0]) for q in range(k[1])]
            inside = [0 <= h < H and 0 <= w < W for h, w in cells]
            val = [x[b, c, h, w] if ok else -np.inf for (h, w), ok in zip(cells, inside)]
            eq = [v == m[b, c, i, j] for v in val]
            if sum(eq) < 2:
                continue
            tied += 1
            if any(e and ok and nz[b, c, h, w] for e, ok, (h, w) in zip(eq, inside, cells)):
                star = divmod(int(idx[b, c, i, j]), W)
                pairs += [(b, c, h, w, *star) for e, (h, w) in zip(eq, cells) if e and (h, w) != star]
        got_tied, got = pool_tie_pairs(x, m, idx, nz, *k, *s, *p)
        assert (got_tied, [tuple(r) for r in got.tolist()]) == (tied, pairs), case
        seen_inf += int(np.sum(m == -np.inf))
        seen_pairs += len(pairs)
    assert seen_inf > 10 and seen_pairs > 100


def test_factor_table_refuses_what_float64_cannot_decide():
    # the kernels compare pre-activations with float64 kinks and factors with each other: a kink
    # of 1/3, or two factors float64 would merge, must be refused rather than decided approximately
    from fractions import Fraction as Q

    from fpad.activations import Activation
    from fpad.errors import FpadError

    third = acts.TorchAct("x", Activation("third", (Q(1, 3),), (Q(0), Q(1)), (Q(0), Q(-1, 3))), (Q(0),), "pytorch")
    close = acts.TorchAct("x", Activation("close", (Q(0),), (Q(1), Q(1) + Q(1, 2**60)), (Q(0), Q(0))), (Q(1),),
                          "pytorch")
    for a in (third, close):
        with pytest.raises(FpadError, match="not decided exactly in float64"):
            _factor_table(a)
    hs = acts.from_call("hardsigmoid", (None,), {})  # slope 1/6: not a float64, but kept apart from 0
    assert _factor_table(hs)[1].tolist() == [0.0, 1 / 6, 0.0]
