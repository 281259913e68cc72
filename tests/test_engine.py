"""Orchestration: chunks, store, resume after a kill, budget refusal, method dispatch.

The counts are checked against a pure-Python stand-in of the kernels (every point through
fpad.oracle.classify), so these tests pin the orchestration, not the kernels.
"""

import itertools
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest

import fpad.engine as engine
from fpad.errors import FpadError
from fpad.formats import get_format
from fpad.network import NetworkSpec
from fpad.oracle import classify

NET = os.path.join(os.path.dirname(__file__), "..", "fpad", "nets", "issue_example.toml")


# -- a pure-Python stand-in of fpad.enumerate's contract ---------------------------------------
@dataclass
class StandInCounts:
    points: int = 0
    touched: int = 0
    ndf: int = 0
    inc: int = 0
    clarke_ok: int = 0
    per_neuron: dict = field(default_factory=dict)
    witnesses: dict = field(default_factory=dict)

    def merge(self, o):
        pn = {k: dict(v) for k, v in self.per_neuron.items()}
        for k, v in o.per_neuron.items():
            for kk, n in v.items():
                pn.setdefault(k, {}).setdefault(kk, 0)
                pn[k][kk] += n
        wit = {k: list(v) for k, v in self.witnesses.items()}
        for k, v in o.witnesses.items():
            wit[k] = (wit.get(k, []) + v)[:3]
        return StandInCounts(self.points + o.points, self.touched + o.touched, self.ndf + o.ndf,
                             self.inc + o.inc, self.clarke_ok + o.clarke_ok, pn, wit)

    def to_json(self):
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d):
        return cls(**d)


class StandIn:
    ChunkCounts = StandInCounts
    calls = 0

    @staticmethod
    def compile_problem(problem):
        vals = problem.fmt.values_fraction()
        return {"problem": problem, "vals": vals, "n_points": len(vals) ** len(problem.free)}

    @classmethod
    def classify_indices(cls, compiled, indices):
        StandIn.calls += 1
        vals, k = compiled["vals"], len(compiled["problem"].free)
        out = StandInCounts()
        for i in indices:
            digits = []
            for _ in range(k):
                i, d = divmod(i, len(vals))
                digits.append(d)
            point = [vals[d] for d in reversed(digits)]
            r = classify(compiled["problem"], point)
            c = StandInCounts(1, int(r.is_touched), int(r.ndf), int(r.inc), int(r.ndf and r.clarke_ok))
            for t in r.touched:
                c.per_neuron = {t.tag: {"touched": 1, "ndf": int(r.ndf)}}
            if r.ndf or r.inc:
                c.witnesses = {r.verdict: [[str(v) for v in point]]}
            out = out.merge(c)
        return out

    @classmethod
    def count_range(cls, compiled, start, stop):
        return cls.classify_indices(compiled, range(start, stop))


class Compiled(dict):
    @property
    def n_points(self):
        return self["n_points"]


@pytest.fixture
def standin(monkeypatch):
    def compile_problem(problem):
        return Compiled(StandIn.compile_problem(problem))

    kern = type("K", (StandIn,), {"compile_problem": staticmethod(compile_problem)})
    monkeypatch.setattr(engine, "_kernels", lambda: kern)
    StandIn.calls = 0
    return kern


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
    assert engine.default_chunk_size(10) == 1 << 12
    assert engine.default_chunk_size(10**6) == 1 << 12  # 1000 points rounded up, then the floor
    assert engine.default_chunk_size(10**12) == 1 << 22
    assert engine.default_chunk_size(5 * 10**8) == 1 << 19


def test_exhaustive_counts_equal_brute_force_for_every_chunk_size(standin, tmp_path):
    p = problem()
    want = brute(p)
    # e2m1 (|M| = 15, symmetric). Unit 0 is touched where w + b = 0 (15 points, b = -w) or
    # 3w + b = 0 (w in {0, +-1/2, +-1, +-2}: 7 points), 21 in all (w = b = 0 twice); every one is
    # ndf (output weight 1 != 0, linear form (x, 1) != 0) and a single kink never gives inc.
    assert want == (225, 21, 21, 0)
    results = [engine.count(p, "exhaustive", chunk_size=cs, store=tmp_path / f"{cs}.sqlite",
                            progress=False) for cs in (1, 7, 64, 225, 1000)]
    assert {(r.points, r.touched, r.ndf, r.inc) for r in results} == {want}
    assert len({repr(key(r)) for r in results}) == 1
    assert results[0].method == "exhaustive" and results[0].extra["chunks"] == 225
    assert results[0].witnesses["ndf"] == results[-1].witnesses["ndf"] and len(results[0].witnesses["ndf"]) == 3


