"""Wall-clock timing for the cost analyses: warm-up, paired repeats, median and IQR, provenance.

Rules (paper_bolte2023.md section 5, "timing hygiene"):

* every callable is run ``warmup`` times before any clock is read (allocator, caches, lazy init);
* a *block* runs a callable ``inner`` times between two ``perf_counter_ns`` reads, with ``inner``
  chosen once so that a block lasts about ``min_block_s`` (the clock's resolution and the loop
  overhead then stay negligible);
* the callables compared are timed in the same repeat, one block each, alternating their order
  between repeats, so that load from other processes on a shared machine hits them alike; ratios
  are formed per repeat (paired) and summarised by their median and interquartile range;
* the thread count is pinned with ``torch.set_num_threads`` for the whole measurement and
  recorded in the provenance, with the machine, torch and numpy versions.

Python dispatch: below some size the arithmetic is cheaper than the framework's per-operation
overhead, and any ratio measures dispatch, not arithmetic. The analyses estimate the share of a
pass spent there by timing the same program with every size set to 1 (the same calls, almost no
arithmetic) and flag rows where that share is >= :data:`DISPATCH_FLAG` rather than hide them;
:func:`aten_ops` counts the operations a pass executes (exactly, with a ``TorchDispatchMode``).
"""

from __future__ import annotations

import math
import os
import platform
import time
from contextlib import contextmanager

import numpy as np

from fpad import sweeps
from fpad.errors import FpadError

DISPATCH_FLAG = 0.5
NOISE_NOTE = ("Timings come from a 2-core machine shared with other processes working at the same time: "
              "they are noisy, and only the medians of paired, interleaved repeats (with their IQR) "
              "should be read; the operation counts are exact.")


def quantiles(xs) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile) of ``xs`` (linear interpolation)."""
    a = np.asarray(list(xs), dtype=float)
    q25, q50, q75 = np.percentile(a, [25, 50, 75])
    return float(q25), float(q50), float(q75)


def _block(fn, inner: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(inner):
        fn()
    return (time.perf_counter_ns() - t0) / 1e9 / inner


def calibrate(fn, min_block_s: float, max_inner: int = 10_000) -> int:
    """How many calls make a block of about ``min_block_s`` (at least 1)."""
    t = _block(fn, 1)
    if t >= min_block_s:
        return 1
    n = min(max_inner, max(1, math.ceil(min_block_s / max(t, 1e-7))))
    t = _block(fn, n)  # a second look at the calibrated size: the first call may be slow
    return min(max_inner, max(1, math.ceil(min_block_s / max(t, 1e-9))))


def paired_times(fns: dict, *, repeats: int, warmup: int = 3, min_block_s: float = 0.01) -> dict:
    """Per-call seconds of each callable, one list of ``repeats`` values per name, interleaved.

    Every callable runs ``warmup`` times first (not timed) and gets its own block size (a fast
    forward and a slow p-direction sweep both get blocks of about ``min_block_s``); ``"_inner"``
    maps each name to its block size.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats >= 1 and warmup >= 0")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    inner = {k: calibrate(fn, min_block_s) for k, fn in fns.items()}
    names = list(fns)
    out = {k: [] for k in names}
    for r in range(repeats):
        for k in (names if r % 2 == 0 else names[::-1]):
            out[k].append(_block(fns[k], inner[k]))
    out["_inner"] = inner
    return out


def ratio_stats(num: list, den: list) -> dict:
    """Median and IQR of the paired ratios num[r] / den[r]."""
    q25, q50, q75 = quantiles(n / d for n, d in zip(num, den))
    return {"median": q50, "q25": q25, "q75": q75, "iqr": q75 - q25}


def settings(quick: bool, repeats: int | None, min_block_s: float | None, full_repeats: int) -> tuple[int, float]:
    """(repeats, block seconds): the caller's values, else 5 repeats of 4 ms blocks with ``quick``
    and ``full_repeats`` of 20 ms blocks without."""
    if repeats is not None and repeats < 1:
        raise FpadError(f"--repeats must be a positive integer, got {repeats}")
    return repeats or (5 if quick else full_repeats), min_block_s if min_block_s is not None else (
        0.004 if quick else 0.02)


@contextmanager
def pinned_threads(threads: int):
    """``torch.set_num_threads(threads)`` for the duration, restored afterwards."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise FpadError(f"--threads must be a positive integer, got {threads!r}")
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def aten_ops(fn) -> int:
    """The number of aten operations one call of ``fn`` executes (counted exactly)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _Count.n += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        fn()
    return _Count.n


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_provenance(threads: int | None = None, with_torch: bool = True) -> dict:
    """fpad's provenance plus the machine, the pinned thread count and library versions
    (``with_torch=False``: an analysis that does not use torch; torch is then not imported)."""
    d = sweeps.provenance()
    d.update({"machine": platform.machine(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
              "python": platform.python_version(), "numpy": np.__version__, "shared_machine_note": NOISE_NOTE})
    if not with_torch:
        return d
    try:
        import torch

        d.update({"torch": torch.__version__, "torch_threads": threads if threads is not None
                  else torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()})
    except ImportError:
        d["torch"] = None
    return d
