"""The cutover's steps on the in-memory stores: refused with every reason until every check is green on the
current source state, then switched with its routing document and signed report; rolled back without
deleting anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hdh_migrate.audit.documents import read_routing
from hdh_migrate.audit.signing import TrustedKeys, verify_report
from hdh_migrate.runs import cutover
from hdh_migrate.runs.clearance import KEPT_CHANGING, CutoverRefusedError, clearance
from hdh_migrate.runs.cutover import run_cutover
from hdh_migrate.runs.pipeline import MigrationRequest, run_migration
from hdh_migrate.runs.recording import record_validation
from hdh_migrate.transfer.copier import CopyOptions
from tests.helpers import public_key_path, signing_key

from .conftest import World, blob

KEY = signing_key()
TRUSTED = TrustedKeys.from_paths([public_key_path()])
OPTIONS = CopyOptions(workers=2, retries=0)


def passed(table: str) -> dict[str, Any]:
    side = {"success": True, "files": 1, "metrics": {"row_count": 10, "fingerprint": "f"}, "expectations": {}}
    return {"table": table, "success": True, "source": side, "destination": side, "comparison": {"equal": True}}


def migrate(world: World, *, validation_required: bool = True) -> None:
    for i in range(4):
        world.source.put(f"data/t/part-{i}.bin", blob(i))
    request = MigrationRequest(validation_required=validation_required)
    run_migration(world.pair, world.ctx("m", run_id="migrate-1"), OPTIONS, request, state=world.state)


def test_refused_with_every_reason_and_a_signed_refusal_report(world: World) -> None:
    migrate(world)
    ctx = world.ctx("c1", actor="carol")
    with pytest.raises(CutoverRefusedError) as info:
        run_cutover(world.state, world.pair, ctx, key=KEY)
    assert len(info.value.reasons) == 1 and info.value.reasons[0].startswith("validation missing")
    assert read_routing(world.dest, "dcir") is None and world.state.get("dcir").authoritative == "azure"
    report = ctx.work_dir / "report" / "report.json"
    doc = json.loads(report.read_text())
    assert doc["decision"]["outcome"] == "refused" and doc["decision"]["reasons"] == info.value.reasons
    assert verify_report(report, trusted=TRUSTED).ok
    assert info.value.report.startswith("s3://sovereign/_hdh-audit/dcir/") and info.value.report.endswith(
        "/report.json"
    )
    assert world.dest.head(info.value.report.split("/", 3)[3]) is not None  # uploaded beside the data
    kinds = [r.kind for r in world.state.ledger("dcir")]
    assert kinds[-3:] == ["cutover_refused", "report", "run_cutover"]


def test_all_green_switches_catalog_and_routing_then_rollback_restores(world: World) -> None:
    migrate(world)
    record_validation(world.state, "dcir", [passed("t")], actor="bob", run_id="gx-1")
    ctx = world.ctx("c", run_id="cutover-1", actor="carol")
    result = run_cutover(world.state, world.pair, ctx, key=KEY)
    routing = read_routing(world.dest, "dcir")
    assert routing["authoritative"] == "s3" and routing["url"] == "s3://sovereign/migrated/"
    assert routing["actor"] == "carol" and routing["run_id"] == "cutover-1"
    ds = world.state.get("dcir")
    assert (ds.state, ds.authoritative, ds.report_url) == ("cut_over", "s3", result.report["url"])
    doc = json.loads(Path(result.report["local"]).read_text())
    assert doc["checks"]["verify"]["run_id"] == "migrate-1" and doc["checks"]["validate"]["run_id"] == "gx-1"
    assert doc["integrity"]["matched"] == 4 and doc["destination"]["provider"] == "memory"

    with pytest.raises(CutoverRefusedError, match="already cut over"):
        run_cutover(world.state, world.pair, world.ctx("again"), key=KEY)

    back = cutover.rollback(world.state, world.dest, world.ctx("r", actor="dave"), reason="consumer regression")
    assert back["authoritative"] == "azure" and read_routing(world.dest, "dcir")["authoritative"] == "azure"
    assert world.state.history("dcir")[-1].evidence["reason"] == "consumer regression"
    assert len(list(world.dest.list("migrated/"))) == 4  # nothing deleted
    assert world.state.verify_ledger().ok


def test_a_changed_source_is_synced_and_verified_before_the_switch(world: World) -> None:
    migrate(world, validation_required=False)
    world.source.put("data/t/late.bin", blob(9))
    result = run_cutover(world.state, world.pair, world.ctx("c"), key=KEY, options=OPTIONS)
    assert [f["changed"] for f in result.freeze] == [True, False] and result.synced[0]["new"] == 1
    assert world.dest.head("migrated/t/late.bin") is not None and world.state.get("dcir").state == "cut_over"


def test_a_source_that_changes_again_during_the_sync_is_refused(world: World, monkeypatch) -> None:
    migrate(world, validation_required=False)
    world.source.put("data/t/late.bin", blob(9))
    real = cutover.delta_sync

    def sync_while_someone_writes(*args: Any, **kwargs: Any) -> Any:
        record = real(*args, **kwargs)
        world.source.put("data/t/later.bin", blob(10))  # written at the source while the cutover runs
        return record

    monkeypatch.setattr(cutover, "delta_sync", sync_while_someone_writes)
    with pytest.raises(CutoverRefusedError) as info:
        run_cutover(world.state, world.pair, world.ctx("c"), key=KEY, options=OPTIONS)
    assert KEPT_CHANGING in info.value.reasons
    assert any(r.startswith("verification is stale") for r in info.value.reasons)
    assert world.state.get("dcir").authoritative == "azure"


def test_without_sync_a_changed_source_is_refused_as_stale(world: World) -> None:
    migrate(world)
    record_validation(world.state, "dcir", [passed("t")], actor="bob", run_id="gx-1")
    world.source.put("data/t/late.bin", blob(9))
    with pytest.raises(CutoverRefusedError) as info:
        run_cutover(world.state, world.pair, world.ctx("c"), key=KEY, sync=False)
    reasons = info.value.reasons
    assert any("verification is stale" in r and "(4 objects then, 5 now)" in r for r in reasons), reasons
    assert any(r.startswith("validation is stale") for r in reasons)


def test_the_switch_checks_again_what_the_clearance_saw(world: World) -> None:
    """Between the clearance task and the switch task, anything may happen: the switch re-checks."""
    migrate(world, validation_required=False)
    ctx = world.ctx("c")
    freezes = [cutover.freeze_check(world.state, world.pair, ctx)]
    assert clearance(world.state, "dcir", freezes, synced=False).ok
    world.state.record_check(
        "dcir",
        "verify",
        run_id="later",
        ok=False,
        source_fingerprint=freezes[0].fingerprint,
        details={"reason": "a later verification failed"},
        actor="bob",
    )
    with pytest.raises(CutoverRefusedError, match="a later verification failed"):
        cutover.switch(world.state, world.dest, ctx, freezes, synced=False)
    assert world.state.get("dcir").state == "verified" and read_routing(world.dest, "dcir") is None
