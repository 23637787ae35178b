"""The ledger head anchored at the destination after each run, and what the anchors catch that the chain
alone cannot: records dropped from the end, a chain rebuilt with valid hashes (in-memory stores, SQLite).

Tampering is done as a database administrator would: the append-only triggers dropped, then SQL."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from hdh_migrate.audit import ledger
from hdh_migrate.audit.anchors import ANCHOR_PREFIX, anchor_key, anchor_ledger, database_id, read_anchors
from hdh_migrate.errors import AccessDeniedError, StoreUnavailableError
from hdh_migrate.runs import cutover
from hdh_migrate.runs.cutover import run_cutover
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.stores.memory import MemoryServer

from .conftest import World
from .test_cutover import KEY, migrate


def anchor_keys(world: World) -> list[str]:
    return sorted(i.name for i in world.dest.list(ANCHOR_PREFIX))


def drop_triggers(world: World) -> None:
    with world.state.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER ledger_no_update")
        conn.exec_driver_sql("DROP TRIGGER ledger_no_delete")


def test_every_run_anchors_the_head_and_verify_finds_them(world: World) -> None:
    migrate(world, validation_required=False)
    after_migration = anchor_keys(world)
    assert len(after_migration) == 1  # the migration run's end
    run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    cutover.rollback(world.state, world.dest, world.ctx("r"), reason="regression")
    keys = anchor_keys(world)
    assert len(keys) == 4  # + the switch, the report, the rollback
    newest = json.loads(world.dest.read_document(keys[-1]))
    assert (newest["seq"], newest["hash"]) == world.state.ledger_head()
    assert newest["database"] == world.state.url and newest["genesis"] == world.state.ledger_genesis()
    found = read_anchors(world.state, [world.dest])
    assert len(found.mine) == 4 and found.newest.seq == world.state.ledger_head()[0]
    assert world.state.verify_ledger(anchors=found.mine).ok


def test_a_dropped_tail_is_named_by_the_newest_anchor(world: World) -> None:
    migrate(world, validation_required=False)
    run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    head = world.state.ledger_head()[0]
    drop_triggers(world)
    with world.state.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM ledger WHERE seq > {head - 3}")
    assert world.state.verify_ledger().ok  # the shorter chain is a valid chain
    v = world.state.verify_ledger(anchors=read_anchors(world.state, [world.dest]).mine)
    assert not v.ok and "removed from its end" in v.reason and f"now ends at record {head - 3}" in v.reason
    assert ANCHOR_PREFIX in v.reason  # names the anchor document that proves it


def test_a_chain_rebuilt_with_valid_hashes_is_named(world: World) -> None:
    migrate(world, validation_required=False)
    run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    originals = world.state.ledger()
    drop_triggers(world)
    with world.state.engine.begin() as conn:  # every record re-appended (new times, later actors rewritten)
        conn.exec_driver_sql("DELETE FROM ledger")
        for r in originals:
            actor = "mallory" if r.actor == "alice" and r.seq > 20 else r.actor
            ledger.append(conn, kind=r.kind, dataset=r.dataset, actor=actor, run_id=r.run_id, payload=r.payload)
    assert world.state.verify_ledger().ok  # a rebuilt chain is a valid chain
    v = world.state.verify_ledger(anchors=read_anchors(world.state, [world.dest]).mine)
    assert not v.ok and "the ledger was rebuilt" in v.reason


def test_anchors_are_locked_where_the_store_has_object_lock(world: World) -> None:
    s3 = MemoryServer("s3", object_lock=True)
    dest = s3.create("locked")
    world.pair = StorePair(world.pair.src, world.pair.dst, world.source, dest)
    world.dest = dest
    migrate(world, validation_required=False)
    (key,) = anchor_keys(world)
    with pytest.raises(AccessDeniedError, match="locked until"):
        dest.delete(key)
    assert dest.server.containers["locked"][key].retain_until > datetime.now(UTC)


def test_a_failed_anchor_is_a_warning_and_the_next_one_covers_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(world, validation_required=False)
    run_cutover(world.state, world.pair, world.ctx("c"), key=KEY)
    head = world.state.ledger_head()[0]
    # the rollback appends three records (intent, transition, run), then anchors the head
    key = anchor_key(database_id(world.state), head + 3)
    world.s3.inject("put", lambda: StoreUnavailableError("the store is down"), name=key)
    with caplog.at_level(logging.WARNING, logger="hdh_migrate.audit.anchors"):
        back = cutover.rollback(world.state, world.dest, world.ctx("r"), reason="regression")
    assert back["anchor"] == {"ok": False, "error": "store_unavailable", "message": "the store is down"}
    assert world.state.get("dcir").authoritative == "azure"  # the rollback stands
    assert "[ledger_anchor_failed]" in caplog.text and "rollback of dcir" in caplog.text
    assert key not in anchor_keys(world)
    later = anchor_ledger(world.state, world.dest, after="the next run")
    assert later["ok"] and later["seq"] == head + 3  # the next anchor vouches for the records the failed one missed
