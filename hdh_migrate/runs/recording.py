"""What a run leaves in the state database, read from its run record: the one place that turns a run into
transitions, checks and runs rows (and so into ledger records).

- ``record_started``: the dataset registered (if new) and marked ``copying``;
- ``record_finished``: ``copied``, the verification check (taken on the fingerprint of the inventory the run
  listed, so that the cutover can tell whether the source changed since), the inventory as the base of
  the next delta sync, the run itself; and the validation check when the run validated tables;
- ``record_validation``: a validation check on its own (a failed table, recorded at once: it blocks the
  cutover with its evidence).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hdh_migrate.audit.lifecycle import COPIED, COPYING
from hdh_migrate.errors import PermanentError
from hdh_migrate.runs.record import RunRecord, VerifySection
from hdh_migrate.transfer.fingerprint import fingerprint_inventory

if TYPE_CHECKING:  # the database layer is not imported by a run that records nothing (see audit/lifecycle.py)
    from hdh_migrate.audit.state import Check, DatasetStatus, StateStore

RUN_KINDS = {"migrate": "migrate", "copy": "migrate", "verify": "migrate", "delta_sync": "delta_sync"}


def record_started(
    state: StateStore,
    header: RunRecord,
    *,
    validation_required: bool | None = None,
    evidence: dict[str, Any] | None = None,
) -> DatasetStatus:
    """Register the dataset if new and mark it ``copying`` (refused while it is cut over)."""
    assert header.dataset and header.run_id and header.triggered_by
    state.ensure_dataset(
        header.dataset,
        header.source,
        header.destination,
        actor=header.triggered_by,
        run_id=header.run_id,
        validation_required=validation_required,
    )
    reason = {"reason": "delta sync" if header.command == "delta_sync" else "migration run"}
    state.transition(
        header.dataset, COPYING, actor=header.triggered_by, run_id=header.run_id, evidence=reason | (evidence or {})
    )
    return state.get(header.dataset)


def record_finished(
    state: StateStore, record: RunRecord, *, validations: list[dict[str, Any]] | None = None
) -> RunRecord:
    """The run's outcome in the state database; returns the record with the id of the check it recorded."""
    assert record.dataset and record.run_id and record.triggered_by and record.inventory is not None
    dataset, actor, run_id = record.dataset, record.triggered_by, record.run_id
    fp = record.delta.plan.fingerprint if record.delta else fingerprint_inventory(record.inventory.path)
    if record.copy is not None and record.copy.ok and state.get(dataset).state == COPYING:
        state.transition(dataset, COPIED, actor=actor, run_id=run_id, evidence=_copy_evidence(record))
    if record.verification is not None and (record.copy is None or record.copy.ok):
        check = state.record_check(
            dataset,
            "verify",
            run_id=run_id,
            ok=record.verification.ok,
            source_fingerprint=fp,
            details=verification_details(record),
            actor=actor,
        )
        record = record.finish(verification=_with_check(record, check))
    if record.copy is None or record.copy.ok:
        state.set_inventory(
            dataset,
            path=record.inventory.path,
            sha256=record.inventory.sha256,
            fingerprint=fp,
            run_id=run_id,
            actor=actor,
        )
    if validations:
        record_validation(state, dataset, validations, actor=actor, run_id=run_id, source_fingerprint=fp)
    state.record_run(
        dataset,
        run_id,
        RUN_KINDS[record.command],
        actor=actor,
        ok=record.ok,
        started=_time(record.started),
        summary=run_summary(record),
    )
    return record


