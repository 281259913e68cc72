"""Small bad inputs to ``fpad count`` / ``fpad check`` and in network files: one line naming the
option or key, exit 2, no traceback, nothing silently ignored or relabelled."""

import json

import pytest

from fpad.cli import main
from test_engine import NET

FREE = ["--free", "L1.W[0,0]", "L1.b[0]"]
NET_HEAD = 'inputs = [[1.0], [3.0]]\n[[layers]]\nkind = "dense"\nwidth = 2\nactivation = "relu"\n'


def _error(capsys, *argv) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fpad: error: ")
    return lines[0]


@pytest.mark.parametrize("value", ["nan", "-inf", "0", "-5"])
def test_max_seconds_must_be_positive(capsys, value):
    # 253^4 points: big enough that the budget is checked (with nan, int(nan) raised there).
    msg = _error(capsys, "count", NET, "--format", "e4m3fn", "--free", "L1.W", "L1.b",
                 "--method", "exhaustive", "--no-store", f"--max-seconds={value}")
    assert "--max-seconds must be a positive number of seconds (or inf for no limit)" in msg
    assert value.lstrip("-") in msg


def test_negative_seed_is_refused(capsys):
    # random.Random(-7) draws what random.Random(7) draws: refuse rather than mislabel.
    msg = _error(capsys, "count", NET, "--format", "e2m1", *FREE, "--sample", "20", "--seed", "-7",
                 "--no-store")
    assert msg == "fpad: error: --seed must be an integer >= 0, got -7"
    assert main(["count", NET, "--format", "e2m1", *FREE, "--sample", "20", "--seed", "7",
                 "--no-store", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["extra"]["seed"] == 7


def _net(tmp_path, text: str) -> str:
    path = tmp_path / "net.toml"
    path.write_text(NET_HEAD + text)
    return str(path)


@pytest.mark.parametrize("command", ["count", "check"])
def test_parameter_both_free_and_fixed(capsys, tmp_path, command):
    net = _net(tmp_path, '[params]\nfree = ["L1.b", "L1.W[1,0]"]\n[params.fixed]\n"L1.b[1]" = 0.5\n')
    msg = _error(capsys, command, net, "--format", "e2m1")
    assert f"{net}: [params.fixed].L1.b[1]: L1.b[1] is also in [params].free" in msg
    assert "fixed value would be ignored; remove it from one of the two" in msg


def test_fixed_tensor_all_free_names_every_entry(capsys, tmp_path):
    net = _net(tmp_path, '[params]\nfree = ["L1"]\n[params.fixed]\n"L1.W" = [[1.0], [0.5]]\n')
    msg = _error(capsys, "check", net, "--format", "e2m1")
    assert "[params.fixed].L1.W: L1.W[0,0], L1.W[1,0] are also in [params].free" in msg


def test_fixed_tensor_with_some_free_entries_keeps_the_others(tmp_path):
    """The tensor syntax needs every entry (the precision sweep frees one neuron of a fixed
    layer this way): the free entry is enumerated, the others keep their fixed values."""
    from fractions import Fraction

    from fpad.formats import get_format
    from fpad.network import NetworkSpec

    net = _net(tmp_path, '[params]\nfree = ["L1.W[0,0]"]\n[params.fixed]\n"L1.W" = [[1.0], [0.5]]\n')
    p = NetworkSpec.from_toml(net).build(get_format("e2m1"))
    assert p.free_names == ["L1.W[0,0]"]
    assert p.values[p.param_names.index("L1.W[1,0]")] == Fraction(1, 2)


@pytest.mark.parametrize("text, key, literal", [
    ('[output]\nreduce = "weighted"\nweights = [1.0, nan]\n[params]\nfree = ["L1.b"]\n',
     "[output].weights[1]", "nan"),
    ('[params]\nfree = ["L1.b"]\n[params.fixed]\n"L1.W" = [[-inf], [1.0]]\n',
     "[params.fixed].L1.W[0,0]", "-inf"),
    ('[params]\nfree = ["L1.b"]\n[params.fixed]\n"L1.W[1,0]" = +nan\n',
     "[params.fixed].L1.W[1,0]", "+nan"),
])
def test_non_finite_values_name_their_key(capsys, tmp_path, text, key, literal):
    net = _net(tmp_path, text)
    msg = _error(capsys, "check", net, "--format", "e2m1")
    assert f"{net}: {key}: {literal} is not allowed; values must be finite decimals" in msg
    assert "malformed TOML" not in msg


def test_non_finite_input_names_its_key(capsys, tmp_path):
    path = tmp_path / "net.toml"
    path.write_text(NET_HEAD.replace("[3.0]", "[inf]") + '[params]\nfree = ["L1.b"]\n')
    msg = _error(capsys, "count", str(path), "--format", "e2m1", "--no-store")
    assert f"{path}: inputs[1,0]: inf is not allowed; values must be finite decimals" in msg


@pytest.mark.parametrize("line, says", [
    ("width = 2.5", "2.5 is not an integer >= 1"), ("width = -0.125", "-0.125 is not an integer >= 1"),
    ("width = inf", "inf is not an integer >= 1"),
    ("width = 2.0", "2 is written as a decimal; integers take no decimal point or exponent"),
    ("width = 1e300", "1e+300 is written as a decimal; integers take no decimal point or exponent"),
])
def test_fractional_width_is_shown_as_written(capsys, tmp_path, line, says):
    path = tmp_path / "net.toml"
    path.write_text(NET_HEAD.replace("width = 2", line) + '[params]\nfree = ["L1.b"]\n')
    msg = _error(capsys, "check", str(path), "--format", "e2m1")
    assert "Fraction" not in msg and f"layers[0].width: {says}; write e.g. width = 1" in msg


def test_fractional_seed_is_shown_as_written(capsys, tmp_path):
    msg = _error(capsys, "check", _net(tmp_path, '[params]\nfree = ["L1.b"]\nseed = 0.5\n'), "--format", "e2m1")
    assert "[params].seed: 0.5 is not an integer >= 0" in msg
