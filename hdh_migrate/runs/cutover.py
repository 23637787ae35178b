"""The cutover's steps and the rollback: the moment a dataset switches from Azure to the sovereign store.

``hdh_cutover`` runs each step as a task, ``hdh-migrate cutover`` runs them in sequence (``run_cutover``);
both call these functions, so they refuse for the same reasons and sign the same report.

1. ``freeze_check``: list the source again and fingerprint it (``transfer/fingerprint.py``). If it differs
   from the fingerprint the last verification was taken on (and ``sync`` allows), a delta sync copies and
   re-verifies the changes (``runs/delta_sync.py``), and the source is listed once more.
2. ``clearance`` (``runs/clearance.py``): every check must be present, passing and taken on the current
   source state. Otherwise ``refuse`` records the refusal in the ledger with a signed refusal report, and
   returns the ``CutoverRefusedError`` to raise, with one reason per problem.
3. ``switch``: the clearance checked again, then one conditional transition to ``cut_over`` that also sets
   the catalog, and before it commits, the routing document consumers read (``audit/documents.py``),
   through a write-ahead intent (``runs/intents.py``): after any crash, document and catalog agree once
   the recovery pass ran. A refused transition publishes nothing; a failed write leaves the state unchanged.
4. ``report_cutover``: the signed audit report (``audit/report.py``), uploaded under ``_hdh-audit/``. Until
   it is recorded the catalog says the report is pending: the cutover is not final, ``hdh-migrate status``
   says so and the recovery pass (``runs/recovery.py``) writes it.

``rollback`` points the catalog and the routing document back at Azure; nothing is deleted on either side.
Every step that appended ledger records ends by anchoring the ledger head at the destination
(``audit/anchors.py``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from hdh_migrate.audit import anchors, documents, report
from hdh_migrate.audit.signing import SigningKey
from hdh_migrate.audit.state import CUT_OVER, ROLLED_BACK, StateStore
from hdh_migrate.runs.clearance import CutoverRefusedError, FreezeCheck, Preflight, clearance
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.delta_sync import SYNC_FOLDER, delta_sync
from hdh_migrate.runs.intents import switch_routing
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import RunRecord
from hdh_migrate.stores.interface import Store
from hdh_migrate.transfer.copier import CopyOptions
from hdh_migrate.transfer.fingerprint import Fingerprint
from hdh_migrate.transfer.manifest import write_inventory

log = logging.getLogger(__name__)


# -- 1. freeze check ------------------------------------------------------------------------------------
def freeze_check(state: StateStore, pair: StorePair, ctx: RunContext, *, attempt: int = 1) -> FreezeCheck:
    """List the source into freeze-inventory[-N].parquet and compare it with the last verification."""
    assert ctx.dataset
    path = ctx.work_dir / ("freeze-inventory.parquet" if attempt == 1 else f"freeze-inventory-{attempt}.parquet")
    fp = Fingerprint()

    def tee() -> Any:
        for info in pair.source.list(pair.src.prefix):
            fp.add_info(info)
            yield info

    stats = write_inventory(tee(), path)
    last = state.latest_check(ctx.dataset, "verify")
    fz = FreezeCheck(
        fp.value,
        stats.objects,
        stats.bytes,
        str(path),
        last.source_fingerprint if last else None,
        last.run_id if last else None,
        last.at.isoformat() if last else None,
    )
    log.info(
        "freeze check of %s: %s objects, fingerprint %s; last verification: %s",
        ctx.dataset,
        f"{fz.objects:,}",
        fz.fingerprint,
        "CHANGED" if fz.changed else "unchanged",
    )
    return fz


def sync_needed(state: StateStore, dataset: str, fz: FreezeCheck, *, sync: bool) -> bool:
    """A changed source is synced first, unless the run says not to (it is then refused) or the dataset is
    already cut over (the sovereign store is authoritative: nothing is copied onto it)."""
    return sync and fz.changed and state.get(dataset).state != CUT_OVER


def sync_changes(
    state: StateStore, pair: StorePair, ctx: RunContext, options: CopyOptions, *, deletions: str, depth: str
) -> RunRecord:
    """The delta sync of a cutover (its evidence under the run's ``delta-sync/`` folder)."""
    return delta_sync(state, pair, ctx.sub(SYNC_FOLDER), options, deletions=deletions, depth=depth)


def refuse(
    state: StateStore,
    dest: Store,
    ctx: RunContext,
    pf: Preflight,
    freezes: list[FreezeCheck],
    *,
    key: SigningKey,
    started: datetime,
) -> CutoverRefusedError:
    """Record the refusal (ledger, signed refusal report, run) and return the error to raise."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    state.append_ledger(
        kind="cutover_refused",
        dataset=ctx.dataset,
        actor=ctx.actor,
        run_id=ctx.run_id,
        payload={"reasons": pf.reasons, "fingerprint": pf.fingerprint},
    )
    decision = report.Decision(
        "refused", pf.reasons, pf.fingerprint, pf.verify, pf.validate, [f.to_dict() for f in freezes]
    )
    prefix = documents.audit_prefix(ctx.dataset, datetime.now(UTC))
    rep = _decided(state, dest, ctx, decision, key=key, started=started, prefix=prefix, reasons=pf.reasons)
    return CutoverRefusedError(ctx.dataset, pf.reasons, report=rep["url"])


def _decided(
    state: StateStore,
    dest: Store,
    ctx: RunContext,
    decision: report.Decision,
    *,
    key: SigningKey,
    started: datetime,
    prefix: str,
    **summary: Any,
) -> dict[str, Any]:
    """A decision's signed report, and the cutover run recorded with its outcome: a refusal leaves the same
    evidence as a switch."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    rep = report.produce(
        state,
        ctx.dataset,
        dest,
        decision,
        actor=ctx.actor,
        run_id=ctx.run_id,
        started=started,
        work_dir=ctx.work_dir,
        key=key,
        prefix=prefix,
    )
    state.record_run(
        ctx.dataset,
        ctx.run_id,
        "cutover",
        actor=ctx.actor,
        ok=decision.outcome == "cut_over",
        started=started,
        summary={"outcome": decision.outcome, **summary, "report": rep["url"]},
    )
    rep["anchor"] = anchors.anchor_ledger(state, dest, after=f"{decision.outcome} decision on {ctx.dataset}")
    return rep