def test_resume_skips_committed_chunks(standin, tmp_path):
    p = problem()
    path = tmp_path / "r.sqlite"
    first = engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    assert first.extra["resumed_chunks"] == 0 and StandIn.calls == 23
    again = engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    assert again.extra["resumed_chunks"] == 23 and StandIn.calls == 23  # nothing recomputed
    assert key(again) == key(first)


def test_store_of_another_chunk_size_is_refused(standin, tmp_path):
    p = problem()
    path = tmp_path / "r.sqlite"
    engine.count(p, "exhaustive", chunk_size=10, store=path, progress=False)
    with pytest.raises(FpadError, match="belongs to another run"):
        engine.count(p, "exhaustive", chunk_size=11, store=path, progress=False)


def test_default_store_location_is_keyed_by_run(standin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = engine.count(problem(), "exhaustive", chunk_size=50, store=True, progress=False)
    assert res.extra["store"] == os.path.join("fpad-runs", res.extra["run_key"] + ".sqlite")
    assert (tmp_path / res.extra["store"]).exists()


def test_single_chunk_run_makes_no_store(standin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = engine.count(problem(), "exhaustive", store=True, progress=False)
    assert "store" not in res.extra and not (tmp_path / "fpad-runs").exists()


def test_over_budget_grid_is_refused_with_its_size(standin, tmp_path):
    p = problem(free=("L1.W", "L1.b"))  # 15^4 = 50625 points, pure Python: >> 0.5 s
    with pytest.raises(FpadError) as exc:
        engine.count(p, "exhaustive", max_seconds=0.5, store=tmp_path / "s.sqlite", progress=False)
    msg = str(exc.value)
    assert "15^4 = 50,625 points" in msg and "--sample" in msg and "--line" in msg
    assert "points/s" in msg and "\n" not in msg
    assert not (tmp_path / "s.sqlite").exists()  # refused before any store is created
    assert StandIn.calls <= 8  # only the calibration ran: a few small probes


def test_method_arguments_are_checked(standin):
    p = problem()
    with pytest.raises(FpadError, match="cannot be combined"):
        engine.count(p, "exhaustive", sample=10)
    with pytest.raises(FpadError, match="needs --sample"):
        engine.count(p, "sample")
    with pytest.raises(FpadError, match="unknown method"):
        engine.count(p, "fast")
    with pytest.raises(FpadError, match=r"not a free parameter; free parameters: L1\.W\[0,0\], L1\.b\[0\]"):
        engine.count(p, line="L2.b[0]", sample=5)


def test_auto_uses_structured_when_it_applies(standin):
    p = problem()
    res = engine.count(p, "auto", progress=False)
    assert res.method == "structured" and StandIn.calls == 0
    assert (res.points, res.touched, res.ndf, res.inc) == brute(p)


# -- crash and resume in a subprocess -------------------------------------------------------
SCRIPT = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    import fpad.engine as engine
    from test_engine import problem, StandIn, Compiled
    class K(StandIn):
        compile_problem = staticmethod(lambda p: Compiled(StandIn.compile_problem(p)))
        @classmethod
        def count_range(cls, compiled, start, stop):
            time.sleep(float(sys.argv[2]))  # slow chunks, so a kill lands mid-run
            return StandIn.count_range(compiled, start, stop)
    engine._kernels = lambda: K
    r = engine.count(problem(), "exhaustive", chunk_size=9, store=sys.argv[1], progress=False)
    print(json.dumps([r.points, r.touched, r.ndf, r.inc, r.clarke_ok, r.per_neuron, r.witnesses,
                      r.extra["resumed_chunks"]]))
""")


def _argv(path, delay=0.0):
    script = SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-c", script, str(path), str(delay)]


def _run(path, crash_after=None):
    env = dict(os.environ)
    env.pop(engine.CRASH_HOOK_ENV, None)
    if crash_after:
        env[engine.CRASH_HOOK_ENV] = str(crash_after)
    return subprocess.run(_argv(path), env=env, capture_output=True, text=True)


def test_killed_run_resumes_to_identical_counts(tmp_path):
    import json

    clean = _run(tmp_path / "clean.sqlite")
    assert clean.returncode == 0, clean.stderr
    want = json.loads(clean.stdout)
    path = tmp_path / "crash.sqlite"
    killed = _run(path, crash_after=4)
    assert killed.returncode == engine.CRASH_EXIT_CODE and killed.stdout == ""
    killed = _run(path, crash_after=5)  # dies again, 4 + 5 chunks committed in all
    assert killed.returncode == engine.CRASH_EXIT_CODE
    resumed = _run(path)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got[-1] == 9 and want[-1] == 0  # 9 of 25 chunks came from the store
    assert got[:-1] == want[:-1]


def test_sigkill_at_an_arbitrary_moment_then_resume(tmp_path):
    import json
    import signal
    import sqlite3
    import time

    want = json.loads(_run(tmp_path / "clean.sqlite").stdout)
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
