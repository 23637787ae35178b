"""Validating a side's files in this process and, with ``--jobs`` / ``validate_processes``, in worker processes.

A side's file groups are cut into contiguous runs of about the same bytes; this process validates the
first run, a pool of spawned processes the others, and the metrics and batch results are merged in file
order, which gives what one process gives (every merged metric is a sum, a min/max, a union or an
order-independent fingerprint).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from hdh_migrate.errors import TransientError
from hdh_migrate.locations import Location
from hdh_migrate.stores import open_store
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.validation.files import Batching, csv_column_types, file_groups, iter_batches
from hdh_migrate.validation.gxrunner import GxRunner
from hdh_migrate.validation.metrics import SideMetrics
from hdh_migrate.validation.outcomes import Outcomes

log = logging.getLogger(__name__)

#: a worker process's GX runners, by suite: built once per process, reused for every run of files it gets
_WORKER_RUNNERS: dict[str, GxRunner] = {}


class ValidationWorkerError(TransientError):
    """A worker process of ``--jobs`` / ``validate_processes`` died mid-validation (killed: often memory)."""

    code = "validation_worker_died"


def validate_files(
    st: Store, groups: list[list[ObjectInfo]], doc: dict[str, Any], runner: GxRunner, batching: Batching
) -> tuple[SideMetrics, Outcomes]:
    """Read the groups' files batch by batch: each batch's metrics, and its GX results combined."""
    metrics = SideMetrics.for_suite(doc)
    outcomes = Outcomes(runner.expectations)
    csv_types = csv_column_types(doc.get("meta") or {})

    def opened(info: ObjectInfo) -> None:
        metrics.files += 1

    for group in groups:
        for batch in iter_batches(st, group, batch_rows=batching.rows, csv_types=csv_types, on_file=opened):
            metrics.add(batch)
            outcomes.add(runner.validate(batch))
    return metrics, outcomes


def side_runs(files: list[ObjectInfo], batching: Batching, jobs: int) -> list[list[list[ObjectInfo]]]:
    """A side's file groups, cut into the runs its processes validate (one run: this process alone)."""
    return file_chunks(file_groups(files, batching.group_bytes), jobs, batching.group_bytes)


