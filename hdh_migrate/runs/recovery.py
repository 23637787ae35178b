"""The recovery pass: after a crash, the routing document agrees with the catalog, and a cutover gets the
signed report it still owes.

Two things can be left half-done by a process that dies:

- a **routing intent** (``runs/intents.py``): the routing document may say something the catalog does not;
  it is rewritten from the catalog (``recover_routing``);
- a **pending report**: the cut_over transition committed, its signed report was never recorded (the
  report step failed or never ran). The cutover is not final until it is: ``recover`` writes it, for the
  cutover's own run and actor, under the audit prefix the catalog and the routing document already name,
  and records who recovered it (a ``report_recovered`` ledger record).

``recover`` runs at the start of ``hdh-migrate cutover`` and of the cutover DAG (its first task), and on
its own as ``hdh-migrate recover DATASET``; switch and rollback run ``recover_routing`` themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from hdh_migrate.audit import anchors
from hdh_migrate.audit.lifecycle import CUT_OVER
from hdh_migrate.audit.state import StateStore, Transition
from hdh_migrate.errors import PermanentError
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.cutover import report_cutover
from hdh_migrate.runs.intents import recover_routing
from hdh_migrate.stores.interface import Store

log = logging.getLogger(__name__)

REPORT_FOLDER = "recovered-report"


def recover(state: StateStore, dest: Store, ctx: RunContext, *, key: Any) -> dict[str, Any]:
    """Make document and catalog agree, then write the missing report of ``ctx.dataset`` (if any).

    ``key`` signs the report (the same key the cutover signs with)."""
    assert ctx.dataset
    routing = recover_routing(state, dest, ctx)
    rep = recover_report(state, dest, ctx, key=key)
    out: dict[str, Any] = {"dataset": ctx.dataset, "routing": routing, "report": rep}
    if routing and rep is None:  # recover_report anchors after its own records
        out["anchor"] = anchors.anchor_ledger(state, dest, after=f"recovery of {ctx.dataset}")
    return out


def recover_report(state: StateStore, dest: Store, ctx: RunContext, *, key: Any) -> dict[str, Any] | None:
    """The signed report of the dataset's last cutover, if its catalog says it is still pending; else None."""
    assert ctx.dataset and ctx.actor and ctx.run_id
    ds = state.get(ctx.dataset)
    if not ds.report_pending:
        return None
    t = _cutover_of(state, ctx.dataset, ds.report_url)
    sw = switch_facts(t, ds.dest_url)
    original = RunContext(ctx.work_dir / REPORT_FOLDER, t.run_id, t.actor, ctx.dataset)
    log.warning(
        "%s: the cutover of run %s has no signed report yet; writing it now (%s)", ctx.dataset, t.run_id, sw["report"]
    )
    rep = report_cutover(state, dest, original, sw, key=key, started=t.at)
    state.append_ledger(
        kind="report_recovered",
        dataset=ctx.dataset,
        actor=ctx.actor,
        run_id=ctx.run_id,
        payload={"cutover_run": t.run_id, "report": rep["url"], "sha256": rep["sha256"]},
    )
    rep["anchor"] = anchors.anchor_ledger(state, dest, after=f"recovered report of {ctx.dataset}")
    return rep


def _cutover_of(state: StateStore, dataset: str, report_url: str | None) -> Transition:
    """The cut_over transition whose report is ``report_url`` (the catalog's)."""
    for t in reversed(state.history(dataset)):
        if t.to_state == CUT_OVER and t.evidence.get("report") == report_url:
            return t
    raise PermanentError(
        f"{dataset}: the catalog says a report is pending ({report_url}) but no cutover in the history names it",
        hint="run `hdh-migrate audit verify`: the history may have been altered",
    )


def switch_facts(t: Transition, dest_url: str) -> dict[str, Any]:
    """What ``report_cutover`` needs of a switch, read back from its transition's evidence."""
    ev = t.evidence
    report = str(ev["report"])
    key = report.split("/", 3)[3]
    return {
        "dataset": t.dataset,
        "authoritative": "s3",
        "url": dest_url,
        "since": ev.get("since") or t.at.isoformat(),
        "routing_version": None,
        "transition_id": t.id,
        "ledger_seq": t.ledger_seq,
        "prefix": key[: -len("report.json")],
        "fingerprint": ev.get("source_fingerprint"),
        "verify_check": ev.get("verify_check"),
        "validate_check": ev.get("validate_check"),
        "freeze": ev.get("freeze") or [],
        "routing": ev.get("routing"),
        "report": report,
    }


def pending(state: StateStore, dataset: str) -> dict[str, Any]:
    """What ``hdh-migrate status`` shows: intents left behind and a report still owed (no store needed)."""
    ds = state.get(dataset)
    intents = state.pending_intents(dataset)
    return {
        "routing_intents": [i.to_dict() for i in intents],
        "report_pending": ds.report_pending,
        "report_url": ds.report_url if ds.report_pending else None,
    }


__all__ = ["REPORT_FOLDER", "pending", "recover", "recover_report", "switch_facts"]
