"""The rounded-arithmetic analyses (issue 13): fpad sweep rounded / audit, and reproduce skipping
an analysis whose optional extra is missing."""

from __future__ import annotations

import json

import pytest

from fpad import reproduce
from fpad.cli import main
from fpad.rounded.sweep import rounded_sweep


def test_rounded_sweep_rows_are_consistent():
    a = rounded_sweep(formats=("e4m3fn",), widths=(1, 4), samples=30, ariths=("rounded:e4m3fn", "rounded:bf16"))
    assert [(r["width"], r["arith"]) for r in a.rows] == [(1, "rounded:e4m3fn"), (1, "rounded:bf16"),
                                                          (4, "rounded:e4m3fn"), (4, "rounded:bf16")]
    for r in a.rows:
        assert r["points"] == 30 and r["inc"] == 0  # exact model: bias, one sample
        finite = r["points"] - r["nonfinite"]
        assert 0 <= r["ad_branch_wrong"] <= r["flips"] <= finite  # a wrong branch is a flipped one
        lo, hi = r["flips_ci"]
        assert lo <= r["flips_f"] <= hi
        assert r["M_range"].startswith("M in [-1, 1]")


def test_audit_sweep_quick(capsys):
    pytest.importorskip("torch")
    assert main(["sweep", "audit", "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr()[0])
    rows = d["rows"]
    torch_rows = [r for r in rows if r["framework"] == "pytorch"]
    assert {r["format"] for r in rows} == {"e2m1"} and len(torch_rows) == 4 * 3 + 4 * 3 + 2 * 3 + 3
    for r in rows:
        assert sum(r[c] for c in ("equal_ad", "equal_dp", "rounding", "kink_rule", "wrong_branch", "nonfinite")) == r["points"] == 225
        if r["ops"] == "F.relu" and r["network"].startswith("relu, x = (1, -0.5)"):
            assert r["equal_ad"] == 225  # dyadic data: PyTorch's ReLU gradient is fpad's AD, every dtype


def test_reproduce_skips_an_analysis_whose_extra_is_missing(tmp_path, monkeypatch):
    spec = reproduce.ANALYSES["audit"]
    monkeypatch.setitem(reproduce.ANALYSES, "audit", reproduce.Spec(spec.run, None, spec.what, needs=("no_such_mod",)))
    out = reproduce.run(tmp_path, quick=True, only=["audit"])
    assert out["analyses"]["audit"]["skipped"].startswith("needs no_such_mod, not installed")
    report = (tmp_path / "report.md").read_text()
    assert "_skipped: needs no_such_mod" in report and "INCOMPLETE" not in report
