"""What a newcomer reads (issue 8): the schema ships with the package, help text is plain, the
drawn fixed parameters are printed, a reused --out holds only this run's files."""

from __future__ import annotations

import json
import tomllib

from fpad import reproduce
from fpad.cli import main
from fpad.schema import SCHEMA


def test_schema_is_shipped_and_valid_toml(capsys):
    assert main(["schema"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("# fpad network file (TOML)") and "L{l}.W[i,j]" in out
    d = tomllib.loads(SCHEMA)
    assert set(d) == {"description", "inputs", "input_shape", "layers", "output", "ad", "params"}
    assert d["params"]["free"] == ["L1.W", "L1.b"] and "fixed" in d["params"]


def test_sweep_help_is_plain_text(capsys):
    try:
        main(["sweep", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out, _ = capsys.readouterr()
    assert "``" not in out and ":mod:" not in out and "inc-table: inc with" in out


def test_reproduce_help_uses_the_sweep_spellings(capsys):
    try:
        main(["reproduce", "--help"])
    except SystemExit:
        pass
    out, _ = capsys.readouterr()
    assert "ad-map:" in out and "inc-table:" in out and "ad_map" not in out.replace("\n", " ").split("--only")[0]


def test_count_prints_drawn_fixed_parameters(capsys, tmp_path):
    net = tmp_path / "n.toml"
    net.write_text('inputs = [[1.0]]\n[[layers]]\nkind = "dense"\nwidth = 1\nbias = true\nactivation = "relu"\n'
                   '[params]\nfree = ["L1.W"]\nseed = 0\n')
    got = {}
    for fmt in ("e2m1", "e3m2"):
        assert main(["count", str(net), "--format", fmt, "--json"]) == 0
        d = json.loads(capsys.readouterr()[0])
        assert d["drawn_fixed"]["seed"] == 0 and list(d["drawn_fixed"]["values"]) == ["L1.b[0]"]
        got[fmt] = d["drawn_fixed"]["values"]["L1.b[0]"]
        assert main(["count", str(net), "--format", fmt]) == 0
        text = capsys.readouterr()[0]
        assert f"drawn    L1.b[0]={got[fmt]} (fixed parameters drawn from {fmt} with seed 0)" in text


def test_reused_out_keeps_only_this_runs_files(tmp_path, monkeypatch):
    out = tmp_path / "o"
    (out / "results").mkdir(parents=True)
    (out / "figures").mkdir()
    prov = {"fpad_version": "0.1.1"}
    (out / "results" / "tightness.json").write_text(json.dumps(
        {"provenance": {**prov, "analysis": "tightness", "figures": ["tightness_old.png"]}}))
    (out / "results" / "gone.json").write_text(json.dumps(
        {"provenance": {**prov, "analysis": "gone", "figures": ["gone.png"]}}))
    (out / "results" / "mine.json").write_text("{}")  # not fpad's: never touched
    for f in ("tightness_old.png", "gone.png", "mine.png"):
        (out / "figures" / f).write_bytes(b"x")
    monkeypatch.setattr(reproduce, "ANALYSES", {"tightness": reproduce.ANALYSES["tightness"]})
    reproduce.run(out, quick=True, only=["tightness"])  # --only: other analyses' files are kept
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == ["gone.png", "mine.png", "tightness.png"]
    reproduce.run(out, quick=True)  # a whole run: the analysis that no longer exists goes
    assert sorted(p.name for p in (out / "results").iterdir()) == ["mine.json", "tightness.json"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["mine.png", "tightness.png"]
