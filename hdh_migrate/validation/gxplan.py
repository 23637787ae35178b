"""How a GX suite is run over one batch: in small column groups, numeric bounds checked as arrays.

Why. GX's pandas engine, for every column expectation, first drops the rows where that column is null
from the *whole* DataFrame (``df[df[col].notnull()]``: a copy of every column). One validation of a
wide batch therefore costs columns x expectations: ER_PRS_F has 123 columns and 239 expectations.
And ``expect_column_values_to_be_between`` takes its vectorised path only for numpy ``int64`` and
``float64`` columns; on pandas' nullable ``Int64``/``Float64`` (which ``gxrunner.to_pandas`` gives so that an
integer column keeps its exact type with nulls) it calls a Python function per value. Measured on one
250,000-row ER_PRS_F batch: 13.9 s for one whole-frame validation; in groups of 8 columns 7.5 s, of which
three quarters was that per-value call; with both changes, see docs/VALIDATION.md.

What stays the same. Every expectation still sees its own column(s), every row of the batch and the same
nulls, with the same dtype, except for the bounds checks below: results (success, element, unexpected and
missing counts) are the ones a whole-frame validation gives; a test compares them expectation by
expectation on data that fails in every way the suites check.

- An expectation on named columns (``column``, ``column_A``/``column_B``, ``column_list``) runs on a
  frame of just the columns of its group. Table expectations (``expect_table_*``), expectations with a
  ``row_condition`` (it may name any column) and anything naming no column run on the whole frame, or,
  when they only look at the column names (``NAMES_ONLY``), on a frame of the same columns and no rows.
  Each frame is converted from the batch's Arrow table on its own, so the batch is never held whole as
  pandas next to its Arrow form (~290 MB less at the peak on ER_PRS_F's 250,000-row batches).
- ``expect_column_values_to_be_between`` with numeric bounds gets its column as a numpy array when that
  is exact: ``int64`` when the batch has no null in it; ``float64`` (nulls as NaN, which GX drops as it
  drops nulls) when every value is within +/-(2**53 - 1), where a double holds an integer exactly and
  every comparison with any bound gives the integer's answer; ``float64`` for a float column holding no
  NaN value (a NaN would otherwise turn from a value into a null). Otherwise the column is left as is.

One correction GX needs, whichever way it runs: it holds ``min_value``/``max_value`` as doubles, so an
integer bound beyond 2**53 is not the suite's (``inexact_bounds``); those checks are recounted exactly
(``exact_unexpected``) and their result corrected by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: columns per group: measured on two ER_PRS_F batches with 4, 8, 16 and 32 (6.8, 6.4, 7.0 and 8.0 s); fewer
#: groups cost every expectation a copy of more columns, more groups cost GX's per-validation overhead
COLUMNS_PER_GROUP = 8
BETWEEN = "expect_column_values_to_be_between"
#: table expectations that look at the column names only (GX's ``table.columns`` metric)
NAMES_ONLY = {
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
}
_EXACT = 2**53 - 1  # the largest integer a double holds exactly, and every one below it
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Group:
    """Expectations run together on one frame."""

    positions: tuple[int, ...]  # in the suite's order
    columns: tuple[str, ...] | None  # None: the whole frame
    numeric: bool = False  # bounds checks whose columns may be given as numpy arrays
    names_only: bool = False  # whole-frame expectations that read the column names only: no rows needed


def columns_of(e: dict[str, Any]) -> tuple[str, ...] | None:
    """The columns an expectation reads, or None when it may read any (run it on the whole frame)."""
    kw = e.get("kwargs") or {}
    if str(e.get("type", "")).startswith("expect_table_") or kw.get("row_condition"):
        return None
    cols: list[str] = [str(kw[k]) for k in ("column", "column_A", "column_B") if kw.get(k) is not None]
    cols += [str(c) for c in kw.get("column_list") or []]
    return tuple(dict.fromkeys(cols)) or None


def _numeric_bound(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return _INT64[0] <= v <= _INT64[1]
    return isinstance(v, float) and not np.isnan(v)


def numeric_bounds(e: dict[str, Any]) -> bool:
    """A bounds check on one column whose bounds are plain numbers (not dates, strings or parameters)."""
    kw = e.get("kwargs") or {}
    if e.get("type") != BETWEEN or len(columns_of(e) or ()) != 1:
        return False
    lo, hi = kw.get("min_value"), kw.get("max_value")
    return (lo is not None or hi is not None) and _numeric_bound(lo) and _numeric_bound(hi)


def plan_groups(expectations: list[dict[str, Any]], columns_per_group: int = COLUMNS_PER_GROUP) -> list[Group]:
    """Partition a suite into groups of at most ``columns_per_group`` columns (or one whole-frame group).

    Expectations on the same columns stay together; groups follow the suite's order of first use.
    """
    whole: list[int] = []
    by_cols: dict[bool, dict[tuple[str, ...], list[int]]] = {False: {}, True: {}}
    for i, e in enumerate(expectations):
        cols = columns_of(e)
        if cols is None:
            whole.append(i)
        else:
            by_cols[numeric_bounds(e)].setdefault(cols, []).append(i)
    names_only = all(
        expectations[i].get("type") in NAMES_ONLY and not (expectations[i].get("kwargs") or {}).get("row_condition")
        for i in whole
    )
    groups = [Group(tuple(whole), None, names_only=names_only)] if whole else []
    for numeric, sets in by_cols.items():
        positions: list[int] = []
        columns: dict[str, None] = {}
        for cols, idx in sets.items():
            if columns and len(columns | dict.fromkeys(cols)) > columns_per_group:
                groups.append(Group(tuple(sorted(positions)), tuple(columns), numeric))
                positions, columns = [], {}
            positions += idx
            columns |= dict.fromkeys(cols)
        if positions:
            groups.append(Group(tuple(sorted(positions)), tuple(columns), numeric))
    return groups or [Group((), None)]  # an empty suite still validates (and passes) once per batch


def inexact_bounds(e: dict[str, Any]) -> bool:
    """A bounds check with an integer bound GX cannot hold exactly.

    GX (1.24) stores ``min_value``/``max_value`` as floats: beyond 2**53 an integer bound becomes the nearest
    double (9999999999999999 -> 1e16), and a value just past the bound passes. Such checks are recounted
    exactly (``exact_unexpected``).
    """
    kw = e.get("kwargs") or {}
    if not numeric_bounds(e):
        return False
    # every integer up to 2**53 is a double; above, GX's bound may not be the suite's
    return any(
        isinstance(b, int) and not isinstance(b, bool) and abs(b) > 2**53
        for b in (kw.get("min_value"), kw.get("max_value"))
    )


def exact_unexpected(column: pa.ChunkedArray, kw: dict[str, Any]) -> int | None:
    """Values of an integer column outside the bounds, counted exactly (nulls ignored, as GX does)."""
    if not pa.types.is_integer(column.type):
        return None
    lo, hi = kw.get("min_value"), kw.get("max_value")
    col = pc.cast(column, pa.int64()) if not pa.types.is_uint64(column.type) else column
    outside = None
    for bound, strict, op in ((lo, kw.get("strict_min"), "below"), (hi, kw.get("strict_max"), "above")):
        if bound is None:
            continue
        b = float(bound) if isinstance(bound, float) else int(bound)
        if isinstance(b, int) and not (_INT64[0] <= b <= _INT64[1]):
            continue  # beyond what the column's type holds: no value is on the wrong side of it
        scalar = pa.scalar(b, pa.float64() if isinstance(b, float) else col.type)
        if op == "below":
            cond = pc.less_equal(col, scalar) if strict else pc.less(col, scalar)
        else:
            cond = pc.greater_equal(col, scalar) if strict else pc.greater(col, scalar)
        outside = cond if outside is None else pc.or_(outside, cond)
    if outside is None:
        return 0
    return int(pc.sum(pc.cast(outside, pa.int64())).as_py() or 0)


def _as_numpy(series: Any, column: pa.ChunkedArray) -> np.ndarray | None:
    """The column as a numpy int64/float64 array when bounds checks on it give the same answers."""
    import pandas as pd  # here, not at the top: ~1.4 s to import, paid only once GX (which needs it) runs

    dtype = series.dtype
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or isinstance(dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        if column.null_count == 0 and not pa.types.is_uint64(column.type):
            return series.to_numpy(dtype=np.int64)  # every other integer type fits int64: no range to look at
        mm = pc.min_max(column)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if column.null_count == 0:
            return series.to_numpy(dtype=np.int64) if hi is None or hi <= _INT64[1] else None
        if lo is None or (lo >= -_EXACT and hi <= _EXACT):
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        return None
    if pd.api.types.is_float_dtype(dtype):
        if column.null_count < len(column) and pc.any(pc.is_nan(column)).as_py():
            return None
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def frame_for(group: Group, table: pa.Table, to_pandas: Any) -> Any:
    """The frame a group's expectations run on, converted from the batch's Arrow table by ``to_pandas``.

    Only the group's own columns are converted, so the batch is never held as pandas whole next to its
    Arrow form (columns absent from the batch stay absent: GX reports it, as for a whole frame).
    """
    if group.columns is None:
        return to_pandas(table.slice(0, 0) if group.names_only else table)
    present = [c for c in group.columns if c in table.column_names]
    df = to_pandas(table.select(present))
    if not group.numeric:
        return df
    import pandas as pd  # ~1.4 s to import: see _as_numpy

    data = {}
    for c in present:
        arr = _as_numpy(df[c], table.column(c))
        data[c] = df[c] if arr is None else pd.Series(arr, index=df.index, name=c)
    return pd.DataFrame(data, index=df.index)
