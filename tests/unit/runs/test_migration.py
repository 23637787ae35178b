"""The migration's steps on the in-memory stores: what a run decides and what evidence it leaves.

The same steps run on the real servers in tests/integration and tests/airflow; here they run in
milliseconds, so every verdict has its own test."""

from __future__ import annotations

import json

import pytest

from hdh_migrate.errors import CopyFailedError, ExtraObjectsError, ObjectNotFoundError, StoreUnavailableError
from hdh_migrate.runs.migration import copy_shard, run_copy, run_verify, verify_shard, whole
from hdh_migrate.runs.pipeline import MigrationRequest, run_migration
from hdh_migrate.runs.record import RunRecord
from hdh_migrate.transfer.copier import CopyOptions
from hdh_migrate.transfer.manifest import read_results

from .conftest import World, blob

OPTIONS = CopyOptions(part_size=5 * 1024 * 1024, workers=2)


def _seed(world: World, n: int = 5) -> dict[str, bytes]:
    blobs = {f"data/t/part-{i}.bin": blob(i) for i in range(n)}
    for name, data in blobs.items():
        world.source.put(name, data)
    return blobs


def test_copy_with_verify_writes_one_record_that_says_ok(world: World) -> None:
    blobs = _seed(world)
    record = run_copy(world.pair, world.ctx("c", dataset=None, flat=True), OPTIONS, verify="full", show_progress=False)
    assert record.ok and record.copy.counts.copied == len(blobs) and record.verification.counts.matched == len(blobs)
    assert world.dest.read_range("migrated/t/part-3.bin", 0, 3000) == blobs["data/t/part-3.bin"]
    summary = json.loads((world.tmp / "c" / "summary.json").read_text())
    assert RunRecord.from_json(summary) == record  # what is written is what is read back
    # the keys scripts read in the first summaries are still there
    assert summary["counts"]["copied"] == len(blobs) and summary["results"]["path"].endswith("/results.parquet")
    assert summary["verify"]["ok"] and summary["verify"]["counts"]["matched"] == len(blobs)
    assert summary["inventory"]["objects"] == len(blobs) and summary["ok"] is True


def test_a_failed_object_fails_the_copy_and_its_shard_says_whether_to_retry(world: World) -> None:
    _seed(world)
    options = CopyOptions(part_size=5 * 1024 * 1024, workers=2, retries=0)
    world.azure.inject("read", lambda: StoreUnavailableError("Azure returned HTTP 503"), name="data/t/part-2.bin")
    record = run_copy(world.pair, world.ctx("c", dataset=None, flat=True), options, show_progress=False)
    assert not record.ok and record.copy.counts.failed == 1 and record.copy.counts.copied == 4
    failed = [r for r in read_results(record.copy.files[0].path) if r["status"] == "failed"]
    assert [r["name"] for r in failed] == ["data/t/part-2.bin"] and failed[0]["error_code"] == "store_unavailable"

    # the same shard copied as a DAG task: a transient failure is retried by Airflow, a permanent one is not
    shard = whole(record.inventory, record.inventory.path)
    world.azure.inject("read", lambda: StoreUnavailableError("Azure returned HTTP 503"), name="data/t/part-2.bin")
    error = copy_shard(world.pair, world.ctx("s1"), shard, options).failure()
    assert isinstance(error, CopyFailedError) and error.transient and error.code == "shard_transient_failures"
    world.azure.inject("read", lambda: ObjectNotFoundError("gone"), name="data/t/part-2.bin")
    error = copy_shard(world.pair, world.ctx("s2"), shard, options).failure()
    assert isinstance(error, CopyFailedError) and not error.transient  # a person must act: not retried
    assert error.code == "object_not_found"  # the runbook's entry is the failure's, not a generic one
    assert "part-2.bin" in str(error) and "clear this task" in str(error)


def test_a_shard_rejected_by_its_verification_copies_exactly_those_objects_again(world: World) -> None:
    blobs = _seed(world)
    ctx = world.ctx("m")
    record = run_copy(world.pair, world.ctx("first", dataset=None, flat=True), OPTIONS, show_progress=False)
    shard = whole(record.inventory, record.inventory.path)
    world.s3.rot("sovereign", "migrated/t/part-1.bin")  # bit rot at rest: size, ETag, metadata unchanged
    failure = verify_shard(world.pair, ctx, shard, "full").failure()
    assert failure is not None and "part-1.bin" in str(failure) and "hash_differs" in str(failure)
    recopied = copy_shard(world.pair, ctx, shard, OPTIONS)
    assert recopied.counts.copied == 1 and recopied.counts.skipped == len(blobs) - 1
    assert verify_shard(world.pair, ctx, shard, "full").failure() is None


def test_migration_registers_verifies_and_records_the_source_state(world: World) -> None:
    _seed(world)
    request = MigrationRequest(validation_required=False)
    record = run_migration(world.pair, world.ctx("m1"), OPTIONS, request, state=world.state)
    assert record.ok and record.command == "migrate" and record.dataset == "dcir"
    ds = world.state.get("dcir")
    assert ds.state == "verified" and ds.inventory_path == record.inventory.path
    check = world.state.latest_check("dcir", "verify")
    assert check.ok and check.id == record.verification.check_id and check.source_fingerprint == ds.source_fingerprint
    assert check.details["evidence"] == [f.path for f in record.verification.files]
    assert [r.kind for r in world.state.runs("dcir")] == ["migrate"]
    # a second run copies nothing and verifies everything again
    again = run_migration(world.pair, world.ctx("m2"), OPTIONS, request, state=world.state)
    assert again.copy.counts.copied == 0 and again.copy.counts.skipped == 5 and again.verification.counts.matched == 5


def test_objects_with_no_source_fail_the_migration_and_its_check_says_which(world: World) -> None:
    _seed(world)
    world.dest.put("migrated/t/stray.bin", b"left over")
    with pytest.raises(ExtraObjectsError, match="have no source"):
        run_migration(world.pair, world.ctx("m"), OPTIONS, MigrationRequest(), state=world.state)
    check = world.state.latest_check("dcir", "verify")
    assert not check.ok and "migrated/t/stray.bin" in check.details["reason"]
    summary = json.loads((world.tmp / "m" / "summary.json").read_text())
    assert summary["ok"] is False and summary["extra_objects"] == 1


def test_a_dry_run_copies_and_records_nothing(world: World) -> None:
    _seed(world)
    options = CopyOptions(part_size=5 * 1024 * 1024, workers=2, dry_run=True)
    record = run_migration(world.pair, world.ctx("m"), options, MigrationRequest(), state=world.state)
    assert record.ok and record.copy.counts.would_copy == 5 and record.verification is None
    assert list(world.dest.list("")) == [] and world.state.status() == []


def test_verify_finds_what_is_missing_and_what_is_extra(world: World) -> None:
    _seed(world, 3)
    run_copy(world.pair, world.ctx("c", dataset=None, flat=True), OPTIONS, show_progress=False)
    world.dest.delete("migrated/t/part-0.bin")
    world.dest.put("migrated/t/extra.bin", b"x")
    record = run_verify(world.pair, world.ctx("v", dataset=None, flat=True), depth="quick", show_progress=False)
    c = record.verification.counts
    assert not record.ok and (c.missing, c.extra, c.matched) == (1, 1, 2)
    assert {p["problem"] for p in c.problems} == {"missing", "extra"}
