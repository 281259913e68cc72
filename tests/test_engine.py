"""Orchestration: chunks, store, resume after a kill, budget refusal, method dispatch.

Counts go through the real compiled kernels (fpad.enumerate) and are checked against the exact
oracle on every point of a small grid, and against each other across chunkings and resumes.
"""

import itertools
from fractions import Fraction
import os
import subprocess
import sys
import textwrap

import pytest

import fpad.engine as engine
from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify

NET = os.path.join(os.path.dirname(__file__), "..", "fpad", "nets", "issue_example.toml")


@pytest.fixture
def calls(monkeypatch):
    """Counts the chunk tasks that actually run (the plans look the task functions up at call time)."""
    n = {"chunks": 0}
    for name in ("run_range", "run_points", "run_lines"):
        orig = getattr(engine, name)

        def wrapped(*args, _orig=orig):
            n["chunks"] += 1
            return _orig(*args)

        monkeypatch.setattr(engine, name, wrapped)
    return n


def problem(free=("L1.W[0,0]", "L1.b[0]"), fmt="e2m1"):
    return NetworkSpec.from_toml(NET).build(get_format(fmt), free=list(free))


def brute(p):
    vals = p.fmt.values_fraction()
    rs = [classify(p, list(w)) for w in itertools.product(vals, repeat=len(p.free))]
    return (len(rs), sum(r.is_touched for r in rs), sum(r.ndf for r in rs), sum(r.inc for r in rs))


def key(res):
    return (res.points, res.touched, res.ndf, res.inc, res.clarke_ok, res.per_neuron, res.witnesses)


# -- tests ----------------------------------------------------------------------------------
def test_default_chunk_size_is_a_pure_function_of_work():
    assert engine.default_chunk_size(10) == 1 << 16
    assert engine.default_chunk_size(10**8) == 1 << 17  # 10^5 rounded up to a power of two
    assert engine.default_chunk_size(5 * 10**8) == 1 << 19
    assert engine.default_chunk_size(253**4) == 1 << 22


def test_exhaustive_counts_equal_oracle_for_every_chunk_size(calls, tmp_path):
    p = problem()
    want = brute(p)
    # e2m1 (|M| = 15, symmetric). Unit 0 is touched where w + b = 0 (15 points, b = -w) or
    # 3w + b = 0 (w in {0, +-1/2, +-1, +-2}: 7 points), 21 in all (w = b = 0 twice); every one is
    # ndf (output weight 1 != 0, linear form (x, 1) != 0) and a single kink never gives inc.
    assert want == (225, 21, 21, 0)
    results = [engine.count(p, "exhaustive", chunk_size=cs, store=tmp_path / f"{cs}.sqlite",
                            progress=False) for cs in (7, 64, 225, 1000)]
    assert {(r.points, r.touched, r.ndf, r.inc, r.clarke_ok) for r in results} == {want + (21,)}
    assert all(key(r) == key(results[0]) for r in results)  # per-neuron counts and witnesses too
    assert len({repr(key(r)) for r in results}) == 1  # even the key order (stable JSON output)
    assert [r.extra["chunks"] for r in results] == [33, 4, 1, 1]
    assert calls["chunks"] == 33 + 4 + 1 + 1
    assert results[0].method == "exhaustive" and len(results[0].witnesses["ndf"]) == 3


def test_resume_skips_committed_chunks(calls, tmp_path):
    p = problem()
    path = tmp_path / "r.sqlite"
    first = engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    assert first.extra["resumed_chunks"] == 0 and calls["chunks"] == 23
    again = engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    assert again.extra["resumed_chunks"] == 23 and calls["chunks"] == 23  # nothing recomputed
    assert key(again) == key(first)


def test_store_of_another_chunk_size_is_refused(tmp_path):
    p = problem()
    path = tmp_path / "r.sqlite"
    engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    with pytest.raises(FpadError, match="belongs to another run"):
        engine.count(p, "exhaustive", chunk_size=11, store=path, progress=False)


def test_default_store_location_is_keyed_by_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = engine.count(problem(), "exhaustive", chunk_size=50, store=True, progress=False)
    assert res.extra["store"] == os.path.join("fpad-runs", res.extra["run_key"] + ".sqlite")
    assert (tmp_path / res.extra["store"]).exists()


