"""Dual-run validation: run a table's GX suite on the source and on the destination copy, and compare.

Checksums prove that bytes arrived; auditors also want proof that the dataset is still what it was and
still meets the published model. For one table this module:

1. lists the data files under ``PREFIX/NAME/`` on each side (Parquet, or CSV typed from the suite);
2. reads them one row group at a time through ranged reads (``RangeFile``), never a whole table, so a
   table of tens of millions of rows validates in bounded memory, on Azure and on (SSE-C) S3 alike;
3. runs the GX suite on each batch (about ``batch_rows`` rows, whole row groups, filled across files of
   one schema) and combines the batch results per expectation; uniqueness is re-checked across all files
   with hashed keys, since a batch only sees itself;
4. computes comparable metrics with pyarrow: row and file counts, per-column type, null count,
   min/max/sum of numbers, value-length range of text, a per-column fingerprint, distinct counts of keys
   and an order-independent fingerprint of all rows (see ``rowhash``);
5. compares both sides column by column and builds GX Data Docs for the audit report.

Reports and logs only ever hold counts, types, numeric aggregates of non-key columns and fingerprints:
never a row, never an id (text columns get no min/max; key columns are compared by fingerprint and
distinct count only; GX is asked for no unexpected-value samples).
"""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
import math
import os
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hdh_migrate.errors import HdhMigrateError, PermanentError, TransientError
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.validation import gxplan
from hdh_migrate.validation.expectations import SuiteError, active_expectations, read_suite_document
from hdh_migrate.validation.rowhash import RowChain, combine_rows, sorted_unique, value_hashes, wrapping_sum

log = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1
_MiB = 1024 * 1024
DATA_SUFFIXES = (".parquet", ".csv")
#: GX results whose observed value is schema information, safe to report (others may hold data values)
_SAFE_OBSERVED = {
    "expect_column_values_to_be_of_type",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal",
    "expect_column_values_to_be_in_type_list",
}
_UNIQUENESS = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}


