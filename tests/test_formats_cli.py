"""The ``fpad formats`` subcommand, run through fpad.cli.main."""

import json

from fpad.cli import main


def test_table_text(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalnum()}
    assert rows["e4m3fn"][1:6] == ["4/3", "7", "253", "448", "2^-6"]
    assert rows["e5m2"][3:5] == ["247", "57344"] and rows["bf16"][3] == "65279"
    assert rows["e2m1"][3:5] == ["15", "6"] and rows["fp16"][3] == "63487"
    assert rows["e8m0"][-1] == "up" and rows["e8m0"][6] == "-"  # ties up, no subnormals


def test_table_json(capsys):
    assert main(["formats", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["e4m3fn"]["n_values"] == 253 and rows["e4m3fn"]["max"] == 448.0
    assert rows["e5m2fnuz"]["min_subnormal"] == 2.0**-17 and rows["e8m0"]["min_subnormal"] is None
    assert rows["e3m2"]["n_values"] == 63 and rows["e3m2"]["overflow"] == "saturate to +-max"
    assert rows["bf16"]["W"] == 261 and "bfloat16" in rows["bf16"]["aliases"]


def test_show(capsys):
    assert main(["formats", "show", "float8_e4m3fn"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["name"] == "e4m3fn" and lines["n_values"] == "253" and lines["max"] == "448"
    assert lines["min_subnormal"] == "2^-9 (0.001953125)" and lines["overflow"] == "NaN"


def test_show_values_json(capsys):
    assert main(["formats", "show", "e2m1", "--values", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["values"] == [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert main(["formats", "show", "e5m3fnuz", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["family"], d["bias"], d["n_values"], d["max"]) == ("fnuz", 16, 2 * 255 + 1, 61440.0)


def test_show_values_text(capsys):
    assert main(["formats", "show", "e8m0", "--values"]) == 0
    out = capsys.readouterr().out.splitlines()
    i = out.index("values (255, sorted):")
    assert out[i + 1] == repr(2.0**-127) and out[-1] == repr(2.0**127) and len(out) - i - 1 == 255


def test_unknown_format_exits_2(capsys):
    assert main(["formats", "show", "e4m3xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpad: error: unknown format 'e4m3xyz'") and err.count("\n") == 1
    assert main(["formats", "show", "e9m40"]) == 2
    assert "E must be in 1..8" in capsys.readouterr().err
