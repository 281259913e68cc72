"""Crash-safe progress of a long count: one sqlite3 row per finished chunk.

A long run is split into chunks (see :mod:`fpad.engine`); every finished chunk's exact counts are
committed here in their own transaction, so killing the process at any moment loses at most the
chunks in flight, and re-running the same command resumes from the committed ones.

Why this is safe:

* The database runs in WAL mode. A transaction is either fully in the WAL or not at all, so a
  process killed mid-commit leaves the previous state. With ``synchronous=NORMAL`` a commit
  survives a crash of the *process* (the OS holds the written WAL pages); only a power cut can
  lose the last few commits, and those chunks are simply recomputed -- the store is never
  inconsistent.
* Every chunk row carries the SHA-256 of its JSON payload. On opening, ``PRAGMA
  integrity_check`` must answer ``ok`` and every row must parse and match its checksum;
  otherwise :class:`~fpad.errors.FpadError` says the store is corrupted. A damaged store is
  reported, never silently reused.
* The store records the *run key* (:func:`run_key`): a hash of everything that determines
  what the chunks mean (the network's spec hash, the format, the free parameters, the method
  with its parameters, the chunk size, the fpad version and :func:`code_identity`, a hash of the
  source of the modules that decide the counts). Opening a store with a different key is refused,
  so chunks of one run can never be merged into another, and a fix to the counting code resumes
  nothing computed before it, even without a version bump.
* Only a file that sqlite itself finds damaged (or that fails the checks above) is called
  *corrupted*. A store that cannot be created or written (a directory, a read-only place, a full
  disk) is reported as such, with the path, and never with advice to delete it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from importlib import resources
from pathlib import Path

from fpad import __version__
from fpad.errors import FpadError

SCHEMA_VERSION = 1

# The modules whose code decides what a stored chunk holds: the number formats, the network's
# lowering, the exact oracle and its arithmetic, AD and the proxies, the compiled kernels, and
# which points a chunk covers (the engine's plans, the estimators' line strides).
CODE_MODULES = ("formats", "network", "graph", "activations", "proxies", "ad", "exact", "oracle",
                "_kernels", "enumerate", "estimate", "engine")

# sqlite result codes meaning the file's content is damaged; every other error (cannot open,
# read-only, disk full, I/O error, locked) is about the place, not the file, and deleting the
# file would not help.
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


@functools.cache
def code_identity() -> str:
    """16 hex digits of SHA-256 over the source of :data:`CODE_MODULES` as installed.

    Read once per process (about 300 kB, a few milliseconds), from the installed package
    files, so an edited or reinstalled fpad gets a new identity whatever its version says.
    """
    return source_digest(resources.files("fpad"))


def source_digest(package_dir) -> str:
    """16 hex digits of SHA-256 over ``NAME.py`` of every :data:`CODE_MODULES` entry in
    ``package_dir`` (a :class:`~pathlib.Path` or an :mod:`importlib.resources` traversable)."""
    h = hashlib.sha256()
    for name in CODE_MODULES:
        data = package_dir.joinpath(f"{name}.py").read_bytes()
        h.update(f"{name}.py {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()[:16]


def run_key(spec_hash: str, fmt: str, free: list[str], method: str, chunk_size: int,
            version: str = __version__, code: str | None = None) -> str:
    """The identity of a run: 16 hex digits of SHA-256 over its defining inputs.

    ``method`` is the method *with its parameters* (e.g. ``"sample:n=1000:seed=0"``), so two
    sample runs with different seeds get different stores. ``code`` defaults to
    :func:`code_identity`.
    """
    code = code_identity() if code is None else code
    blob = json.dumps([spec_hash, fmt, list(free), method, int(chunk_size), version, code],
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ProgressStore:
    """The committed chunks of one run, in one sqlite3 file.

    ``ProgressStore(path, key, n_chunks, describe)`` opens (creating if needed) the store at
    ``path`` for the run ``key`` with ``n_chunks`` chunks; ``describe`` is a JSON-able dict saved
    for humans (format, free names, method). Raises :class:`FpadError` if the file belongs to
    another run or is corrupted. Use :meth:`completed` to read the finished chunks and
    :meth:`commit` to add one. Usable as a context manager.
    """

    def __init__(self, path: str | os.PathLike, key: str, n_chunks: int, describe: dict | None = None):
        self.path = Path(path)
        self.key = key
        self.n_chunks = int(n_chunks)
        if self.path.is_dir():
            raise FpadError(f"progress store {self.path} is a directory; --store takes a file "
                            f"name, e.g. --store {self.path / 'run.sqlite'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is a file" if blocker is not None else exc.strerror or str(exc)
            raise self._unusable(f"cannot create its directory {self.path.parent}: {why}") from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
            self._check_integrity()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._init(describe or {})
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: sqlite3.Error) -> FpadError:
        """The FpadError for an sqlite error: corrupted only if sqlite says the file is damaged."""
        if getattr(exc, "sqlite_errorname", "") in _DAMAGED:
            return self._corrupted(str(exc))
        return self._unusable(self._place_error(exc))

    def _place_error(self, exc: sqlite3.Error) -> str:
        """What a non-corruption sqlite error says about the store's place, in words."""
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_CANTOPEN":
            return "cannot create or open the file there"
        if name == "SQLITE_READONLY":
            return "the file or its directory is read-only"
        return str(exc)

    def _unusable(self, why: str) -> FpadError:
        self._close_quietly()
        return FpadError(f"cannot use the progress store {self.path} ({why}); pass a writable "
                         "--store PATH, or --no-store to keep progress in memory only")

    # -- opening -----------------------------------------------------------------------------
    def _corrupted(self, what: str) -> FpadError:
        self._close_quietly()
        return FpadError(f"progress store {self.path} is corrupted ({what}); delete it to start "
                         "over or pass another --store")

    def _check_integrity(self) -> None:
        rows = self._db.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            raise self._corrupted("sqlite integrity_check: " + "; ".join(str(r[0]) for r in rows[:3]))

    def _init(self, describe: dict) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS chunks (idx INTEGER PRIMARY KEY, "
                       "payload TEXT NOT NULL, sha256 TEXT NOT NULL)")
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                rows = {"schema": str(SCHEMA_VERSION), "run_key": self.key,
                        "n_chunks": str(self.n_chunks), "fpad_version": __version__,
                        "describe": json.dumps(describe, sort_keys=True)}
                db.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())
                db.execute("COMMIT")
                return
            db.execute("COMMIT")
        except BaseException:
            self._rollback_quietly()
            raise
        if "run_key" not in meta or "n_chunks" not in meta:
            raise self._corrupted("no run key recorded")
        if meta["run_key"] != self.key:
            self._close_quietly()
            raise FpadError(f"progress store {self.path} belongs to another run (key "
                            f"{meta['run_key']}, this run {self.key}: different network, format, "
                            "free parameters, method, chunk size, fpad version or counting code); "
                            "pass another --store or delete it")
        if meta["n_chunks"] != str(self.n_chunks):
            raise self._corrupted(f"it records {meta['n_chunks']} chunks, the run has {self.n_chunks}")

    # -- reading and writing -----------------------------------------------------------------
    def completed(self) -> dict[int, dict]:
        """Chunk index -> payload of every committed chunk, each one verified.

        Raises :class:`FpadError` if a row's checksum does not match, its JSON does not parse,
        or its index is outside the run.
        """
        out = {}
        try:
            rows = self._db.execute("SELECT idx, payload, sha256 FROM chunks ORDER BY idx").fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        for idx, text, digest in rows:
            if not isinstance(idx, int) or not 0 <= idx < self.n_chunks:
                raise self._corrupted(f"chunk index {idx!r} outside 0..{self.n_chunks - 1}")
            if not isinstance(text, str) or _checksum(text) != digest:
                raise self._corrupted(f"chunk {idx} fails its checksum")
            try:
                payload = json.loads(text)
            except ValueError:
                raise self._corrupted(f"chunk {idx} is not valid JSON") from None
            if not isinstance(payload, dict):
                raise self._corrupted(f"chunk {idx} is not a JSON object")
            out[idx] = payload
        return out

    def commit(self, idx: int, payload: dict) -> None:
        """Record chunk ``idx`` as finished with ``payload``, in one durable transaction."""
        if not 0 <= idx < self.n_chunks:
            raise ValueError(f"chunk index {idx} outside 0..{self.n_chunks - 1}")
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        # The same chunk committed twice (a re-sent Dask task) has the same exact payload.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?)",
                                 (idx, text, _checksum(text)))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_quietly()
                raise
        except sqlite3.Error as exc:
            # E.g. SQLITE_FULL: earlier commits are durable (each its own transaction).
            raise FpadError(f"cannot save chunk {idx} to the progress store {self.path} "
                            f"({self._place_error(exc)}); the chunks saved before it are kept and "
                            "the same command resumes from them once the store is writable "
                            "(or use --no-store)") from None

    def close(self) -> None:
        self._db.close()

    def _rollback_quietly(self) -> None:
        # sqlite may already have rolled back (e.g. after SQLITE_FULL); the first error matters.
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
