"""Dask scale-out: a two-worker LocalCluster gets exactly the single-process counts."""

import pytest

pytest.importorskip("distributed")
pytest.importorskip("fpad.enumerate")

import fpad.engine as engine  # noqa: E402
from test_engine import key, problem  # noqa: E402


def test_local_cluster_counts_equal_single_process(tmp_path):
    p = problem(free=("L1.W", "L1.b"), fmt="e2m1")  # 15^4 = 50625 points
    single = engine.count(p, "exhaustive", chunk_size=50625, progress=False)
    spread = engine.count(p, "exhaustive", chunk_size=4096, store=tmp_path / "d.sqlite",
                          dask="local", progress=False)
    assert spread.extra["chunks"] == 13 and single.extra["chunks"] == 1
    assert key(spread) == key(single)
    assert single.points == 50625 and single.ndf > 0
    # Resuming the finished run from its store touches no worker and changes nothing.
    again = engine.count(p, "exhaustive", chunk_size=4096, store=tmp_path / "d.sqlite",
                         dask="local", progress=False)
    assert again.extra["resumed_chunks"] == 13 and key(again) == key(single)
