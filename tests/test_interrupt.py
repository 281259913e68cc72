"""Ctrl-C on a real ``fpad`` process: one line, exit status 130, whatever was running.

The signal is sent once the process has used some CPU time (past its imports), not after a wall
-clock delay: on a loaded machine a fixed delay can land before the handler exists.

Issue 8: a SIGINT landing inside numba (a kernel returning, or the compiler writing its cache)
surfaced as SystemError / RuntimeError with a 47-line traceback and exit status 1. The signal
is sent while numba compiles (a fresh cache directory), while the kernels count, and during a
``reproduce``; what the line says must be true for the run (a store resumes, nothing else does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nets import one_hidden_toml

NET = one_hidden_toml(2, "[[1.0], [3.0]]", '["L1.W", "L1.b"]')


def _cpu_seconds(pid: int) -> float:
    """CPU time used by process ``pid`` so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _interrupt(args, tmp_path, busy_s, cache):
    """Start ``python -m fpad ARGS``; once it has used ``busy_s`` seconds of CPU (past its imports,
    whatever the machine's load), send SIGINT; return (exit status, stderr lines)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to see when the process is busy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NUMBA_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    p = subprocess.Popen([sys.executable, "-m", "fpad", *args], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while p.poll() is None and _cpu_seconds(p.pid) < busy_s and time.monotonic() < deadline:
        time.sleep(0.05)
    if p.poll() is not None:
        pytest.fail(f"finished before the interrupt: {p.communicate()}")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, err.strip().splitlines()


@pytest.mark.parametrize("after_s,fresh_cache", [(2.0, True), (4.0, False)],
                         ids=["while-numba-compiles", "while-kernels-count"])
def test_sigint_during_count(tmp_path, after_s, fresh_cache):
    (tmp_path / "net.toml").write_text(NET)
    cache = tmp_path / "numba-cache" if fresh_cache else Path(os.environ.get("NUMBA_CACHE_DIR", tmp_path / "c"))
    rc, lines = _interrupt(["count", "net.toml", "--format", "e4m3fn", "--method", "exhaustive",
                            "--store", "run.sqlite", "--max-seconds", "inf"], tmp_path, after_s, cache)
    assert rc == 130 and len(lines) == 1 and lines[0].startswith("fpad: interrupted; "), lines
    if (tmp_path / "run.sqlite").exists():
        assert "run.sqlite; run the same command again to resume" in lines[0]
    else:
        assert lines[0] == "fpad: interrupted; nothing was saved; a re-run starts over"


def test_sigint_during_sample_says_nothing_resumes(tmp_path):
    (tmp_path / "net.toml").write_text(NET)
    rc, lines = _interrupt(["count", "net.toml", "--format", "bf16", "--sample", "300000", "--no-store"],
                           tmp_path, 3.0, tmp_path / "c")
    assert rc == 130 and lines == ["fpad: interrupted; nothing was saved; a re-run starts over"]


def test_sigint_during_reproduce(tmp_path):
    # several analyses (about 10 s of CPU), so the run is still busy when the signal lands: the
    # precision sweep alone now takes under a second after its imports
    rc, lines = _interrupt(["reproduce", "--quick", "--only", "precision", "width", "inc-table", "--out", "o"],
                           tmp_path, 3.0, tmp_path / "c")
    assert rc == 130 and len(lines) >= 1, lines
    assert lines[-1].startswith("fpad: interrupted; the analyses finished so far are in o/results")
    assert all(not ln.startswith(("Traceback", "  File")) for ln in lines)
    assert (tmp_path / "o" / "report.md").read_text().count("INCOMPLETE") == 1
