"""The routing document and the catalog change as one step that cannot half-happen (write-ahead intent).

The routing document lives in the object store, the catalog in the database: no transaction spans both.
So a switch or a rollback is three steps, each durable before the next:

1. the **intent** is committed in the database (``routing_intents``: the dataset, the run, the document
   about to be written; a ``routing_intent`` ledger record);
2. the **routing document** is written, inside the transaction of the transition, after its conditional
   UPDATE succeeded (a refused transition never publishes);
3. the transition **commits**, deleting the intent in the same transaction.

After a crash at any point, either the transition committed (the intent is gone, document and catalog both
say the new side), or it did not and the intent is still there: the document may or may not have been
written. ``recover_routing`` (run at the start of every switch and rollback, by ``hdh-migrate recover``
and by the cutover DAG's first task) then **rewrites the document from the catalog**, with the dataset's
row locked so that no switch is in flight, deletes the intent and records a ``routing_intent_recovered``
ledger record.

Why back to the catalog rather than completing the switch: the catalog is the decision of record; the
clearance the switch rested on (the source unchanged since its checks) was true at that moment only, and
completing it later would commit a cutover nobody re-checked. Backing out is always safe: the operator runs
the cutover again and it re-checks everything. A failure inside the process (a store error, a refused
transition) runs the same recovery at once; only a process that dies leaves the intent for the next run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from hdh_migrate.audit import documents
from hdh_migrate.audit.state import DatasetStatus, RoutingIntent, StateStore, Transition
from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.runs.context import RunContext
from hdh_migrate.stores.interface import Store

log = logging.getLogger(__name__)


def switch_routing(
    state: StateStore,
    dest: Store,
    ctx: RunContext,
    *,
    to: str,
    doc: dict[str, Any],
    evidence: dict[str, Any],
    catalog: dict[str, Any],
) -> tuple[Transition, dict[str, Any]]:
    """The transition to ``to`` and the routing document ``doc``, through a write-ahead intent.

    Returns the transition and what the document write returned (its URL, version)."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    dataset = ctx.dataset
    recover_routing(state, dest, ctx)
    state.check_allowed(dataset, to)  # a plain refusal leaves no intent behind
    routing_url = documents.document_url(dest, documents.routing_key(dataset))
    intent = state.declare_intent(
        dataset, to=to, actor=ctx.actor, run_id=ctx.run_id, routing_url=routing_url, document=doc
    )
    written: dict[str, Any] = {}
    try:
        t = state.transition(
            dataset,
            to,
            actor=ctx.actor,
            run_id=ctx.run_id,
            evidence=evidence | {"intent": intent.id},
            catalog=catalog,
            intent=intent.id,
            before_commit=lambda: written.update(documents.publish_routing(dest, dataset, doc)),
        )
    except BaseException:
        _undo(state, dest, ctx, intent)
        raise
    return t, written


def _undo(state: StateStore, dest: Store, ctx: RunContext, intent: RoutingIntent) -> None:
    """The transition failed in this process: make the document say what the catalog says, now (if that
    fails too, the intent stays for the next run's recovery)."""
    try:
        _resolve(state, dest, ctx, intent)
    except HdhMigrateError as exc:
        log.warning(
            "[routing_intent_pending] %s: the routing document could not be restored from the catalog after "
            "the failed %s (%s); the next cutover, rollback or `hdh-migrate recover %s` restores it",
            intent.dataset,
            intent.to_state,
            exc,
            intent.dataset,
        )


def recover_routing(state: StateStore, dest: Store, ctx: RunContext) -> list[dict[str, Any]]:
    """Resolve every intent left behind on ``ctx.dataset`` (whose destination is ``dest``): for each, the
    routing document rewritten from the catalog. Returns what was resolved (empty when nothing was pending)."""
    assert ctx.dataset
    out = []
    for intent in state.pending_intents(ctx.dataset):
        resolved = _resolve(state, dest, ctx, intent)
        if resolved is not None:
            log.warning(
                "%s: a %s by run %s did not commit; its routing document was rewritten from the catalog "
                "(authoritative: %s)",
                intent.dataset,
                intent.to_state,
                intent.run_id,
                resolved["restored_authoritative"],
            )
            out.append(resolved)
    return out


def _resolve(state: StateStore, dest: Store, ctx: RunContext, intent: RoutingIntent) -> dict[str, Any] | None:
    by = ctx.actor or "hdh-migrate"
    run = ctx.run_id or f"recovery-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    actors = {t.run_id: t.actor for t in state.history(intent.dataset)}

    def restore(ds: DatasetStatus) -> dict[str, Any]:
        doc = catalog_document(ds, actors.get(ds.authoritative_run_id))
        doc["restored"] = {"intent": intent.id, "by": by, "run_id": run, "at": datetime.now(UTC).isoformat()}
        documents.publish_routing(dest, ds.name, doc)
        return doc

    return state.resolve_intent(intent, actor=by, run_id=run, restore=restore)


def catalog_document(ds: DatasetStatus, actor: str | None) -> dict[str, Any]:
    """The routing document that says what the catalog says."""
    doc = documents.routing_document(
        ds,
        authoritative=ds.authoritative,
        since=ds.authoritative_since or ds.created_at,
        run_id=ds.authoritative_run_id or "",
        actor=actor or "",
        report=ds.report_url,
    )
    doc["run_id"], doc["actor"] = ds.authoritative_run_id, actor
    return doc


__all__ = ["catalog_document", "recover_routing", "switch_routing"]
