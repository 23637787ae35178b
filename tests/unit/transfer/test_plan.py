"""Shards: an inventory cut into balanced Parquet manifests, every object in exactly one, in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import GiB
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.transfer.manifest import iter_inventory, write_inventory
from hdh_migrate.transfer.plan import plan_shards


def _inventory(tmp_path, sizes: list[int]) -> str:
    listed = [ObjectInfo(f"o{i:05d}", s, "e", datetime(2026, 1, 1, tzinfo=UTC)) for i, s in enumerate(sizes)]
    return write_inventory(listed, tmp_path / "inventory.parquet", batch_rows=700).path


def test_every_object_lands_in_one_shard_in_order_within_the_shard_cap(tmp_path) -> None:
    inv = _inventory(tmp_path, [1000] * 2500)
    shards = plan_shards(inv, tmp_path / "shards", max_shards=10, min_objects=1, min_bytes=1)
    assert len(shards) <= 10 and [s.index for s in shards] == list(range(1, len(shards) + 1))
    names = [o.name for s in shards for o in iter_inventory(s.path)]
    assert names == [o.name for o in iter_inventory(inv)]
    assert all(s.objects == sum(1 for _ in iter_inventory(s.path)) for s in shards)
    assert sum(s.bytes for s in shards) == 2500 * 1000
    assert shards[0].label == "shard 1: 500 objects, 488.3 KiB"


def test_a_few_large_objects_are_cut_by_bytes(tmp_path) -> None:
    inv = _inventory(tmp_path, [3 * GiB] * 4 + [10] * 6)
    shards = plan_shards(inv, tmp_path / "shards", min_bytes=1 * GiB)
    assert [s.objects for s in shards] == [1, 1, 1, 1, 6]


def test_small_datasets_make_one_shard_and_too_few_shards_are_refused(tmp_path) -> None:
    inv = _inventory(tmp_path, [10] * 150)
    assert [s.objects for s in plan_shards(inv, tmp_path / "a")] == [150]
    with pytest.raises(ConfigError):
        plan_shards(inv, tmp_path / "b", max_shards=1)
