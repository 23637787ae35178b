"""Delta sync: while both stores run side by side, copy only what changed at the source since last time.

One run of one dataset, the same for ``hdh_delta_sync``, the cutover's sync and ``hdh-migrate delta-sync``:

1. list the source again and compare it with the previous inventory (``transfer/changes.py``);
2. copy the new and changed objects (the copy step of every run, ``runs/migration.copy_into``), the
   dataset ``copying`` then ``copied``;
3. deletions: decided against the destination, not only against the previous listing: an object still at
   the destination with no source is a deletion not yet mirrored, even if an earlier sync (in ``report``
   mode) already saw it go. Only objects hdh-migrate copied (they record their source version) are ever
   mirrored (``deletions=mirror``, recorded in the ledger); anything else is a foreign extra, reported and
   left alone;
4. verify: if the previous source state had a passing verification, only the new and changed objects are
   re-read (the rest is unchanged by construction: same name, etag and size) on top of that check;
   otherwise the whole dataset. Objects left at the destination with no source make it fail: the
   destination must equal the source before cutover;
5. the run record (``summary.json``) and the state database, as every run records them
   (``runs/recording.py``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

from hdh_migrate.audit import anchors
from hdh_migrate.audit.state import StateStore
from hdh_migrate.errors import ConfigError, CopyFailedError
from hdh_migrate.runs import recording
from hdh_migrate.runs.context import RunContext, now_iso
from hdh_migrate.runs.migration import begin, copy_into, look_for_extras, verify_into
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import CopySection, DeltaSection, RunRecord, VerifySection
from hdh_migrate.transfer.changes import DeltaPlan, plan_delta
from hdh_migrate.transfer.copier import META_SOURCE_ETAG, CopyOptions
from hdh_migrate.transfer.manifest import iter_inventory

log = logging.getLogger(__name__)

DELETION_POLICIES = ("report", "mirror")
#: where a DAG run (and a cutover) keeps its delta sync's evidence, inside the run's folder
SYNC_FOLDER = "delta-sync"
MAX_EXAMPLES = 20


def delta_sync(
    state: StateStore,
    pair: StorePair,
    ctx: RunContext,
    options: CopyOptions | None = None,
    *,
    deletions: str = "report",
    depth: str = "full",
) -> RunRecord:
    """One delta sync of one dataset. Raises CopyFailedError (transient if every failure was) when objects
    could not be copied, after recording the failed run."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    if deletions not in DELETION_POLICIES:
        raise ConfigError(
            f"deletion policy {deletions!r} is not one of {DELETION_POLICIES}",
            hint="'report' (default) lists blobs deleted at the source; 'mirror' deletes them at the destination too",
        )
    options = options or CopyOptions()
    ds = state.get(ctx.dataset)
    header = begin(pair, ctx, "delta_sync", options=options, params={"deletions": deletions, "depth": depth})
    pair.check_access()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_delta(
        pair.source.list(pair.src.prefix), _previous_inventory(ds.inventory_path, ctx.dataset), ctx.work_dir
    )
    log.info(
        "%s: %d new, %d changed, %d deleted at the source, %d unchanged",
        ctx.dataset,
        plan.new,
        plan.changed,
        plan.deleted,
        plan.unchanged,
    )
    record = header.finish(inventory=plan.inventory, delta=DeltaSection(plan, deletions, ds.source_fingerprint))
    if plan.new + plan.changed:
        record = _copy_changes(state, pair, ctx, record, options)
    record = _deletions(state, pair, ctx, record)
    if _needs_verification(state, ctx.dataset, record):
        record = record.finish(verification=_verify(state, pair, ctx, record, depth, options.workers))
        if ds.validation_required and plan.has_changes:
            record.delta = replace(
                record.delta,  # type: ignore[arg-type]
                validation_stale="the source changed: the Great Expectations validation must be run again before "
                "cutover",
            )
    return _finish(state, ctx, record, pair)


def _previous_inventory(path: str | None, dataset: str) -> str | None:
    if path and Path(path).exists():
        return path
    if path:
        log.warning(
            "%s: previous inventory %s is not readable here; comparing the whole listing with the destination instead",
            dataset,
            path,
        )
    return None


def _copy_changes(
    state: StateStore, pair: StorePair, ctx: RunContext, record: RunRecord, options: CopyOptions
) -> RunRecord:
    plan = record.delta.plan  # type: ignore[union-attr]
    recording.record_started(
        state, record, evidence={"new": plan.new, "changed": plan.changed, "fingerprint": plan.fingerprint}
    )
    counts, results = copy_into(
        pair, iter_inventory(plan.changes_path), options, ctx.work_dir / "results" / "copy-delta.parquet"
    )
    record = record.finish(copy=CopySection(counts, [results]))
    if not counts.ok:
        _finish(state, ctx, record, pair)
        lines = "; ".join(f"{e['name']}: [{e['code']}] {e['message']}" for e in counts.errors[:5])
        raise CopyFailedError(
            f"{ctx.dataset}: {counts.failed + counts.rejected} new or changed objects could not be copied: {lines}",
            transient=all(e["transient"] == "true" for e in counts.errors),
            hint=f"details in {results.path}; re-run the delta sync once the cause is fixed",
        )
    return record


