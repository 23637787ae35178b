"""Dual-run validation of one table: its GX suite on the source and on the destination copy, compared.

Checksums prove that bytes arrived; auditors also want proof that the dataset is still what it was and
still meets the published model. For one table, ``validate_table``:

1. lists the data files under ``PREFIX/NAME/`` on each side (Parquet, or CSV typed from the suite) and
   reads them one row group at a time through ranged reads, never a whole table (``files``);
2. runs the GX suite on each batch (about ``batch_rows`` rows, whole row groups, filled across files of
   one schema) and combines the batch results per expectation (``gxrunner``, ``outcomes``); uniqueness is
   re-checked across all files with hashed keys, since a batch only sees itself;
3. computes comparable metrics with pyarrow (``metrics``), in worker processes with ``jobs`` > 1
   (``workers``);
4. compares both sides column by column and builds GX Data Docs for the audit report (``datadocs``).

Reports and logs only ever hold counts, types, numeric aggregates of non-key columns and fingerprints:
never a row, never an id (text columns get no min/max; key columns are compared by fingerprint and
distinct count only; GX is asked for no unexpected-value samples).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdh_migrate.errors import HdhMigrateError, PermanentError
from hdh_migrate.stores.interface import Store
from hdh_migrate.validation.datadocs import build_docs
from hdh_migrate.validation.expectations import read_suite_document
from hdh_migrate.validation.files import Batching, MixedFormatsError
from hdh_migrate.validation.gxrunner import GxRunner
from hdh_migrate.validation.messages import failure_message, format_report
from hdh_migrate.validation.metrics import compare_metrics
from hdh_migrate.validation.sides import NoDataFilesError, SideResult, finish_side, side_files
from hdh_migrate.validation.workers import ValidationWorkerError, side_runs, start_side, worker_pool

log = logging.getLogger(__name__)


class ValidationFailedError(PermanentError):
    """The dataset failed its suite on a side, or the two sides differ: its cutover is blocked.

    ``result`` holds the full JSON-serialisable result (the same dict ``validate_table`` returns).
    """

    code = "validation_failed"
    exit_code = 1  # the run went through and found the data not right

    def __init__(self, message: str, *, result: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def load_suite(suite: str | Path | dict[str, Any]) -> dict[str, Any]:
    return suite if isinstance(suite, dict) else read_suite_document(suite)


def validate_table(
    table: str,
    suite: str | Path | dict[str, Any],
    source: str,
    destination: str,
    *,
    data_docs_dir: str | Path | None = "data_docs",
    batch_rows: int = 250_000,
    source_store: Store | None = None,
    destination_store: Store | None = None,
    raise_on_failure: bool = True,
    jobs: int = 1,
    group_bytes: int | None = None,
) -> dict[str, Any]:
    """Validate one table on both sides and compare; the result is JSON-serialisable.

    ``source``/``destination`` are ``azure://C/P`` and ``s3://B/Q``; the table is read under ``P/NAME/``
    and ``Q/NAME/``. Raises ``ValidationFailedError`` (its ``result`` holds this dict) unless both sides
    pass and every metric matches, so an Airflow task fails with a message naming the table, the side
    and the failing expectations. Data Docs go to ``data_docs_dir`` (None: not built). ``jobs`` > 1
    validates each side's files in that many worker processes, both sides at once (``workers.start_side``);
    files smaller than ``group_bytes`` (default ``files.GROUP_BYTES``) share batches (``files.file_groups``).
    """
    doc = load_suite(suite)
    docs_dir = Path(data_docs_dir).resolve() if data_docs_dir is not None else None
    # built on first use: after the listings (a wrong prefix fails at once, not after GX's ~6 s import)
    # and after any worker got its files (their imports then overlap this one)
    runner = functools.cache(lambda: GxRunner(table, doc, docs_dir))
    src, dst = _both_sides(
        table,
        doc,
        runner,
        (source, source_store),
        (destination, destination_store),
        Batching.of(batch_rows, group_bytes),
        jobs,
    )
    result = _result(table, suite, doc, src, dst)
    if docs_dir is not None:
        _add_data_docs(result, runner, table, [src, dst])
    if not result["success"] and raise_on_failure:
        raise ValidationFailedError(
            failure_message(result),
            result=result,
            hint="the dataset's cutover is blocked; see the comparison and Data Docs",
        )
    return result


def _both_sides(
    table: str,
    doc: dict[str, Any],
    runner: Callable[[], GxRunner],
    source: tuple[str, Store | None],
    destination: tuple[str, Store | None],
    batching: Batching,
    jobs: int,
) -> tuple[SideResult, SideResult]:
    """Both sides validated; both listed first, so that a wrong prefix on either fails before any work."""
    s_loc, s_st, s_files = side_files("source", table, *source)
    d_loc, d_st, d_files = side_files("destination", table, *destination)
    s_runs, d_runs = side_runs(s_files, batching, jobs), side_runs(d_files, batching, jobs)
    with worker_pool(jobs, max(len(s_runs), len(d_runs))) as pool:
        # with worker processes, both sides are in flight at once; without, one after the other
        s_run = start_side(s_st, s_runs, table, doc, runner, batching, pool)
        d_run = start_side(d_st, d_runs, table, doc, runner, batching, pool)
        src = finish_side("source", table, s_loc, s_files, *s_run())
        dst = finish_side("destination", table, d_loc, d_files, *d_run())
    return src, dst


def _result(
    table: str, suite: str | Path | dict[str, Any], doc: dict[str, Any], src: SideResult, dst: SideResult
) -> dict[str, Any]:
    """The result dict: what ``validation/<table>.json``, the audit report and the state database read."""
    comparison = compare_metrics(src.metrics, dst.metrics)
    return {
        "table": table,
        "suite": str(suite) if not isinstance(suite, dict) else str(doc.get("name")),
        "source": src.to_dict(),
        "destination": dst.to_dict(),
        "comparison": comparison,
        "success": src.success and dst.success and comparison["equal"],
        "data_docs": None,
        "data_docs_pages": {},
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _add_data_docs(result: dict[str, Any], runner: Callable[[], GxRunner], table: str, sides: list[SideResult]) -> None:
    try:
        docs = build_docs(runner(), table, {s.side: s.gx_result for s in sides})
        result["data_docs"], result["data_docs_pages"] = docs["index"], docs["pages"]
    except HdhMigrateError:
        raise
    except Exception as exc:  # Data Docs are a report, never a reason to lose the validation itself
        log.warning("%s: Data Docs could not be built: %s", table, type(exc).__name__)


__all__ = [
    "MixedFormatsError",
    "NoDataFilesError",
    "ValidationFailedError",
    "ValidationWorkerError",
    "failure_message",
    "format_report",
    "load_suite",
    "validate_table",
]
