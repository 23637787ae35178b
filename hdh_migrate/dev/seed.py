"""Synthetic SNDS-shaped datasets, generated from a Table Schema and written as Parquet (or CSV).

Tests, demos and benchmarks need data that looks like the warehouse: the published column set and types,
pseudonymised 17-character ids, foreign keys that hold across tables, nulls where the model allows them
and plausible distributions. Every value is a pure function of (seed, owning table, column, entity index)
-- counter-based randomness, no generator state -- so the output is deterministic, does not depend on
file or row-group sizes, and two tables generated separately still agree on shared keys:

* row ``i`` of ``IR_BEN_R`` is beneficiary ``i``; a table with a foreign key to ``IR_BEN_R`` picks a
  beneficiary index in ``[0, universe)`` per row and takes the key columns *and* same-named attributes
  (sex, birth year, residence...) from the beneficiary generator, so the foreign key holds whenever
  ``IR_BEN_R`` was seeded with at least ``universe`` rows;
* a foreign key that covers the table's own primary key (``T_MCOaaC`` -> ``T_MCOaaB``) is 1:1: row ``i``
  references row ``i``, so it holds whenever the referenced table has at least as many rows.

Any table of a schema file works: columns without a dedicated rule follow their type, length, enum and
range. Nothing here logs values.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hdh_migrate.errors import ConfigError
from hdh_migrate.locations import parse_location
from hdh_migrate.validation.rowhash import U64, mix64, salt
from hdh_migrate.validation.schema import (
    Field,
    ForeignKey,
    SchemaFile,
    TableSchema,
    arrow_schema,
    arrow_type,
)

if TYPE_CHECKING:
    from hdh_migrate.stores.interface import Store

log = logging.getLogger(__name__)

BENEFICIARIES = "IR_BEN_R"
_ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_EPOCH = date(1970, 1, 1)
_DATE_LO = (date(2015, 1, 1) - _EPOCH).days
_DATE_HI = (date(2023, 12, 31) - _EPOCH).days
_DEPARTMENTS = [f"{d:03d}" for d in range(1, 96) if d != 20] + ["02A", "02B", "971", "972", "973", "974", "976"]
_WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "INDIA", "JULIET"]

#: distributions that make the four core tables look like the real ones (value -> weight)
_WEIGHTS: dict[str, dict[object, float]] = {
    "BEN_SEX_COD": {1: 0.48, 2: 0.52},
    "COD_SEX": {"1": 0.47, "2": 0.52, "9": 0.01},
    "BEN_RNG_GEM": {1: 0.985, 2: 0.013, 3: 0.002},
    "BEN_CDI_NIR": {"00": 0.96, "03": 0.02, "04": 0.01, "05": 0.01},
}
#: share of nulls for columns the model leaves optional and that are mostly empty in the warehouse
_NULL_RATES = {"DCD": 0.97, "NIR_ANO_MAM": 0.95, "IVG": 0.9, "INNOV": 0.95}


def bits(index: np.ndarray, key: int) -> np.ndarray:
    """64 pseudo-random bits per index, a pure function of (index, key): the same row, the same draw."""
    return mix64(mix64(np.asarray(index, dtype=np.int64).view(U64) ^ U64(key)) + U64(key & 0xFFFF))


def uniform(index: np.ndarray, key: int) -> np.ndarray:
    """A float in [0, 1) per index, a pure function of (index, key): no state, any order, any split."""
    return (bits(index, key) >> U64(11)).astype(np.float64) * (1.0 / (1 << 53))


class SeedError(ConfigError):
    code = "seed"


@dataclass
class SeedResult:
    table: str
    url: str
    rows: int
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    format: str = "parquet"

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "url": self.url,
            "rows": self.rows,
            "files": list(self.files),
            "bytes": self.bytes,
            "format": self.format,
        }


# -- value builders ------------------------------------------------------------------------------------


def _strings(codes: np.ndarray, alphabet: np.ndarray, width: int) -> np.ndarray:
    """Encode non-negative uint64 values as fixed-width strings over an alphabet: an (n, width) byte matrix."""
    base = U64(len(alphabet))
    out = np.empty((codes.size, width), dtype=np.uint8)
    v = codes.astype(U64, copy=True)
    for k in range(width - 1, -1, -1):
        out[:, k] = alphabet[(v % base).astype(np.intp)]
        v //= base
    return out


def _string_array(matrix: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    validity = None
    null_count = 0
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
        null_count = int(null.sum())
    return pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes())], null_count=null_count
    )


def pseudonym(index: np.ndarray, key: int, width: int = 17) -> np.ndarray:
    """Fixed-width [0-9A-Z] ids, distinct for distinct indices (the last 13 characters are a bijection)."""
    idx = np.asarray(index, dtype=np.int64).view(U64)
    core = mix64(idx + U64(key))  # a bijection of the index, so ids never collide
    if width >= 13:
        parts = [_strings(core, _ALNUM, 13)]
        filler = core
        remaining = width - 13
        while remaining > 0:
            filler = mix64(filler ^ U64(0xA5A5A5A5A5A5A5A5))
            take = min(12, remaining)
            parts.insert(0, _strings(filler, _ALNUM, 12)[:, 12 - take :])
            remaining -= take
        return np.concatenate(parts, axis=1)
    cap = 36**width
    return _strings(_permute(idx, cap, key), _ALNUM, width)


def _permute(idx: np.ndarray, capacity: int, key: int) -> np.ndarray:
    """An affine bijection of [0, capacity): distinct indices below capacity give distinct values.

    Exact in uint64 because indices stay below 2**32 and the multiplier is below 2**32.
    """
    capacity = max(1, min(capacity, 1 << 62))
    mult = 1
    for p in (2654435761, 40503, 7919, 101, 13, 7):
        if p % capacity and math.gcd(p % capacity, capacity) == 1:
            mult = p % capacity
            break
    idx = np.asarray(idx, dtype=np.int64).view(U64)
    scrambled = (idx * U64(mult)) % U64(capacity)
    return (scrambled + U64(key % capacity)) % U64(capacity)


def _weighted(u: np.ndarray, n_values: int, weights: list[float]) -> np.ndarray:
    """Indices into a list of n_values, drawn with the given weights from uniforms u."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.searchsorted(cum / cum[-1], u, side="right").clip(0, n_values - 1)