def test_single_chunk_run_makes_no_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = engine.count(problem(), "exhaustive", store=True, progress=False)
    assert "store" not in res.extra and not (tmp_path / "fpad-runs").exists()


def test_over_budget_grid_is_refused_with_its_size(calls, tmp_path):
    p = problem(free=("L1.W", "L1.b"), fmt="e4m3fn")  # 253^4 points: minutes at best
    with pytest.raises(FpadError) as exc:
        engine.count(p, "exhaustive", max_seconds=2, store=tmp_path / "s.sqlite", progress=False)
    msg = str(exc.value)
    assert "grid of 253^4 = 4,097,152,081 points" in msg and "--sample" in msg and "--line" in msg
    assert "points/s" in msg and "\n" not in msg
    assert not (tmp_path / "s.sqlite").exists()  # refused before any store is created
    assert "--method auto" in msg  # exhaustive was asked for: the structured methods were not tried
    # only the calibrations ran (warm-up + fourfold probes 2^8..2^20): the exhaustive kernel's,
    # and the sampling path's, whose own rate sizes the --sample advice
    assert calls["chunks"] <= 16


def test_astronomical_grid_is_refused_without_running_it():
    p = problem(free=("L1.W", "L1.b"), fmt="bf16")  # 65279^4 > 2^62 points
    with pytest.raises(FpadError, match=r"65279\^4 = 18,159,085,421,995,361,281 points .* years"):
        engine.count(p, "exhaustive", progress=False)


def test_sample_beyond_the_kernels_index_range_is_decided_by_coordinates():
    """65279^4 > 2^62: sampled points are drawn per coordinate and decided by the kernels; the
    counts equal the oracle's on the same points."""
    from fpad.estimate import sample_digits
    from fpad.oracle import classify

    p = problem(free=("L1.W", "L1.b"), fmt="bf16")
    r = engine.count(p, sample=12, seed=5, progress=False, store=False)
    assert r.method == "sample" and r.points == 12 and r.is_estimate
    comp = __import__("fpad.enumerate", fromlist=["x"]).compile_problem(p)
    rows = sample_digits(comp.m, comp.k, 12, 5)
    assert any(comp.index_of(row) >= 1 << 62 for row in rows)
    verdicts = [classify(p, comp.values_of(row)) for row in rows]
    assert r.touched == sum(bool(v.touched) for v in verdicts)
    assert r.ndf == sum(v.ndf for v in verdicts) and r.inc == sum(v.inc for v in verdicts)


def test_method_arguments_are_checked():
    p = problem()
    with pytest.raises(FpadError, match="cannot be combined"):
        engine.count(p, "exhaustive", sample=10)
    with pytest.raises(FpadError, match="needs --sample"):
        engine.count(p, "sample")
    with pytest.raises(FpadError, match="unknown method"):
        engine.count(p, "fast")
    with pytest.raises(FpadError, match=r"not a free parameter; free parameters: L1\.W\[0,0\], L1\.b\[0\]"):
        engine.count(p, line="L2.b[0]", sample=5)


def test_auto_uses_structured_when_it_applies(calls):
    p = problem()
    res = engine.count(p, "auto", progress=False)
    assert res.method == "structured" and calls["chunks"] == 0
    assert (res.points, res.touched, res.ndf, res.inc) == brute(p)


# -- crash and resume in a subprocess -------------------------------------------------------
SCRIPT = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    import fpad.engine as engine
    from test_engine import problem
    delay, run_range = float(sys.argv[2]), engine.run_range
    def slow(*args):
        time.sleep(delay)  # slow chunks, so a kill lands mid-run
        return run_range(*args)
    engine.run_range = slow
    r = engine.count(problem(), "exhaustive", chunk_size=9, store=sys.argv[1], progress=False)
    print(json.dumps([r.points, r.touched, r.ndf, r.inc, r.clarke_ok, r.per_neuron, r.witnesses,
                      r.extra["resumed_chunks"]]))
""")


def _argv(path, delay=0.0):
    script = SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-c", script, str(path), str(delay)]


def _run(path, crash_after=None, threads=None):
    env = dict(os.environ)
    env.pop(engine.CRASH_HOOK_ENV, None)
    if crash_after:
        env[engine.CRASH_HOOK_ENV] = str(crash_after)
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    return subprocess.run(_argv(path), env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The result of the subprocess run, never interrupted (shared by the kill tests)."""
    import json

    clean = _run(tmp_path_factory.mktemp("clean") / "clean.sqlite")
    assert clean.returncode == 0, clean.stderr
    return json.loads(clean.stdout)