def record_validation(
    state: StateStore,
    dataset: str,
    results: list[dict[str, Any]],
    *,
    actor: str,
    run_id: str,
    source_fingerprint: str | None = None,
) -> Check:
    """Record Great Expectations results (one dict per table, as ``validation.table.validate_table`` gives).

    The fingerprint defaults to the dataset's current source fingerprint (the inventory the run listed):
    validation reads the source as it is, so it vouches for that state.
    """
    fp = source_fingerprint or state.get(dataset).source_fingerprint
    if not fp:
        raise PermanentError(
            f"no source inventory is recorded for {dataset!r}: cannot tie the validation to a source state",
            hint="record the migration run (its inventory) first",
        )
    ok = bool(results) and all(bool(r.get("success")) for r in results)
    failed = [r.get("table") for r in results if not r.get("success")]
    details: dict[str, Any] = {"tables": [r.get("table") for r in results], "failed_tables": failed, "results": results}
    if not results:
        details["reason"] = "no table was validated"
    elif failed:
        details["reason"] = f"tables {', '.join(map(str, failed))} failed"
    return state.record_check(
        dataset, "validate", run_id=run_id, ok=ok, source_fingerprint=fp, details=details, actor=actor
    )


def verification_details(record: RunRecord) -> dict[str, Any]:
    """The verification check's details: where its evidence is (the report reads them), and why it failed."""
    v = record.verification
    assert v is not None and record.inventory is not None
    c = v.counts
    details: dict[str, Any] = {
        "incremental": v.incremental,
        "base_check_id": v.base_check_id,
        "base_run_id": v.base_run_id,
        "depth": v.depth,
        "objects_verified": c.checked,
        "matched": c.matched,
        "missing": c.missing,
        "differs": c.differs,
        "errors": c.errors,
        "bytes_read": c.bytes_read,
        "extras": c.extra,
        "extra_examples": v.extra_examples,
        "problems": [f"{p['key'] or p['name']}: {p['problem']} ({p['detail']})" for p in c.problems[:20]],
        "inventory": record.inventory.path,
        "inventory_sha256": record.inventory.sha256,
        "objects": record.inventory.objects,
        "bytes": record.inventory.bytes,
        "evidence": v.inherited_evidence + [f.path for f in v.files],
        "copy_results": v.inherited_copy_results + ([f.path for f in record.copy.files] if record.copy else []),
        "work_dir": record.work_dir,
        "source": record.source,
        "destination": record.destination,
    }
    if not v.ok:
        details["reason"] = v.reason()
    return details


def run_summary(record: RunRecord) -> dict[str, Any]:
    """What the runs table and the ledger keep of a run (counts and paths; summary.json has the rest)."""
    c = record.copy.counts if record.copy else None
    v = record.verification
    return {
        "command": record.command,
        "copied": c.copied if c else None,
        "copied_bytes": c.copied_bytes if c else None,
        "skipped": c.skipped if c else None,
        "retried": c.retried if c else None,
        "verified": v.counts.matched if v else None,
        "extra_objects": v.counts.extra if v else None,
        "check_id": v.check_id if v else None,
        "dry_run": record.dry_run,
        "work_dir": record.work_dir,
        "source": record.source,
        "destination": record.destination,
        "provider": record.provider,
        "encryption": record.encryption,
        "params": record.params,
        "tool": record.tool,
        "delta": {
            "new": record.delta.plan.new,
            "changed": record.delta.plan.changed,
            "deleted": record.delta.deletions.get("count"),
            "mirrored": record.delta.deletions.get("mirrored"),
            "fingerprint": record.delta.plan.fingerprint,
        }
        if record.delta
        else None,
        "ok": record.ok,
    }


def _copy_evidence(record: RunRecord) -> dict[str, Any]:
    assert record.copy is not None
    c = record.copy.counts
    return {
        "copied": c.copied,
        "copied_bytes": c.copied_bytes,
        "skipped": c.skipped,
        "copy_results": [f.path for f in record.copy.files],
        "results_sha256": [f.sha256 for f in record.copy.files],
    }


def _with_check(record: RunRecord, check: Check) -> VerifySection:
    assert record.verification is not None
    return replace(record.verification, check_id=check.id)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


__all__ = ["record_finished", "record_started", "record_validation", "run_summary", "verification_details"]