class ValidationFailedError(PermanentError):
    """The dataset failed its suite on a side, or the two sides differ: its cutover is blocked.

    ``result`` holds the full JSON-serialisable result (the same dict ``validate_table`` returns).
    """

    code = "validation_failed"

    def __init__(self, message: str, *, result: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


class NoDataFilesError(PermanentError):
    """No Parquet or CSV file under the table's prefix: nothing to validate (wrong prefix or table)."""

    code = "no_data_files"


class MixedFormatsError(PermanentError):
    code = "mixed_formats"


class ValidationWorkerError(TransientError):
    """A worker process of ``--jobs`` / ``validate_processes`` died mid-validation (killed: often memory)."""

    code = "validation_worker_died"


# -- random access over a store -------------------------------------------------------------------------


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
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

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
            self.requests += 1
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


# -- reading a table's files in batches ------------------------------------------------------------------


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


def _csv_types(suite_meta: dict[str, Any]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for name, t in ((suite_meta.get("hdh") or {}).get("columns") or {}).items():
        types[name] = {
            "int64": pa.int64(),
            "double": pa.float64(),
            "bool": pa.bool_(),
            "date32[day]": pa.date32(),
            "timestamp[ms]": pa.timestamp("ms"),
        }.get(str(t), pa.string())
    return types


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


#: files smaller than this are validated together, in batches filled across them (see ``file_groups``)
GROUP_BYTES = 32 * _MiB


@dataclass(frozen=True)
class Batching:
    """How a side's files are cut into GX batches: ``rows`` per batch, files grouped up to ``group_bytes``."""

    rows: int = 250_000
    group_bytes: int = GROUP_BYTES


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


def iter_file_batches(
    store: Store, info: ObjectInfo, *, batch_rows: int, csv_types: dict[str, pa.DataType] | None = None
) -> Iterator[pa.Table]:
    """Arrow tables of at most about ``batch_rows`` rows from one file (whole row groups for Parquet)."""
    return iter_batches(store, [info], batch_rows=batch_rows, csv_types=csv_types)


# -- metrics -------------------------------------------------------------------------------------------------


class _Distinct:
    """Distinct count of a key over all files, from 64-bit hashes (8 bytes per distinct key in memory).

    Each batch's hashes are kept as one sorted run of distinct values; runs are merged when they grow past
    4 M values and at the end."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0
        self.rows = 0

    def add(self, h: np.ndarray) -> None:
        self.rows += int(h.size)
        self.parts.append(sorted_unique(h))
        self.size += self.parts[-1].size
        self._compact()

    def _compact(self) -> None:
        if self.size > 4_000_000 and len(self.parts) > 1:
            merged = sorted_unique(np.concatenate(self.parts), runs=True)
            self.parts, self.size = [merged], merged.size

    def count(self) -> int:
        if not self.parts:
            return 0
        return int(sorted_unique(np.concatenate(self.parts), runs=True).size)

    def merge(self, other: _Distinct) -> None:
        self.rows += other.rows
        self.parts += other.parts
        self.size += other.size
        self._compact()


def _json_scalar(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "as_tuple"):  # Decimal
        return str(v)
    return v


def _widen(c: dict[str, Any], key: str, value: Any, pick: Callable[[Any, Any], Any]) -> None:
    """A running min or max (``pick``) that starts at the first value seen."""
    c[key] = value if c.get(key) is None else pick(c[key], value)


class SideMetrics:
    """Accumulates the comparable metrics of one side, batch by batch."""

    def __init__(self, key_sets: dict[str, list[str]], private_columns: set[str]) -> None:
        self.key_sets = key_sets
        self.private = private_columns
        self.rows = 0
        self.files = 0
        self.fingerprint = 0
        self.columns: dict[str, dict[str, Any]] = {}
        self.distinct = {name: _Distinct() for name in key_sets}
        self._keyed = {c for cols in key_sets.values() for c in cols}  # columns whose hashes a key needs
        self._order: list[str] = []

    def _col(self, name: str) -> dict[str, Any]:
        if name not in self.columns:
            self.columns[name] = {"types": set(), "null_count": 0, "fingerprint": 0, "present_rows": 0}
            self._order.append(name)
        return self.columns[name]

    def add(self, t: pa.Table) -> None:
        n = t.num_rows
        hashes: dict[str, np.ndarray] = {}  # of key columns only: the row hash is chained as columns come
        rows = RowChain(n)
        for name, col in zip(t.column_names, t.columns, strict=True):
            h = value_hashes(col, name)
            rows.add(h)
            if name in self._keyed:
                hashes[name] = h
            c = self._col(name)
            c["types"].add(str(col.type))
            c["null_count"] += col.null_count
            c["present_rows"] += n
            c["fingerprint"] = (c["fingerprint"] + wrapping_sum(h)) & _MASK64
            if n and col.null_count < n:
                self._aggregates(name, col, c)
        self.rows += n
        self.fingerprint = (self.fingerprint + wrapping_sum(rows.hashes)) & _MASK64
        for key, cols in self.key_sets.items():
            if not all(c in hashes for c in cols):
                continue
            valid = np.ones(n, dtype=bool)
            for c in cols:
                if t.column(c).null_count:
                    valid &= np.asarray(t.column(c).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            kh = combine_rows([hashes[c] for c in cols], n)[valid]
            self.distinct[key].add(kh)

    def merge(self, other: SideMetrics) -> None:
        """Add the metrics of files read elsewhere (a parallel worker), as if read after this one's."""
        self.rows += other.rows
        self.files += other.files
        self.fingerprint = (self.fingerprint + other.fingerprint) & _MASK64
        for name in other._order:
            c, o = self._col(name), other.columns[name]
            c["types"] |= o["types"]
            for k in ("null_count", "present_rows"):
                c[k] += o[k]
            c["fingerprint"] = (c["fingerprint"] + o["fingerprint"]) & _MASK64
            for k, pick in (("min", min), ("max", max), ("min_length", min), ("max_length", max)):
                if o.get(k) is not None:
                    _widen(c, k, o[k], pick)
            if "sum" in o:
                c["sum"] = c.get("sum", 0) + o["sum"]
            if "_float_sums" in o:
                c.setdefault("_float_sums", []).extend(o["_float_sums"])
        for key, d in other.distinct.items():
            self.distinct[key].merge(d)

    def _aggregates(self, name: str, col: pa.ChunkedArray, c: dict[str, Any]) -> None:
        t = col.type
        if name in self.private:
            return
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            mm = pc.min_max(col)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            _widen(c, "min", lo, min)
            _widen(c, "max", hi, max)
            if pa.types.is_integer(t):
                # exact: split in 32-bit halves so no partial sum overflows int64
                a = pc.cast(col, pa.int64()).fill_null(0).to_numpy()
                part = int(np.sum(a >> 32, dtype=np.int64)) * (1 << 32) + int(np.sum(a & 0xFFFFFFFF, dtype=np.int64))
                c["sum"] = c.get("sum", 0) + part
            elif pa.types.is_decimal(t):
                c["sum"] = c.get("sum", 0) + (pc.sum(col).as_py() or 0)
            else:
                c.setdefault("_float_sums", []).append(pc.sum(col).as_py() or 0.0)
        elif pa.types.is_temporal(t):
            mm = pc.min_max(col)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            _widen(c, "min", lo, min)
            _widen(c, "max", hi, max)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            mm = pc.min_max(pc.utf8_length(col))
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            _widen(c, "min_length", lo, min)
            _widen(c, "max_length", hi, max)

    def to_dict(self) -> dict[str, Any]:
        cols: dict[str, Any] = {}
        for name in self._order:
            c = self.columns[name]
            out: dict[str, Any] = {"type": "|".join(sorted(c["types"])), "null_count": c["null_count"]}
            if c["present_rows"] != self.rows:
                out["missing_rows"] = self.rows - c["present_rows"]
            for k in ("min", "max", "sum", "min_length", "max_length"):
                if k in c:
                    out[k] = _json_scalar(c[k])
            if "_float_sums" in c:
                out["sum"] = _json_scalar(math.fsum(c["_float_sums"]))
            out["fingerprint"] = f"{c['fingerprint']:016x}"
            cols[name] = out
        return {
            "row_count": self.rows,
            "file_count": self.files,
            "fingerprint": f"{self.fingerprint:016x}",
            "columns": cols,
            "distinct": {k: {"count": d.count(), "rows": d.rows} for k, d in self.distinct.items()},
        }


# -- GX ------------------------------------------------------------------------------------------------------


def _gx() -> Any:
    """Import GX quietly: analytics off, its import-time INFO flood and progress bars silenced."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx

    # some GX modules pin their own logger at INFO; quieten them all (their INFO lines are noise for us)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # GX hashes every in-memory frame below this size into a "pandas_data_fingerprint" batch marker (and
    # skips it above). Nothing reads it here, the Data Docs result drops the markers, and it was 46 % of a
    # batch's validation time once the suite ran in column groups (py-spy, ER_PRS_F): skip it always.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    # GX derives an expectation's type from its class name with two regex substitutions each time it builds
    # the expectation's configuration, several times per expectation and batch: 15 % of a batch's fixed
    # cost (py-spy, ER_PRS_F). The function is pure: remember its answers.
    from great_expectations.expectations import expectation as gx_expectation

    if not hasattr(gx_expectation.camel_to_snake, "cache_info"):
        gx_expectation.camel_to_snake = functools.cache(gx_expectation.camel_to_snake)
    return gx


def _to_pandas(t: pa.Table) -> Any:
    """Nullable pandas dtypes, so an int64 column stays int64 with nulls and its GX type check is exact."""
    import pandas as pd

    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
    }
    return t.to_pandas(types_mapper=mapping.get, date_as_object=False)


class _GxRunner:
    """One ephemeral GX context per validation: suite, a pandas data source, optional Data Docs site."""

    def __init__(self, table: str, doc: dict[str, Any], data_docs_dir: Path | None, *, grouped: bool = True) -> None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        self.gx = gx
        self.table = table
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.docs_dir = data_docs_dir
        if data_docs_dir is not None:
            backend = {"class_name": "TupleFilesystemStoreBackend"}
            results_backend = {**backend, "base_directory": str(data_docs_dir / "_results")}
            self.ctx.add_store(
                "hdh_results", {"class_name": "ValidationResultsStore", "store_backend": results_backend}
            )
            suites_backend = {**backend, "base_directory": str(data_docs_dir / "_suites")}
            self.ctx.add_store("hdh_suites", {"class_name": "ExpectationsStore", "store_backend": suites_backend})
            self.ctx.add_data_docs_site(
                "hdh",
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {**backend, "base_directory": str(data_docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "site_section_builders": {
                        "validations": {"source_store_name": "hdh_results"},
                        "expectations": {"source_store_name": "hdh_suites"},
                        "profiling": "None",
                    },
                },
            )
        self.expectations = active_expectations(doc)
        try:
            domain = [
                ExpectationConfiguration(
                    type=e["type"], kwargs=dict(e.get("kwargs") or {}), meta=dict(e.get("meta") or {})
                ).to_domain_obj()
                for e in self.expectations
            ]
        except Exception as exc:
            raise SuiteError(
                f"the suite of {table} holds an expectation GX cannot build: {type(exc).__name__}: {exc}",
                hint="check the type and kwargs of hand-added expectations",
            ) from None
        self.suite = self.ctx.suites.add(
            gx.ExpectationSuite(
                name=str(doc.get("name") or table),
                expectations=domain,
                meta={k: v for k, v in (doc.get("meta") or {}).items()},
            )
        )
        ds = self.ctx.data_sources.add_pandas("hdh")
        self.batch_definition = ds.add_dataframe_asset(table).add_batch_definition_whole_dataframe("batch")

        # GX returns results grouped by domain, not in suite order: map them back by expectation id
        self.position = {str(e.id): i for i, e in enumerate(self.suite.expectations)}
        if len(self.position) != len(self.expectations):
            raise SuiteError(f"the suite of {table} could not be loaded expectation by expectation")
        # the suite runs in column groups (see gxplan): one sub-suite per group, the same expectation ids
        self.groups = gxplan.plan_groups(self.expectations) if grouped else [
            gxplan.Group(tuple(range(len(self.expectations))), None)
        ]
        self.group_suites = []
        for n, g in enumerate(self.groups):
            sub = gx.ExpectationSuite(
                name=f"{self.suite.name} [{n}]",
                expectations=[copy.copy(self.suite.expectations[i]) for i in g.positions],
            )
            for e, i in zip(sub.expectations, g.positions, strict=True):
                e.id = self.suite.expectations[i].id  # a copy has none: results are mapped back by id
            self.group_suites.append(sub)
        # bounds checks GX compares as doubles (integer bounds beyond 2**53): recounted exactly per batch
        self.exact_checks = [(i, e["kwargs"]) for i, e in enumerate(self.expectations) if gxplan.inexact_bounds(e)]

    def validate(self, t: pa.Table) -> Any:
        """GX's result for one batch, as one suite result whose ``results`` follow the suite file's order."""
        parts = []
        for g, suite in zip(self.groups, self.group_suites, strict=True):
            frame = gxplan.frame_for(g, t, _to_pandas)
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            parts.append(batch.validate(suite, result_format={"result_format": "BASIC", "partial_unexpected_count": 0}))
        res = parts[0]
        res.results = sorted(
            (r for p in parts for r in p.results), key=lambda r: self.position[str(r.expectation_config.id)]
        )
        for r, e in zip(res.results, self.expectations, strict=True):
            if r.expectation_config.type != e["type"]:  # pragma: no cover - would be a GX contract change
                raise SuiteError(f"GX returned results that do not match the suite of {self.table}")
        for i, kw in self.exact_checks:
            _recount(res.results[i], t, kw)
        _restate(res)
        res.suite_name = self.suite.name
        return res


def _restate(res: Any) -> None:
    """A suite result's success and statistics, from its expectations' results (after merging or edits)."""
    total = len(res.results)
    ok = sum(bool(r.success) for r in res.results)
    res.success = ok == total
    res.statistics = {
        "evaluated_expectations": total,
        "successful_expectations": ok,
        "unsuccessful_expectations": total - ok,
        "success_percent": 100.0 * ok / total if total else 100.0,
    }


def _recount(r: Any, t: pa.Table, kw: dict[str, Any]) -> None:
    """Correct GX's result of a bounds check whose integer bound it held as a double, from an exact count."""
    result = r.result or {}
    column = kw.get("column")
    if column not in t.column_names or "unexpected_count" not in result:
        return  # a missing column is GX's to report (an exception), as for every expectation on it
    n = gxplan.exact_unexpected(t.column(column), kw)
    if n is None or n == result["unexpected_count"]:
        return
    nonmissing = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
    mostly = float(kw.get("mostly", 1.0))
    result["unexpected_count"] = n
    if nonmissing:
        result["unexpected_percent"] = result["unexpected_percent_nonmissing"] = 100.0 * n / nonmissing
    if result.get("element_count"):
        result["unexpected_percent_total"] = 100.0 * n / int(result["element_count"])
    r.result = result
    r.success = nonmissing == 0 or (nonmissing - n) / nonmissing >= mostly
    log.info("%s: bound beyond 2**53 recounted exactly: %d value(s) outside, GX said otherwise", column, n)


class _Combined:
    """Per-expectation combination of batch results: passes only if it passed on every batch."""

    def __init__(self, expectations: list[dict[str, Any]]) -> None:
        self.exps = expectations
        self.items: list[dict[str, Any]] = [
            {
                "success": True,
                "element_count": 0,
                "unexpected_count": 0,
                "missing_count": 0,
                "failed_batches": 0,
                "observed": set(),
                "raised_exception": False,
                "scope": "batch",
            }
            for _ in expectations
        ]
        self.first: Any = None
        self.batches = 0

    def add(self, res: Any) -> None:
        if self.first is None:
            self.first = res
        self.batches += 1
        for item, r, e in zip(self.items, res.results, self.exps, strict=True):
            result = r.result or {}
            if not r.success:
                item["success"] = False
                item["failed_batches"] += 1
            for k in ("element_count", "unexpected_count", "missing_count"):
                if isinstance(result.get(k), int):
                    item[k] += result[k]
            if e["type"] in _SAFE_OBSERVED and "observed_value" in result:
                ov = result["observed_value"]
                item["observed"].add(json.dumps(ov) if isinstance(ov, list) else str(ov))
            if r.exception_info and r.exception_info.get("raised_exception"):
                item["raised_exception"] = True

    def merge(self, other: _Combined) -> None:
        """Add the batch results of files validated elsewhere (a parallel worker), as if validated after."""
        if self.first is None:
            self.first = other.first
        self.batches += other.batches
        for item, o in zip(self.items, other.items, strict=True):
            item["success"] = item["success"] and o["success"]
            for k in ("element_count", "unexpected_count", "missing_count", "failed_batches"):
                item[k] += o[k]
            item["observed"] |= o["observed"]
            item["raised_exception"] = item["raised_exception"] or o["raised_exception"]

    def failed(self) -> list[dict[str, Any]]:
        out = []
        for item, e in zip(self.items, self.exps, strict=True):
            if item["success"]:
                continue
            kw = e.get("kwargs") or {}
            entry: dict[str, Any] = {"expectation": e["type"]}
            if "column" in kw:
                entry["column"] = kw["column"]
            elif "column_list" in kw and e["type"] != "expect_table_columns_to_match_ordered_list":
                entry["columns"] = list(kw["column_list"])
            for k in ("unexpected_count", "element_count", "failed_batches", "scope"):
                entry[k] = item[k]
            if item["observed"]:
                entry["observed"] = sorted(item["observed"])
            if item["raised_exception"]:
                entry["raised_exception"] = True
            why = (e.get("meta") or {}).get("why")
            if why:
                entry["why"] = why
            entry["origin"] = (e.get("meta") or {}).get("hdh_origin", "hand")
            out.append(entry)
        return out


def _key_sets(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Keys whose distinct count is compared: uniqueness expectations, primary key, foreign keys."""
    sets: dict[str, list[str]] = {}
    for e in active_expectations(doc):
        kw = e.get("kwargs") or {}
        if e.get("type") == "expect_column_values_to_be_unique":
            sets[str(kw["column"])] = [str(kw["column"])]
        elif e.get("type") == "expect_compound_columns_to_be_unique":
            sets["+".join(kw["column_list"])] = [str(c) for c in kw["column_list"]]
    meta = (doc.get("meta") or {}).get("hdh") or {}
    if meta.get("primary_key"):
        sets["+".join(meta["primary_key"])] = list(meta["primary_key"])
    for fk in meta.get("foreign_keys") or []:
        sets["+".join(fk["fields"])] = list(fk["fields"])
    return sets


def _private_columns(doc: dict[str, Any], key_sets: dict[str, list[str]]) -> set[str]:
    """Columns whose values must not appear even as min/max: keys and pseudonymised ids."""
    cols = {c for cols in key_sets.values() for c in cols}
    for e in active_expectations(doc):
        why = (e.get("meta") or {}).get("why")
        if e.get("type") == "expect_column_values_to_match_regex" and why == "pseudonymised id":
            cols.add(str(e["kwargs"]["column"]))
    return cols


@dataclass
class SideResult:
    side: str
    url: str
    success: bool
    files: int
    batches: int
    evaluated: int
    failed_expectations: list[dict[str, Any]]
    metrics: dict[str, Any]
    gx_result: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "success": self.success,
            "files": self.files,
            "batches": self.batches,
            "expectations": {"evaluated": self.evaluated, "failed": len(self.failed_expectations)},
            "failed_expectations": self.failed_expectations,
            "metrics": self.metrics,
        }


def _table_location(url: str | Location, table: str) -> Location:
    loc = parse_location(url) if isinstance(url, str) else url
    return Location(loc.scheme, loc.container, f"{loc.prefix}{table}/")


def validate_side(
    side: str,
    table: str,
    doc: dict[str, Any],
    location: str | Location,
    *,
    runner: _GxRunner,
    store: Store | None = None,
    batch_rows: int = 250_000,
    jobs: int = 1,
    group_bytes: int | None = None,
) -> SideResult:
    """Run the suite over every batch of one side and gather its metrics.

    ``jobs`` > 1 validates the side's files in that many processes (see ``_start_side``); files smaller
    than ``group_bytes`` (default ``GROUP_BYTES``) share batches (see ``file_groups``).
    """
    batching = _batching(batch_rows, group_bytes)
    loc, st, files = _side_files(side, table, location, store)
    runs = _side_runs(files, batching, jobs)
    with _pool(jobs, len(runs)) as pool:
        metrics, combined = _start_side(st, runs, table, doc, lambda: runner, batching, pool)()
    return _finish_side(side, table, loc, files, metrics, combined)


def _side_files(
    side: str, table: str, location: str | Location, store: Store | None
) -> tuple[Location, Store, list[ObjectInfo]]:
    from hdh_migrate.stores import open_store

    loc = _table_location(location, table)
    st = store if store is not None else open_store(loc)
    files = list_data_files(st, loc.prefix)
    if not files:
        raise NoDataFilesError(
            f"{table}: no Parquet or CSV file under {loc} ({side})",
            hint="check the table name and the prefix (tables are read under PREFIX/NAME/)",
        )
    return loc, st, files


def _finish_side(
    side: str, table: str, loc: Location, files: list[ObjectInfo], metrics: SideMetrics, combined: _Combined
) -> SideResult:
    m = metrics.to_dict()
    # A batch sees only itself: re-check uniqueness over all files with the hashed keys.
    for item, e in zip(combined.items, combined.exps, strict=True):
        if e["type"] not in _UNIQUENESS:
            continue
        kw = e.get("kwargs") or {}
        name = str(kw["column"]) if "column" in kw else "+".join(kw["column_list"])
        d = m["distinct"].get(name)
        if d and d["count"] < d["rows"]:
            item["success"] = False
            item["scope"] = "table"
            item["unexpected_count"] = max(item["unexpected_count"], d["rows"] - d["count"])
    failed = combined.failed()
    log.info(
        "%s %s: %d files, %d batches, %d rows, %d failed expectations",
        table,
        side,
        len(files),
        combined.batches,
        m["row_count"],
        len(failed),
    )
    return SideResult(
        side,
        str(loc),
        not failed,
        len(files),
        combined.batches,
        len(combined.exps),
        failed,
        m,
        gx_result=_docs_result(combined, side, str(loc)),
    )


def _validate_files(
    st: Store, groups: list[list[ObjectInfo]], doc: dict[str, Any], runner: _GxRunner, batching: Batching
) -> tuple[SideMetrics, _Combined]:
    key_sets = _key_sets(doc)
    metrics = SideMetrics(key_sets, _private_columns(doc, key_sets))
    combined = _Combined(runner.expectations)
    csv_types = _csv_types(doc.get("meta") or {})

    def opened(info: ObjectInfo) -> None:
        metrics.files += 1

    for group in groups:
        for batch in iter_batches(st, group, batch_rows=batching.rows, csv_types=csv_types, on_file=opened):
            metrics.add(batch)
            combined.add(runner.validate(batch))
    return metrics, combined


def _batching(batch_rows: int, group_bytes: int | None) -> Batching:
    return Batching(batch_rows, GROUP_BYTES if group_bytes is None else group_bytes)


def _side_runs(files: list[ObjectInfo], batching: Batching, jobs: int) -> list[list[list[ObjectInfo]]]:
    """A side's file groups, cut into the runs its processes validate (one run: this process alone)."""
    return _file_chunks(file_groups(files, batching.group_bytes), jobs, batching.group_bytes)


def _file_chunks(
    groups: list[list[ObjectInfo]], jobs: int, min_bytes: int = 0
) -> list[list[list[ObjectInfo]]]:
    """At most ``jobs`` contiguous runs of file groups of about the same number of bytes (order kept), and
    no more runs than ``min_bytes`` fit in the total: a worker pays GX's import (~6 s, as much as validating
    a 32 MiB group), so a table of 39 MiB is not spread over two processes for its last 6 MiB."""
    sizes = [max(sum(f.size for f in g), 1) for g in groups]
    total = sum(sizes)
    n = max(1, min(jobs, len(groups), total // min_bytes if min_bytes > 0 else jobs))
    if n == 1:
        return [groups]
    chunks: list[list[list[ObjectInfo]]] = [[]]
    done = 0
    for i, (g, size) in enumerate(zip(groups, sizes, strict=True)):
        left_groups, left_chunks = len(groups) - i, n - len(chunks) + 1
        # a new run once this one has its share, or when the groups left are only enough for one run each
        if chunks[-1] and len(chunks) < n and (done >= total * len(chunks) / n or left_groups <= left_chunks - 1):
            chunks.append([])
        chunks[-1].append(g)
        done += size
    return chunks


#: a worker process's GX runners, by suite: built once per process, reused for every run of files it gets
_WORKER_RUNNERS: dict[str, _GxRunner] = {}


def _side_worker(
    kind: str,
    settings: Any,
    container: str,
    groups: list[list[ObjectInfo]],
    table: str,
    doc: dict[str, Any],
    batching: Batching,
) -> tuple[SideMetrics, _Combined]:
    """One run of file groups in a worker process: its own store connection, and its own GX context."""
    from hdh_migrate.stores import open_store

    key = json.dumps([table, doc], sort_keys=True, default=str)
    runner = _WORKER_RUNNERS.get(key)
    if runner is None:
        runner = _WORKER_RUNNERS[key] = _GxRunner(table, doc, None)
    st = open_store(Location(kind, container, ""), **{kind: settings})
    return _validate_files(st, groups, doc, runner, batching)


@contextmanager
def _pool(jobs: int, runs: int) -> Iterator[Any]:
    """Worker processes when a side has more than one run (None otherwise); pending work is cancelled if
    anything fails.

    Spawned, not forked: the parent may hold threads (connection pools, Airflow's task runner), and a fork
    copies their locks in whatever state they are.
    """
    if min(jobs, runs) <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # this process is one of the jobs: it has GX imported already, and would otherwise only wait
    pool = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Hide this process's ``__main__`` while worker processes start.

    A spawned process first runs the parent's main script (or module) again, so that functions pickled from
    it can be found. In an Airflow task, that is the ``airflow`` command: in the worker it initialises
    Airflow again, against a database setting the task process is not allowed to use, and the worker dies
    ("Could not parse SQLAlchemy URL"). The workers need nothing from ``__main__``; during their start it
    is an empty module, which multiprocessing does not run again.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _start_side(
    st: Store,
    runs: list[list[list[ObjectInfo]]],
    table: str,
    doc: dict[str, Any],
    runner: Callable[[], _GxRunner],
    batching: Batching,
    pool: Any,
) -> Callable[[], tuple[SideMetrics, _Combined]]:
    """Start validating one side; the returned call waits for it and gives its metrics and batch results.

    ``runs`` are the side's file groups cut into contiguous runs of about the same bytes (``_side_runs``).
    With a pool, this process validates the first when the result is collected, the pool's workers the others,
    so that both sides are in flight at once. Metrics and batch results are merged in file order, which
    gives what one process gives (every merged metric is a sum, a min/max, a union or an order-independent
    fingerprint). Each worker pays GX's import once (~6 s here) and holds its own batch in memory.
    """
    groups = [g for run in runs for g in run]

    def here() -> tuple[SideMetrics, _Combined]:
        return _validate_files(st, groups, doc, runner(), batching)

    if pool is None or len(runs) == 1:
        return here
    try:
        pickle.dumps((st.settings, groups[0][0]))  # type: ignore[attr-defined]  # what travels to the workers
        with _main_not_rerun():  # the pool starts its processes in submit()
            futures = [
                pool.submit(_side_worker, st.kind, st.settings, st.container, chunk, table, doc, batching)  # type: ignore[attr-defined]
                for chunk in runs[1:]
            ]
    except (AssertionError, OSError, pickle.PicklingError, TypeError) as exc:
        # a daemonic process may not have children; credentials that do not pickle (a token credential
        # object) cannot travel: validate in this process, as with one job
        log.warning("%s: worker processes unavailable (%s: %s); validating in one process", table,
                    type(exc).__name__, exc)
        return here
    log.info(
        "%s: validating %d files (%d groups) in %d runs on %d processes",
        table, sum(len(g) for g in groups), len(groups), len(runs), len(runs),
    )

    def collect() -> tuple[SideMetrics, _Combined]:
        metrics, combined = _validate_files(st, runs[0], doc, runner(), batching)  # the first run, here
        for f in futures:
            try:
                m, c = f.result()
            except BrokenProcessPool:
                raise ValidationWorkerError(
                    f"{table}: a validation worker process died ({st.kind}://{st.container}, {len(runs)} processes)",
                    hint="usually the kernel's OOM killer: each process holds a batch (~1-2 GB for 250,000 rows "
                    "of a wide table); lower validate_processes (--jobs) or --batch-rows, or give the worker more "
                    "memory, then retry: validation only reads",
                ) from None
            metrics.merge(m)
            combined.merge(c)
        return metrics, combined

    return collect


def _docs_result(combined: _Combined, side: str, url: str) -> Any:
    """The combined result as a GX validation result (for Data Docs), without any unexpected values."""
    res = combined.first
    if res is None:
        return None
    for r, item in zip(res.results, combined.items, strict=True):
        r.success = item["success"]
        safe = {k: item[k] for k in ("element_count", "unexpected_count", "missing_count") if item[k]}
        if item["observed"]:
            obs = sorted(item["observed"])
            safe["observed_value"] = obs[0] if len(obs) == 1 else " | ".join(obs)
        if "element_count" in (r.result or {}):
            safe.setdefault("element_count", item["element_count"])
            safe.setdefault("unexpected_count", item["unexpected_count"])
            safe["partial_unexpected_list"] = []
        r.result = safe
    _restate(res)
    meta = dict(res.meta or {})
    meta["active_batch_definition"] = {
        "datasource_name": side,
        "data_connector_name": "hdh-migrate",
        "data_asset_name": url,
        "batch_identifiers": {"side": side, "location": url},
    }
    meta["batch_spec"] = {"location": url, "batches": combined.batches}
    meta.pop("batch_markers", None)
    res.meta = meta
    return res


# -- comparison --------------------------------------------------------------------------------------------


def compare_metrics(source: dict[str, Any], destination: dict[str, Any]) -> dict[str, Any]:
    """Every metric that differs between the two sides, column by column."""
    diffs: list[dict[str, Any]] = []

    def diff(metric: str, column: str | None, a: Any, b: Any) -> None:
        if a != b:
            diffs.append({"metric": metric, "column": column, "source": a, "destination": b})

    for k in ("row_count", "file_count", "fingerprint"):
        diff(k, None, source.get(k), destination.get(k))
    sc, dc = source.get("columns", {}), destination.get("columns", {})
    for col in list(sc) + [c for c in dc if c not in sc]:
        if col not in sc or col not in dc:
            diff("column", col, "present" if col in sc else "absent", "present" if col in dc else "absent")
            continue
        for k in ("type", "null_count", "missing_rows", "min", "max", "sum", "min_length", "max_length", "fingerprint"):
            diff(k, col, sc[col].get(k), dc[col].get(k))
    if list(sc) != list(dc) and set(sc) == set(dc):
        diff("column_order", None, list(sc), list(dc))
    sd, dd = source.get("distinct", {}), destination.get("distinct", {})
    for key in list(sd) + [k for k in dd if k not in sd]:
        diff("distinct_count", key, (sd.get(key) or {}).get("count"), (dd.get(key) or {}).get("count"))
    return {"equal": not diffs, "differences": diffs}


# -- Data Docs ---------------------------------------------------------------------------------------------


def _build_docs(runner: _GxRunner, table: str, sides: list[SideResult]) -> dict[str, Any]:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    assert runner.docs_dir is not None
    now = datetime.now(UTC)
    run_id = RunIdentifier(run_name=f"{table}-{now:%Y%m%dT%H%M%S}", run_time=now)
    store = runner.ctx.stores["hdh_results"]
    # suites accumulate too, so the index lists every table validated into this folder
    runner.ctx.stores["hdh_suites"].add_or_update(ExpectationSuiteIdentifier(name=runner.suite.name), runner.suite)
    pages: dict[str, str] = {}
    for s in sides:
        if s.gx_result is None:
            continue
        suite_id = ExpectationSuiteIdentifier(name=runner.suite.name)
        key = ValidationResultIdentifier(expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=s.side)
        store.set(key, s.gx_result)
        urls = runner.ctx.get_docs_sites_urls(resource_identifier=key, site_name="hdh", only_if_exists=False)
        if urls and urls[0].get("site_url"):
            pages[s.side] = urls[0]["site_url"].removeprefix("file://")
    runner.ctx.build_data_docs(site_names=["hdh"])
    return {"index": str(runner.docs_dir / "index.html"), "pages": pages}


# -- the per-table entry point -------------------------------------------------------------------------------


def load_suite(suite: str | Path | dict[str, Any]) -> dict[str, Any]:
    return suite if isinstance(suite, dict) else read_suite_document(suite)


def validate_table(
    table: str,
    suite: str | Path | dict[str, Any],
    source: str,
    destination: str,
    *,
    data_docs_dir: str | Path | None = "data_docs",
    batch_rows: int = 250_000,
    source_store: Store | None = None,
    destination_store: Store | None = None,
    raise_on_failure: bool = True,
    jobs: int = 1,
    group_bytes: int | None = None,
) -> dict[str, Any]:
    """Validate one table on both sides and compare; the result is JSON-serialisable.

    ``source``/``destination`` are ``azure://C/P`` and ``s3://B/Q``; the table is read under ``P/NAME/``
    and ``Q/NAME/``. Raises ``ValidationFailedError`` (its ``result`` holds this dict) unless both sides
    pass and every metric matches, so an Airflow task fails with a message naming the table, the side
    and the failing expectations. Data Docs go to ``data_docs_dir`` (None: not built). ``jobs`` > 1
    validates each side's files in that many worker processes, both sides at once (``_start_side``);
    files smaller than ``group_bytes`` (default ``GROUP_BYTES``) share batches (``file_groups``).
    """
    doc = load_suite(suite)
    docs_dir = Path(data_docs_dir).resolve() if data_docs_dir is not None else None
    # built on first use: after the listings (a wrong prefix fails at once, not after GX's ~6 s import)
    # and after any worker got its files (their imports then overlap this one)
    runner = functools.cache(lambda: _GxRunner(table, doc, docs_dir))

    s_loc, s_st, s_files = _side_files("source", table, source, source_store)
    d_loc, d_st, d_files = _side_files("destination", table, destination, destination_store)
    batching = _batching(batch_rows, group_bytes)
    s_runs, d_runs = _side_runs(s_files, batching, jobs), _side_runs(d_files, batching, jobs)
    with _pool(jobs, max(len(s_runs), len(d_runs))) as pool:
        # with worker processes, both sides are in flight at once; without, one after the other
        s_run = _start_side(s_st, s_runs, table, doc, runner, batching, pool)
        d_run = _start_side(d_st, d_runs, table, doc, runner, batching, pool)
        src = _finish_side("source", table, s_loc, s_files, *s_run())
        dst = _finish_side("destination", table, d_loc, d_files, *d_run())
    comparison = compare_metrics(src.metrics, dst.metrics)
    result: dict[str, Any] = {
        "table": table,
        "suite": str(suite) if not isinstance(suite, dict) else str(doc.get("name")),
        "source": src.to_dict(),
        "destination": dst.to_dict(),
        "comparison": comparison,
        "success": src.success and dst.success and comparison["equal"],
        "data_docs": None,
        "data_docs_pages": {},
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if docs_dir is not None:
        try:
            docs = _build_docs(runner(), table, [src, dst])
            result["data_docs"], result["data_docs_pages"] = docs["index"], docs["pages"]
        except HdhMigrateError:
            raise
        except Exception as exc:  # Data Docs are a report, never a reason to lose the validation itself
            log.warning("%s: Data Docs could not be built: %s", table, type(exc).__name__)
    if not result["success"] and raise_on_failure:
        raise ValidationFailedError(
            failure_message(result),
            result=result,
            hint="the dataset's cutover is blocked; see the comparison and Data Docs",
        )
    return result


def failure_message(result: dict[str, Any], limit: int = 8) -> str:
    """One line naming the table, the side(s) and what failed (counts and names only, never values)."""
    parts = []
    for side in ("source", "destination"):
        s = result[side]
        if not s["success"]:
            names = [
                f"{f['expectation']}({f.get('column') or '+'.join(f.get('columns', [])) or 'table'})"
                for f in s["failed_expectations"]
            ]
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{side} {s['url']} failed {len(names)} expectation(s): {', '.join(names[:limit])}{more}")
    diffs = result["comparison"]["differences"]
    if diffs:
        names = [d["metric"] + (f"({d['column']})" if d.get("column") else "") for d in diffs]
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        parts.append(f"source and destination differ in {len(diffs)} metric(s): {', '.join(names[:limit])}{more}")
    return f"{result['table']}: validation failed -- " + "; ".join(parts)


def format_report(result: dict[str, Any]) -> str:
    """The comparison as a plain-text table for the terminal and the audit log."""
    src, dst = result["source"], result["destination"]
    lines = [f"table {result['table']}  suite {result['suite']}"]
    for label, s in (("source", src), ("destination", dst)):
        n = s["expectations"]["evaluated"]
        lines.append(
            f"  {label:<12} {s['url']}  files {s['files']}  rows {s['metrics']['row_count']}  "
            f"expectations {n - s['expectations']['failed']}/{n} {'PASS' if s['success'] else 'FAIL'}"
        )
    lines.append(f"  fingerprint  source {src['metrics']['fingerprint']}  destination {dst['metrics']['fingerprint']}")
    for side, s in (("source", src), ("destination", dst)):
        for f in s["failed_expectations"]:
            target = f.get("column") or "+".join(f.get("columns", [])) or "(table)"
            lines.append(
                f"  FAILED {side:<11} {f['expectation']} on {target}: {f['unexpected_count']} unexpected"
                + (f" (observed {', '.join(f['observed'])})" if f.get("observed") else "")
                + (" [across files]" if f.get("scope") == "table" else "")
            )
    diffs = result["comparison"]["differences"]
    if diffs:
        lines.append(f"  {len(diffs)} metric(s) differ:")
        lines.append(f"    {'metric':<16} {'column':<24} {'source':<24} destination")
        for d in diffs:
            lines.append(
                f"    {d['metric']:<16} {d['column'] or '-':<24} {_short(d['source']):<24} {_short(d['destination'])}"
            )
    else:
        lines.append("  all metrics equal on both sides")
    if result.get("data_docs"):
        lines.append(f"  data docs    {result['data_docs']}")
    lines.append("RESULT: " + ("PASS -- both sides pass and match" if result["success"] else "FAIL -- cutover blocked"))
    return "\n".join(lines)


def _short(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return s if len(s) <= 60 else s[:57] + "..."


__all__ = [
    "GROUP_BYTES",
    "Batching",
    "MixedFormatsError",
    "NoDataFilesError",
    "RangeFile",
    "SideMetrics",
    "SideResult",
    "ValidationFailedError",
    "ValidationWorkerError",
    "compare_metrics",
    "failure_message",
    "file_groups",
    "format_report",
    "iter_batches",
    "iter_file_batches",
    "list_data_files",
    "load_suite",
    "validate_side",
    "validate_table",
]
