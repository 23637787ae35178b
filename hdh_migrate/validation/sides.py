"""One side of a table's validation: its files found, validated batch by batch, and summed up.

``validate_side`` runs a side on its own (the benchmark's way); ``table.validate_table`` runs both sides
with the same pieces: ``side_files``, ``workers.start_side`` and ``finish_side``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hdh_migrate.errors import PermanentError
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.stores import open_store
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.validation.datadocs import docs_result
from hdh_migrate.validation.files import Batching, list_data_files
from hdh_migrate.validation.gxrunner import GxRunner
from hdh_migrate.validation.metrics import SideMetrics
from hdh_migrate.validation.outcomes import Outcomes
from hdh_migrate.validation.workers import side_runs, start_side, worker_pool

log = logging.getLogger(__name__)


class NoDataFilesError(PermanentError):
    """No Parquet or CSV file under the table's prefix: nothing to validate (wrong prefix or table)."""

    code = "no_data_files"


@dataclass
class SideResult:
    """One side's outcome: what the result file holds (``to_dict``), and its GX result for Data Docs."""

    side: str
    url: str
    success: bool
    files: int
    batches: int
    evaluated: int
    failed_expectations: list[dict[str, Any]]
    metrics: dict[str, Any]
    gx_result: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "success": self.success,
            "files": self.files,
            "batches": self.batches,
            "expectations": {"evaluated": self.evaluated, "failed": len(self.failed_expectations)},
            "failed_expectations": self.failed_expectations,
            "metrics": self.metrics,
        }


def _table_location(url: str | Location, table: str) -> Location:
    loc = parse_location(url) if isinstance(url, str) else url
    return Location(loc.scheme, loc.container, f"{loc.prefix}{table}/")


def side_files(
    side: str, table: str, location: str | Location, store: Store | None
) -> tuple[Location, Store, list[ObjectInfo]]:
    """The table's location under ``location`` (``PREFIX/NAME/``), its store, and its data files."""
    loc = _table_location(location, table)
    st = store if store is not None else open_store(loc)
    files = list_data_files(st, loc.prefix)
    if not files:
        raise NoDataFilesError(
            f"{table}: no Parquet or CSV file under {loc} ({side})",
            hint="check the table name and the prefix (tables are read under PREFIX/NAME/)",
        )
    return loc, st, files


def finish_side(
    side: str, table: str, loc: Location, files: list[ObjectInfo], metrics: SideMetrics, outcomes: Outcomes
) -> SideResult:
    """A side's result from its merged metrics and batch results."""
    m = metrics.to_dict()
    # A batch sees only itself: re-check uniqueness over all files with the hashed keys.
    outcomes.recheck_uniqueness(m["distinct"])
    failed = outcomes.failed()
    log.info(
        "%s %s: %d files, %d batches, %d rows, %d failed expectations",
        table,
        side,
        len(files),
        outcomes.batches,
        m["row_count"],
        len(failed),
    )
    return SideResult(
        side,
        str(loc),
        not failed,
        len(files),
        outcomes.batches,
        len(outcomes.exps),
        failed,
        m,
        gx_result=docs_result(outcomes, side, str(loc)),
    )


def validate_side(
    side: str,
    table: str,
    doc: dict[str, Any],
    location: str | Location,
    *,
    runner: GxRunner,
    store: Store | None = None,
    batch_rows: int = 250_000,
    jobs: int = 1,
    group_bytes: int | None = None,
) -> SideResult:
    """Run the suite over every batch of one side and gather its metrics.

    ``jobs`` > 1 validates the side's files in that many processes (see ``workers.start_side``); files
    smaller than ``group_bytes`` (default ``files.GROUP_BYTES``) share batches (see ``files.file_groups``).
    """
    batching = Batching.of(batch_rows, group_bytes)
    loc, st, files = side_files(side, table, location, store)
    runs = side_runs(files, batching, jobs)
    with worker_pool(jobs, len(runs)) as pool:
        metrics, outcomes = start_side(st, runs, table, doc, lambda: runner, batching, pool)()
    return finish_side(side, table, loc, files, metrics, outcomes)
