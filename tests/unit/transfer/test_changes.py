"""The delta plan: one listing compared with the previous inventory gives new, changed, unchanged, deleted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.transfer.changes import DeltaPlan, plan_delta
from hdh_migrate.transfer.fingerprint import Fingerprint
from hdh_migrate.transfer.manifest import iter_inventory, write_inventory

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _listing(n: int) -> list[ObjectInfo]:
    return [ObjectInfo(f"snds/f{i:03d}", 100 + i, f"0x{i:04X}", T0 + timedelta(seconds=i)) for i in range(n)]


def test_a_first_plan_finds_everything_new(tmp_path) -> None:
    listed = _listing(5)
    plan = plan_delta(iter(listed), None, tmp_path / "work")
    assert (plan.new, plan.new_bytes, plan.changed, plan.unchanged, plan.deleted) == (5, 510, 0, 0, 0)
    assert list(iter_inventory(plan.changes_path)) == listed
    assert list(iter_inventory(plan.inventory.path)) == listed and plan.inventory.objects == 5
    assert plan.has_changes


def test_new_changed_unchanged_and_deleted_objects_are_told_apart(tmp_path) -> None:
    before = _listing(10)
    previous = write_inventory(before, tmp_path / "previous.parquet").path
    now = [o for o in before if o.name not in ("snds/f003", "snds/f007")]  # deleted
    now[0] = replace(now[0], etag="0xNEW", size=999)  # rewritten
    now[1] = replace(now[1], last_modified=T0 + timedelta(days=1))  # touched: a new version to look at
    now.append(ObjectInfo("snds/g000", 42, "0xAAAA", T0))  # new
    plan = plan_delta(reversed(now), previous, tmp_path / "work")  # listing order does not matter
    assert (plan.new, plan.new_bytes) == (1, 42)
    assert (plan.changed, plan.changed_bytes, plan.unchanged) == (2, 999 + 101, 6)
    assert (plan.deleted, plan.deleted_bytes) == (2, 103 + 107)
    assert sorted(o.name for o in iter_inventory(plan.changes_path)) == ["snds/f000", "snds/f001", "snds/g000"]
    assert sorted(pq.read_table(plan.deleted_path).column("name").to_pylist()) == ["snds/f003", "snds/f007"]
    fp = Fingerprint()
    for o in now:
        fp.add_info(o)
    assert plan.fingerprint == fp.value and plan.inventory.objects == 9


def test_an_unchanged_listing_has_no_changes_and_the_plan_round_trips(tmp_path) -> None:
    listed = _listing(4)
    previous = write_inventory(listed, tmp_path / "previous.parquet").path
    plan = plan_delta(iter(listed), previous, tmp_path / "work")
    assert (plan.new, plan.changed, plan.unchanged, plan.deleted, plan.has_changes) == (0, 0, 4, 0, False)
    assert DeltaPlan.from_dict(plan.to_dict() | {"extra-key": 1}) == plan
