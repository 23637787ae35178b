"""Switch and report cannot half-happen: a crash at each point of a cutover or rollback, then the recovery
pass, and the routing document agrees with the catalog and the cutover has its signed report.

A process that dies is simulated by an error at that point and no clean-up in the process (``_undo``
replaced by nothing: a dead process runs no except clause); a store failure by the in-memory store's fault
injection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hdh_migrate.audit import documents
from hdh_migrate.audit.documents import read_routing, routing_key
from hdh_migrate.audit.signing import verify_report
from hdh_migrate.audit.state import IntentResolvedError
from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.runs import cutover, intents
from hdh_migrate.runs.cutover import run_cutover
from hdh_migrate.runs.recording import record_validation
from hdh_migrate.runs.recovery import pending, recover

from .conftest import World
from .test_cutover import KEY, TRUSTED, migrate, passed


class Killed(BaseException):
    """The process dies here (a BaseException: nothing catches it on the way up)."""


def ready(world: World) -> None:
    migrate(world)
    record_validation(world.state, "dcir", [passed("t")], actor="bob", run_id="gx-1")


def agree(world: World) -> None:
    """What a consumer reads is what the catalog says."""
    ds, doc = world.state.get("dcir"), read_routing(world.dest, "dcir")
    assert doc is not None and doc["authoritative"] == ds.authoritative
    assert doc["url"] == (ds.dest_url if ds.authoritative == "s3" else ds.source_url)
    assert world.state.pending_intents("dcir") == []


def die_after_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    real = documents.publish_routing

    def publish_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise Killed()

    monkeypatch.setattr(documents, "publish_routing", publish_then_die)
    monkeypatch.setattr(intents, "_undo", lambda *a, **k: None)


def test_a_failed_document_write_leaves_the_state_and_no_intent(world: World) -> None:
    ready(world)
    world.s3.inject("put", lambda: StoreUnavailableError("store down"), name=routing_key("dcir"))
    with pytest.raises(StoreUnavailableError):
        run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    assert world.state.get("dcir").state == "validated"
    agree(world)  # restored at once, in the process, from the catalog (Azure)
    kinds = [r.kind for r in world.state.ledger("dcir")]
    assert kinds[-2:] == ["routing_intent", "routing_intent_recovered"]
    assert run_cutover(world.state, world.pair, world.ctx("c2"), key=KEY).ok  # and the cutover can run again


def test_a_crash_after_the_document_before_the_commit_is_recovered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready(world)
    with monkeypatch.context() as m:
        die_after_the_document(m)
        with pytest.raises(Killed):
            run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    # the half-done state: consumers are told S3, the catalog says Azure
    assert read_routing(world.dest, "dcir")["authoritative"] == "s3"
    assert world.state.get("dcir").authoritative == "azure"
    left = pending(world.state, "dcir")["routing_intents"]
    assert len(left) == 1 and left[0]["to_state"] == "cut_over" and left[0]["run_id"] == "c"

    out = recover(world.state, world.dest, world.ctx("rec", actor="oscar"), key=KEY)
    assert out["routing"][0]["intended"] == "cut_over" and out["routing"][0]["restored_authoritative"] == "azure"
    agree(world)
    assert read_routing(world.dest, "dcir")["restored"]["by"] == "oscar"
    assert world.state.verify_ledger().ok


def test_a_crash_before_the_transition_ran_is_recovered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intent committed, the process died before the document was written: nothing to undo but the intent."""
    ready(world)
    with monkeypatch.context() as m:
        m.setattr(intents, "_undo", lambda *a, **k: None)
        m.setattr(world.state, "transition", lambda *a, **k: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    assert read_routing(world.dest, "dcir") is None and len(world.state.pending_intents("dcir")) == 1
    recover(world.state, world.dest, world.ctx("rec"), key=KEY)
    agree(world)


def test_the_next_cutover_recovers_first_then_switches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ready(world)
    with monkeypatch.context() as m:
        die_after_the_document(m)
        with pytest.raises(Killed):
            run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    result = run_cutover(world.state, world.pair, world.ctx("c2", run_id="cutover-2"), key=KEY)  # switch recovers
    assert result.ok
    agree(world)
    assert read_routing(world.dest, "dcir")["run_id"] == "cutover-2"
    kinds = [r.kind for r in world.state.ledger("dcir")]
    assert "routing_intent_recovered" in kinds and kinds.count("routing_intent") == 2


def test_a_rollback_that_dies_after_its_document_is_recovered(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ready(world)
    run_cutover(world.state, world.pair, world.ctx("c", run_id="cutover-1"), key=KEY)
    with monkeypatch.context() as m:
        die_after_the_document(m)
        with pytest.raises(Killed):
            cutover.rollback(world.state, world.dest, world.ctx("r"), reason="regression")
    assert read_routing(world.dest, "dcir")["authoritative"] == "azure"
    assert world.state.get("dcir").authoritative == "s3"
    recover(world.state, world.dest, world.ctx("rec"), key=KEY)
    agree(world)
    doc = read_routing(world.dest, "dcir")
    assert (
        doc["run_id"] == "cutover-1" and doc["actor"] == "alice" and doc["report"] == world.state.get("dcir").report_url
    )


def test_a_failed_report_upload_leaves_the_cutover_unfinal_until_recovered(world: World) -> None:
    ready(world)
    ctx = world.ctx("c", run_id="cutover-1", actor="carol")
    freezes = [cutover.freeze_check(world.state, world.pair, ctx)]
    sw = cutover.switch(world.state, world.dest, ctx, freezes, synced=False)
    report_key = sw["report"].split("/", 3)[3]
    world.s3.inject("put", lambda: StoreUnavailableError("store down"), name=report_key)
    with pytest.raises(StoreUnavailableError):
        cutover.report_cutover(world.state, world.dest, ctx, sw, key=KEY, started=datetime.now(UTC))
    ds = world.state.get("dcir")
    assert ds.state == "cut_over" and ds.report_pending
    assert pending(world.state, "dcir")["report_url"] == sw["report"]
    assert world.dest.head(report_key) is None
    agree(world)  # the switch itself is whole: document and catalog agree

    out = recover(world.state, world.dest, world.ctx("rec", actor="oscar"), key=KEY)
    assert out["report"]["url"] == sw["report"] and world.dest.head(report_key) is not None
    assert not world.state.get("dcir").report_pending
    doc = json.loads(world.dest.read_document(report_key))
    assert doc["decision"]["outcome"] == "cut_over" and doc["decision"]["by"] == "carol"
    assert doc["decision"]["run_id"] == "cutover-1" and doc["checks"]["validate"]["run_id"] == "gx-1"
    assert verify_report(out["report"]["local"], trusted=TRUSTED).ok
    recovered = [r for r in world.state.ledger("dcir") if r.kind == "report_recovered"]
    assert len(recovered) == 1 and recovered[0].actor == "oscar" and recovered[0].payload["cutover_run"] == "cutover-1"
    assert recover(world.state, world.dest, world.ctx("rec2"), key=KEY)["report"] is None  # nothing owed now


def test_a_switch_whose_intent_a_recovery_resolved_does_not_commit(world: World) -> None:
    """A recovery pass that runs while a switch is between its intent and its transition wins: the switch
    then refuses to commit behind the document the recovery restored."""
    ready(world)
    intent = world.state.declare_intent(
        "dcir",
        to="cut_over",
        actor="alice",
        run_id="c",
        routing_url="s3://sovereign/_hdh/routing/dcir.json",
        document={"authoritative": "s3"},
    )
    recover(world.state, world.dest, world.ctx("rec"), key=KEY)
    with pytest.raises(IntentResolvedError):
        world.state.transition("dcir", "cut_over", actor="alice", run_id="c", intent=intent.id)
    assert world.state.get("dcir").state == "validated"
    agree(world)
