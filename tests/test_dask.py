"""Dask scale-out: workers get exactly the single-process counts."""

import importlib.util
import logging

import pytest

pytest.importorskip("distributed")

import fpad.engine as engine  # noqa: E402
from test_engine import key, problem, standin  # noqa: E402,F401  (fixture)


def _use_standin_kernels():
    """Run on each worker: substitute the pure-Python stand-in kernels (as the fixture does here)."""
    import fpad.engine as e
    import test_engine as te

    class K(te.StandIn):
        compile_problem = staticmethod(lambda p: te.Compiled(te.StandIn.compile_problem(p)))

    e._kernels = lambda: K
    return True


def test_running_scheduler_address_counts_equal_single_process(standin, tmp_path):
    from distributed import Client, LocalCluster

    p = problem()
    single = engine.count(p, "exhaustive", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        assert set(client.run(_use_standin_kernels).values()) == {True}
        spread = engine.count(p, "exhaustive", chunk_size=10, store=tmp_path / "d.sqlite",
                              dask=cluster.scheduler_address, progress=False)
    assert spread.extra["chunks"] == 23 and key(spread) == key(single)
    assert (single.points, single.ndf) == (225, 21)


@pytest.mark.skipif(importlib.util.find_spec("fpad.enumerate") is None, reason="fpad.enumerate not built yet")
def test_local_cluster_counts_equal_single_process(tmp_path):
    p = problem(free=("L1.W", "L1.b"), fmt="e2m1")  # 15^4 = 50625 points
    single = engine.count(p, "exhaustive", chunk_size=50625, progress=False)
    spread = engine.count(p, "exhaustive", chunk_size=4096, store=tmp_path / "d.sqlite",
                          dask="local", progress=False)
    assert spread.extra["chunks"] == 13 and single.extra["chunks"] == 1
    assert key(spread) == key(single)
    assert single.points == 50625 and single.ndf > 0
    # Resuming the finished run from its store needs no worker and changes nothing.
    again = engine.count(p, "exhaustive", chunk_size=4096, store=tmp_path / "d.sqlite",
                         dask="local", progress=False)
    assert again.extra["resumed_chunks"] == 13 and key(again) == key(single)
