"""The delta sync on the in-memory stores: exactly what changed is copied; deletions are reported, and
mirrored only when asked; the verification it records is of the new source state."""

from __future__ import annotations

import pytest

from hdh_migrate.errors import ConfigError, CopyFailedError, StoreUnavailableError
from hdh_migrate.runs.delta_sync import delta_sync
from hdh_migrate.runs.pipeline import MigrationRequest, run_migration
from hdh_migrate.transfer.copier import CopyOptions
from hdh_migrate.transfer.manifest import read_results

from .conftest import World, blob

OPTIONS = CopyOptions(workers=2, retries=0)


@pytest.fixture
def migrated(world: World) -> World:
    for i in range(6):
        world.source.put(f"data/dcir/part-{i}.bin", blob(i))
    run_migration(world.pair, world.ctx("m"), OPTIONS, MigrationRequest(validation_required=False), state=world.state)
    return world


def test_only_new_and_changed_objects_are_copied_and_verified(migrated: World) -> None:
    w = migrated
    before = {o.name: o.etag for o in w.dest.list("migrated/")}
    w.source.put("data/dcir/part-new.bin", blob(100))
    w.source.put("data/dcir/part-2.bin", blob(77))  # rewritten, same size
    record = delta_sync(w.state, w.pair, w.ctx("d1"), OPTIONS)
    plan = record.delta.plan
    assert (plan.new, plan.changed, plan.unchanged, plan.deleted) == (1, 1, 5, 0)
    copied = sorted(r["name"] for r in read_results(record.copy.files[0].path) if r["status"] == "copied")
    assert copied == ["data/dcir/part-2.bin", "data/dcir/part-new.bin"]
    after = {o.name: o.etag for o in w.dest.list("migrated/")}
    assert all(after[k] == before[k] for k in before if "part-2" not in k)  # the others were not rewritten
    v = record.verification
    assert record.ok and v.incremental and v.counts.checked == 2  # only the changes are re-read
    check = w.state.latest_check("dcir", "verify")
    assert check.ok and check.source_fingerprint == plan.fingerprint == w.state.get("dcir").source_fingerprint
    # the incremental check carries the evidence of the one it builds on, so the report has every object
    assert len(check.details["evidence"]) == 2 and check.details["base_run_id"] == "m"


def test_deletions_are_reported_then_mirrored_when_asked(migrated: World) -> None:
    w = migrated
    w.source.delete("data/dcir/part-4.bin")
    record = delta_sync(w.state, w.pair, w.ctx("d1"), OPTIONS)
    assert record.delta.deletions | {"count": 1, "mirrored": 0, "policy": "report"} == record.delta.deletions
    assert w.dest.head("migrated/dcir/part-4.bin") is not None  # never deleted by default
    assert not record.ok and "deletions policy 'report'" in record.verification.reason()
    assert not w.state.latest_check("dcir", "verify").ok

    record = delta_sync(w.state, w.pair, w.ctx("d2", actor="ops"), OPTIONS, deletions="mirror")
    assert record.ok and record.delta.deletions["mirrored"] == 1
    assert w.dest.head("migrated/dcir/part-4.bin") is None
    mirrored = [r for r in w.state.ledger("dcir") if r.kind == "deletions_mirrored"]
    assert len(mirrored) == 1 and mirrored[0].actor == "ops" and mirrored[0].payload["count"] == 1
    assert w.state.get("dcir").state == "verified"


def test_objects_not_written_by_hdh_migrate_are_reported_never_deleted(migrated: World) -> None:
    w = migrated
    w.dest.put("migrated/dcir/foreign.csv", b"someone else's")
    record = delta_sync(w.state, w.pair, w.ctx("d"), OPTIONS, deletions="mirror")
    assert record.delta.foreign_extras == {"count": 1, "examples": ["migrated/dcir/foreign.csv"]}
    assert w.dest.head("migrated/dcir/foreign.csv") is not None and not record.ok


def test_nothing_changed_nothing_copied_and_no_new_check(migrated: World) -> None:
    w = migrated
    check = w.state.latest_check("dcir", "verify")
    record = delta_sync(w.state, w.pair, w.ctx("d"), OPTIONS)
    assert record.ok and record.copy is None and record.verification is None
    assert w.state.latest_check("dcir", "verify").id == check.id
    assert [r.kind for r in w.state.runs("dcir")] == ["migrate", "delta_sync"]


def test_a_failed_copy_is_recorded_and_raised_with_its_retry_class(migrated: World) -> None:
    w = migrated
    w.source.put("data/dcir/part-new.bin", blob(100))
    w.azure.inject("read", lambda: StoreUnavailableError("HTTP 503"), name="data/dcir/part-new.bin")
    with pytest.raises(CopyFailedError, match=r"part-new\.bin") as info:
        delta_sync(w.state, w.pair, w.ctx("d"), OPTIONS)
    assert info.value.transient
    run = w.state.runs("dcir")[-1]
    assert run.kind == "delta_sync" and not run.ok
    assert w.state.get("dcir").state == "copying"  # not verified: the cutover is blocked until a sync passes


def test_an_unknown_deletion_policy_is_refused(migrated: World) -> None:
    with pytest.raises(ConfigError, match="purge"):
        delta_sync(migrated.state, migrated.pair, migrated.ctx("d"), OPTIONS, deletions="purge")