def test_killed_run_resumes_to_identical_counts(tmp_path, uninterrupted):
    import json

    want = uninterrupted
    path = tmp_path / "crash.sqlite"
    killed = _run(path, crash_after=4)
    assert killed.returncode == engine.CRASH_EXIT_CODE and killed.stdout == ""
    killed = _run(path, crash_after=5)  # dies again, 4 + 5 chunks committed in all
    assert killed.returncode == engine.CRASH_EXIT_CODE
    resumed = _run(path, threads=1)  # and on one thread: counts do not depend on threads either
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got[-1] == 9 and want[-1] == 0  # 9 of 25 chunks came from the store
    assert got[:-1] == want[:-1]


def test_sigkill_at_an_arbitrary_moment_then_resume(tmp_path, uninterrupted):
    import json
    import signal
    import sqlite3
    import time

    want = uninterrupted
    path = tmp_path / "killed.sqlite"
    env = {k: v for k, v in os.environ.items() if k != engine.CRASH_HOOK_ENV}
    proc = subprocess.Popen(_argv(path, delay=0.05), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    committed = 0
    while committed < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            with sqlite3.connect(path) as db:
                committed = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        except sqlite3.Error:  # not created yet
            pass
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL and 6 <= committed < 25
    got = json.loads(_run(path).stdout)
    assert got[-1] >= 6 and got[:-1] == want[:-1]


def test_checksummed_row_with_wrong_counts_is_reported(tmp_path):
    import json
    import sqlite3

    from fpad.store import _checksum

    p = problem()
    path = tmp_path / "r.sqlite"
    engine.count(p, "exhaustive", chunk_size=50, store=path, progress=False)
    with sqlite3.connect(path) as db:
        payload = json.loads(db.execute("SELECT payload FROM chunks WHERE idx = 2").fetchone()[0])
        payload["counts"]["points"] = 49  # consistent checksum, impossible content
        text = json.dumps(payload)
        db.execute("UPDATE chunks SET payload = ?, sha256 = ? WHERE idx = 2", (text, _checksum(text)))
    with pytest.raises(FpadError, match="corrupted .chunk 2 does not hold the counts"):
        engine.count(p, "exhaustive", chunk_size=50, store=path, progress=False)


def test_touched_points_beyond_the_kernels_index_range_match_the_oracle():
    """Points with flat index >= 2^62 go to the kernels by their coordinates, touched ones
    included, and agree with the oracle."""
    from fpad.enumerate import classify_indices, compile_problem

    p = problem(free=("L1.W", "L1.b"), fmt="bf16")
    comp = compile_problem(p)
    table = [Fraction(float(v)) for v in comp.table]
    pos = {v: i for i, v in enumerate(table)}
    picked = []
    for w0 in (Fraction(3), Fraction(5, 4)):
        # large values for every free parameter (so the index is beyond 2^62), then unit 0 put
        # exactly on its kink for sample 0 by solving its bias from the exact pre-activation
        free = [w0] + [table[-1 - j] for j in range(len(p.free) - 1)]
        ib = p.free_names.index("L1.b[0]")
        free[ib] = Fraction(0)
        pre = _unit0_preactivation(p, free)
        free[ib] = -pre
        if free[ib] not in pos:
            continue
        idx = 0
        for v in free:
            idx = idx * comp.m + pos[v]
        picked.append(idx)
    assert picked and all(i >= 1 << 62 for i in picked)
    got = classify_indices(comp, picked)
    want = [classify(p, comp.free_values(i)) for i in picked]
    assert got.points == len(picked)
    assert got.touched == sum(bool(r.touched) for r in want) == len(picked)
    assert got.ndf == sum(r.ndf for r in want) and got.inc == sum(r.inc for r in want)
    assert got.clarke_ok == sum(r.ndf and r.clarke_ok for r in want)


def _unit0_preactivation(p, free):
    """Exact pre-activation of the first ACT node (unit 0, sample 0) at free values ``free``."""
    from fpad import graph

    w = p.full_point(free)
    vals = p.program.evaluate(w)
    first = next(n for n in p.program.nodes if n.op == graph.ACT)
    return vals[first.args[0]]