# -- 3. switch ------------------------------------------------------------------------------------------
def switch(
    state: StateStore, dest: Store, ctx: RunContext, freezes: list[FreezeCheck], *, synced: bool
) -> dict[str, Any]:
    """The cutover itself: the clearance again (nothing may have moved since), then the conditional
    transition, the catalog and the routing document, atomically."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    dataset = ctx.dataset
    pf = clearance(state, dataset, freezes, synced=synced)
    if not pf.ok:
        raise CutoverRefusedError(dataset, pf.reasons)
    ds = state.get(dataset)
    at = datetime.now(UTC)
    prefix = documents.audit_prefix(dataset, at)
    urls = {
        "routing": documents.document_url(dest, documents.routing_key(dataset)),
        "report": documents.document_url(dest, prefix + "report.json"),
    }
    doc = documents.routing_document(
        ds, authoritative="s3", since=at, run_id=ctx.run_id, actor=ctx.actor, report=urls["report"]
    )
    freeze = [f.to_dict() for f in freezes]
    t, written = switch_routing(
        state,
        dest,
        ctx,
        to=CUT_OVER,
        doc=doc,
        evidence=_switch_evidence(pf) | urls | {"since": at.isoformat(), "freeze": freeze},
        catalog={
            "authoritative": "s3",
            "authoritative_since": at,
            "authoritative_run_id": ctx.run_id,
            "routing_url": urls["routing"],
            "report_url": urls["report"],
            "report_pending": True,
        },
    )
    log.info(
        "%s cut over to %s by %s (run %s); routing document %s",
        dataset,
        ds.dest_url,
        ctx.actor,
        ctx.run_id,
        urls["routing"],
    )
    return {
        "dataset": dataset,
        "authoritative": "s3",
        "url": ds.dest_url,
        "since": at.isoformat(),
        "routing_version": written.get("version_id"),
        "transition_id": t.id,
        "ledger_seq": t.ledger_seq,
        "prefix": prefix,
        "fingerprint": pf.fingerprint,
        "verify_check": pf.verify.id if pf.verify else None,
        "validate_check": pf.validate.id if pf.validate else None,
        "freeze": freeze,
        "anchor": anchors.anchor_ledger(state, dest, after=f"switch of {dataset}"),
    } | urls


def _switch_evidence(pf: Preflight) -> dict[str, Any]:
    """What the cut_over transition rests on: the source state and the checks taken on it."""
    return {
        "source_fingerprint": pf.fingerprint,
        "verify_check": pf.verify.id if pf.verify else None,
        "verify_run_id": pf.verify.run_id if pf.verify else None,
        "validate_check": pf.validate.id if pf.validate else None,
        "validate_run_id": pf.validate.run_id if pf.validate else None,
        "validation_required": pf.validation_required,
    }


# -- 4. report --------------------------------------------------------------------------------------------
def report_cutover(
    state: StateStore, dest: Store, ctx: RunContext, sw: dict[str, Any], *, key: SigningKey, started: datetime
) -> dict[str, Any]:
    """The signed report of a switch (the checks it rested on, by id), and the run recorded."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    decision = report.Decision(
        "cut_over",
        [],
        sw["fingerprint"],
        state.check(sw["verify_check"]) if sw["verify_check"] else None,
        state.check(sw["validate_check"]) if sw["validate_check"] else None,
        sw["freeze"],
        _switch_facts(sw),
    )
    rep = _decided(state, dest, ctx, decision, key=key, started=started, prefix=sw["prefix"], routing=sw["routing"])
    log.info("cutover report of %s: %s (local %s)", ctx.dataset, rep["url"], rep["local"])
    return rep


