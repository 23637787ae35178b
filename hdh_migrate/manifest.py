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


class _Columns:
    """Rows buffered as one list per column until a row group is written: a fraction of the memory of the
    same rows as dicts, which is what a copy of millions of objects holds between two row groups."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._cols: dict[str, list[Any]] = {f.name: [] for f in schema}

    def __len__(self) -> int:
        return len(self._cols[self.schema[0].name])

    def add(self, row: dict[str, Any]) -> None:
        unknown = row.keys() - self._cols.keys()
        if unknown:
            raise TypeError(f"unknown {self.schema.metadata[b'kind'].decode()} fields: {sorted(unknown)}")
        for name, values in self._cols.items():
            values.append(row.get(name))

    def take(self) -> pa.Table:
        """The buffered rows as a table; the buffer starts empty again."""
        table = pa.Table.from_pydict(self._cols, schema=self.schema)
        self._cols = {f.name: [] for f in self.schema}
        return table


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
    rows = _Columns(INVENTORY_SCHEMA)
    with pq.ParquetWriter(path, INVENTORY_SCHEMA, compression="zstd") as writer:
        for info in objects:
            rows.add(_row(info))
            count += 1
            total += info.size
            if len(rows) >= batch_rows:
                writer.write_table(rows.take())
        if len(rows) or count == 0:
            writer.write_table(rows.take())
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
    import pyarrow.compute as pc  # here, not at start: ~20 ms of import that only this needs

    return ManifestStats(str(path), pf.metadata.num_rows, int(pc.sum(sizes).as_py() or 0), file_sha256(str(path)))


class ResultsWriter:
    """Thread-safe, buffered writer of per-object results (the integrity evidence)."""

    def __init__(self, path: str | Path, *, batch_rows: int = 5_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.path, RESULT_SCHEMA, compression="zstd")
        self._rows_buffer = _Columns(RESULT_SCHEMA)
        self._rows = batch_rows
        self._lock = threading.Lock()
        self.count = 0

    def add(self, **row: Any) -> None:
        row.setdefault("algorithm", "sha256")
        with self._lock:
            self._rows_buffer.add(row)
            self.count += 1
            if len(self._rows_buffer) >= self._rows:
                self._flush()

    def _flush(self) -> None:
        if len(self._rows_buffer):
            self._writer.write_table(self._rows_buffer.take())

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
