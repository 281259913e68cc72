"""fpad.cost with PyTorch: the ReLU'(0) Functions, the AB reduction bit for bit in float64 against
the integer product and against the exact Fraction twin, and the timing code on tiny sizes (values
of the rows' structure and exact op counts only; no timed assertions)."""

import json
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from fpad.cli import main  # noqa: E402
from fpad.cost import directional, opcount, overhead, timing  # noqa: E402


@pytest.mark.parametrize("d0,want", [(0, [0.0, 0.0, 1.0]), (1, [0.0, 1.0, 1.0])])
def test_relu_function_derivative_at_zero(d0, want):
    x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    y = overhead.relu_with_derivative_at_zero(d0)(x)
    assert y.tolist() == [0.0, 0.0, 2.0]
    (g,) = torch.autograd.grad(y.sum(), x)
    assert g.tolist() == want


def test_hidden_programs_shapes_and_values():
    h = torch.tensor([[-2.0, 3.0, 0.5, -1.0] * 8])  # 1 x 32
    assert overhead.activate("maxout", h).shape == (1, 32 // opcount.MAXOUT_K)
    assert overhead.activate("maxout", h).tolist() == [[3.0] * 4]
    assert overhead.activate("maxpool", h[:, :4]).tolist() == [[3.0, 3.0, 3.0, 0.5]]
    assert overhead.activate("hardtanh", h[:, :4]).tolist() == [[-1.0, 1.0, 0.5, -1.0]]
    params = overhead.init_params(64, 5, 3, "maxout")
    assert [tuple(p.shape) for p in params[::2]] == [(40, 64), (40, 5), (40, 5), (10, 5)]
    x, y = overhead.digits(3)
    assert x.shape == (3, 64) and y.tolist() == [0, 1, 2] and float(x.max()) <= 1.0
    assert overhead.digits(2, 784)[0].shape == (2, 784)


def test_recover_product_bit_for_bit_float64():
    rng = np.random.default_rng(0)
    for p in (1, 5, 32):
        Ai, Bi = rng.integers(-64, 65, (p, p)), rng.integers(-64, 65, (p, p))
        got = directional.recover_product(torch.tensor(Ai, dtype=torch.float64), torch.tensor(Bi, dtype=torch.float64))
        assert np.array_equal(got.numpy().view(np.int64), (Ai @ Bi).astype(np.float64).view(np.int64))
    assert directional.reduction_check(p=16)["exact"] is True


def test_torch_directional_derivatives_equal_the_exact_twin():
    # a point where some pre-activations are exactly 0 and others are not; dyadic data: float64 exact
    A = [[1, -2, 0, 1], [3, 1, -1, 0], [0, 0, 2, -2], [1, 1, 1, 1]]
    x = [1, 0.5, -0.25, -0.25]  # A x = (0, 3.75, 0, 1)
    V = [[2, -1, 0.5], [1, 1, -3], [-3, 4, 0], [0.125, 0, 1]]
    got = directional.relu_affine_directional(torch.tensor(A, dtype=torch.float64),
                                              torch.tensor(x, dtype=torch.float64),
                                              torch.tensor(V, dtype=torch.float64))
    want = directional.exact_relu_affine_directional(A, [Fraction(v) for v in x], V)
    assert [[Fraction(v) for v in row] for row in got.tolist()] == want


def test_overhead_measure_tiny_rows():
    row = overhead.measure(1, 3, 2, repeats=3, warmup=1, min_block_s=0.0005)
    assert row["omega_ops_exact"] == str(opcount.mlp_ops(64, 3, 1, 2).omega)
    assert (row["ops_fwd"], row["ops_bwd"]) == (opcount.mlp_ops(64, 3, 1, 2).forward, opcount.mlp_ops(64, 3, 1, 2).backward)
    assert row["omega_time_q25"] <= row["omega_time"] <= row["omega_time_q75"]
    assert row["regime"] == ("dispatch" if row["dispatch_share"] >= timing.DISPATCH_FLAG else "arithmetic")
    a, b = torch.ones(1), torch.ones(1)
    assert timing.aten_ops(lambda: torch.add(a, b)) == 1
    t = timing.paired_times({"a": lambda: None, "b": lambda: None}, repeats=4, warmup=0, min_block_s=0.0001)
    assert len(t["a"]) == len(t["b"]) == 4 and set(t["_inner"]) == {"a", "b"}
    assert timing.quantiles([1, 2, 3, 4, 5]) == (2.0, 3.0, 4.0)


def test_cli_overhead_json_rows(capsys):
    assert main(["sweep", "overhead", "--depths", "1", "--widths", "4", "--batches", "2", "--programs", "relu_d1",
                 "--repeats", "2", "--threads", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["rows"]
    assert [(r["sweep"], r["value"]) for r in rows] == [("depth", 1), ("width", 4), ("batch", 2), ("program", "relu_d1")]
    for r in rows:
        assert {"sweep", "value", "omega_time", "omega_time_iqr", "omega_ops"} <= set(r)
        cfg = {**overhead.DEFAULT, r["sweep"]: r["value"]} if r["sweep"] != "program" else overhead.DEFAULT
        want = opcount.mlp_ops(64, cfg["width"], cfg["depth"], cfg["batch"], variant=r["variant"]).omega
        assert r["omega_ops"] == float(want)
    assert data["provenance"]["torch_threads"] == 1 and data["provenance"]["torch"].startswith("2.")


def test_cli_directional_json_rows(capsys):
    assert main(["sweep", "directional", "--ps", "1", "2", "--relu-ps", "4", "--repeats", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["program"], r["p"]) for r in data["rows"]] == [("mlp", 1), ("mlp", 2), ("relu_Ax", 4)]
    assert all(r["ratio"] > 0 and r["backprop_ratio"] > 0 for r in data["rows"])
    assert data["data"]["reduction"]["exact"] is True
