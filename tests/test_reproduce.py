"""`fpad reproduce` and `fpad sweep`: files with the expected numbers, provenance, bad input."""

import json
from fractions import Fraction

import pytest

from fpad import reproduce, sweeps
from fpad.cli import main
from fpad.errors import FpadError


def test_reproduce_quick_only_writes_results_report_figures(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--only", "tightness", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["complete"] and list(summary["analyses"]) == ["tightness"]
    data = json.loads((tmp_path / "results" / "tightness.json").read_text())
    prov = data["provenance"]
    assert prov["fpad_version"] and prov["quick"] is True and prov["figures"] == ["tightness.png"]
    rows = {(r["format"], r["construction"]): r for r in data["rows"]}
    r = rows[("bf16", "sum_i ReLU(b_i), N=1000")]
    with sweeps.long_ints():  # the exact fraction has about 4800 digits
        assert Fraction(r["density"]) == 1 - (1 - Fraction(1, 65279)) ** 1000  # paper 4.1c: 0.015202
    assert round(r["density_f"], 6) == 0.015202
    assert r["spec_hash"] and r["method"] == "structured"
    png = (tmp_path / "figures" / "tightness.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "INCOMPLETE" not in report and "## tightness" in report and "0.6328" in report
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_interrupted_run_is_marked_incomplete(tmp_path, monkeypatch):
    def boom(q, p):
        raise KeyboardInterrupt

    monkeypatch.setitem(reproduce.ANALYSES, "counterexample",
                        reproduce.Spec(boom, None, reproduce.ANALYSES["counterexample"].what))
    with pytest.raises(KeyboardInterrupt):
        reproduce.run(tmp_path, quick=True, only=["tightness", "counterexample"])
    report = (tmp_path / "report.md").read_text()
    assert "INCOMPLETE: 1 of 2 analyses finished; missing: counterexample" in report
    assert (tmp_path / "results" / "tightness.json").exists()
    assert not (tmp_path / "results" / "counterexample.json").exists()


@pytest.mark.parametrize("argv,msg", [
    (["reproduce", "--only", "nope"], "unknown analysis nope"),
    (["sweep", "width", "--widths", "1000000"], "width sweep would take"),
    (["sweep", "width", "--widths", "0"], "positive integers"),
    (["sweep", "precision", "--formats", "e8m10"], "values"),
])
def test_bad_input_one_line_exit_2(argv, msg, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["reproduce", "--quick", "--only", "tightness", "--out", str(blocker / "sub")]) == 2
    assert "cannot write to output directory" in capsys.readouterr().err
    with pytest.raises(FpadError):
        reproduce.check_out_dir(blocker)


def test_sweep_counterexample_cli_table(capsys):
    assert main(["sweep", "counterexample", "--formats", "e2m1"]) == 0
    out = capsys.readouterr().out
    assert "| e2m1 | 15 | ReLU'(0) = 0 | 15 | 0 | 15 | 15 |" in out