def _deletions(state: StateStore, pair: StorePair, ctx: RunContext, record: RunRecord) -> RunRecord:
    """Objects at the destination with no source: mirrored (deleted) or reported, as the policy says."""
    delta = record.delta
    assert delta is not None
    from_source, foreign = [], []
    for key in look_for_extras(pair, delta.plan.inventory.path):
        head = pair.dest.head(key)
        if head is not None and META_SOURCE_ETAG in head.metadata:
            from_source.append(key)
        elif head is not None:
            foreign.append(key)
    mirrored = _mirror(state, pair, ctx, delta.plan, from_source) if delta.policy == "mirror" else []
    remaining = sorted(set(from_source) - set(mirrored))
    deletions = {
        "count": len(from_source),
        "since_last_listing": delta.plan.deleted,
        "since_last_listing_bytes": delta.plan.deleted_bytes,
        "policy": delta.policy,
        "mirrored": len(mirrored),
        "still_at_destination": remaining[:MAX_EXAMPLES],
        "examples": sorted(from_source)[:MAX_EXAMPLES],
        "list": delta.plan.deleted_path,
        "left": remaining + foreign,  # dropped before writing: what the verification counts as extra
    }
    foreign_extras = {"count": len(foreign), "examples": foreign[:MAX_EXAMPLES]}
    return record.finish(delta=replace(delta, deletions=deletions, foreign_extras=foreign_extras))


def _mirror(state: StateStore, pair: StorePair, ctx: RunContext, plan: DeltaPlan, keys: list[str]) -> list[str]:
    if not keys:
        return []
    for key in keys:
        pair.dest.delete(key)
    state.append_ledger(
        kind="deletions_mirrored",
        dataset=ctx.dataset,
        actor=ctx.actor or "",
        run_id=ctx.run_id,
        payload={
            "count": len(keys),
            "keys_sha256": hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest(),
            "examples": sorted(keys)[:MAX_EXAMPLES],
            "deleted_since_last_listing": plan.deleted_path,
        },
    )
    return keys


def _needs_verification(state: StateStore, dataset: str, record: RunRecord) -> bool:
    """After changes, deletions or leftovers -- or when the last verification is not of this source state."""
    delta = record.delta
    assert delta is not None
    last = state.latest_check(dataset, "verify")
    stale = last is None or not last.ok or last.source_fingerprint != delta.plan.fingerprint
    return bool(delta.plan.has_changes or delta.deletions["mirrored"] or delta.deletions["left"] or stale)


def _verify(
    state: StateStore, pair: StorePair, ctx: RunContext, record: RunRecord, depth: str, workers: int
) -> VerifySection:
    delta = record.delta
    assert delta is not None and ctx.dataset
    base = state.latest_check(ctx.dataset, "verify")
    incremental = bool(
        base
        and base.ok
        and delta.previous_fingerprint
        and base.source_fingerprint == delta.previous_fingerprint
        and delta.plan.base_inventory
    )
    objects = delta.plan.changes_path if incremental else delta.plan.inventory.path
    counts, results, seconds = verify_into(
        pair, iter_inventory(objects), depth, ctx.work_dir / "results" / "verify-delta.parquet", workers=workers
    )
    left = delta.deletions["left"]
    for key in left:
        counts.extra += 1
        counts.problems.append(
            {"name": "", "key": key, "problem": "extra", "detail": "at the destination, not at the source"}
        )
    return VerifySection(
        depth,
        counts,
        [results],
        left[:MAX_EXAMPLES],
        seconds=seconds,
        incremental=incremental,
        base_check_id=base.id if incremental and base else None,
        base_run_id=base.run_id if incremental and base else None,
        inherited_evidence=list(base.details.get("evidence", [])) if incremental and base else [],
        inherited_copy_results=list(base.details.get("copy_results", [])) if incremental and base else [],
        extra_advice="blobs deleted at the source are left there under the deletions policy 'report': re-run the "
        "delta sync with deletions=mirror, or remove them, before cutover",
    )


def _finish(state: StateStore, ctx: RunContext, record: RunRecord, pair: StorePair) -> RunRecord:
    delta = record.delta
    assert delta is not None
    record.delta = replace(delta, deletions={k: v for k, v in delta.deletions.items() if k != "left"})
    record = record.finish(finished=now_iso())
    record = recording.record_finished(state, record)
    record.write(ctx.summary_path)
    anchors.anchor_ledger(state, pair.dest, after=f"delta sync of {ctx.dataset} (run {ctx.run_id})")
    return record


__all__ = ["DELETION_POLICIES", "SYNC_FOLDER", "delta_sync"]
