"""Parquet manifests: the source inventory, and the per-object results of a copy or a verify.

Both are written in row-group batches while the listing/copy streams, so memory does not grow with the
number of objects, and read back in batches by later steps (shard planning, verification, the audit
report). The files are plain Parquet: an auditor can open them with pandas, DuckDB or Excel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .checksums import file_sha256
from .stores.base import ObjectInfo

INVENTORY_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("etag", pa.string(), nullable=False),
        pa.field("last_modified", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("content_type", pa.string()),
        pa.field("content_md5", pa.string()),  # hex, null when the blob has none
        pa.field("metadata", pa.string()),  # JSON object
    ],
    metadata={"producer": "hdh-migrate", "kind": "inventory"},
)

RESULT_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),  # source blob name
        pa.field("key", pa.string()),  # destination key
        pa.field("size", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("algorithm", pa.string()),
        pa.field("source_sha256", pa.string()),
        pa.field("dest_sha256", pa.string()),
        pa.field("md5", pa.string()),
        pa.field("source_etag", pa.string()),
        pa.field("source_last_modified", pa.timestamp("us", tz="UTC")),
        pa.field("source_content_md5", pa.string()),
        pa.field("dest_etag", pa.string()),
        pa.field("parts", pa.int32()),
        pa.field("part_size", pa.int64()),
        pa.field("attempts", pa.int32()),
        pa.field("error_code", pa.string()),
        pa.field("seconds", pa.float64()),
    ],
    metadata={"producer": "hdh-migrate", "kind": "results"},
)


@dataclass(frozen=True)
class ManifestStats:
    path: str
    objects: int
    bytes: int
    sha256: str  # of the Parquet file: one hash over the whole manifest, for the audit report


def _row(info: ObjectInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "size": info.size,
        "etag": info.etag,
        "last_modified": info.last_modified,
        "content_type": info.content_type,
        "content_md5": info.content_md5.hex() if info.content_md5 else None,
        "metadata": json.dumps(info.metadata, sort_keys=True) if info.metadata else None,
    }


def write_inventory(objects: Iterable[ObjectInfo], path: str | Path, *, batch_rows: int = 10_000) -> ManifestStats:
    """Stream a listing into a Parquet manifest, one row group per batch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = total = 0
    # columns, not row dicts, while a row group fills: a tenth of the memory for the same 10,000 rows
    columns: dict[str, list[Any]] = {f.name: [] for f in INVENTORY_SCHEMA}
    with pq.ParquetWriter(path, INVENTORY_SCHEMA, compression="zstd") as writer:
        for info in objects:
            for k, v in _row(info).items():
                columns[k].append(v)
            count += 1
            total += info.size
            if len(columns["name"]) >= batch_rows:
                writer.write_table(pa.Table.from_pydict(columns, schema=INVENTORY_SCHEMA))
                columns = {f.name: [] for f in INVENTORY_SCHEMA}
        if columns["name"] or count == 0:
            writer.write_table(pa.Table.from_pydict(columns, schema=INVENTORY_SCHEMA))
    return ManifestStats(str(path), count, total, file_sha256(str(path)))


def iter_inventory(path: str | Path, *, batch_rows: int = 1_000) -> Iterator[ObjectInfo]:
    """Read a manifest back, batch by batch (small batches: a batch becomes Python objects all at once)."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows):
        for r in batch.to_pylist():
            yield ObjectInfo(
                name=r["name"],
                size=r["size"],
                etag=r["etag"],
                last_modified=r["last_modified"],
                content_type=r["content_type"],
                content_md5=bytes.fromhex(r["content_md5"]) if r["content_md5"] else None,
                metadata=json.loads(r["metadata"]) if r["metadata"] else {},
            )


def inventory_stats(path: str | Path) -> ManifestStats:
    pf = pq.ParquetFile(path)
    sizes = pf.read(columns=["size"]).column("size")
    return ManifestStats(str(path), pf.metadata.num_rows, int(pc.sum(sizes).as_py() or 0), file_sha256(str(path)))


class ResultsWriter:
    """Thread-safe, buffered writer of per-object results (the integrity evidence)."""

    def __init__(self, path: str | Path, *, batch_rows: int = 5_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.path, RESULT_SCHEMA, compression="zstd")
        self._columns: dict[str, list[Any]] = self._empty()  # columns, not row dicts: a fraction of the memory
        self._rows = batch_rows
        self._lock = threading.Lock()
        self.count = 0

    @staticmethod
    def _empty() -> dict[str, list[Any]]:
        return {f.name: [] for f in RESULT_SCHEMA}

    def add(self, **row: Any) -> None:
        row.setdefault("algorithm", "sha256")
        unknown = row.keys() - self._columns.keys()
        if unknown:
            raise TypeError(f"unknown result fields: {sorted(unknown)}")
        with self._lock:
            for name, values in self._columns.items():
                values.append(row.get(name))
            self.count += 1
            if len(self._columns["name"]) >= self._rows:
                self._flush()

    def _flush(self) -> None:
        if self._columns["name"]:
            self._writer.write_table(pa.Table.from_pydict(self._columns, schema=RESULT_SCHEMA))
            self._columns = self._empty()

    def close(self) -> ManifestStats:
        with self._lock:
            self._flush()
            if self.count == 0:
                self._writer.write_table(pa.Table.from_pylist([], schema=RESULT_SCHEMA))
            self._writer.close()
        return ManifestStats(str(self.path), self.count, 0, file_sha256(str(self.path)))

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer.is_open:
            self.close()


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Small result files only (tests, reports of a shard); large ones are read with pyarrow directly."""
    return pq.read_table(path).to_pylist()


def utcnow() -> datetime:
    return datetime.now(UTC)