def _switch_facts(sw: dict[str, Any]) -> dict[str, Any]:
    """What the report says of the switch (the keys the report always had)."""
    keep = (
        "dataset",
        "authoritative",
        "url",
        "since",
        "routing",
        "routing_version",
        "transition_id",
        "ledger_seq",
        "report",
    )
    return {k: sw.get(k) for k in keep}


# -- the whole cutover, in sequence (the command line) ---------------------------------------------------
@dataclass
class CutoverResult:
    dataset: str
    ok: bool
    reasons: list[str]
    freeze: list[dict[str, Any]]
    synced: list[dict[str, Any]]
    switch: dict[str, Any] | None
    report: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_cutover(
    state: StateStore,
    pair: StorePair,
    ctx: RunContext,
    *,
    key: SigningKey,
    sync: bool = True,
    deletions: str = "report",
    depth: str = "full",
    options: CopyOptions | None = None,
) -> CutoverResult:
    """``hdh-migrate cutover``: the DAG's tasks, in sequence. A refusal raises CutoverRefusedError after it
    was recorded and reported, so "why was this not cut over?" has the same evidence as a cutover."""
    assert ctx.dataset
    started = datetime.now(UTC)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    freezes = [freeze_check(state, pair, ctx)]
    synced: list[RunRecord] = []
    if sync_needed(state, ctx.dataset, freezes[0], sync=sync):
        synced.append(sync_changes(state, pair, ctx, options or CopyOptions(), deletions=deletions, depth=depth))
        freezes.append(freeze_check(state, pair, ctx, attempt=2))
    pf = clearance(state, ctx.dataset, freezes, synced=bool(synced))
    if not pf.ok:
        raise refuse(state, pair.dest, ctx, pf, freezes, key=key, started=started)
    sw = switch(state, pair.dest, ctx, freezes, synced=bool(synced))
    rep = report_cutover(state, pair.dest, ctx, sw, key=key, started=started)
    return CutoverResult(
        ctx.dataset, True, [], [f.to_dict() for f in freezes], [_brief(s) for s in synced], _switch_facts(sw), rep
    )


def _brief(s: RunRecord) -> dict[str, Any]:
    d = s.delta
    return {
        "new": d.plan.new if d else None,
        "changed": d.plan.changed if d else None,
        "deleted": d.deletions.get("count") if d else None,
        "ok": s.ok,
        "work_dir": s.work_dir,
    }


# -- rollback ---------------------------------------------------------------------------------------------
def rollback(state: StateStore, dest: Store, ctx: RunContext, *, reason: str) -> dict[str, Any]:
    """Point the catalog and the routing document back at Azure; delete nothing."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    dataset = ctx.dataset
    ds = state.get(dataset)
    at = datetime.now(UTC)
    doc = documents.routing_document(
        ds, authoritative="azure", since=at, run_id=ctx.run_id, actor=ctx.actor, report=ds.report_url
    )
    doc["rolled_back_from"] = {
        "since": ds.authoritative_since.isoformat() if ds.authoritative_since else None,
        "run_id": ds.authoritative_run_id,
    }
    routing_url = documents.document_url(dest, documents.routing_key(dataset))
    t, _ = switch_routing(
        state,
        dest,
        ctx,
        to=ROLLED_BACK,
        doc=doc,
        evidence={
            "reason": reason or "(none given)",
            "previous_cutover_run": ds.authoritative_run_id,
            "deleted": "nothing (both copies kept)",
        },
        catalog={"authoritative": "azure", "authoritative_since": at, "authoritative_run_id": ctx.run_id},
    )
    state.record_run(
        dataset,
        ctx.run_id,
        "rollback",
        actor=ctx.actor,
        ok=True,
        started=at,
        summary={"reason": reason, "routing": routing_url},
    )
    return {
        "dataset": dataset,
        "authoritative": "azure",
        "url": ds.source_url,
        "since": at.isoformat(),
        "routing": routing_url,
        "transition_id": t.id,
        "ledger_seq": t.ledger_seq,
        "anchor": anchors.anchor_ledger(state, dest, after=f"rollback of {dataset}"),
    }


__all__ = [
    "CutoverResult",
    "freeze_check",
    "refuse",
    "report_cutover",
    "rollback",
    "run_cutover",
    "switch",
    "sync_changes",
    "sync_needed",
]