def _zipf_weights(k: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(k)]


@dataclass
class _Ctx:
    """What a column builder needs: the owning table, the entity indices, and the generation keys."""

    table: TableSchema
    index: np.ndarray  # entity index per row (the row index for the table's own columns)
    seed: int
    universe: int

    def key(self, column: str, purpose: str = "value") -> int:
        return salt(self.seed, self.table.name, column, purpose)


#: one column of a table, built when called (a pure function of the entity indices it was made for)
_Builder = Callable[[], pa.Array]


def _null_rate(f: Field, t: TableSchema) -> float:
    if f.name in t.primary_key or f.required or f.unique or any(f.name in fk.fields for fk in t.foreign_keys):
        return 0.0
    for marker, rate in _NULL_RATES.items():
        if marker in f.name:
            return rate
    return (0.0, 0.0, 0.0, 0.01, 0.05, 0.2)[salt("nulls", f.name) % 6]


def _int_bounds(f: Field) -> tuple[int, int]:
    width = f.max_length
    top = 10**width - 1 if width else (1 << 62)
    lo = math.ceil(f.minimum) if f.minimum is not None else 0
    hi = math.floor(f.maximum) if f.maximum is not None else top
    return lo, max(lo, hi)


def _capacity(f: Field) -> int:
    kind = f.kind
    if kind == "integer":
        lo, hi = _int_bounds(f)
        return hi - lo + 1
    if kind in ("id", "code", "text"):
        return 36 ** min(f.max_length or 17, 40)
    if kind == "date":
        return _DATE_HI - _DATE_LO + 1
    if kind == "datetime":
        return (_DATE_HI - _DATE_LO + 1) * 86400
    return 2 if kind == "boolean" else 1


def _enum_values(f: Field, t: TableSchema) -> list[str]:
    return [str(v) for v in f.constraints.get("enum") or [] if str(v) not in t.missing_values]


