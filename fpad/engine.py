"""Counting orchestration: method choice, chunks, the progress store, progress bar, Dask.

:func:`count` is the one entry point (the ``fpad count`` CLI, the sweeps and the tests call it).
The compiled kernels of :mod:`fpad.enumerate` decide points; this module only decides *which*
points, in which chunks, where they run, and how their exact counts are saved and merged:

* **Method.** ``structured`` (exact, :mod:`fpad.structured`), ``exhaustive`` (every point of
  M^k through the compiled kernels), or a labelled estimate, ``sample`` / ``line``
  (:mod:`fpad.estimate`). ``auto`` = structured when it applies, else exhaustive.
* **Chunks.** The work is cut into chunks whose boundaries depend only on the grid and the
  method (never on threads, workers or timing). Every chunk's exact counts are a JSON payload;
  payloads are merged *in chunk order*, so the totals -- and the witnesses, which keep the first
  few in enumeration order -- do not depend on thread count, worker count or completion order,
  and not on the chunk size either because merging is associative over consecutive ranges.
* **Store.** With a store (:mod:`fpad.store`) every finished chunk is committed in its own
  transaction; re-running the same request skips committed chunks, so a killed run resumes and
  ends with the same counts as an uninterrupted one.
* **Budget.** Before a long run the speed is measured on a small sample of the work, and a
  request that would exceed ``max_seconds`` is refused up front with its size, the estimated
  time, and the options that fit.
* **Dask.** ``dask="local"`` starts a two-process ``LocalCluster``; ``dask="tcp://HOST:PORT"``
  connects to a running scheduler. Chunks are sent to the workers (at most a few in flight per
  worker) and committed as they come back.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fpad import __version__, interrupt
from fpad.errors import FpadError
from fpad import estimate
from fpad.estimate import digit_stride, line_bases, line_interval, sample_interval
from fpad.results import CountResult, count_result, scientific
from fpad.store import ProgressStore, run_key

# Test hook: after committing this many chunks, the process exits at once (os._exit, no
# clean-up, like a kill), so tests can check that a re-run resumes to identical counts.
CRASH_HOOK_ENV = "FPAD_TEST_EXIT_AFTER_CHUNKS"
CRASH_EXIT_CODE = 75

DEFAULT_STORE_DIR = "fpad-runs"
DEFAULT_MAX_SECONDS = 3600.0
DASK_TIMEOUT_S = 10.0
LOCAL_DASK_WORKERS = 2

# Below this much work the budget check is skipped: even the exact slow path (about 1e3-1e4
# points/s on touched points) finishes such a run in seconds, and timing it would cost as much.
_NO_CALIBRATION_POINTS = 1 << 15
# The calibration sample: grow until it takes this long (or reaches the cap), so the measured
# rate is not dominated by timer resolution or a one-off warm-up.
_CALIBRATION_SECONDS = 0.25
_CALIBRATION_CAP = 1 << 20
# ... and until it holds this many points (or takes 8x as long): a probe of a few hundred points
# that happens to hold one point for the exact slow path (the first one also pays its warm-up)
# is not representative. Stopping at the first probe over the time threshold selected exactly
# those: a 1-16-16-1 e5m2 sample was refused as 30 min at 552 points/s; it runs at 1.2e4.
_CALIBRATION_MIN_POINTS = 1 << 12
# ... or until the measured rate puts the whole run under 1/_SETTLED_MARGIN of the budget.
_SETTLED_MARGIN = 100
# fpad.enumerate's kernels take ranges of flat point indices as int64, below 2^62 (its
# _INDEX_LIMIT); points beyond it go to them by their coordinates (classify_points).
_KERNEL_INDEX_LIMIT = 1 << 62


def _kernels():
    """The compiled kernels (:mod:`fpad.enumerate`); one indirection so tests can substitute."""
    import fpad.enumerate as kernels

    return kernels


# -- chunk tasks: module-level functions, so Dask can ship them to workers by reference ---------
def run_range(compiled, start: int, stop: int) -> dict:
    """Exact counts of the grid points with flat index in [start, stop) (one exhaustive chunk)."""
    return {"counts": _kernels().count_range(compiled, start, stop).to_json()}


def run_range_codes(compiled, start: int, stop: int) -> dict:
    """:func:`run_range` with every point's verdict code (kept in memory: never stored)."""
    counts, codes = _kernels().count_range_codes(compiled, start, stop)
    return {"counts": counts.to_json(), "codes": codes}


