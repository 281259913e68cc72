"""``fpad check`` and ``fpad examples`` through fpad.cli.main: verdicts, JSON, and one-line errors."""

import json
from pathlib import Path

import pytest

from fpad.cli import main

NETS = Path(__file__).resolve().parents[1] / "fpad" / "nets"


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def check_json(capsys, *argv):
    rc, out, err = run(capsys, "check", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def assert_one_line_error(rc, err, *words):
    assert rc == 2
    assert "Traceback" not in err
    assert err.startswith("fpad: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err


# -- errors that never reach the oracle ------------------------------------------------------------
def test_usage_error_ends_in_one_error_line(capsys):
    rc, _, err = run(capsys, "check", "--example", "lemma3.toml", "--bogus")
    assert rc == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("fpad: error: ") and "--bogus" in err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--at" in out and "--example" in out and "--free" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["check", "missing.toml", "-f", "e4m3fn"], ["missing.toml", "does not exist"]),
        (["check", "-f", "e4m3fn"], ["either a network file or --example"]),
        (["check", str(NETS / "lemma3.toml"), "--example", "lemma3", "-f", "e4m3fn"], ["not both"]),
        (["check", "--example", "nosuch", "-f", "e4m3fn"], ["unknown example 'nosuch'", "lemma3.toml"]),
        (["check", "--example", "nosuch"], ["unknown example 'nosuch'"]),  # named before the format
        (["check", "--example", "lemma3.toml"], ["--format"]),
        (["check", "--example", "lemma3.toml", "-f", "e9m9"], ["e9m9"]),
        (["check", "--example", "lemma3.toml", "-f", "e4m3fn"], ["--at", "L1.b[0]=0"]),
        (["check", "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.b[0]=0.3"], ["not in e4m3fn", "0.28125 and 0.3125"]),
        (["check", "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.W[0,0]=1"], ["unknown parameter", "L1.b[0]"]),
        (["check", "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.b[0]=0", "--free", "L1.W"], ["--free", "no parameter tensor L1.W", "L1.b [1]"]),
        (["check", "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.b[0]=0", "--proxy", "torch"], ["unknown proxy 'torch'"]),
    ],
)
def test_bad_input_one_line(capsys, argv, words):
    rc, out, err = run(capsys, *argv)
    assert_one_line_error(rc, err, *words)


def test_bad_files_one_line(capsys, tmp_path):
    f = tmp_path / "net.toml"
    f.write_text("inputs = [[1.0]]\n[[layers]\n")
    rc, _, err = run(capsys, "check", str(f), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "net.toml", "malformed TOML")
    f.write_text('inputs = [[1.0]]\n[[layers]]\nkind = "dense"\nwidht = 2\n')
    rc, _, err = run(capsys, "check", str(f), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "layers[0] (dense)", "unknown key 'widht'", "width")
    f.write_text('inputs = [[1.0]]\n[[layers]]\nkind = "dense"\nwidth = 2\nactivation = "gelu"\n[params]\nfree = ["L1.b"]\n')
    rc, _, err = run(capsys, "check", str(f), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "layers[0].activation", "unknown activation 'gelu'")
    f.write_text('inputs = [[1.0]]\n[[layers]]\nkind = "dense"\nwidth = 2\n')
    rc, _, err = run(capsys, "check", str(f), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "no free parameters", "L1.W [2, 1]")
    f.write_bytes(b"\xff\xfe\x00")
    rc, _, err = run(capsys, "check", str(f), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "cannot read network file")
    rc, _, err = run(capsys, "check", str(tmp_path), "-f", "e4m3fn", "--at", "x=0")
    assert_one_line_error(rc, err, "cannot read network file")


# -- verdicts (need the oracle) --------------------------------------------------------------------
def test_lemma3_inc_and_thm4_fix(capsys):
    pytest.importorskip("fpad.oracle")
    r = check_json(capsys, "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.b[0]=0")
    assert r["result"]["verdict"] == "inc"
    assert r["result"]["ad"] == ["0"] and r["result"]["dp"] == ["1/6"]
    assert r["kinks_total"] == 4 and r["M"] == 253 and r["proxy"] == "pytorch"
    assert r["has_bias"] == {"1": "distinct"}
    for proxy in ("left", "right", "mix:1/3"):  # one lambda at both kinks: Thm 4, AD right
        r = check_json(capsys, "--example", "lemma3.toml", "-f", "e4m3fn", "--at", "L1.b[0]=0", "--proxy", proxy)
        assert r["result"]["verdict"] == "ok" and r["result"]["ad"] == ["1/6"]
    rc, out, _ = run(capsys, "check", str(NETS / "lemma3.toml"), "-f", "e2m1", "--at", "L1.b[0]=1")
    assert rc == 0 and "verdict: differentiable and AD is correct" in out and "touched: none" in out


