"""A table's data files: listed, read through ranged reads, grouped and cut into batches.

A table lives under ``PREFIX/NAME/`` as Parquet (or CSV typed from the suite) files. They are read one
row group at a time through ranged reads (``RangeFile``), never a whole table, so a table of tens of
millions of rows validates in bounded memory, on Azure and on (SSE-C) S3 alike.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hdh_migrate.errors import PermanentError
from hdh_migrate.stores.interface import ObjectInfo, Store

_MiB = 1024 * 1024
DATA_SUFFIXES = (".parquet", ".csv")
#: files smaller than this are validated together, in batches filled across them (see ``file_groups``)
GROUP_BYTES = 32 * _MiB
#: the suite's column types (``meta.hdh.columns``) as the Arrow types a CSV column is read as
_CSV_TYPES = {
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "date32[day]": pa.date32(),
    "timestamp[ms]": pa.timestamp("ms"),
}


class MixedFormatsError(PermanentError):
    """Both Parquet and CSV files under one table's prefix: which ones are the table is not knowable."""

    code = "mixed_formats"


class RangeFile(io.RawIOBase):
    """A seekable read-only file over ``store.read_range`` with a read-ahead buffer.

    Handing this to ``pyarrow.parquet.ParquetFile`` reads the footer and then only the column chunks of
    the row group asked for; the etag pins the version so a blob rewritten mid-read fails loudly
    (``SourceChangedError``) instead of mixing two versions.
    """

    def __init__(self, store: Store, info: ObjectInfo, *, readahead: int = 4 * _MiB) -> None:
        super().__init__()
        self._store = store
        self._name = info.name
        self._size = info.size
        self._etag = info.etag or None
        self._pos = 0
        self._readahead = readahead
        self._buf = b""
        self._buf_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:  # pragma: no cover - io contract
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        want = min(len(view), max(0, self._size - self._pos))
        if want == 0:
            return 0
        start = self._pos - self._buf_start
        if not (start >= 0 and start + want <= len(self._buf)):
            length = min(max(want, self._readahead), self._size - self._pos)
            self._buf = self._store.read_range(self._name, self._pos, length, etag=self._etag)
            self._buf_start = self._pos
            start = 0
            want = min(want, len(self._buf))
        view[:want] = self._buf[start : start + want]
        self._pos += want
        return want

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        out = bytearray(size)
        got = self.readinto(out)
        while got < size:
            n = self.readinto(memoryview(out)[got:])
            if n == 0:
                break
            got += n
        return bytes(out[:got])


def list_data_files(store: Store, prefix: str) -> list[ObjectInfo]:
    """The table's data files, sorted by name (Spark/Hive markers and sidecar files are skipped)."""
    files = []
    for info in store.list(prefix):
        base = info.name.rsplit("/", 1)[-1]
        if base.startswith(("_", ".")) or not info.name.lower().endswith(DATA_SUFFIXES):
            continue
        files.append(info)
    files.sort(key=lambda i: i.name)
    kinds = {f.name.lower().rsplit(".", 1)[-1] for f in files}
    if len(kinds) > 1:
        raise MixedFormatsError(
            f"both Parquet and CSV files under {store.kind}://{store.container}/{prefix}",
            hint="keep one format per table prefix (seed CSV under another prefix)",
        )
    return files


def csv_column_types(suite_meta: dict[str, Any]) -> dict[str, pa.DataType]:
    """The Arrow type of each column of the suite, for reading CSV (text when the suite's type is another)."""
    columns = (suite_meta.get("hdh") or {}).get("columns") or {}
    return {name: _CSV_TYPES.get(str(t), pa.string()) for name, t in columns.items()}


def _file_pieces(store: Store, info: ObjectInfo, *, csv_types: dict[str, pa.DataType] | None) -> Iterator[pa.Table]:
    """One file as Arrow tables, one Parquet row group (or 8 MiB CSV block) at a time; an empty file gives
    one empty table, so that its schema is still seen."""
    f = RangeFile(store, info)
    if info.name.lower().endswith(".csv"):
        reader = pacsv.open_csv(
            f,
            read_options=pacsv.ReadOptions(block_size=8 * _MiB),
            convert_options=pacsv.ConvertOptions(column_types=csv_types or {}, strings_can_be_null=True),
        )
        seen = False
        for rb in reader:
            seen = True
            yield pa.Table.from_batches([rb], schema=reader.schema)
        if not seen:
            yield reader.schema.empty_table()
        return
    pf = pq.ParquetFile(f)
    if pf.num_row_groups == 0:
        yield pf.schema_arrow.empty_table()
    for i in range(pf.num_row_groups):
        yield pf.read_row_group(i)


def iter_batches(
    store: Store,
    files: list[ObjectInfo],
    *,
    batch_rows: int,
    csv_types: dict[str, pa.DataType] | None = None,
    on_file: Callable[[ObjectInfo], None] | None = None,
) -> Iterator[pa.Table]:
    """Arrow tables of about ``batch_rows`` rows (whole row groups), filled across the files in order.

    Why across files: each GX validation costs ~4 ms per expectation whatever the rows (~1 s per batch for
    ER_PRS_F's 239), so a table of many small files would pay it per file. A batch never mixes two
    schemas: a file whose schema differs from the batch's starts a new one (its own types are checked
    on their own, as a changed column type must be). ``on_file`` is called as each file is opened.
    """
    pending: list[pa.Table] = []
    count = 0
    for info in files:
        if on_file is not None:
            on_file(info)
        for piece in _file_pieces(store, info, csv_types=csv_types):
            if pending and not piece.schema.equals(pending[0].schema, check_metadata=False):
                yield _joined(pending)
                pending, count = [], 0
            pending.append(piece)
            count += piece.num_rows
            if count >= batch_rows:
                yield _joined(pending)
                pending, count = [], 0
    if pending:
        yield _joined(pending)


def _joined(pieces: list[pa.Table]) -> pa.Table:
    return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)


@dataclass(frozen=True)
class Batching:
    """How a side's files are cut into GX batches: ``rows`` per batch, files grouped up to ``group_bytes``."""

    rows: int
    group_bytes: int

    @classmethod
    def of(cls, batch_rows: int, group_bytes: int | None) -> Batching:
        """``group_bytes`` None: ``GROUP_BYTES``, read at each call (a test sets it for files of a few KiB)."""
        return cls(batch_rows, GROUP_BYTES if group_bytes is None else group_bytes)


def file_groups(files: list[ObjectInfo], group_bytes: int) -> list[list[ObjectInfo]]:
    """Consecutive files, grouped until a group holds ``group_bytes``: batches are filled within a group.

    Why groups, and not one stream of batches across all files: the batches must not depend on how many
    processes validate a side (``--jobs``), or the report would. Groups depend only on the listing (names
    and sizes), and processes get whole groups. 32 MiB of Parquet is ~250,000 ER_PRS_F rows (a batch), so
    files that size or larger are each a group of their own, as before groups; smaller files share
    batches instead of paying GX's fixed cost each (~1 s per batch for ER_PRS_F's 239 expectations).
    """
    groups: list[list[ObjectInfo]] = []
    current: list[ObjectInfo] = []
    size = 0
    for f in files:
        current.append(f)
        size += f.size
        if size >= group_bytes:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups
