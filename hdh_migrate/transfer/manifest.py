"""Parquet manifests: the source inventory, and the per-object results of a copy or a verify.

Both are written in row-group batches while the listing/copy streams, so memory does not grow with the
number of objects, and read back in batches by later steps (shard planning, verification, the audit
report). The files are plain Parquet: an auditor can open them with pandas, DuckDB or Excel.

pyarrow (with numpy, which it loads) is imported on first use, not with this module: its ~0.15 s of import
would otherwise come before the first byte of every copy. A job's listing of a usual size is held in
memory (Inventory) so the copy starts on it while a background thread imports pyarrow and writes the
manifest.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.transfer.checksums import file_sha256

if TYPE_CHECKING:
    import pyarrow as pa


# The columns, one list per manifest: (name, Arrow type, nullable). Their names are known without pyarrow
# (rows are buffered before it is imported); the Arrow schemas are built from the same lists on first use.
_INVENTORY_COLUMNS = (
    ("name", "string", False),
    ("size", "int64", False),
    ("etag", "string", False),
    ("last_modified", "timestamp", False),
    ("content_type", "string", True),
    ("content_md5", "string", True),  # hex, null when the blob has none
    ("metadata", "string", True),  # JSON object
)
_RESULT_COLUMNS = (
    ("name", "string", False),  # source blob name
    ("key", "string", True),  # destination key
    ("size", "int64", True),
    ("status", "string", False),
    ("reason", "string", True),
    ("algorithm", "string", True),
    ("source_sha256", "string", True),
    ("dest_sha256", "string", True),
    ("md5", "string", True),
    ("source_etag", "string", True),
    ("source_last_modified", "timestamp", True),
    ("source_content_md5", "string", True),
    ("dest_etag", "string", True),
    ("parts", "int32", True),
    ("part_size", "int64", True),
    ("attempts", "int32", True),
    ("error_code", "string", True),
    ("seconds", "float64", True),
)
INVENTORY_FIELDS = tuple(name for name, _, _ in _INVENTORY_COLUMNS)
RESULT_FIELDS = tuple(name for name, _, _ in _RESULT_COLUMNS)


def _schema(columns: tuple[tuple[str, str, bool], ...], kind: str) -> pa.Schema:
    import pyarrow as pa  # lazy: ~0.15 s of import (module docstring)

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema(
        [pa.field(name, types[t], nullable=nullable) for name, t, nullable in columns],
        metadata={"producer": "hdh-migrate", "kind": kind},
    )


@functools.cache
def inventory_schema() -> pa.Schema:
    return _schema(_INVENTORY_COLUMNS, "inventory")


@functools.cache
def result_schema() -> pa.Schema:
    return _schema(_RESULT_COLUMNS, "results")


def __getattr__(name: str) -> Any:
    """INVENTORY_SCHEMA, built (and pyarrow imported) when first asked for."""
    if name == "INVENTORY_SCHEMA":
        return inventory_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Columns:
    """Rows buffered as one list per column until a row group is written: a fraction of the memory of the
    same rows as dicts, which is what a copy of millions of objects holds between two row groups."""

    def __init__(self, kind: str, fields: tuple[str, ...]) -> None:
        self.kind = kind
        self.fields = fields
        self._cols: dict[str, list[Any]] = {f: [] for f in fields}

    def __len__(self) -> int:
        return len(self._cols[self.fields[0]])

    def add(self, row: dict[str, Any]) -> None:
        unknown = row.keys() - self._cols.keys()
        if unknown:
            raise TypeError(f"unknown {self.kind} fields: {sorted(unknown)}")
        for name, values in self._cols.items():
            values.append(row.get(name))

    def take(self, schema: pa.Schema) -> pa.Table:
        """The buffered rows as a table; the buffer starts empty again."""
        import pyarrow as pa  # lazy: ~0.15 s of import (module docstring)

        table = pa.Table.from_pydict(self._cols, schema=schema)
        self._cols = {f: [] for f in self.fields}
        return table


@dataclass(frozen=True)
class ManifestStats:
    path: str
    objects: int
    bytes: int
    sha256: str  # of the Parquet file: one hash over the whole manifest, for the audit report


def inventory_row(info: ObjectInfo) -> dict[str, Any]:
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
    import pyarrow.parquet as pq  # lazy: ~0.15 s of import (module docstring)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = total = 0
    schema = inventory_schema()
    rows = _Columns("inventory", INVENTORY_FIELDS)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for info in objects:
            rows.add(inventory_row(info))
            count += 1
            total += info.size
            if len(rows) >= batch_rows:
                writer.write_table(rows.take(schema))
        if len(rows) or count == 0:
            writer.write_table(rows.take(schema))
    return ManifestStats(str(path), count, total, file_sha256(str(path)))


def iter_inventory(path: str | Path, *, batch_rows: int = 1_000) -> Iterator[ObjectInfo]:
    """Read a manifest back, batch by batch (small batches: a batch becomes Python objects all at once)."""
    import pyarrow.parquet as pq  # lazy: ~0.15 s of import (module docstring)

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


class Inventory:
    """A job's listing of the source: its counts at once, its objects for the job, and its manifest.

    A listing of up to ``keep`` objects is held in memory (~400 bytes per object: 2,000 hold under 1 MB):
    the job starts on it at once while a thread writes the Parquet manifest, so that pyarrow's import
    (~0.15 s of CPU with numpy) overlaps the first transfers instead of delaying them. That matters for short
    jobs only; a longer listing, which takes longer than the import anyway, goes to Parquet as it streams in
    (memory stays flat in the object count) and the job reads it back from there. Either way the manifest is
    the same file, and ``stats()`` (its hash, for the summary) waits until it is written.
    """

    def __init__(
        self, path: Path, objects: int, total: int, held: list[ObjectInfo] | None, stats: ManifestStats | None = None
    ) -> None:
        self.path = path
        self.objects = objects
        self.bytes = total
        self._held = held
        self._stats = stats
        self._error: BaseException | None = None
        self._writer: threading.Thread | None = None

    @classmethod
    def take(cls, listing: Iterable[ObjectInfo], path: str | Path, *, keep: int = 2_000) -> Inventory:
        path = Path(path)
        it = iter(listing)
        held: list[ObjectInfo] = []
        for info in it:
            held.append(info)
            if len(held) > keep:  # a long listing: streamed to Parquet, not held
                stats = write_inventory(chain(held, it), path)
                return cls(path, stats.objects, stats.bytes, None, stats)
        inv = cls(path, len(held), sum(o.size for o in held), held)
        inv._writer = threading.Thread(target=inv._write, name="hdh-inventory")
        inv._writer.start()
        return inv

    def _write(self) -> None:
        assert self._held is not None
        try:
            self._stats = write_inventory(self._held, self.path)
        except BaseException as exc:  # raised to the job by stats()
            self._error = exc

    def rows(self) -> Iterator[ObjectInfo]:
        """The listed objects, in listing order (from memory, or read back from the manifest)."""
        if self._held is not None:
            return iter(self._held)
        return iter_inventory(self.path)

    def stats(self) -> ManifestStats:
        """The written manifest (path, counts, SHA-256 of the file); waits for its writing to end."""
        if self._writer is not None:
            self._writer.join()
        if self._error is not None:
            raise self._error
        assert self._stats is not None
        return self._stats


class ResultsWriter:
    """Thread-safe, buffered writer of per-object results (the integrity evidence).

    The Parquet file is opened at the first row group written (or at close): a job of a few thousand
    objects only needs pyarrow at its end."""

    def __init__(self, path: str | Path, *, batch_rows: int = 5_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: Any = None
        self._closed = False
        self._rows_buffer = _Columns("results", RESULT_FIELDS)
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

    def _open(self) -> Any:
        if self._writer is None:
            import pyarrow.parquet as pq  # lazy: ~0.15 s of import (module docstring)

            self._writer = pq.ParquetWriter(self.path, result_schema(), compression="zstd")
        return self._writer

    def _flush(self) -> None:
        if len(self._rows_buffer):
            self._open().write_table(self._rows_buffer.take(result_schema()))

    def close(self) -> ManifestStats:
        with self._lock:
            if not self._closed:
                self._flush()
                writer = self._open()
                if self.count == 0:
                    writer.write_table(self._rows_buffer.take(result_schema()))
                writer.close()
                self._closed = True
        return ManifestStats(str(self.path), self.count, 0, file_sha256(str(self.path)))

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.close()


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Small result files only (tests, reports of a shard); large ones are read with pyarrow directly."""
    import pyarrow.parquet as pq  # lazy: ~0.15 s of import (module docstring)

    return pq.read_table(path).to_pylist()