def _unique_column(f: Field, c: _Ctx) -> pa.Array:
    """Distinct values for a key column: a bijection of the entity index."""
    key = c.key(f.name, "unique")
    kind = f.kind
    if kind == "integer":
        lo, hi = _int_bounds(f)
        values = _permute(c.index, hi - lo + 1, key).astype(np.int64) + lo
        return pa.array(values, pa.int64())
    if kind in ("id", "code", "text"):
        return _string_array(pseudonym(c.index, key, f.max_length or 17))
    if kind == "date":
        days = _permute(c.index, _capacity(f), key).astype(np.int64) + _DATE_LO
        return pa.array(days.astype(np.int32), pa.date32())
    if kind == "datetime":
        secs = _permute(c.index, _capacity(f), key).astype(np.int64) + _DATE_LO * 86400
        return pa.array(secs * 1000, pa.timestamp("ms"))
    if kind == "number":
        return pa.array(c.index.astype(np.float64) + float(f.minimum or 0), pa.float64())
    raise SeedError(f"cannot make {c.table.name}.{f.name} ({f.type}) unique: too few possible values")


def _regular_column(f: Field, c: _Ctx, distinct: int | None = None) -> pa.Array:
    """A column following its type, length, enum and range, with realistic shapes for known columns.

    ``distinct`` limits the column to about that many values (an establishment number in a key).
    """
    u = uniform(c.index, c.key(f.name))
    if distinct:
        u = (np.floor(u * distinct) + 0.5) / distinct
    null = uniform(c.index, c.key(f.name, "null")) < _null_rate(f, c.table)
    mask = null if null.any() else None
    if f.name in _WEIGHTS:
        return _weighted_column(f, u, mask)
    enum = _enum_values(f, c.table)
    if enum:
        return _enum_column(f, enum, u, mask)
    build = _KIND_COLUMNS.get(f.kind, _word_column)
    return build(f, c, u, mask)


# Every kind builder below takes the column, its context, one uniform in [0, 1) per row (already made
# coarse when the column is limited to a few distinct values) and the null mask (None: no nulls).
_Mask = np.ndarray | None


def _weighted_column(f: Field, u: np.ndarray, mask: _Mask) -> pa.Array:
    """A column of ``_WEIGHTS``: the warehouse's own distribution of its values."""
    table = _WEIGHTS[f.name]
    values = list(table)
    picked = np.asarray(values, dtype=object)[_weighted(u, len(values), list(table.values()))]
    return pa.array(picked, arrow_type(f), mask=mask)


def _enum_column(f: Field, enum: list[str], u: np.ndarray, mask: _Mask) -> pa.Array:
    """An enumerated column: the first values of the enum are the most frequent (Zipf)."""
    pick = _weighted(u, len(enum), _zipf_weights(len(enum)))
    values = np.asarray(enum, dtype=object)[pick]
    if f.kind == "integer":
        return pa.array(values.astype(np.int64), pa.int64(), mask=mask)
    if f.kind == "number":
        return pa.array(values.astype(np.float64), pa.float64(), mask=mask)
    return pa.array(values, pa.string(), mask=mask)


def _integer_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    lo, hi = _int_bounds(f)
    return pa.array(np.clip(_integer_values(f, u, lo, hi), lo, hi), pa.int64(), mask=mask)