def run_points(compiled, rows) -> dict:
    """Exact counts of the grid points whose digits are the rows of ``rows`` (one chunk of a
    sample, drawn by coordinates)."""
    return {"counts": _kernels().classify_points(compiled, rows).to_json()}


def run_lines(compiled, bases: list[int], stride: int, m: int) -> dict:
    """Exact counts of whole lines: line j is {bases[j] + v * stride : v < m}.

    Returns the merged counts and, per line, ``[ndf, inc]`` (the line estimator's clusters).
    """
    kern = _kernels()
    total, per_line = None, []
    for base in bases:
        if stride == 1 and base + m <= _KERNEL_INDEX_LIMIT:
            c = kern.count_range(compiled, base, base + m)
        else:
            c = kern.classify_indices(compiled, [base + v * stride for v in range(m)])
        per_line.append([c.ndf, c.inc])
        total = c if total is None else total.merge(c)
    return {"counts": total.to_json(), "lines": per_line}


# -- the plan: what the chunks are --------------------------------------------------------------
@dataclass
class Plan:
    """The work of one run, cut into chunks; a pure function of the request (resumable).

    ``task(i)`` returns ``(function, args)``: chunk ``i`` is ``function(compiled, *args)``, one of
    :func:`run_range`, :func:`run_points`, :func:`run_lines`. ``points(i)`` is the number of grid
    points chunk ``i`` classifies; ``label`` is the method with its parameters (in the run key).
    """

    method: str
    label: str
    chunk_size: int
    n_chunks: int
    work: int
    task: Callable[[int], tuple]
    points: Callable[[int], int]
    probe: Callable[[int], tuple]  # n -> (function, args, points): about n representative points


