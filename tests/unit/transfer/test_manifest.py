"""Inventory and results manifests (Parquet)."""

from __future__ import annotations

import hashlib

import pytest


def _listing(n: int) -> list:
    from datetime import UTC, datetime

    from hdh_migrate.stores.interface import ObjectInfo

    return [
        ObjectInfo(
            name=f"claims/part={i % 3}/obj-{i}.bin",
            size=1000 + i,
            etag=f"0x8D{i:012X}",
            last_modified=datetime(2026, 11, 24, 12, 0, i, tzinfo=UTC),
            content_type="application/octet-stream",
            content_md5=hashlib.md5(str(i).encode()).digest() if i % 2 else None,
            metadata={"source": "sniiram"} if i % 3 == 0 else {},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n,keep", [(5, 10), (5, 3), (0, 10)])
def test_inventory_gives_the_listing_and_the_same_manifest_held_or_streamed(tmp_path, n: int, keep: int) -> None:
    """Held in memory (written by a thread) or streamed to Parquet past `keep`: the job sees the objects in
    listing order, and the manifest on disk holds every one of them, with its hash in the stats."""
    from hdh_migrate.transfer.checksums import file_sha256
    from hdh_migrate.transfer.manifest import Inventory, iter_inventory

    listed = _listing(n)
    inv = Inventory.take(iter(listed), tmp_path / "inv" / "inventory.parquet", keep=keep)
    assert (inv.objects, inv.bytes) == (n, sum(o.size for o in listed))
    assert list(inv.rows()) == listed
    stats = inv.stats()
    assert (stats.objects, stats.bytes) == (n, inv.bytes)
    assert stats.sha256 == file_sha256(stats.path)
    assert list(iter_inventory(stats.path)) == listed
    assert list(inv.rows()) == listed  # a second pass (find_extras after the copy) sees them all again


def test_inventory_write_errors_reach_the_job(tmp_path) -> None:
    from hdh_migrate.transfer.manifest import Inventory

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the work folder should be")
    inv = Inventory.take(iter(_listing(3)), blocker / "inventory.parquet")
    assert len(list(inv.rows())) == 3
    with pytest.raises(OSError):
        inv.stats()


def test_results_writer_without_rows_leaves_an_empty_manifest(tmp_path) -> None:
    from hdh_migrate.transfer.manifest import RESULT_FIELDS, ResultsWriter, read_results

    with ResultsWriter(tmp_path / "results.parquet") as w:
        pass
    assert read_results(w.path) == []
    import pyarrow.parquet as pq

    assert tuple(pq.read_schema(w.path).names) == RESULT_FIELDS
