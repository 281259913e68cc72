"""The sqlite3 progress store: round trip, run-key refusal, corruption detection."""

import sqlite3

import pytest

from fpad.errors import FpadError
from fpad.store import ProgressStore, run_key


def test_run_key_depends_on_every_input():
    base = ("abc", "e4m3fn", ["L1.W[0,0]", "L1.b[0]"], "exhaustive", 4096)
    k = run_key(*base)
    assert len(k) == 16 and k == run_key(*base)
    variants = [
        ("abd",) + base[1:],
        base[:1] + ("e5m2",) + base[2:],
        base[:2] + (["L1.b[0]", "L1.W[0,0]"],) + base[3:],
        base[:3] + ("sample:n=10:seed=0",) + base[4:],
        base[:4] + (8192,),
    ]
    assert len({k} | {run_key(*v) for v in variants}) == 6
    assert run_key(*base, version="9.9") != k


def test_commit_and_resume_round_trip(tmp_path):
    path = tmp_path / "runs" / "r.sqlite"
    with ProgressStore(path, "k1", 5, {"format": "e4m3fn"}) as st:
        assert st.completed() == {}
        st.commit(3, {"counts": {"ndf": 12345678901234567890}})
        st.commit(0, {"counts": {"ndf": 1}})
        st.commit(0, {"counts": {"ndf": 1}})  # idempotent re-commit
    with ProgressStore(path, "k1", 5) as st:
        done = st.completed()
    assert done == {0: {"counts": {"ndf": 1}}, 3: {"counts": {"ndf": 12345678901234567890}}}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_other_run_key_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    ProgressStore(path, "k1", 5).close()
    with pytest.raises(FpadError, match="belongs to another run"):
        ProgressStore(path, "k2", 5)


def test_commit_outside_run_rejected(tmp_path):
    with ProgressStore(tmp_path / "r.sqlite", "k", 2) as st, pytest.raises(ValueError):
        st.commit(2, {})


def test_garbage_file_is_reported_corrupted(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not an sqlite database, just bytes" * 100)
    with pytest.raises(FpadError, match="corrupted"):
        ProgressStore(path, "k", 3)


def test_truncated_database_is_reported_corrupted(tmp_path):
    path = tmp_path / "r.sqlite"
    with ProgressStore(path, "k", 400) as st:
        for i in range(400):
            st.commit(i, {"counts": {"ndf": i, "pad": "x" * 200}})
    # Fold the WAL into the main file, then cut the file in half.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FpadError, match="corrupted"):
        ProgressStore(path, "k", 400).completed()


@pytest.mark.parametrize("payload, digest_of_payload, what", [
    ('{"counts": {"ndf": 2}}', False, "checksum"),  # edited row, stale checksum
    ("{not json", True, "not valid JSON"),  # consistent checksum but unparsable
])
def test_damaged_chunk_row_is_reported(tmp_path, payload, digest_of_payload, what):
    from fpad.store import _checksum

    path = tmp_path / "r.sqlite"
    with ProgressStore(path, "k", 3) as st:
        st.commit(1, {"counts": {"ndf": 1}})
    with sqlite3.connect(path) as db:
        digest = _checksum(payload) if digest_of_payload else None
        if digest is None:
            db.execute("UPDATE chunks SET payload = ? WHERE idx = 1", (payload,))
        else:
            db.execute("UPDATE chunks SET payload = ?, sha256 = ? WHERE idx = 1", (payload, digest))
    with ProgressStore(path, "k", 3) as st, pytest.raises(FpadError, match=what):
        st.completed()


def test_chunk_count_mismatch_is_reported(tmp_path):
    path = tmp_path / "r.sqlite"
    ProgressStore(path, "k", 3).close()
    with pytest.raises(FpadError, match="records 3 chunks"):
        ProgressStore(path, "k", 4)
