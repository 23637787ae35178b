"""The run record: what is written is what is read back, for every kind of run; its verdict is one rule."""

from __future__ import annotations

import json

import pytest

from hdh_migrate.runs.delta_sync import delta_sync
from hdh_migrate.runs.pipeline import MigrationRequest, run_migration
from hdh_migrate.runs.record import RUN_SCHEMA, RunRecord, ValidationRef
from hdh_migrate.transfer.copier import CopyOptions

from .conftest import World, blob


def test_every_kind_of_record_reads_back_as_written(world: World) -> None:
    for i in range(3):
        world.source.put(f"data/t/part-{i}.bin", blob(i))
    migrated = run_migration(world.pair, world.ctx("m"), CopyOptions(workers=2), MigrationRequest(), state=world.state)
    world.source.put("data/t/part-9.bin", blob(9))
    synced = delta_sync(world.state, world.pair, world.ctx("d"), CopyOptions(workers=2))
    for record, folder in ((migrated, "m"), (synced, "d")):
        on_disk = RunRecord.load(world.tmp / folder / "summary.json")
        assert on_disk == record and on_disk.schema == RUN_SCHEMA
    assert synced.delta is not None and synced.delta.plan.new == 1 and synced.verification.check_id is not None


def test_the_verdict_needs_every_section_to_pass(world: World) -> None:
    world.source.put("data/t/a.bin", blob(1))
    record = run_migration(world.pair, world.ctx("m"), CopyOptions(workers=2), MigrationRequest(), state=world.state)
    assert record.ok
    failed_table = ValidationRef("t", False, "validation/t.json")
    assert not record.finish(validations=[failed_table]).ok
    record.verification.counts.differs = 1
    assert not record.ok


def test_a_file_that_is_not_a_run_record_is_refused(tmp_path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"command": "copy", "ok": True}))
    with pytest.raises(ValueError, match="not a run record"):
        RunRecord.load(tmp_path / "summary.json")