def _integer_values(f: Field, u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Integers shaped by what the column holds: an age, a code of a nomenclature, a bounded value, a
    fixed-width number, or a count."""
    width = f.max_length or 9
    if f.name == "AGE_ANN":
        return lo + np.floor((u**0.8) * min(hi - lo, 95)).astype(np.int64)
    if f.nomenclature and (f.minimum is None and f.maximum is None):
        pool = [lo + salt(f.name, "code", k) % (hi - lo + 1) for k in range(12)]
        return np.asarray(pool, dtype=np.int64)[_weighted(u, len(pool), _zipf_weights(len(pool)))]
    if f.minimum is not None and f.maximum is not None and f.minimum > 0:
        return lo + np.floor(u * (hi - lo + 1)).astype(np.int64)
    if width >= 6 and f.minimum is None:
        base = 10 ** (width - 1)
        return base + np.floor(u * (hi - base + 1)).astype(np.int64)
    # counts: mostly small, geometric tail, clipped to the allowed range
    mean = max(1.0, min(5.0, (hi - lo) / 10))
    return lo + np.floor(-np.log1p(-u) * mean).astype(np.int64)


def _number_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    scale = f.scale if f.scale is not None else 2
    bounded = f.minimum is not None or f.maximum is not None
    values = _bounded_numbers(f, u) if bounded else _amounts(f, c, u)
    return pa.array(np.round(values, scale), pa.float64(), mask=mask)


def _bounded_numbers(f: Field, u: np.ndarray) -> np.ndarray:
    """A number with a range: the usual reimbursement rates when the range holds them, else uniform."""
    lo = float(f.minimum if f.minimum is not None else 0.0)
    hi = float(f.maximum if f.maximum is not None else lo + 1000.0)
    rates = [r for r in (0.0, 35.0, 60.0, 65.0, 70.0, 80.0, 90.0, 100.0) if lo <= r <= hi]
    if rates and hi - lo >= 50:
        return np.asarray(rates)[_weighted(u, len(rates), _zipf_weights(len(rates))[::-1])]
    return lo + u * (hi - lo)


def _amounts(f: Field, c: _Ctx, u: np.ndarray) -> np.ndarray:
    # amounts: log-normal (Box-Muller from two independent uniforms)
    u2 = uniform(c.index, c.key(f.name, "normal"))
    z = np.sqrt(-2.0 * np.log1p(-u)) * np.cos(2 * np.pi * u2)
    return np.exp(2.8 + 1.1 * z)


def _boolean_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    p = 0.02 + (salt("p", f.name) % 48) / 100
    return pa.array(u < p, pa.bool_(), mask=mask)


def _date_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    days = _DATE_LO + np.floor(u * (_DATE_HI - _DATE_LO + 1)).astype(np.int64)
    return pa.array(days.astype(np.int32), pa.date32(), mask=mask)


def _datetime_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    secs = _DATE_LO * 86400 + np.floor(u * (_DATE_HI - _DATE_LO + 1) * 86400).astype(np.int64)
    return pa.array(secs * 1000, pa.timestamp("ms"), mask=mask)


def _year_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    """``YYYY`` or ``YYYYMM`` text (the SNDS stores them as strings); birth years go back to 1920."""
    lo_y, hi_y = (1920, 2023) if "NAI" in f.name else (2015, 2023)
    years = lo_y + np.floor(u * (hi_y - lo_y + 1)).astype(np.int64)
    if f.kind == "year":
        return _string_array(_strings(years.astype(U64), _DIGITS, 4), mask)
    months = 1 + (bits(c.index, c.key(f.name, "month")) % U64(12)).astype(np.int64)
    return _string_array(_strings((years * 100 + months).astype(U64), _DIGITS, 6), mask)


def _month_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    months = 1 + np.floor(u * 12).astype(np.int64)
    return _string_array(_strings(months.astype(U64), _DIGITS, 2), mask)


def _id_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    # a pseudonym of an entity drawn from the universe (or of the row's own entity)
    entity = np.floor(u * c.universe).astype(np.int64)
    return _string_array(pseudonym(entity, c.key(f.name, "id"), f.max_length or 17), mask)


def _code_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    """A département (``*_DPT``), or a code drawn from a small pool: few values for a nomenclature."""
    width = f.max_length or 3
    if f.name.endswith("_DPT") and width == 3:
        pick = _weighted(u, len(_DEPARTMENTS), _zipf_weights(len(_DEPARTMENTS)))
        return pa.array(np.asarray(_DEPARTMENTS, dtype=object)[pick], pa.string(), mask=mask)
    pool_size = 20 if f.nomenclature else 500
    pool = mix64(np.arange(pool_size, dtype=U64) + U64(salt(f.name, "pool")))
    pick = _weighted(u, pool_size, _zipf_weights(pool_size))
    alphabet = _DIGITS if width <= 12 else _ALNUM
    return _string_array(_strings(pool[pick], alphabet, width), mask)


def _word_column(f: Field, c: _Ctx, u: np.ndarray, mask: _Mask) -> pa.Array:
    """Free text (and any kind without a rule of its own): a word of a short list."""
    words = np.asarray(_WORDS, dtype=object)[np.floor(u * len(_WORDS)).astype(np.intp)]
    return pa.array(words, pa.string(), mask=mask)


_KIND_COLUMNS: dict[str, Callable[[Field, _Ctx, np.ndarray, _Mask], pa.Array]] = {
    "integer": _integer_column,
    "number": _number_column,
    "boolean": _boolean_column,
    "date": _date_column,
    "datetime": _datetime_column,
    "year": _year_column,
    "yearmonth": _year_column,
    "month": _month_column,
    "id": _id_column,
    "code": _code_column,
}


def _pk_driver(t: TableSchema) -> str | None:
    """The column of a compound primary key made distinct per row, so the whole key is unique."""
    if len(t.primary_key) < 2 or any(t.field(c).unique for c in t.primary_key):
        return None
    return max(t.primary_key, key=lambda c: _capacity(t.field(c)))


def generate_rows(
    table: TableSchema,
    start: int,
    stop: int,
    *,
    seed: int = 0,
    universe: int = 10_000,
    schemas: SchemaFile | None = None,
) -> pa.Table:
    """Rows ``[start, stop)`` of a table, as an Arrow table with the schema's Arrow types."""
    if stop < start:
        raise SeedError("stop must be >= start")
    rows = np.arange(start, stop, dtype=np.int64)
    own = _Ctx(table, rows, seed, max(1, universe))
    builders = _foreign_key_builders(table, own, schemas)
    for f in table.fields:
        if f.name not in builders:
            builders[f.name] = _column_builder(table, f, own)
    arrays = []
    for f in table.fields:
        arr = builders[f.name]()
        if arr.type != arrow_type(f):
            arr = pc.cast(arr, arrow_type(f))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=arrow_schema(table))


def _foreign_key_builders(table: TableSchema, own: _Ctx, schemas: SchemaFile | None) -> dict[str, _Builder]:
    """Foreign keys into tables we can generate: take the referenced table's own builder at the entity."""
    builders: dict[str, _Builder] = {}
    tables = schemas.tables if schemas else {}
    for fk in table.foreign_keys:
        ref = tables.get(fk.resource)
        if ref is None or not fk.reference_fields or fk.resource == table.name:
            continue
        ref_ctx = _Ctx(ref, _referenced_entities(table, fk, own), own.seed, own.universe)
        for col, ref_col in zip(fk.fields, fk.reference_fields, strict=False):
            builders[col] = _column_builder(ref, ref.field(ref_col), ref_ctx)
        if fk.resource == BENEFICIARIES:
            _add_beneficiary_attributes(builders, table, ref, ref_ctx)
    return builders


def _referenced_entities(table: TableSchema, fk: ForeignKey, own: _Ctx) -> np.ndarray:
    """The index of the referenced row for each row of ``table``: the row itself for a 1:1 extension, else
    a beneficiary of the universe, low indices more often (``u**1.6``)."""
    if set(table.primary_key) and set(table.primary_key) <= set(fk.fields):
        return own.index  # 1:1 extension of the referenced table (T_MCOaaC -> T_MCOaaB)
    u = uniform(own.index, salt(own.seed, table.name, fk.resource, "entity"))
    return np.minimum(np.floor((u**1.6) * own.universe).astype(np.int64), own.universe - 1)


def _add_beneficiary_attributes(
    builders: dict[str, _Builder], table: TableSchema, ref: TableSchema, ref_ctx: _Ctx
) -> None:
    # attributes of the beneficiary repeated in this table agree with the referential
    for f in table.fields:
        if f.name in builders or f.name in table.primary_key:
            continue
        rf = next((x for x in ref.fields if x.name == f.name), None)
        if rf is not None and rf.kind == f.kind and rf.max_length == f.max_length:
            builders[f.name] = _column_builder(ref, rf, ref_ctx)


def _column_builder(t: TableSchema, f: Field, c: _Ctx) -> _Builder:
    """How table t builds column f for the entity indices in c (a pure function of the indices)."""
    if f.unique or t.primary_key == (f.name,) or f.name == _pk_driver(t):
        return lambda: _unique_column(f, c)
    if f.name in t.primary_key and f.kind in ("integer", "code", "id"):
        return lambda: _regular_column(f, c, distinct=300)
    return lambda: _regular_column(f, c)


# -- writing -------------------------------------------------------------------------------------------


def _parquet_bytes(batches: Iterator[pa.Table], schema: pa.Schema, row_group_size: int) -> bytes:
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, schema, compression="zstd", write_statistics=True) as writer:
        for t in batches:
            writer.write_table(t, row_group_size=row_group_size)
    return buf.getvalue()


