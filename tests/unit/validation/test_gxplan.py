"""The suite run in column groups (hdh_migrate/validation/gxplan.py) gives GX's whole-frame results, expectation by
expectation, on data damaged in every way the suites check.

No store here: batches are generated in memory and both ways run through the real GX. The whole-frame
validation (one GX batch of every column, nullable dtypes) is the reference: it is what `validate` did
before it ran in groups, and what a user running the suite with GX directly gets.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hdh_migrate.dev.seed import generate_rows
from hdh_migrate.validation import gxplan
from hdh_migrate.validation.gxrunner import GxRunner
from hdh_migrate.validation.schema import load_schema
from tests.helpers import ROOT

SF = load_schema()
EXACT = 2**53  # the first integer from which doubles skip integers


def _suite(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "expectations" / f"{name}.json").read_text())


def _set(t: pa.Table, col: str, row: int, value: Any) -> pa.Table:
    values = t.column(col).to_pylist()
    values[row] = value
    i = t.schema.get_field_index(col)
    return t.set_column(i, t.schema.field(i), pa.array(values, type=t.schema.field(i).type))


def _damage(t: pa.Table, doc: dict[str, Any]) -> tuple[pa.Table, dict[str, str]]:
    """Break the batch in every way the suite checks; returns it and which column got which damage."""
    exps = doc["expectations"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in exps:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    used: dict[str, str] = {}

    def free(kws: list[dict[str, Any]], pred: Any = lambda kw: True) -> dict[str, Any] | None:
        return next((kw for kw in kws if kw.get("column") not in used and pred(kw)), None)

    between = by_type.get(gxplan.BETWEEN, [])
    is_int = lambda kw: pa.types.is_integer(t.schema.field(kw["column"]).type)  # noqa: E731
    is_float = lambda kw: pa.types.is_floating(t.schema.field(kw["column"]).type)  # noqa: E731
    # an integer above 2**53 in a column with nulls, just above a bound of 2**53 (the hand expectation the
    # test adds): given to GX as a double, 2**53 + 1 would become 2**53 and pass
    kw = free(between, lambda kw: is_int(kw) and kw.get("max_value") == EXACT)
    if kw:
        t = _set(_set(t, kw["column"], 0, EXACT + 1), kw["column"], 1, None)
        used[kw["column"]] = "above a bound of 2**53, with a null"
    kw = free(between, lambda kw: is_int(kw) and kw.get("max_value") is not None)
    if kw:  # no null: the int64 path
        c = kw["column"]
        t = t.set_column(t.schema.get_field_index(c), c, pc.fill_null(t.column(c), 0))
        t = _set(t, c, 2, kw["max_value"] + 1)
        used[c] = "above its maximum, no null"
    kw = free(between, lambda kw: is_int(kw) and kw.get("min_value") is not None)
    if kw:  # with a null: the float64 path
        t = _set(_set(t, kw["column"], 3, kw["min_value"] - 1), kw["column"], 4, None)
        used[kw["column"]] = "below its minimum, with a null"
    kw = free(between, is_float)
    if kw:  # a NaN (GX counts it as missing, as a null: compared, not required to fail)
        t = _set(t, kw["column"], 5, math.nan)
        used[kw["column"]] = "NaN"
    kw = free(between, is_float)
    if kw and kw.get("max_value") is not None:
        t = _set(_set(t, kw["column"], 6, kw["max_value"] + 1.5), kw["column"], 7, None)
        used[kw["column"]] = "float above its maximum, with a null"
    kw = free(by_type.get("expect_column_values_to_not_be_null", []))
    if kw:
        t = _set(t, kw["column"], 8, None)
        used[kw["column"]] = "null"
    kw = free(by_type.get("expect_column_value_lengths_to_be_between", []))
    if kw:
        t = _set(t, kw["column"], 9, "X" * (int(kw.get("max_value") or 40) + 3))
        used[kw["column"]] = "too long"
    kw = free(by_type.get("expect_column_values_to_match_regex", []))
    if kw:
        t = _set(t, kw["column"], 10, "lower-case")
        used[kw["column"]] = "regex"
    kw = free(by_type.get("expect_column_values_to_be_in_set", []))
    if kw:
        bad = 987654 if pa.types.is_integer(t.schema.field(kw["column"]).type) else "??"
        t = _set(t, kw["column"], 11, bad)
        used[kw["column"]] = "not in its set"
    kw = free(by_type.get("expect_column_values_to_be_of_type", []), is_int)
    if kw:  # a changed type
        c = kw["column"]
        t = t.set_column(t.schema.get_field_index(c), c, pc.cast(t.column(c), pa.string()))
        used[c] = "type"
    kw = free(by_type.get("expect_column_values_to_be_of_type", []))
    if kw:  # a missing column: every expectation on it raises, the same way
        t = t.drop_columns([kw["column"]])
        used[kw["column"]] = "missing"
    return t, used


def _outcome(res: Any) -> list[tuple[Any, ...]]:
    out = []
    for r in res.results:
        result = r.result or {}
        raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
        counts = tuple(result.get(k) for k in ("element_count", "unexpected_count", "missing_count"))
        out.append(
            (
                r.expectation_config.type,
                dict(r.expectation_config.kwargs).get("column"),
                r.success,
                counts,
                json.dumps(result.get("observed_value"), default=str),
                raised,
            )
        )
    return out


@pytest.mark.parametrize("table", ["ER_PRS_F", "T_MCOaaB"])
def test_grouped_validation_gives_the_whole_frame_results_on_damaged_data(table: str) -> None:
    doc = _suite(table)
    batch = generate_rows(SF.table(table), 0, 3000, seed=5, universe=800, schemas=SF)
    column = next(
        e["kwargs"]["column"]
        for e in doc["expectations"]
        if e["type"] == gxplan.BETWEEN and pa.types.is_integer(batch.schema.field(e["kwargs"]["column"]).type)
    )
    doc["expectations"].insert(
        0, {"type": gxplan.BETWEEN, "kwargs": {"column": column, "max_value": EXACT}, "meta": {"hdh_origin": "hand"}}
    )
    damaged, used = _damage(batch, doc)
    grouped = GxRunner(table, doc, None)
    whole = GxRunner(table, doc, None, grouped=False)
    assert len(grouped.groups) > 3 and len(whole.groups) == 1

    for t in (batch, damaged):
        g, w = grouped.validate(t), whole.validate(t)
        assert _outcome(g) == _outcome(w)
        assert g.success == w.success and g.statistics == w.statistics
    assert grouped.validate(batch).success  # the generated rows meet their model
    failed = {
        (r.expectation_config.kwargs.get("column"), r.expectation_config.type)
        for r in grouped.validate(damaged).results
        if not r.success
    }
    # every damage shows as a failure of the suite on that column
    for col, what in used.items():
        if what == "NaN":
            continue
        assert any(c == col for c, _ in failed), f"{col} ({what}) passed"
    assert "above a bound of 2**53, with a null" in used.values()
    assert len(used) >= 8


def test_groups_hold_every_expectation_once_and_keep_whole_frame_ones_whole() -> None:
    doc = _suite("ER_PRS_F")
    exps = doc["expectations"] + [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "PRS_ACT_QTE", "row_condition": "BEN_SEX_COD == 1"},
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {
            "type": "expect_column_pair_values_to_be_equal",
            "kwargs": {"column_A": "PRS_ACT_QTE", "column_B": "PRS_ACT_CFT"},
        },
    ]
    # the suites' own table expectation reads column names only: its frame needs no rows
    plain = [g for g in gxplan.plan_groups(doc["expectations"]) if g.columns is None]
    assert len(plain) == 1 and plain[0].names_only
    groups = gxplan.plan_groups(exps)
    assert not next(g for g in groups if g.columns is None).names_only  # a row count and a row_condition
    positions = sorted(p for g in groups for p in g.positions)
    assert positions == list(range(len(exps)))
    whole = [g for g in groups if g.columns is None]
    assert len(whole) == 1
    whole_types = {exps[p]["type"] for p in whole[0].positions}
    assert whole_types == {
        "expect_table_columns_to_match_ordered_list",
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_not_be_null",
    }  # the last one: its row_condition
    for g in groups:
        if g.columns is None:
            continue
        # at most N columns, unless one expectation alone reads more (the 9-column compound key)
        widest = max(len(gxplan.columns_of(exps[p]) or ()) for p in g.positions)
        assert 0 < len(g.columns) <= max(gxplan.COLUMNS_PER_GROUP, widest)
        if len(g.columns) > gxplan.COLUMNS_PER_GROUP:
            assert len(g.columns) == widest
        for p in g.positions:
            assert set(gxplan.columns_of(exps[p]) or ()) <= set(g.columns)
            assert g.numeric == gxplan.numeric_bounds(exps[p])
    pair = next(g for g in groups if len(exps) - 1 in g.positions)
    assert {"PRS_ACT_QTE", "PRS_ACT_CFT"} <= set(pair.columns or ())


def test_an_empty_suite_validates_and_passes() -> None:
    assert gxplan.plan_groups([]) == [gxplan.Group((), None)]
    runner = GxRunner("IR_BEN_R", {"name": "IR_BEN_R", "expectations": []}, None)
    res = runner.validate(generate_rows(SF.table("IR_BEN_R"), 0, 10, seed=1, schemas=SF))
    assert res.success and res.results == [] and res.statistics["evaluated_expectations"] == 0


def test_a_bound_beyond_2_53_is_checked_exactly() -> None:
    """GX holds min_value/max_value as doubles: 9999999999999999 (16 digits) becomes 1e16 and the 17-digit
    10**16 passes it. hdh-migrate recounts such checks exactly."""
    doc = _suite("ER_PRS_F")
    kw = next(
        e["kwargs"]
        for e in doc["expectations"]
        if e["type"] == gxplan.BETWEEN and e["kwargs"].get("column") == "IJR_EMP_NUM"
    )
    assert kw["max_value"] == 9999999999999999 and kw["min_value"] == -9999999999999999
    batch = generate_rows(SF.table("ER_PRS_F"), 0, 2000, seed=5, universe=800, schemas=SF)
    bad = _set(_set(_set(batch, "IJR_EMP_NUM", 0, 10**16), "IJR_EMP_NUM", 1, -(10**16)), "IJR_EMP_NUM", 2, None)
    ok_edge = _set(batch, "IJR_EMP_NUM", 0, 9999999999999999)  # on the bound: within it

    def between(res: Any) -> Any:
        return next(
            r
            for r in res.results
            if r.expectation_config.type == gxplan.BETWEEN
            and r.expectation_config.kwargs.get("column") == "IJR_EMP_NUM"
        )

    for grouped in (True, False):
        runner = GxRunner("ER_PRS_F", doc, None, grouped=grouped)
        r = between(runner.validate(bad))
        assert not r.success and r.result["unexpected_count"] == 2 and r.result["missing_count"] == 1
        assert between(runner.validate(ok_edge)).success
        runner.exact_checks = []  # GX alone: if GX one day compares exactly, this fails and the recount can go
        assert between(runner.validate(bad)).success
