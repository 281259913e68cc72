"""Dask scale-out: workers get exactly the single-process counts."""

import logging

import pytest

pytest.importorskip("distributed")

import fpad.engine as engine  # noqa: E402
from test_engine import key, problem  # noqa: E402


def test_running_scheduler_address_counts_equal_single_process(tmp_path):
    from distributed import LocalCluster

    p = problem()
    single = engine.count(p, "exhaustive", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        spread = engine.count(p, "exhaustive", chunk_size=10, store=tmp_path / "d.sqlite",
                              dask=cluster.scheduler_address, progress=False)
    assert spread.extra["chunks"] == 23 and key(spread) == key(single)
    assert (single.points, single.ndf) == (225, 21)


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
