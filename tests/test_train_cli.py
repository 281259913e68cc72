"""``fpad train``: the per-step log, the summary, an interrupted run, and the no-torch message."""

import json
import subprocess
import sys

import pytest

from fpad.cli import main


def test_importing_fpad_cli_does_not_import_torch():
    code = "import sys, fpad, fpad.cli, fpad.train; fpad.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "sklearn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from fpad.cli import main
sys.exit(main(["train", "--model", "fnn"]))
"""


def test_without_torch_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "fpad: error: this needs PyTorch and scikit-learn; install them with: pip install 'fpad[train]'"]


def test_help_lists_the_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(m in out for m in ("fnn", "vgg", "vgg-bn", "resnet"))


def test_run_writes_log_and_summary(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    assert main(["train", "--model", "vgg", "--max-steps", "6", "--out", str(tmp_path), "--json", "--compare-repo"]) == 0
    s = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert s["complete"] is True and s["steps"] == 6 == len(lines)
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] is True
    # every step's report: three pool layers of the VGG, max ops = B * C * H_out * W_out
    assert [p["max_ops"] for p in lines[0]["pools"].values()] == [32 * 16 * 16, 32 * 32 * 4, 32 * 64 * 1]
    assert sum(x["certified"] for x in lines) == s["certified_steps"]
    assert s["paper_repo_disagreements"]["compared"] == 6
    assert s["provenance"]["fpad_version"]


def test_interrupted_run_is_marked_incomplete(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from fpad.train import run

    calls = []
    real = run.check_trace

    def ctrl_c_at_third_step(trace, mode):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(trace, mode)
    monkeypatch.setattr(run, "check_trace", ctrl_c_at_third_step)
    with pytest.raises(KeyboardInterrupt):
        run.train("fnn", epochs=2, out=str(tmp_path))
    lines = (tmp_path / "steps.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1]) == {"event": "interrupted", "step": 2}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] is False and summary["steps"] == 2


def test_reproduce_skips_train_with_a_note_without_torch(tmp_path):
    hide = ("import importlib.util\n_find = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, p=None: None if n.split('.')[0] in ('torch', 'sklearn') else _find(n, p)\n")
    code = hide + BLOCK.replace('sys.exit(main(["train", "--model", "fnn"]))',
                                f'sys.exit(main(["reproduce", "--quick", "--only", "train", "--out", {str(tmp_path)!r}]))')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "results" / "train.json").exists()
    report = (tmp_path / "report.md").read_text()
    assert "train" in report and "skipped" in report and "fpad[train]" in report


def test_train_analysis_skips_itself_without_torch():
    code = BLOCK.replace('from fpad.cli import main\nsys.exit(main(["train", "--model", "fnn"]))',
                         "from fpad.train.experiments import train_analysis\nprint(train_analysis(quick=True).notes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == (
        "[\"skipped: this needs PyTorch and scikit-learn; install them with: pip install 'fpad[train]'\"]")
