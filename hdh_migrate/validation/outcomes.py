"""The outcome of each expectation of a suite over all the batches of one side.

An expectation passes on a side only if it passed on every batch; its counts are summed over the batches.
Uniqueness is re-checked over all files with the hashed keys of ``metrics``, since a batch only sees itself.
Only counts and schema information are kept (never an observed value that may be data).
"""

from __future__ import annotations

import json
from typing import Any

#: GX results whose observed value is schema information, safe to report (others may hold data values)
_SAFE_OBSERVED = {
    "expect_column_values_to_be_of_type",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal",
    "expect_column_values_to_be_in_type_list",
}
_UNIQUENESS = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
_COUNTS = ("element_count", "unexpected_count", "missing_count")


def _new_item() -> dict[str, Any]:
    return {
        "success": True,
        "element_count": 0,
        "unexpected_count": 0,
        "missing_count": 0,
        "failed_batches": 0,
        "observed": set(),
        "raised_exception": False,
        "scope": "batch",
    }


class Outcomes:
    """Per-expectation combination of batch results: passes only if it passed on every batch."""

    def __init__(self, expectations: list[dict[str, Any]]) -> None:
        self.exps = expectations
        self.items: list[dict[str, Any]] = [_new_item() for _ in expectations]
        self.first: Any = None  # the first batch's GX result: the shape of the Data Docs result
        self.batches = 0

    def add(self, res: Any) -> None:
        """One batch's GX result (its ``results`` in the suite's order)."""
        if self.first is None:
            self.first = res
        self.batches += 1
        for item, r, e in zip(self.items, res.results, self.exps, strict=True):
            result = r.result or {}
            if not r.success:
                item["success"] = False
                item["failed_batches"] += 1
            for k in _COUNTS:
                if isinstance(result.get(k), int):
                    item[k] += result[k]
            if e["type"] in _SAFE_OBSERVED and "observed_value" in result:
                ov = result["observed_value"]
                item["observed"].add(json.dumps(ov) if isinstance(ov, list) else str(ov))
            if r.exception_info and r.exception_info.get("raised_exception"):
                item["raised_exception"] = True

    def merge(self, other: Outcomes) -> None:
        """Add the batch results of files validated elsewhere (a parallel worker), as if validated after."""
        if self.first is None:
            self.first = other.first
        self.batches += other.batches
        for item, o in zip(self.items, other.items, strict=True):
            item["success"] = item["success"] and o["success"]
            for k in (*_COUNTS, "failed_batches"):
                item[k] += o[k]
            item["observed"] |= o["observed"]
            item["raised_exception"] = item["raised_exception"] or o["raised_exception"]

    def recheck_uniqueness(self, distinct: dict[str, dict[str, int]]) -> None:
        """A batch sees only itself: fail a uniqueness expectation whose key repeats across files.

        ``distinct`` is ``SideMetrics.to_dict()["distinct"]``: the key's distinct count and its rows."""
        for item, e in zip(self.items, self.exps, strict=True):
            if e["type"] not in _UNIQUENESS:
                continue
            kw = e.get("kwargs") or {}
            name = str(kw["column"]) if "column" in kw else "+".join(kw["column_list"])
            d = distinct.get(name)
            if d and d["count"] < d["rows"]:
                item["success"] = False
                item["scope"] = "table"
                item["unexpected_count"] = max(item["unexpected_count"], d["rows"] - d["count"])

    def failed(self) -> list[dict[str, Any]]:
        """The failed expectations, as the result file lists them: names, counts, why and origin."""
        return [_failure(item, e) for item, e in zip(self.items, self.exps, strict=True) if not item["success"]]


def _failure(item: dict[str, Any], e: dict[str, Any]) -> dict[str, Any]:
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
    return entry
