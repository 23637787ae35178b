"""The comparable metrics of one side of a table, and their comparison between the two sides.

Computed with pyarrow, batch by batch: row and file counts, per-column type, null count, min/max/sum of
numbers, value-length range of text, a per-column fingerprint, distinct counts of keys and an
order-independent fingerprint of all rows (see ``rowhash``). Every metric merges across batches and
worker processes as a sum, a min/max, a union or an order-independent fingerprint, so a side read in
parts gives what one pass gives.

Only counts, types, numeric aggregates of non-key columns and fingerprints: never a row, never an id
(text columns get no min/max; key columns are compared by fingerprint and distinct count only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hdh_migrate.validation.expectations import active_expectations
from hdh_migrate.validation.rowhash import RowChain, combine_rows, sorted_unique, value_hashes, wrapping_sum

_MASK64 = (1 << 64) - 1
#: the metrics of a column compared between the two sides, in the order differences are listed
_COLUMN_METRICS = ("type", "null_count", "missing_rows", "min", "max", "sum", "min_length", "max_length", "fingerprint")


class DistinctKeys:
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

    def merge(self, other: DistinctKeys) -> None:
        self.rows += other.rows
        self.parts += other.parts
        self.size += other.size
        self._compact()


def key_sets(doc: dict[str, Any]) -> dict[str, list[str]]:
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


def private_columns(doc: dict[str, Any], keys: dict[str, list[str]]) -> set[str]:
    """Columns whose values must not appear even as min/max: keys and pseudonymised ids."""
    cols = {c for cols in keys.values() for c in cols}
    for e in active_expectations(doc):
        why = (e.get("meta") or {}).get("why")
        if e.get("type") == "expect_column_values_to_match_regex" and why == "pseudonymised id":
            cols.add(str(e["kwargs"]["column"]))
    return cols


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


def _min_max(c: dict[str, Any], col: pa.ChunkedArray | pa.Array, low: str, high: str) -> None:
    mm = pc.min_max(col)
    _widen(c, low, mm["min"].as_py(), min)
    _widen(c, high, mm["max"].as_py(), max)


class SideMetrics:
    """Accumulates the comparable metrics of one side, batch by batch."""

    def __init__(self, keys: dict[str, list[str]], private: set[str]) -> None:
        self.key_sets = keys
        self.private = private
        self.rows = 0
        self.files = 0
        self.fingerprint = 0
        self.columns: dict[str, dict[str, Any]] = {}
        self.distinct = {name: DistinctKeys() for name in keys}
        self._keyed = {c for cols in keys.values() for c in cols}  # columns whose hashes a key needs
        self._order: list[str] = []

    @classmethod
    def for_suite(cls, doc: dict[str, Any]) -> SideMetrics:
        """The metrics the suite asks for: distinct counts of its keys, no values of keys and ids."""
        keys = key_sets(doc)
        return cls(keys, private_columns(doc, keys))

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
        self._add_keys(t, hashes)

    def _add_keys(self, t: pa.Table, hashes: dict[str, np.ndarray]) -> None:
        """Each key's hashes, rows where one of its columns is null left out (a null is no key)."""
        n = t.num_rows
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
            _min_max(c, col, "min", "max")
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
            _min_max(c, col, "min", "max")
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            _min_max(c, pc.utf8_length(col), "min_length", "max_length")

    def to_dict(self) -> dict[str, Any]:
        return {
            "row_count": self.rows,
            "file_count": self.files,
            "fingerprint": f"{self.fingerprint:016x}",
            "columns": {name: self._column_dict(self.columns[name]) for name in self._order},
            "distinct": {k: {"count": d.count(), "rows": d.rows} for k, d in self.distinct.items()},
        }

    def _column_dict(self, c: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "|".join(sorted(c["types"])), "null_count": c["null_count"]}
        if c["present_rows"] != self.rows:
            out["missing_rows"] = self.rows - c["present_rows"]
        for k in ("min", "max", "sum", "min_length", "max_length"):
            if k in c:
                out[k] = _json_scalar(c[k])
        if "_float_sums" in c:
            out["sum"] = _json_scalar(math.fsum(c["_float_sums"]))
        out["fingerprint"] = f"{c['fingerprint']:016x}"
        return out


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
        for k in _COLUMN_METRICS:
            diff(k, col, sc[col].get(k), dc[col].get(k))
    if list(sc) != list(dc) and set(sc) == set(dc):
        diff("column_order", None, list(sc), list(dc))
    sd, dd = source.get("distinct", {}), destination.get("distinct", {})
    for key in list(sd) + [k for k in dd if k not in sd]:
        diff("distinct_count", key, (sd.get(key) or {}).get("count"), (dd.get(key) or {}).get("count"))
    return {"equal": not diffs, "differences": diffs}
