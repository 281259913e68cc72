"""The capture's fx replay against the tracing mode (its slow twin): the same trace, node by node and
bit by bit, and the same step report, on real training steps; and the cases that must keep (or go
back to) the mode."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
nn = torch.nn

from fpad.train.checks import check_trace  # noqa: E402
from fpad.train.models import build  # noqa: E402
from fpad.train.run import digits, forward_backward  # noqa: E402
from fpad.train.trace import Capture, _Replay, _same_node  # noqa: E402


def _run(net, replay, steps, dtype=torch.float32, switch=None):
    """(traces' nodes, reports, the capture) of ``steps`` SGD steps; ``switch(step, net)`` may
    change the model's train/eval flags before a step."""
    xtr, ytr, _, _ = digits()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    cap = Capture(net, replay=replay)
    nodes, reps = [], []
    for s in range(steps):
        if switch:
            switch(s, net)
        xb, yb = xtr[s * 16:(s + 1) * 16].to(dtype), ytr[s * 16:(s + 1) * 16]
        opt.zero_grad()
        forward_backward(net, xb, yb, cap)
        tr = cap.trace
        d = check_trace(tr).to_json()
        d.pop("timing")
        nodes.append(tr.nodes)
        reps.append(d)
        opt.step()
    return nodes, reps, cap


def _twins(make, steps, dtype=torch.float32, switch=None):
    torch.manual_seed(0)
    a = _run(make().to(dtype), False, steps, dtype, switch)
    torch.manual_seed(0)
    b = _run(make().to(dtype), True, steps, dtype, switch)
    for na, nb in zip(a[0], b[0]):
        assert len(na) == len(nb) and all(_same_node(x, y) for x, y in zip(na, nb))
    assert a[1] == b[1]
    return a, b


@pytest.mark.parametrize("model,act", [("fnn", "relu6"), ("vgg", "relu"), ("vgg-bn", "hardtanh"), ("resnet", "relu")])
def test_replay_equals_mode_on_training_steps(model, act):
    for dtype in (torch.float32, torch.bfloat16):
        (_, reps, mode_cap), (_, _, cap) = _twins(lambda: build(model, act), 4, dtype)
        assert mode_cap._replay is False and isinstance(cap._replay, _Replay)  # steps 3 and 4 replayed
    if model != "fnn":  # the comparison saw tie sets
        assert sum(sum(p["tied_windows"] for p in r["pools"].values()) for r in reps) > 100


def test_replay_follows_train_eval_switches():
    def switch(step, net):
        net.train(step % 3 != 2)  # eval at steps 2 and 5: the batch norms' training flag flips

    (nodes, _, _), (_, _, cap) = _twins(lambda: build("vgg-bn", "relu"), 6, switch=switch)
    bn = [[n.info["training"] for n in ns if n.op == "batch_norm"] for ns in nodes]
    assert [b[0] for b in bn] == [True, True, False, True, True, False]
    assert isinstance(cap._replay, _Replay)


class _Branchy(nn.Module):
    """A forward fx cannot trace (control flow on a value)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, x):
        y = self.lin(x.flatten(1))
        return torch.relu(y) if x.shape[0] > 1 else y


class _SharedConvFunctionalPools(nn.Module):
    """One conv called twice, and the three functional spellings of a max-pool."""

    def __init__(self):
        super().__init__()
        self.c, self.lin = nn.Conv2d(1, 1, 3, padding=1), nn.Linear(16, 10)

    def forward(self, x):
        y = torch.relu(self.c(torch.relu(self.c(x))))
        y = (nn.functional.max_pool2d(y, 2) + torch.max_pool2d(y, 3, 2, 1)
             + nn.functional.max_pool2d(y, kernel_size=2, stride=(2, 2)))
        return self.lin(y.flatten(1))


@pytest.mark.parametrize("make,replays", [
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(inplace=True), nn.Linear(16, 10)), False),
    (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)), True),
    (_Branchy, False),
    (_SharedConvFunctionalPools, True),
], ids=["inplace-relu", "maxpool", "fx-untraceable", "shared-conv-functional-pools"])
def test_replay_or_mode_same_traces(make, replays):
    # an in-place activation and a forward fx cannot trace keep the mode; the CNNs replay
    (_, _, _), (_, _, cap) = _twins(make, 4)
    assert isinstance(cap._replay, _Replay) is replays


def _replaying_vgg():
    """(net, capture, input) after three forwards: the capture replays."""
    torch.manual_seed(0)
    net = build("vgg", "relu")
    cap = Capture(net)
    x = torch.rand(4, 1, 8, 8)
    for _ in range(3):
        with torch.no_grad(), cap:
            net(x)
    assert isinstance(cap._replay, _Replay)
    return net, cap, x


def test_replay_keeps_the_last_forward_and_refuses_a_bad_input():
    from fpad.errors import FpadError

    net, cap, x = _replaying_vgg()
    with torch.no_grad(), cap:
        net(x[:1])
        net(x[:2])  # a second forward in one capture: the trace is the last one's
    assert cap.trace.nodes[0].tensor.shape[0] == 2
    assert np.array_equal(cap.trace.nodes[0].value(), x[:2].double().numpy())
    assert "forward" not in net.__dict__  # the replay's forward is gone after the with block
    with pytest.raises(FpadError, match="first forward argument must be the input tensor"), cap:
        net([x])
    assert "forward" not in net.__dict__ and cap.trace is None


def test_a_failing_forward_leaves_the_model_as_it_was():
    class Gelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return nn.functional.gelu(self.lin(x))

    m = Gelu()
    cap = Capture(m)
    for _ in range(3):  # the first forward under the mode, the second on the fx copy: both refused
        with pytest.raises(Exception, match="gelu"), torch.no_grad(), cap:
            m(torch.ones(1, 3))
        assert "forward" not in m.__dict__ and cap.trace is None


def test_a_replaced_submodule_is_not_replayed():
    # the fx copy holds the modules it was built from; replacing one must not leave the copy
    # running the old one: the capture traces the model again (and, as for any capture, refuses a
    # weight it was not built with) instead of replaying silently
    from fpad.errors import FpadError

    net, cap, x = _replaying_vgg()
    net[0] = nn.Conv2d(1, 16, 3, padding=1)
    with pytest.raises(FpadError, match="not a parameter of the model"), torch.no_grad(), cap:
        net(x)
    assert "forward" not in net.__dict__
