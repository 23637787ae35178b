"""The validation steps of a migration run: which tables to validate, and one table's validation.

A table is a first-level folder under the source prefix that has a reviewed suite in the expectations
folder (``expectations/NAME.json``; in the image ``/opt/hdh-migrate/expectations``, set by
``HDH_MIGRATE_EXPECTATIONS_DIR``), or one the run names. Its validation runs the suite on both sides and
compares them (``validation/``); the full result goes to ``validation/<table>.json`` in the run's folder,
and a failed table is recorded in the state database at once: it blocks the cutover, with its evidence.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from hdh_migrate.errors import ConfigError, HdhMigrateError
from hdh_migrate.runs import recording
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import ValidationRef
from hdh_migrate.transfer.fingerprint import fingerprint_inventory
from hdh_migrate.validation import table as validation

if TYPE_CHECKING:
    from hdh_migrate.audit.state import StateStore

log = logging.getLogger(__name__)


def expectations_dir() -> Path:
    """$HDH_MIGRATE_EXPECTATIONS_DIR, else the checkout's expectations/ folder."""
    if os.environ.get("HDH_MIGRATE_EXPECTATIONS_DIR"):
        return Path(os.environ["HDH_MIGRATE_EXPECTATIONS_DIR"])
    return Path(__file__).resolve().parents[2] / "expectations"


@dataclass(frozen=True)
class TableJob:
    """One table to validate (an XCom of the DAG: small)."""

    table: str
    suite: str
    work_dir: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tables_to_validate(
    pair: StorePair,
    ctx: RunContext,
    inventory: str | Path,
    requested: list[str] | None = None,
    *,
    suites: Path | None = None,
) -> list[TableJob]:
    """The tables of the inventory that have a suite, or the ones requested (each must have both)."""
    suites_dir = suites or expectations_dir()
    available = {p.stem: p for p in sorted(suites_dir.glob("*.json")) if p.stem.count(".") == 0}
    present = _first_level_folders(inventory, pair.src.prefix)
    wanted = [t for t in (requested or []) if t]
    if wanted:
        no_suite = [t for t in wanted if t not in available]
        no_data = [t for t in wanted if t not in present]
        if no_suite or no_data:
            raise ConfigError(
                f"validate_tables: no suite in {suites_dir} for {no_suite or 'none'}; no folder under {pair.src} "
                f"for {no_data or 'none'}",
                hint="derive a suite with `hdh-migrate expectations from-schema` or fix the table names",
            )
        tables = wanted
    else:
        tables = sorted(present & available.keys())
    log.info("tables to validate with Great Expectations: %s", tables or "none")
    return [TableJob(t, str(available[t]), str(ctx.work_dir)) for t in tables]


def _first_level_folders(inventory: str | Path, prefix: str) -> set[str]:
    present: set[str] = set()
    for batch in pq.ParquetFile(inventory).iter_batches(columns=["name"], batch_size=50_000):
        for name in batch.column("name").to_pylist():
            rel = name[len(prefix) :]
            if "/" in rel:
                present.add(rel.split("/", 1)[0])
    return present


@dataclass
class TableOutcome:
    ref: ValidationRef
    result: dict[str, Any]

    def failure(self) -> HdhMigrateError | None:
        if self.ref.success:
            return None
        return validation.ValidationFailedError(
            f"{validation.failure_message(self.result)} (details: {self.ref.result})",
            result=self.result,
            hint="the dataset's cutover is blocked; see the comparison and Data Docs",
        )


def validate_table(
    pair: StorePair, ctx: RunContext, job: TableJob, *, processes: int = 1, state: StateStore | None = None
) -> TableOutcome:
    """Run the table's suite on both sides and compare them; a failure is recorded at once."""
    result = validation.validate_table(
        job.table,
        job.suite,
        str(pair.src),
        str(pair.dst),
        data_docs_dir=ctx.data_docs(job.table),
        source_store=pair.source,
        destination_store=pair.dest,
        raise_on_failure=False,
        jobs=processes,
    )
    out = ctx.validation_result(job.table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    ref = ValidationRef(job.table, bool(result["success"]), str(out), result.get("data_docs"))
    if not ref.success and state is not None and ctx.dataset:
        assert ctx.actor and ctx.run_id
        recording.record_validation(
            state,
            ctx.dataset,
            [result],
            actor=ctx.actor,
            run_id=ctx.run_id,
            source_fingerprint=fingerprint_inventory(ctx.inventory_path),
        )
    return TableOutcome(ref, result)


def results_of(refs: list[ValidationRef]) -> list[dict[str, Any]]:
    """The full results behind validation refs (the state database keeps them with the check)."""
    return [json.loads(Path(r.result).read_text()) for r in refs]


__all__ = ["TableJob", "TableOutcome", "expectations_dir", "results_of", "tables_to_validate", "validate_table"]
