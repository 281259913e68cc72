"""``fpad count`` on grids whose counts have thousands of digits (issue 8: the README's width-1024
network crashed the CLI with Python's 4300-digit limit on int -> str, text and --json)."""

from __future__ import annotations

import json
import sys
from fractions import Fraction

from fpad.cli import main
from nets import one_hidden_toml

WIDE = one_hidden_toml(1024, "[[1.0]]", '["L1.W", "L1.b", "L2.W"]')

M, N = 253, 1024
# Closed form, input 1: neuron i is a kink of P iff w_i + b_i = 0 (M of the M^2 pairs) and v_i != 0.
NDF = M ** (3 * N) - (M**3 - M * (M - 1)) ** N


def test_width_1024_json_is_exact(tmp_path, capsys):
    (tmp_path / "w.toml").write_text(WIDE)
    assert main(["count", str(tmp_path / "w.toml"), "--format", "e4m3fn", "--json"]) == 0
    out, err = capsys.readouterr()
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # a reader of 7383-digit JSON integers needs this in Python
    try:
        d = json.loads(out)
        assert d["points"] == M ** (3 * N) and d["ndf"] == NDF and d["inc"] == 0
        assert Fraction(d["density"]) == Fraction(NDF, M ** (3 * N)) and d["bound"] == "1024/253"
    finally:
        sys.set_int_max_str_digits(old)


def test_width_1024_text_is_readable(tmp_path, capsys):
    (tmp_path / "w.toml").write_text(WIDE)
    assert main(["count", str(tmp_path / "w.toml"), "--format", "e4m3fn"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "EXACT (structured): every one of the 253^3072 grid points"
    assert "  points               2.4335e7382" in lines
    assert any(ln.startswith("  inc                            0") for ln in lines)
    assert "(3060 more; all in --json)" in out and max(map(len, lines)) < 400
    assert f"ndf density ~{float(Fraction(NDF, M ** (3 * N))):.6g} (exact fraction in --json)" in out
