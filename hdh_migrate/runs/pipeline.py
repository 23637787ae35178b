"""``hdh-migrate migrate``: the ``hdh_migrate_dataset`` DAG's steps, in sequence, in one process.

The same calls the DAG's tasks make (``runs/migration.py``, ``runs/tables.py``), in the DAG's order; a step
that finds the data not right stops the run with the error its task would fail with, after recording what
the task records. So the command line and the DAG decide alike and leave the same evidence.

Kept apart from ``runs/migration.py`` because it validates tables: ``hdh-migrate copy`` imports the
migration steps and must not pay for the validation package's imports (pyarrow and numpy at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.migration import (
    begin,
    copy_shard,
    extras_failure,
    plan,
    summarize,
    take_inventory,
    verify_shard,
)
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import RunRecord, ValidationRef
from hdh_migrate.runs.tables import results_of, tables_to_validate, validate_table
from hdh_migrate.transfer.copier import CopyOptions

if TYPE_CHECKING:
    from hdh_migrate.audit.state import StateStore


@dataclass(frozen=True)
class MigrationRequest:
    """What a migration run is asked for, beyond the copy options (the DAG's Params)."""

    depth: str = "full"
    tables: list[str] = field(default_factory=list)
    validate_processes: int = 1
    validation_required: bool = True
    shard_max_objects: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def _stop_on(error: HdhMigrateError | None) -> None:
    if error is not None:
        raise error


def run_migration(
    pair: StorePair, ctx: RunContext, options: CopyOptions, request: MigrationRequest, *, state: StateStore
) -> RunRecord:
    """Inventory, shards (copy, then verify, each), tables, summary; the run record."""
    options.validate()
    header = begin(pair, ctx, "migrate", options=options, params=request.params)
    inv = take_inventory(pair, ctx, header, state=state, validation_required=request.validation_required)
    copies, verifies = [], []
    for shard in plan(ctx, inv, max_objects=request.shard_max_objects):
        copies.append(copy_shard(pair, ctx, shard, options))
        _stop_on(copies[-1].failure())
        if not options.dry_run:
            verifies.append(verify_shard(pair, ctx, shard, request.depth, workers=options.workers))
            _stop_on(verifies[-1].failure())
    validations: list[ValidationRef] = []
    if not options.dry_run:
        for job in tables_to_validate(pair, ctx, inv.inventory, request.tables):
            outcome = validate_table(pair, ctx, job, processes=request.validate_processes, state=state)
            _stop_on(outcome.failure())
            validations.append(outcome.ref)
    record = summarize(
        pair,
        ctx,
        copies,
        verifies,
        validations,
        depth=None if options.dry_run else request.depth,
        state=state,
        validation_results=results_of(validations),
    )
    _stop_on(extras_failure(record))
    return record


__all__ = ["MigrationRequest", "run_migration"]