def test_shipped_counterexamples(capsys):
    pytest.importorskip("fpad.oracle")
    r = check_json(capsys, "--example", "lemma2.toml", "-f", "e5m2", "--at", "L1.W[0,0]=0")
    assert (r["result"]["verdict"], r["result"]["ad"], r["result"]["dp"]) == ("inc", ["0"], ["1"])
    r = check_json(capsys, "--example", "lemma7.toml", "-f", "e4m3fn", "--at", "L1.W[0,0,0]=0,L1.b[0]=0")
    assert (r["result"]["verdict"], r["result"]["ad"], r["result"]["dp"]) == ("inc", ["2", "0"], ["1", "0"])
    # tiny CNN at b = (-2, 0): channel 0 has two positions on the ReLU kink, both 0 in its window
    r = check_json(capsys, "--example", "cnn_tiny.toml", "-f", "e4m3fn", "--at", "L1.b[0]=-2,L1.b[1]=0")
    assert r["result"]["verdict"] == "ndf" and r["result"]["clarke_ok"]
    assert r["kinks_total"] == 8 and r["has_bias"] == {"1": "shared"}


def test_issue_example_with_free_override(capsys):
    pytest.importorskip("fpad.oracle")
    f = str(NETS / "issue_example.toml")
    r = check_json(capsys, f, "-f", "e4m3fn", "--at", "L1.W[0,0]=1,L1.W[1,0]=-1,L1.b[0]=-1,L1.b[1]=2")
    # sample x = 1 puts neuron 0 on its kink with weight 1 downstream: not differentiable
    assert r["result"]["verdict"] == "ndf" and r["result"]["bouligand_ok"]
    assert r["free"] == ["L1.W[0,0]", "L1.W[1,0]", "L1.b[0]", "L1.b[1]"]
    assert r["fixed"]["L2.W[0,0]"] == "1" and r["fixed"]["L2.W[0,1]"] == "-1/2"
    r = check_json(capsys, f, "-f", "e4m3fn", "--free", "L1.b[1],L1.b[0]", "--at", "L1.b[0]=0,L1.b[1]=0")
    assert r["free"] == ["L1.b[1]", "L1.b[0]"]
    assert r["result"]["params"] == ["L1.b[1]", "L1.b[0]"]


def test_text_report_header(capsys):
    pytest.importorskip("fpad.oracle")
    rc, out, _ = run(capsys, "check", "--example", "lemma2.toml", "-f", "e4m3fn", "--at", "L1.W[0,0]=0")
    assert rc == 0
    assert "format: e4m3fn (|M| = 253); proxy: pytorch; n (kinks) = 2" in out
    assert "verdict: differentiable, but AD is WRONG (inc)" in out


def test_catalogue_examples_run_at_their_default_point(capsys):
    pytest.importorskip("fpad.oracle")
    ex = pytest.importorskip("fpad.examples")
    assert ex.EXAMPLES
    from fpad.formats import get_format

    for name, example in ex.EXAMPLES.items():
        r = check_json(capsys, "--example", name)  # the example's default format and point
        assert r["format"] == example.default_format
        expected = example.expected(get_format(example.default_format))
        assert r["result"]["verdict"] == expected["verdict"], name


# -- fpad examples ------------------------------------------------------------------------------------
def test_examples_lists_shipped_files(capsys):
    rc, out, _ = run(capsys, "examples")
    assert rc == 0
    for name in ("lemma2.toml", "lemma3.toml", "lemma7.toml", "cnn_tiny.toml", "issue_example.toml"):
        assert name in out
    assert "The example network of issue 3" in out  # the issue's file has no description key
    rc, out, _ = run(capsys, "examples", "--json")
    d = json.loads(out)
    assert d["files"]["lemma3.toml"]["description"].startswith("ICLR 2024 Lemma 3")
