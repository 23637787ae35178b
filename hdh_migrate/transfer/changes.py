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

    def __init__(self, path: str | Path | None) -> None:
        self.path = path
        if path is None:
            self.names = np.zeros(0, dtype=np.uint64)
            self.versions = np.zeros(0, dtype=np.uint64)
        else:
            names: list[np.ndarray] = []
            versions: list[np.ndarray] = []
            pf = pq.ParquetFile(path)
            for b in pf.iter_batches(batch_size=50_000, columns=["name", "etag", "size", "last_modified"]):
                lm = pc.cast(b.column(3), pa.int64()).to_pylist()
                names.append(np.fromiter((name_hash(n) for n in b.column(0).to_pylist()), dtype=np.uint64))
                versions.append(
                    np.fromiter(
                        (
                            version_hash(e, s, m)
                            for e, s, m in zip(b.column(1).to_pylist(), b.column(2).to_pylist(), lm, strict=True)
                        ),
                        dtype=np.uint64,
                    )
                )
            n = np.concatenate(names) if names else np.zeros(0, dtype=np.uint64)
            v = np.concatenate(versions) if versions else np.zeros(0, dtype=np.uint64)
            order = np.argsort(n, kind="stable")
            self.names, self.versions = n[order], v[order]
        self.seen = np.zeros(len(self.names), dtype=bool)

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


class _BatchWriter:
    def __init__(self, path: Path, schema: pa.Schema, rows: int = 5_000) -> None:
        self.path, self.schema, self.rows = path, schema, rows
        self._w = pq.ParquetWriter(path, schema, compression="zstd")
        self._batch: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self._batch.append(row)
        if len(self._batch) >= self.rows:
            self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
            self._batch = []

    def close(self) -> None:
        self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
        self._w.close()


def plan_delta(listing: Iterable[ObjectInfo], previous_inventory: str | Path | None, work_dir: str | Path) -> DeltaPlan:
    """List once: write the new full inventory, the new/changed objects, and the deleted ones."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    prev = _Previous(previous_inventory)
    fp = Fingerprint()
    changes = _BatchWriter(work / "changes.parquet", INVENTORY_SCHEMA)
    tally = {"new": [0, 0], "changed": [0, 0], "unchanged": [0, 0]}

    def tee() -> Iterator[ObjectInfo]:
        for info in listing:
            fp.add_info(info)
            kind = prev.classify(info)
            tally[kind][0] += 1
            tally[kind][1] += info.size
            if kind != "unchanged":
                changes.add(inventory_row(info))
            yield info

    try:
        inv = write_inventory(tee(), work / "inventory.parquet")
    finally:
        changes.close()
    deleted_hashes = prev.unseen()
    deleted = _BatchWriter(work / "deleted.parquet", DELETED_SCHEMA)
    n_del = b_del = 0
    if len(deleted_hashes) and previous_inventory is not None:
        for b in pq.ParquetFile(previous_inventory).iter_batches(
            batch_size=50_000, columns=["name", "size", "etag", "last_modified"]
        ):
            hashes = np.fromiter((name_hash(n) for n in b.column(0).to_pylist()), dtype=np.uint64)
            idx = np.searchsorted(deleted_hashes, hashes)
            idx[idx >= len(deleted_hashes)] = 0
            hit = deleted_hashes[idx] == hashes
            for row in b.filter(pa.array(hit)).to_pylist():
                deleted.add(row)
                n_del += 1
                b_del += int(row["size"] or 0)
    deleted.close()
    return DeltaPlan(
        base_inventory=str(previous_inventory) if previous_inventory else None,
        inventory=inv,
        fingerprint=fp.value,
        changes_path=str(work / "changes.parquet"),
        new=tally["new"][0],
        new_bytes=tally["new"][1],
        changed=tally["changed"][0],
        changed_bytes=tally["changed"][1],
        unchanged=tally["unchanged"][0],
        deleted_path=str(work / "deleted.parquet"),
        deleted=n_del,
        deleted_bytes=b_del,
    )


__all__ = ["DeltaPlan", "plan_delta"]