def default_chunk_size(work: int) -> int:
    """Points per chunk: a power of two near work/1000, between 2^16 and 2^22.

    A function of the amount of work only, so the same request always gets the same chunks (and
    run key). About a thousand chunks give a smooth progress bar and lose little on a crash; the
    cap keeps one chunk to about a second of kernel time. The floor amortises the fixed cost of a
    chunk: one sqlite commit or Dask round trip (about a millisecond), and above all the start of
    a parallel numba region, which we measured at 50-75 ms when the cores are oversubscribed
    (0.15 ms single-threaded) -- about the time of 2^18 points.
    """
    target = max(1, work // 1000)
    return min(1 << 22, max(1 << 16, 1 << (target - 1).bit_length()))


def _exhaustive_plan(n_points: int, chunk_size: int) -> Plan:
    n_chunks = max(1, -(-n_points // chunk_size))

    def bounds(i):
        return i * chunk_size, min(n_points, (i + 1) * chunk_size)

    def probe(n):
        # A window at a fixed pseudo-random place: the start of the grid (all parameters at the
        # most negative value) is not typical.
        span = min(n_points, _KERNEL_INDEX_LIMIT)  # a grid beyond it is refused anyway
        start = random.Random(n_points).randrange(max(1, span - n + 1))
        stop = min(n_points, start + n)
        return run_range, (start, stop), stop - start

    return Plan("exhaustive", "exhaustive", chunk_size, n_chunks, n_points,
                task=lambda i: (run_range, bounds(i)),
                points=lambda i: bounds(i)[1] - bounds(i)[0], probe=probe)


def sample_chunk_size(n: int, k: int) -> int:
    """Points per chunk of a sample of n points over k free parameters: :func:`default_chunk_size`,
    capped so that a chunk draws at most 2^22 digits (32 MB) but at least one stream block of
    :func:`fpad.estimate.sample_digits` (powers of two: a chunk holds whole blocks)."""
    cap = 1 << max(0, ((1 << 22) // max(k, 1)).bit_length() - 1)
    return min(default_chunk_size(n), max(estimate.digit_block(k), cap))


def _sample_plan(m: int, k: int, n: int, seed: int, chunk_size: int) -> Plan:
    n_chunks = max(1, -(-n // chunk_size))

    def size(i):
        return min(chunk_size, n - i * chunk_size)

    def probe(count):
        count = min(count, n, max(1, (1 << 22) // k))
        return run_points, (estimate.sample_digits(m, k, count, seed),), count

    return Plan("sample", f"sample-coords:n={n}:seed={seed}", chunk_size, n_chunks, n,
                task=lambda i: (run_points, (estimate.sample_digits(m, k, size(i), seed, i * chunk_size),)),
                points=size, probe=probe)


def _line_plan(n_points: int, m: int, stride: int, param: str, n: int, seed: int,
               chunk_size: int) -> Plan:
    per = max(1, chunk_size // m)  # whole lines per chunk
    n_chunks = max(1, -(-n // per))

    def lines(i):
        return min(per, n - i * per)

    def probe(k):
        bases = line_bases(n_points, m, stride, min(n, max(1, k // m)), seed)
        return run_lines, (bases, stride, m), len(bases) * m

    return Plan("line", f"line:{param}:n={n}:seed={seed}", per * m, n_chunks, n * m,
                task=lambda i: (run_lines, (line_bases(n_points, m, stride, lines(i), seed, i * per), stride, m)),
                points=lambda i: lines(i) * m, probe=probe)


# -- public entry point -------------------------------------------------------------------------
def count(problem, method: str = "auto", *, sample: int | None = None, line: str | None = None,
          seed: int = 0, level: float = 0.95, chunk_size: int | None = None,
          store: str | os.PathLike | bool | None = None, dask: str | None = None,
          dask_timeout: float = DASK_TIMEOUT_S, max_seconds: float | None = DEFAULT_MAX_SECONDS,
          progress: bool | None = None, codes: bool = False, compiled=None,
          semantics="exact") -> CountResult:
    """Count ndf / inc / touched points of ``problem`` (a :class:`fpad.network.Problem`).

    ``method``: ``auto`` (structured if it applies, else exhaustive), ``exhaustive``,
    ``structured``, ``sample`` or ``line``. ``sample=N`` alone selects ``sample`` (N uniform
    points, drawn with replacement from ``seed``); ``line=PARAM`` selects ``line`` (N = ``sample``
    lines, default 1000, each the whole range of PARAM with the other free parameters drawn
    from ``seed``). Estimates carry a ``level`` confidence interval (see :mod:`fpad.estimate`).

    ``store``: ``None``/``False`` keeps progress in memory only; ``True`` uses
    ``./fpad-runs/<run key>.sqlite``; a path uses that file. Runs of a single chunk never
    create a store (nothing to resume). ``dask``: ``None``, ``"local"`` or a scheduler address.
    ``max_seconds``: refuse (FpadError) up front when the measured speed says the run would
    take longer (``None``: no limit). ``progress``: a tqdm bar on stderr (default: when stderr
    is a terminal). ``codes=True`` (exhaustive, in this process, no store): the result's
    ``codes`` holds every point's verdict code in enumeration order (0 untouched, 1 touched and
    AD right, 2 ndf with AD in the Clarke set, 3 ndf otherwise, 5 inc), for maps.
    ``compiled``: a :func:`fpad.enumerate.compile_problem` of ``problem`` to reuse.
    ``semantics``: the arithmetic (:mod:`fpad.ops`; ``"exact"``).

    Every count in the result is exact and independent of chunk size, threads and workers.
    """
    t0 = time.perf_counter()
    method = requested = _resolve_method(method, sample, line)
    if not isinstance(seed, int) or seed < 0:  # Random(-7) draws what Random(7) draws
        raise FpadError(f"seed must be an integer >= 0, got {seed!r}")
    if max_seconds is not None and not max_seconds > 0:  # also nan
        raise FpadError(f"max_seconds must be a positive number of seconds (or None: no limit), got {max_seconds!r}")
    if not problem.free:
        raise FpadError("no free parameters to count over; name some with --free")
    if codes:
        if method not in ("auto", "exhaustive") or store not in (None, False) or dask:
            raise FpadError("per-point codes come from the exhaustive method in this process only "
                            "(no estimate, store or Dask)")
        method = "exhaustive"
    if method in ("auto", "structured"):
        from fpad.structured import structured_count

        res = structured_count(problem, semantics)
        if res is not None:
            res.elapsed_s = time.perf_counter() - t0
            return res
        if method == "structured":
            raise FpadError("no structured exact method applies to this network; use --method "
                            "exhaustive, or an estimate: --sample N --seed S or --line PARAM")
        method = "exhaustive"

    kern = _kernels()
    compiled = compiled or kern.compile_problem(problem, semantics)
    plan = _make_plan(problem, compiled, method, sample, line, seed, chunk_size)
    key = run_key(problem.spec_hash, problem.fmt.name, problem.free_names, plan.label,
                  plan.chunk_size, __version__)
    extra = {"run_key": key, "chunk_size": plan.chunk_size, "chunks": plan.n_chunks}
    show = sys.stderr.isatty() if progress is None else bool(progress)

    with ExitStack() as stack:
        path = None
        if store not in (None, False) and plan.n_chunks > 1:
            path = Path(DEFAULT_STORE_DIR) / f"{key}.sqlite" if store is True else Path(store)
            extra["store"] = str(path)

        def open_store():
            return stack.enter_context(ProgressStore(path, key, plan.n_chunks, {
                "format": problem.fmt.name, "free": problem.free_names, "method": plan.label,
                "spec_hash": problem.spec_hash, "chunk_size": plan.chunk_size}))

        # An existing store is read before the budget check (only the rest must fit); a new one
        # is created after it, so a refused request leaves no file behind.
        st = open_store() if path is not None and path.exists() else None
        done = _verified(st.completed(), plan, kern, path) if st is not None else {}
        # Lazily: a refused astronomical grid may have ~10^13 chunks (never list them).
        todo = (i for i in range(plan.n_chunks) if i not in done)
        extra["resumed_chunks"] = len(done)
        remaining = plan.work - sum(plan.points(i) for i in done)

        remote = bool(dask) and dask != "local" and remaining > 0
        client = stack.enter_context(_dask_client(dask, dask_timeout)) if remote else None
        _check_budget(problem, compiled, plan, remaining, max_seconds, requested, _worker_count(client))
        if path is not None and st is None:
            st = open_store()
        if st is not None:
            stack.enter_context(interrupt.saying(
                f"completed chunks are saved in {path}; run the same command again to resume"))
        if dask == "local" and remaining > 0:
            client = stack.enter_context(_dask_client(dask, dask_timeout))

        bar = stack.enter_context(_progress_bar(show, plan, remaining))
        crash_after = int(os.environ.get(CRASH_HOOK_ENV, "0") or 0)
        committed = 0

        def finished(i, payload):
            nonlocal committed
            if st is not None:
                st.commit(i, payload)
            done[i] = payload
            bar.update(plan.points(i))
            committed += 1
            if crash_after and committed >= crash_after:
                os._exit(CRASH_EXIT_CODE)

        if client is not None:
            _run_dask(client, compiled, plan, todo, finished)
        else:
            for i in todo:
                interrupt.check()
                fn, args = plan.task(i)
                finished(i, (run_range_codes if codes else fn)(compiled, *args))

    return _result(problem, compiled.n_points, plan, kern, done, extra, level, line, seed, time.perf_counter() - t0)


def _verified(done: dict, plan: Plan, kern, path) -> dict:
    """The stored chunks, each checked to be the counts of exactly the points of its chunk (a
    row that passes its checksum but does not fit this run is reported, not merged)."""
    for i, payload in done.items():
        try:
            c = kern.ChunkCounts.from_json(payload["counts"])
            ok = c.points == plan.points(i)
            if plan.method == "line":
                rows = payload["lines"]
                ok = ok and [sum(r[0] for r in rows), sum(r[1] for r in rows)] == [c.ndf, c.inc]
        except (KeyError, TypeError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise FpadError(f"progress store {path} is corrupted (chunk {i} does not hold the counts "
                            "of its points); delete it to start over or pass another --store")
    return done


def _resolve_method(method, sample, line) -> str:
    methods = ("auto", "exhaustive", "structured", "sample", "line")
    if method not in methods:
        raise FpadError(f"unknown method {method!r}; use one of {', '.join(methods)}")
    if line is not None:
        if method not in ("auto", "line"):
            raise FpadError(f"--line is an estimate; it cannot be combined with --method {method}")
        return "line"
    if sample is not None:
        if method not in ("auto", "sample"):
            raise FpadError(f"--sample is an estimate; it cannot be combined with --method {method}")
        return "sample"
    if method in ("sample", "line"):
        raise FpadError(f"method {method} needs {'--sample N' if method == 'sample' else '--line PARAM'}")
    return method


def _make_plan(problem, compiled, method, sample, line, seed, chunk_size) -> Plan:
    n_points = compiled.n_points
    if chunk_size is not None and chunk_size < 1:
        raise FpadError(f"chunk size must be a positive number of points, got {chunk_size}")
    if method == "exhaustive":
        return _exhaustive_plan(n_points, chunk_size or default_chunk_size(n_points))
    n = sample if sample is not None else 1000
    if method == "sample":
        if n < 1:
            raise FpadError(f"--sample needs a positive number of points, got {n}")
        k = len(problem.free)
        return _sample_plan(problem.fmt.n_values, k, n, seed, chunk_size or sample_chunk_size(n, k))
    names = problem.free_names
    if line not in names:
        raise FpadError(f"--line {line!r} is not a free parameter; free parameters: {', '.join(names)}")
    if n < 2:
        raise FpadError(f"--line needs at least 2 lines (--sample N, N >= 2) for an interval, got {n}")
    m = problem.fmt.n_values
    return _line_plan(n_points, m, digit_stride(m, len(names), names.index(line)), line, n,
                      seed, chunk_size or default_chunk_size(n * m))


# -- budget -----------------------------------------------------------------------------------
def measure_rate(compiled, plan: Plan, settled: float = math.inf) -> float:
    """Points per second of this plan's own chunk function, timed on representative points.

    A one-point warm-up first (numba compilation or cache load), then samples growing fourfold
    until one takes ``_CALIBRATION_SECONDS`` and holds ``_CALIBRATION_MIN_POINTS`` points, takes
    8x that time, or covers ``_CALIBRATION_CAP`` points (or the whole work); or, once a sample
    holds ``_CALIBRATION_MIN_POINTS`` points, as soon as its rate reaches ``settled`` (the caller's
    question is answered with a wide margin).
    """
    fn, args, _ = plan.probe(1)
    fn(compiled, *args)
    n = 256
    while True:
        interrupt.check()
        fn, args, points = plan.probe(n)
        t = time.perf_counter()
        fn(compiled, *args)
        dt = time.perf_counter() - t
        if (dt >= _CALIBRATION_SECONDS and n >= _CALIBRATION_MIN_POINTS) or dt >= 8 * _CALIBRATION_SECONDS \
                or n >= min(_CALIBRATION_CAP, plan.work) or (n >= _CALIBRATION_MIN_POINTS and points >= settled * dt):
            return points / max(dt, 1e-9)
        n *= 4


def _check_budget(problem, compiled, plan, remaining, max_seconds, requested, workers) -> None:
    """Refuse, before any chunk runs, a run the measured speed says would exceed ``max_seconds``.

    The advice names only options that can help: a sample size measured with the sampling
    path's own rate (far below the exhaustive kernel's), the structured method only when it was
    not already tried (``auto`` tries it first), lines only with several free parameters."""
    if max_seconds is None or remaining <= _NO_CALIBRATION_POINTS:
        return
    # a run measured to take under 1% of the budget is let through without timing it further
    # (the quick inc table spent 3.4 of its 8.3 s calibrating cells of a few seconds)
    rate = measure_rate(compiled, plan, settled=_SETTLED_MARGIN * remaining / (max_seconds * workers)) * workers
    eta = remaining / rate
    if eta <= max_seconds:
        return
    m, k = problem.fmt.n_values, len(problem.free)
    options = []
    if plan.method != "line":
        sample_rate = rate if plan.method == "sample" else \
            measure_rate(compiled, _sample_plan(m, k, 1 << 20, 0, sample_chunk_size(1 << 20, k))) * workers
        fit = int(sample_rate * max_seconds)
        options.append(f"--sample N --seed S (a labelled estimate; about {fit:,} points fit the budget)")
    if k > 1:
        line_rate = rate if plan.method == "line" else sample_rate
        options.append(f"--line PARAM (N lines of {m} points: N up to about "
                       f"{max(int(line_rate * max_seconds) // m, 1):,})")
    if requested == "exhaustive":
        options.append("--method auto (a structured exact method, when the network fits one)")
    options.append("fewer --free parameters, a coarser --format, --dask, or a larger --max-seconds")
    what = (f"grid of {m}^{k} = {_big(compiled.n_points)} points" if plan.method == "exhaustive"
            else f"{plan.method} estimate of {plan.work:,} points")
    raise FpadError(f"{what} ({remaining:,} to do) would take about {_duration(eta)} at the "
                    f"measured {rate:,.0f} points/s, over the budget --max-seconds "
                    f"{max_seconds:g}; options: " + "; ".join(options))


def _big(n: int) -> str:
    """A positive count for a one-line message: exact with separators below 10^40, beyond (where
    the digits stop meaning anything to a reader) as a mantissa and an exponent."""
    return f"{n:,}" if n < 10**40 else f"about {scientific(n, 4)}"


def _duration(s: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:,.3g} {unit}"
    return f"{s:.3g} s"


# -- progress ---------------------------------------------------------------------------------
@contextmanager
def _progress_bar(show: bool, plan: Plan, remaining: int):
    """A tqdm bar on stderr with rate and ETA, counted in grid points; a no-op when hidden."""
    from tqdm import tqdm

    with tqdm(total=plan.work, initial=plan.work - remaining, unit="pt", unit_scale=True,
              desc=f"fpad {plan.method}", disable=not show, file=sys.stderr,
              dynamic_ncols=True, smoothing=0.05) as bar:
        yield bar


# -- Dask -------------------------------------------------------------------------------------
def check_dask_timeout(timeout) -> float:
    """``timeout`` as seconds to wait for a Dask scheduler: a finite number > 0, else FpadError."""
    import math

    try:
        t = float(timeout)
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and t > 0):
        raise FpadError(f"--dask-timeout must be a positive number of seconds, got {timeout!r}; "
                        f"e.g. --dask-timeout {DASK_TIMEOUT_S:g}")
    return t


def _probe_scheduler(address: str, timeout: float) -> None:
    """Connect to ``address`` and complete Dask's handshake within ``timeout`` s, or FpadError.

    Needed before building a Client: distributed (2026.8) waits for the peer's handshake with no
    time limit, so a server that accepts and never answers (an idle HTTP port) holds it forever,
    and a peer that answers something else surfaces as whatever its bytes decode to (a
    ValueError, or a MemoryError for a frame "length" of 3 EiB). The attempt runs on its own
    thread and event loop, bounded by ``timeout``, so it also works under a running loop.
    """
    import asyncio
    import threading

    from distributed.comm import connect

    async def attempt():
        comm = await connect(address, timeout=timeout)
        await comm.close()

    outcome = []

    def run():
        try:
            # The margin lets distributed's own deadline (refused / unreachable) fire first.
            asyncio.run(asyncio.wait_for(attempt(), timeout + 0.5))
        except BaseException as exc:  # reported below, in the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, name="fpad-dask-probe", daemon=True)
    worker.start()
    worker.join(timeout + 5)
    exc = outcome[0] if outcome else (TimeoutError() if worker.is_alive() else None)
    if exc is None:
        return
    hint = "start one with 'dask scheduler' (it prints its address) or use --dask local"
    if isinstance(exc, TimeoutError):
        raise FpadError(f"Dask scheduler {address} did not answer within {timeout:g} s (something "
                        f"accepted the connection but sent no Dask handshake); {hint}")
    if isinstance(exc, OSError):
        raise FpadError(f"Dask scheduler {address} did not answer within {timeout:g} s "
                        f"({type(exc).__name__}); {hint}")
    detail = " ".join(str(exc).split())[:100]
    raise FpadError(f"{address} does not answer as a Dask scheduler ({type(exc).__name__}"
                    f"{': ' + detail if detail else ''}); {hint}")


@contextmanager
def _dask_client(address: str, timeout: float):
    """A dask.distributed Client: a fresh two-process LocalCluster for ``"local"``, else a
    connection to the scheduler at ``address`` (FpadError if it does not answer as one within
    ``timeout`` seconds)."""
    timeout = check_dask_timeout(timeout)
    try:
        import logging

        from distributed import Client, LocalCluster
        from distributed.comm.addressing import get_address_host_port
    except ImportError:
        raise FpadError('--dask needs dask.distributed, which is not installed: pip install "fpad[dask]"') from None
    with ExitStack() as stack:
        if address == "local":
            cluster = stack.enter_context(LocalCluster(
                n_workers=LOCAL_DASK_WORKERS, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        else:
            if "://" not in address:
                raise FpadError(f"--dask {address!r}: give 'local' or a scheduler address such as tcp://HOST:8786")
            try:
                get_address_host_port(address, strict=True)
            except ValueError as exc:
                raise FpadError(f"--dask {address!r} is not a Dask address ({exc}); give 'local' or tcp://HOST:PORT") from None
            _probe_scheduler(address, timeout)
            try:
                client = stack.enter_context(Client(address, timeout=f"{timeout}s"))
            except (OSError, TimeoutError) as exc:
                raise FpadError(f"Dask scheduler {address} did not answer within {timeout:g} s "
                                f"({type(exc).__name__}); start one with 'dask scheduler' or use --dask local") from None
        yield client


def _worker_count(client) -> int:
    """How many workers the budget may count on: those of a remote scheduler (they add speed).
    A local cluster shares this machine's cores with the already multi-threaded kernels, so the
    budget is checked before it starts, at the speed of this process."""
    if client is None:
        return 1
    return max(1, len(client.scheduler_info().get("workers", {})))


def _run_dask(client, compiled, plan: Plan, todo, finished) -> None:
    """Run chunks ``todo`` on the cluster, a few in flight per worker, calling ``finished(i,
    payload)`` in this process as each one returns (so the store is written by one process)."""
    from distributed import as_completed

    shared = client.scatter(compiled, broadcast=True)
    in_flight = 2 * max(1, len(client.scheduler_info().get("workers", {}))) + 1
    queue = iter(todo)
    owner = {}

    def submit(i):
        fn, args = plan.task(i)
        fut = client.submit(fn, shared, *args, pure=False)
        owner[fut.key] = i
        return fut

    ac = as_completed([submit(i) for i in itertools.islice(queue, in_flight)])
    for fut in ac:
        finished(owner.pop(fut.key), fut.result())
        nxt = next(queue, None)
        if nxt is not None:
            ac.add(submit(nxt))


# -- result -----------------------------------------------------------------------------------
def _result(problem, n_points, plan, kern, done, extra, level, line, seed, elapsed) -> CountResult:
    from fpad.sweeps import exact_str  # grids of 253^3073 points: str() would refuse

    total = None
    for i in range(plan.n_chunks):  # chunk order: see the module docstring
        c = kern.ChunkCounts.from_json(done[i]["counts"])
        total = c if total is None else total.merge(c)
    ci = None
    if plan.method == "sample":
        ci = sample_interval(total.ndf, total.inc, total.points, level)
        extra.update(grid_points=exact_str(n_points), seed=seed, sample=plan.work)
    elif plan.method == "line":
        lines = [row for i in range(plan.n_chunks) for row in done[i]["lines"]]
        ci = line_interval(lines, problem.fmt.n_values, level)
        extra.update(grid_points=exact_str(n_points), seed=seed, line=line, lines=len(lines))
    extra["fallback"] = total.fallback
    codes = None
    if all("codes" in done[i] for i in range(plan.n_chunks)):
        import numpy as np

        codes = np.concatenate([done[i]["codes"] for i in range(plan.n_chunks)])
    return count_result(problem, total, plan.method, elapsed_s=elapsed, ci=ci, extra=extra, codes=codes)
