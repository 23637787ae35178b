"""Reading a table's files: which files are the table, bounded reads, batches that never mix two schemas.

On the in-memory store (the rig's tests read the same way from Azurite and SeaweedFS).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdh_migrate.errors import SourceChangedError
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.memory import MemoryServer, MemoryStore
from hdh_migrate.validation.files import MixedFormatsError, iter_batches, list_data_files

_MiB = 1024 * 1024


class CountingStore:
    """A store that records the length of every ranged read."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.kind, self.container = store.kind, store.container
        self.reads: list[int] = []

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.store.list(prefix)

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        data = self.store.read_range(name, offset, length, etag=etag)
        self.reads.append(len(data))
        return data


def _parquet(t: pa.Table, row_group_size: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=row_group_size, compression="none")
    return buf.getvalue()


def _wide(rows: int, seed: int) -> pa.Table:
    """About 1 KB per row that does not compress: the file is as large as its data."""
    rnd = [os.urandom(1000) for _ in range(rows)]
    return pa.table({"n": pa.array(range(seed * rows, (seed + 1) * rows), pa.int64()), "blob": pa.array(rnd)})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryServer("azure").create("warehouse")


def test_a_file_is_read_a_row_group_at_a_time_never_whole(store: MemoryStore) -> None:
    """Bounded memory: no read fetches the file whole, and each byte is fetched about once."""
    data = _parquet(_wide(12_000, 0), row_group_size=2000)  # ~12 MiB in 6 row groups
    store.put("t/T/part-0.parquet", data)
    counting = CountingStore(store)
    files = list_data_files(counting, "t/T/")
    batches = list(iter_batches(counting, files, batch_rows=2000))
    assert [b.num_rows for b in batches] == [2000] * 6
    assert max(counting.reads) <= 4 * _MiB + 64 * 1024 < len(data) / 2
    assert sum(counting.reads) <= 1.1 * len(data)


def test_batches_fill_across_files_and_never_mix_two_schemas(store: MemoryStore) -> None:
    """Small files share a batch; a file whose column type changed starts a batch of its own."""
    as_int32 = pa.schema([("n", pa.int32())])
    tables = [pa.table({"n": pa.array(range(i * 300, (i + 1) * 300), pa.int64())}) for i in range(4)]
    tables[2] = tables[2].cast(as_int32)
    for i, t in enumerate(tables):
        store.put(f"t/T/part-{i}.parquet", _parquet(t, row_group_size=100))
    opened: list[str] = []
    batches = list(
        iter_batches(store, list_data_files(store, "t/T/"), batch_rows=500, on_file=lambda f: opened.append(f.name))
    )
    assert [b.num_rows for b in batches] == [500, 100, 300, 300]
    assert [b.schema.field("n").type for b in batches] == [pa.int64(), pa.int64(), pa.int32(), pa.int64()]
    assert [v for b in batches for v in b.column("n").to_pylist()] == list(range(1200))  # every row once, in order
    assert opened == [f"t/T/part-{i}.parquet" for i in range(4)]


def test_the_table_is_its_data_files_in_one_format(store: MemoryStore) -> None:
    """Spark/Hive markers and sidecar files are not the table; Parquet and CSV side by side are refused."""
    t = pa.table({"n": [1, 2]})
    for name in ("part-1.parquet", "part-0.parquet", "_SUCCESS", "_metadata", ".part-0.parquet.crc", "notes.txt"):
        store.put(f"t/T/{name}", _parquet(t, 10))
    assert [f.name for f in list_data_files(store, "t/T/")] == ["t/T/part-0.parquet", "t/T/part-1.parquet"]
    store.put("t/T/extra.csv", b"n\n3\n")
    with pytest.raises(MixedFormatsError, match="both Parquet and CSV"):
        list_data_files(store, "t/T/")


def test_a_file_rewritten_mid_read_fails_instead_of_mixing_two_versions(store: MemoryStore) -> None:
    store.put("t/T/part-0.parquet", _parquet(_wide(12_000, 0), row_group_size=2000))
    batches = iter_batches(store, list_data_files(store, "t/T/"), batch_rows=2000)
    next(batches)
    store.put("t/T/part-0.parquet", _parquet(_wide(12_000, 1), row_group_size=2000))
    with pytest.raises(SourceChangedError):
        list(batches)
