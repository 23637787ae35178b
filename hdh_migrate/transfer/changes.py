"""What changed at the source since its last listing: new, changed and deleted blobs, found in one listing.

The source is listed again and compared with the previous inventory (the Parquet of the last full
listing). Names are never held in Python dicts: the previous inventory becomes two sorted numpy arrays of
64-bit hashes -- one of the name, one of the version ``(etag, size, last_modified)`` -- 16 bytes per object
(160 MB for 10 million), and each listed object is looked up by binary search while the listing streams
into the new inventory. New and changed objects go to a small Parquet (``changes.parquet``) that feeds the
copier, whose per-object HEAD check then decides by the recorded source version and SHA-256 (an object
whose only change is its last-modified time is found already copied and skipped). Blobs in the previous
inventory that the listing no longer shows go to ``deleted.parquet``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.transfer.fingerprint import Fingerprint
from hdh_migrate.transfer.manifest import INVENTORY_SCHEMA, ManifestStats, inventory_row, write_inventory

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

DELETED_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("last_modified", pa.timestamp("us", tz="UTC")),
    ]
)


def name_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def version_hash(etag: str, size: int, last_modified_us: int) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{etag}\0{size}\0{last_modified_us}".encode(), digest_size=8).digest(), "little"
    )


def _micros(dt: datetime) -> int:
    return (dt.astimezone(UTC) - _EPOCH) // _US


@dataclass(frozen=True)
class DeltaPlan:
    """What changed between the previous inventory and a new listing (paths to Parquet files, counts)."""

    base_inventory: str | None
    inventory: ManifestStats
    fingerprint: str
    changes_path: str
    new: int
    new_bytes: int
    changed: int
    changed_bytes: int
    unchanged: int
    deleted_path: str
    deleted: int
    deleted_bytes: int

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"inventory": asdict(self.inventory)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeltaPlan:
        own = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in own} | {"inventory": ManifestStats(**d["inventory"])})


class _Previous:
    """The previous inventory as sorted hash arrays, plus which entries the new listing saw."""

    def __init__(self, names: np.ndarray, versions: np.ndarray) -> None:
        order = np.argsort(names, kind="stable")
        self.names, self.versions = names[order], versions[order]
        self.seen = np.zeros(len(self.names), dtype=bool)

    @classmethod
    def load(cls, path: str | Path | None) -> _Previous:
        names: list[np.ndarray] = []
        versions: list[np.ndarray] = []
        if path is not None:
            for b in pq.ParquetFile(path).iter_batches(
                batch_size=50_000, columns=["name", "etag", "size", "last_modified"]
            ):
                names.append(_name_hashes(b.column(0).to_pylist()))
                lm = pc.cast(b.column(3), pa.int64()).to_pylist()
                triples = zip(b.column(1).to_pylist(), b.column(2).to_pylist(), lm, strict=True)
                versions.append(np.fromiter((version_hash(e, s, m) for e, s, m in triples), dtype=np.uint64))
        return cls(_concat(names), _concat(versions))

    def classify(self, info: ObjectInfo) -> str:
        """ "new", "changed" or "unchanged"."""
        h = np.uint64(name_hash(info.name))
        i = int(np.searchsorted(self.names, h))
        if i >= len(self.names) or self.names[i] != h:
            return "new"
        self.seen[i] = True
        if self.versions[i] != np.uint64(version_hash(info.etag, info.size, _micros(info.last_modified))):
            return "changed"
        return "unchanged"

    def unseen(self) -> np.ndarray:
        return np.sort(self.names[~self.seen])


def _name_hashes(names: list[str]) -> np.ndarray:
    return np.fromiter((name_hash(n) for n in names), dtype=np.uint64)


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)


class _BatchWriter:
    def __init__(self, path: Path, schema: pa.Schema, rows: int = 5_000) -> None:
        self.path, self.schema, self.rows = path, schema, rows
        self._w = pq.ParquetWriter(path, schema, compression="zstd")
        self._batch: list[dict[str, Any]] = []
        self.count = self.bytes = 0

    def add(self, row: dict[str, Any]) -> None:
        self._batch.append(row)
        self.count += 1
        self.bytes += int(row["size"] or 0)
        if len(self._batch) >= self.rows:
            self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
            self._batch = []

    def close(self) -> None:
        self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
        self._w.close()


class _Tally:
    """Objects and bytes per kind of change, counted as the listing streams through."""

    def __init__(self) -> None:
        self.objects = {"new": 0, "changed": 0, "unchanged": 0}
        self.bytes = dict.fromkeys(self.objects, 0)

    def add(self, kind: str, size: int) -> None:
        self.objects[kind] += 1
        self.bytes[kind] += size


def plan_delta(listing: Iterable[ObjectInfo], previous_inventory: str | Path | None, work_dir: str | Path) -> DeltaPlan:
    """List once: write the new full inventory, the new/changed objects, and the deleted ones."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    prev = _Previous.load(previous_inventory)
    fp, tally = Fingerprint(), _Tally()
    changes = _BatchWriter(work / "changes.parquet", INVENTORY_SCHEMA)
    try:
        inv = write_inventory(_classified(listing, prev, fp, tally, changes), work / "inventory.parquet")
    finally:
        changes.close()
    deleted = _write_deleted(previous_inventory, prev.unseen(), work / "deleted.parquet")
    return DeltaPlan(
        base_inventory=str(previous_inventory) if previous_inventory else None,
        inventory=inv,
        fingerprint=fp.value,
        changes_path=str(changes.path),
        new=tally.objects["new"],
        new_bytes=tally.bytes["new"],
        changed=tally.objects["changed"],
        changed_bytes=tally.bytes["changed"],
        unchanged=tally.objects["unchanged"],
        deleted_path=str(deleted.path),
        deleted=deleted.count,
        deleted_bytes=deleted.bytes,
    )


def _classified(
    listing: Iterable[ObjectInfo], prev: _Previous, fp: Fingerprint, tally: _Tally, changes: _BatchWriter
) -> Iterator[ObjectInfo]:
    """The listing, passed on to the new inventory, each object fingerprinted, classified and counted; the
    new and changed ones written to the changes file."""
    for info in listing:
        fp.add_info(info)
        kind = prev.classify(info)
        tally.add(kind, info.size)
        if kind != "unchanged":
            changes.add(inventory_row(info))
        yield info


def _write_deleted(previous_inventory: str | Path | None, deleted_hashes: np.ndarray, path: Path) -> _BatchWriter:
    """The previous inventory's rows whose names the listing no longer shows."""
    deleted = _BatchWriter(path, DELETED_SCHEMA)
    if len(deleted_hashes) and previous_inventory is not None:
        columns = ["name", "size", "etag", "last_modified"]
        for b in pq.ParquetFile(previous_inventory).iter_batches(batch_size=50_000, columns=columns):
            hashes = _name_hashes(b.column(0).to_pylist())
            idx = np.searchsorted(deleted_hashes, hashes)
            idx[idx >= len(deleted_hashes)] = 0
            for row in b.filter(pa.array(deleted_hashes[idx] == hashes)).to_pylist():
                deleted.add(row)
    deleted.close()
    return deleted


__all__ = ["DeltaPlan", "plan_delta"]