def file_chunks(groups: list[list[ObjectInfo]], jobs: int, min_bytes: int = 0) -> list[list[list[ObjectInfo]]]:
    """At most ``jobs`` contiguous runs of file groups of about the same number of bytes (order kept), and
    no more runs than ``min_bytes`` fit in the total: a worker pays GX's import (~6 s, as much as validating
    a 32 MiB group), so a table of 39 MiB is not spread over two processes for its last 6 MiB."""
    sizes = [max(sum(f.size for f in g), 1) for g in groups]
    total = sum(sizes)
    n = max(1, min(jobs, len(groups), total // min_bytes if min_bytes > 0 else jobs))
    if n == 1:
        return [groups]
    chunks: list[list[list[ObjectInfo]]] = [[]]
    done = 0
    for i, (g, size) in enumerate(zip(groups, sizes, strict=True)):
        left_groups, left_chunks = len(groups) - i, n - len(chunks) + 1
        # a new run once this one has its share, or when the groups left are only enough for one run each
        if chunks[-1] and len(chunks) < n and (done >= total * len(chunks) / n or left_groups <= left_chunks - 1):
            chunks.append([])
        chunks[-1].append(g)
        done += size
    return chunks


def _side_worker(
    kind: str,
    settings: Any,
    container: str,
    groups: list[list[ObjectInfo]],
    table: str,
    doc: dict[str, Any],
    batching: Batching,
) -> tuple[SideMetrics, Outcomes]:
    """One run of file groups in a worker process: its own store connection, and its own GX context."""
    key = json.dumps([table, doc], sort_keys=True, default=str)
    runner = _WORKER_RUNNERS.get(key)
    if runner is None:
        runner = _WORKER_RUNNERS[key] = GxRunner(table, doc, None)
    st = open_store(Location(kind, container, ""), **{kind: settings})
    return validate_files(st, groups, doc, runner, batching)


@contextmanager
def worker_pool(jobs: int, runs: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes when a side has more than one run (None otherwise); pending work is cancelled if
    anything fails.

    Spawned, not forked: the parent may hold threads (connection pools, Airflow's task runner), and a fork
    copies their locks in whatever state they are.
    """
    if min(jobs, runs) <= 1:
        yield None
        return
    # this process is one of the jobs: it has GX imported already, and would otherwise only wait
    pool = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Hide this process's ``__main__`` while worker processes start.

    A spawned process first runs the parent's main script (or module) again, so that functions pickled from
    it can be found. In an Airflow task, that is the ``airflow`` command: in the worker it initialises
    Airflow again, against a database setting the task process is not allowed to use, and the worker dies
    ("Could not parse SQLAlchemy URL"). The workers need nothing from ``__main__``; during their start it
    is an empty module, which multiprocessing does not run again.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def start_side(
    st: Store,
    runs: list[list[list[ObjectInfo]]],
    table: str,
    doc: dict[str, Any],
    runner: Callable[[], GxRunner],
    batching: Batching,
    pool: ProcessPoolExecutor | None,
) -> Callable[[], tuple[SideMetrics, Outcomes]]:
    """Start validating one side; the returned call waits for it and gives its metrics and batch results.

    ``runs`` are the side's file groups cut into contiguous runs of about the same bytes (``side_runs``).
    With a pool, this process validates the first when the result is collected, the pool's workers the others,
    so that both sides are in flight at once. Metrics and batch results are merged in file order, which
    gives what one process gives (every merged metric is a sum, a min/max, a union or an order-independent
    fingerprint). Each worker pays GX's import once (~6 s here) and holds its own batch in memory.
    """
    groups = [g for run in runs for g in run]

    def here() -> tuple[SideMetrics, Outcomes]:
        return validate_files(st, groups, doc, runner(), batching)

    if pool is None or len(runs) == 1:
        return here
    try:
        futures = _submit(pool, st, runs[1:], table, doc, batching)
    except (AssertionError, OSError, pickle.PicklingError, TypeError) as exc:
        # a daemonic process may not have children; credentials that do not pickle (a token credential
        # object) cannot travel: validate in this process, as with one job
        log.warning(
            "%s: worker processes unavailable (%s: %s); validating in one process", table, type(exc).__name__, exc
        )
        return here
    log.info(
        "%s: validating %d files (%d groups) in %d runs on %d processes",
        table,
        sum(len(g) for g in groups),
        len(groups),
        len(runs),
        len(runs),
    )

    def collect() -> tuple[SideMetrics, Outcomes]:
        metrics, outcomes = validate_files(st, runs[0], doc, runner(), batching)  # the first run, here
        for f in futures:
            m, o = _worker_result(f, st, table, len(runs))
            metrics.merge(m)
            outcomes.merge(o)
        return metrics, outcomes

    return collect


def _submit(
    pool: ProcessPoolExecutor,
    st: Store,
    runs: list[list[list[ObjectInfo]]],
    table: str,
    doc: dict[str, Any],
    batching: Batching,
) -> list[Future[tuple[SideMetrics, Outcomes]]]:
    """Hand each run to the pool's workers, with what a worker needs to open the store itself."""
    settings = st.settings  # type: ignore[attr-defined]
    pickle.dumps((settings, runs[0][0][0]))  # what travels to the workers
    with _main_not_rerun():  # the pool starts its processes in submit()
        return [pool.submit(_side_worker, st.kind, settings, st.container, run, table, doc, batching) for run in runs]


def _worker_result(
    f: Future[tuple[SideMetrics, Outcomes]], st: Store, table: str, processes: int
) -> tuple[SideMetrics, Outcomes]:
    """A worker's metrics and batch results; a worker that died (SIGKILL) is an error saying what to lower."""
    try:
        return f.result()
    except BrokenProcessPool:
        raise ValidationWorkerError(
            f"{table}: a validation worker process died ({st.kind}://{st.container}, {processes} processes)",
            hint="usually the kernel's OOM killer: each process holds a batch (~1-2 GB for 250,000 rows "
            "of a wide table); lower validate_processes (--jobs) or --batch-rows, or give the worker more "
            "memory, then retry: validation only reads",
        ) from None
