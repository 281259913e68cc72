"""Progress stores that cannot be used: one line naming the path and what to do, exit 2, never
"corrupted ... delete it" for a healthy place; a disk filling up mid-run keeps the saved chunks;
the run key changes with the counting code, not only with the version."""

import errno
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import fpad.store
from fpad.cli import main
from fpad.engine import count
from fpad.errors import FpadError
from fpad.store import CODE_MODULES, ProgressStore, code_identity, source_digest
from test_cli_count import _error  # main(['count', ...]): one line, exit 2
from test_engine import NET, problem

ARGS = [NET, "--format", "e2m1", "--free", "L1.W[0,0]", "L1.b[0]", "--method", "exhaustive",
        "--chunk-size", "50"]  # 225 points: 5 chunks


def _not_blamed_on_the_file(msg: str) -> None:
    assert "corrupted" not in msg and "delete" not in msg


def test_directory_as_store_is_named_and_left_alone(capsys, tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    (d / "keep.txt").write_text("mine")
    msg = _error(capsys, *ARGS, "--store", str(d))
    _not_blamed_on_the_file(msg)
    assert f"progress store {d} is a directory" in msg and f"--store {d / 'run.sqlite'}" in msg
    assert sorted(p.name for p in d.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("below", ["x.sqlite", "sub/x.sqlite"])
def test_store_below_a_regular_file(capsys, tmp_path, below):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a directory")
    store = blocker / below
    msg = _error(capsys, *ARGS, "--store", str(store))
    _not_blamed_on_the_file(msg)
    assert f"cannot use the progress store {store}" in msg and f"{blocker} is a file" in msg
    assert "--no-store" in msg and "writable --store PATH" in msg
    assert blocker.read_text() == "not a directory" and sorted(tmp_path.iterdir()) == [blocker]


def test_sqlite_cannot_open_is_not_corruption(tmp_path, monkeypatch):
    """A store sqlite cannot open (as in a read-only or chmod-500 directory, which root may still
    write to, hence simulated here) is reported as such, not as corrupted."""
    def refuse(*a, **k):
        exc = sqlite3.OperationalError("unable to open database file")
        exc.sqlite_errorcode, exc.sqlite_errorname = sqlite3.SQLITE_CANTOPEN, "SQLITE_CANTOPEN"
        raise exc

    monkeypatch.setattr(fpad.store.sqlite3, "connect", refuse)
    path = tmp_path / "r.sqlite"
    with pytest.raises(FpadError) as info:
        ProgressStore(path, "k", 3)
    msg = str(info.value)
    _not_blamed_on_the_file(msg)
    assert f"cannot use the progress store {path} (cannot create or open the file there)" in msg


def test_default_store_in_read_only_working_directory(capsys, tmp_path, monkeypatch):
    """No --store, and ./fpad-runs cannot be created (simulated: a read-only mount, as the test
    below does for real where it can)."""
    monkeypatch.chdir(tmp_path)
    real_mkdir = Path.mkdir

    def read_only(self, *a, **k):
        if self.resolve().is_relative_to(tmp_path.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", read_only)
    msg = _error(capsys, *ARGS)
    assert "cannot use the progress store fpad-runs/" in msg
    assert "cannot create its directory fpad-runs: Read-only file system" in msg
    assert "--no-store" in msg and list(tmp_path.iterdir()) == []


def test_read_only_mount_for_real(tmp_path):
    """A real read-only tmpfs (needs a private mount namespace: root, or skipped)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True, timeout=10).returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m needs root)")
    fpad_cli = f"{sys.executable} -m fpad count " + " ".join(f"'{a}'" for a in ARGS)
    script = (f"mount -t tmpfs -o ro tmpfs '{ro}' || exit 99; cd '{ro}' || exit 99; "
              f"{fpad_cli}; echo \"rc=$?\"; {fpad_cli} --store '{ro}/x.sqlite'; echo \"rc=$?\"")
    env = {"PYTHONPATH": str(Path(fpad.__file__).parent.parent), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=120, env=env)
    if r.returncode == 99:
        pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.strip()}")
    assert r.stdout.split() == ["rc=2", "rc=2"], r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("fpad: error: cannot use the progress store") for x in lines)
    assert "fpad-runs: Read-only file system" in lines[0]
    assert f"{ro}/x.sqlite (" in lines[1] and "Traceback" not in r.stderr


def _fill_up(db: sqlite3.Connection) -> None:
    """Make the database full for real: cap its size at its current pages, then fill the chunk
    table's free bytes with placeholder rows (negative indices, removed before the re-run)."""
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    idx = -1
    for size in (1000, 100, 10, 1):
        try:
            while True:
                db.execute("INSERT INTO chunks VALUES (?, hex(randomblob(?)), '')", (idx, size))
                idx -= 1
        except sqlite3.OperationalError as exc:
            assert "full" in str(exc)


def test_disk_full_mid_run_keeps_saved_chunks(capsys, tmp_path, monkeypatch):
    store = tmp_path / "s.sqlite"
    real_commit = ProgressStore.commit
    calls = {"n": 0}

    def commit(self, idx, payload):
        calls["n"] += 1
        if calls["n"] == 3:
            _fill_up(self._db)
        return real_commit(self, idx, payload)

    monkeypatch.setattr(ProgressStore, "commit", commit)
    msg = _error(capsys, *ARGS, "--store", str(store))
    assert f"cannot save chunk 2 to the progress store {store} (database or disk is full)" in msg
    assert "chunks saved before it are kept" in msg
    monkeypatch.undo()
    with sqlite3.connect(store) as db:  # space freed
        assert db.execute("SELECT idx FROM chunks WHERE idx >= 0").fetchall() == [(0,), (1,)]
        db.execute("DELETE FROM chunks WHERE idx < 0")
    assert main(["count", *ARGS, "--store", str(store), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["extra"]["resumed_chunks"] == 2
    assert (resumed["points"], resumed["touched"], resumed["ndf"], resumed["inc"]) == (225, 21, 21, 0)


def test_code_identity_is_a_digest_of_the_installed_counting_modules(tmp_path):
    pkg = Path(fpad.__file__).parent
    for name in CODE_MODULES:
        shutil.copy(pkg / f"{name}.py", tmp_path / f"{name}.py")
    assert source_digest(tmp_path) == code_identity() == source_digest(pkg)
    kernels = tmp_path / "_kernels.py"
    kernels.write_bytes(kernels.read_bytes() + b"\n# a fix, same version\n")
    assert source_digest(tmp_path) != code_identity()


def test_changed_code_does_not_resume_old_chunks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = count(problem(), "exhaustive", chunk_size=50, store=True, progress=False)
    again = count(problem(), "exhaustive", chunk_size=50, store=True, progress=False)
    assert again.extra["run_key"] == first.extra["run_key"] and again.extra["resumed_chunks"] == 5
    monkeypatch.setattr(fpad.store, "code_identity", lambda: "0123456789abcdef")
    fixed = count(problem(), "exhaustive", chunk_size=50, store=True, progress=False)
    assert fixed.extra["run_key"] != first.extra["run_key"] and fixed.extra["resumed_chunks"] == 0