def _csv_bytes(batches: Iterator[pa.Table], schema: pa.Schema) -> bytes:
    buf = io.BytesIO()
    with pacsv.CSVWriter(buf, schema) as writer:
        for t in batches:
            writer.write_table(t)
    return buf.getvalue()


def seed_table(
    url: str,
    table: TableSchema,
    rows: int,
    *,
    schemas: SchemaFile | None = None,
    seed: int = 0,
    universe: int | None = None,
    rows_per_file: int = 1_000_000,
    row_group_size: int = 100_000,
    fmt: str = "parquet",
    store: Store | None = None,
) -> SeedResult:
    """Write ``rows`` rows of a table under ``URL/NAME/`` as ``part-00000.parquet`` ... (or ``.csv``).

    ``universe`` is the number of beneficiaries the table may reference (default: ``rows``); seed
    ``IR_BEN_R`` with at least that many rows for the foreign keys to hold. Files are generated one at a
    time while the previous one uploads, so memory stays at about two files.
    """
    _check_seed_args(rows, rows_per_file, row_group_size, fmt)
    loc = parse_location(url)
    from hdh_migrate.stores import open_store  # only here: generating rows needs no store

    writer = _TableWriter(
        store=store if store is not None else open_store(loc),
        table=table,
        schemas=schemas,
        seed=seed,
        universe=universe or max(rows, 1),
        row_group_size=row_group_size,
        fmt=fmt,
    )
    result = SeedResult(table.name, f"{loc}{table.name}/", rows, format=fmt)
    writer.write_files(loc.prefix, rows, rows_per_file, result)
    log.info("seeded %s: %d rows in %d %s files (%d bytes)", table.name, rows, len(result.files), fmt, result.bytes)
    return result


def _check_seed_args(rows: int, rows_per_file: int, row_group_size: int, fmt: str) -> None:
    if rows < 0 or rows_per_file <= 0 or row_group_size <= 0:
        raise SeedError("rows must be >= 0, rows_per_file and row_group_size > 0")
    if fmt not in ("parquet", "csv"):
        raise SeedError(f"unknown format {fmt!r}", hint="use parquet or csv")


@dataclass
class _TableWriter:
    """Generates one table's files, row group by row group, and uploads them to the store."""

    store: Store
    table: TableSchema
    schemas: SchemaFile | None
    seed: int
    universe: int
    row_group_size: int
    fmt: str

    def write_files(self, prefix: str, rows: int, rows_per_file: int, result: SeedResult) -> None:
        """Write ``part-NNNNN`` files of ``rows_per_file`` rows (one, empty, for no rows) and note them in
        ``result``. A file is generated while the previous one uploads, and at most two uploads are
        pending, so memory stays at about two files."""
        pending: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for part, lo in enumerate(range(0, max(rows, 1), rows_per_file)):
                data = self.file_bytes(lo, min(rows, lo + rows_per_file))
                name = f"{prefix}{self.table.name}/part-{part:05d}.{self.fmt}"
                while len(pending) >= 2:
                    pending.pop(0).result()
                pending.append(pool.submit(self.upload, name, data))
                result.files.append(name)
                result.bytes += len(data)
            for fut in pending:
                fut.result()

    def file_bytes(self, lo: int, hi: int) -> bytes:
        """Rows ``[lo, hi)`` as one Parquet (or CSV) file."""
        schema = arrow_schema(self.table)
        if self.fmt == "parquet":
            return _parquet_bytes(self.batches(lo, hi), schema, self.row_group_size)
        return _csv_bytes(self.batches(lo, hi), schema)

    def batches(self, lo: int, hi: int) -> Iterator[pa.Table]:
        """Rows ``[lo, hi)`` generated one row group at a time."""
        for s in range(lo, hi, self.row_group_size):
            yield generate_rows(
                self.table,
                s,
                min(hi, s + self.row_group_size),
                seed=self.seed,
                universe=self.universe,
                schemas=self.schemas,
            )

    def upload(self, name: str, data: bytes) -> None:
        """One file, with its MD5 (the store rejects corrupted bytes) and the seed that made it."""
        self.store.put(
            name,
            data,
            content_type="application/vnd.apache.parquet" if self.fmt == "parquet" else "text/csv",
            md5=hashlib.md5(data).digest(),
            metadata={"hdh_seed": str(self.seed), "hdh_table": self.table.name},
        )
