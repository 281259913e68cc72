"""``fpad count`` through fpad.cli.main: JSON keys and values, labelled estimates, bad input."""

import json
import os

import pytest

from fpad.cli import main
from test_engine import NET, brute, problem

FREE = ["--free", "L1.W[0,0]", "L1.b[0]"]


def run(capsys, *argv):
    code = main(["count", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_exact_count(capsys, tmp_path):
    code, out, err = run(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive",
                         "--json", "--store", str(tmp_path / "s.sqlite"), "--chunk-size", "50")
    assert code == 0 and err == ""  # --json: no progress bar
    d = json.loads(out)
    assert (d["points"], d["touched"], d["ndf"], d["inc"]) == brute(problem()) == (225, 21, 21, 0)
    assert d["format"] == "e2m1" and d["M"] == 15 and d["free"] == ["L1.W[0,0]", "L1.b[0]"]
    assert d["density"] == "7/75" and d["bound"] == "4/15" and d["bound_holds"] is True
    assert d["method"] == "exhaustive" and d["estimate"] is False and d["ci"] is None
    assert d["kinks_total"] == 4 and d["clarke_ok"] == 21 and len(d["witnesses"]["ndf"]) == 3
    for k in ("per_neuron", "elapsed_s"):
        assert k in d
    assert d["extra"]["chunks"] == 5 and d["extra"]["resumed_chunks"] == 0
    # Same command again: every chunk comes from the store, same counts.
    code, out, _ = run(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive",
                       "--json", "--store", str(tmp_path / "s.sqlite"), "--chunk-size", "50")
    d2 = json.loads(out)
    assert d2["extra"]["resumed_chunks"] == 5
    assert {k: d2[k] for k in ("points", "ndf", "witnesses")} == {k: d[k] for k in ("points", "ndf", "witnesses")}


def test_human_output_labels_estimates_loudly(capsys):
    code, out, _ = run(capsys, NET, "--format", "e2m1", *FREE, "--sample", "100", "--seed", "4", "--no-store")
    assert code == 0
    assert "*** ESTIMATE (sample): 100 points drawn uniformly (seed 4)" in out
    assert "95% interval [" in out and out.rstrip().endswith("not an exact count of the grid.")
    code, out, _ = run(capsys, NET, "--format", "e2m1", *FREE, "--line", "L1.b[0]", "--sample", "6", "--no-store", "--json")
    d = json.loads(out)
    assert d["method"] == "line" and d["estimate"] is True and d["points"] == 90
    assert d["ci"]["interval"].startswith("korn-graubard") and d["ci"]["ndf"][0] <= d["ci"]["ndf"][1]


def test_human_output_exact(capsys):
    code, out, _ = run(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive", "--no-store")
    assert code == 0 and out.startswith("EXACT (exhaustive): every one of the 15^2 grid points")
    assert "ndf density 7/75" in out and "bound n/|M| = 4/15" in out and "ESTIMATE" not in out


def _error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fpad: error: ")
    return lines[0]


def test_unknown_free_name_lists_valid_ones(capsys):
    msg = _error(capsys, NET, "--format", "e2m1", "--free", "L9.W")
    assert "L9.W" in msg and "L1.W [2, 1]" in msg


def test_empty_free_set(capsys):
    msg = _error(capsys, NET, "--format", "e2m1", "--free")
    assert "no free parameters" in msg and "L1.W" in msg


def test_grid_that_cannot_finish_is_refused_with_size(capsys):
    msg = _error(capsys, NET, "--format", "e4m3fn", "--free", "L1.W", "L1.b", "--method", "exhaustive",
                 "--max-seconds", "2")
    assert "253^4 = 4,097,152,081 points" in msg and "would take about" in msg and "--sample" in msg


def test_line_parameter_must_be_free(capsys):
    msg = _error(capsys, NET, "--format", "e2m1", *FREE, "--line", "L1.W[1,0]", "--no-store")
    assert "free parameters: L1.W[0,0], L1.b[0]" in msg


def test_corrupted_store(capsys, tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"\x00garbage" * 500)
    msg = _error(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive", "--store", str(path),
                 "--chunk-size", "50")
    assert "corrupted" in msg and str(path) in msg


def test_dask_address_that_does_not_answer(capsys):
    pytest.importorskip("distributed")
    msg = _error(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive", "--no-store",
                 "--chunk-size", "50", "--dask", "tcp://127.0.0.1:9", "--dask-timeout", "1")
    assert "tcp://127.0.0.1:9 did not answer within 1 s" in msg


def test_dask_missing_says_what_to_install(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    msg = _error(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive", "--no-store",
                 "--chunk-size", "50", "--dask", "local")
    assert 'pip install "fpad[dask]"' in msg


def test_default_store_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, NET, "--format", "e2m1", *FREE, "--method", "exhaustive",
                       "--chunk-size", "100", "--json")
    d = json.loads(out)
    assert code == 0 and os.path.exists(tmp_path / "fpad-runs" / f"{d['extra']['run_key']}.sqlite")


def test_example_structured_and_exhaustive_agree(capsys):
    # ICLR 2024 Lemma 3, e5m2: HS(3 + b) + HS(-3 + b) has 4 kinks at b in {0, +-6}: b = +-6 are
    # ndf, b = 0 is differentiable with AD wrong (inc); 247 values of b.
    got = {}
    for method in ("structured", "exhaustive"):
        code, out, _ = run(capsys, "--example", "lemma3", "--format", "e5m2", "--method", method, "--json", "--no-store")
        d = json.loads(out)
        got[method] = (d["points"], d["touched"], d["ndf"], d["inc"], d["clarke_ok"], d["method"])
    assert got["structured"] == (247, 3, 2, 1, 2, "structured")
    assert got["exhaustive"] == (247, 3, 2, 1, 2, "exhaustive")
