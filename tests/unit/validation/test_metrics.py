"""The comparable metrics of a side: read in parts (batches, worker processes) they equal one pass."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from hdh_migrate.dev.seed import generate_rows
from hdh_migrate.validation.metrics import DistinctKeys, SideMetrics, compare_metrics, key_sets
from hdh_migrate.validation.schema import load_schema
from tests.helpers import ROOT

SF = load_schema()


def _suite(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "expectations" / f"{name}.json").read_text())


def test_distinct_keys_count_across_batches_and_workers() -> None:
    """The distinct count of a key (64-bit hashes): batches and a worker's share merged, runs compacted."""
    rng = np.random.default_rng(11)
    batches = [rng.integers(0, 3_000_000, 900_000).astype(np.uint64) for _ in range(6)]
    here, worker = DistinctKeys(), DistinctKeys()
    for b in batches[:4]:
        here.add(b)
    for b in batches[4:]:
        worker.add(b)
    worker.add(np.zeros(0, dtype=np.uint64))  # a batch with no rows for this key
    here.merge(worker)
    assert len(here.parts) < 6  # past 4 M values, the sorted runs were merged into one
    assert here.rows == 5_400_000
    assert here.count() == len(set(np.concatenate(batches).tolist()))
    assert DistinctKeys().count() == 0


def _metrics(doc: dict[str, Any], *batches: pa.Table) -> SideMetrics:
    m = SideMetrics.for_suite(doc)
    for b in batches:
        m.add(b)
        m.files += 1
    return m


def test_a_side_split_between_processes_gives_the_one_process_metrics() -> None:
    """--jobs merges the metrics of the same batches read in two processes: the report is the same, key for
    key, floating-point sums included."""
    doc = _suite("ER_PRS_F")
    t = generate_rows(SF.table("ER_PRS_F"), 0, 3000, seed=5, universe=800, schemas=SF)
    cuts = [t.slice(0, 700), t.slice(700, 800), t.slice(1500)]
    here, worker = _metrics(doc, *cuts[:2]), _metrics(doc, cuts[2])
    here.merge(worker)
    one = _metrics(doc, *cuts).to_dict()
    assert here.to_dict() == one
    assert one["row_count"] == 3000 and one["file_count"] == 3
    assert one["distinct"]["BEN_NIR_PSA+BEN_RNG_GEM"]["rows"] == 3000


def test_metrics_do_not_depend_on_where_batches_are_cut() -> None:
    """Counts, fingerprints, exact sums, ranges and distinct keys are the same however the rows are batched
    (floating-point sums to rounding): two copies cut differently compare equal."""
    doc = _suite("ER_PRS_F")
    t = generate_rows(SF.table("ER_PRS_F"), 0, 3000, seed=5, universe=800, schemas=SF)
    whole = _metrics(doc, t).to_dict()
    cut = _metrics(doc, t.slice(0, 1234), t.slice(1234)).to_dict()
    cut["file_count"] = whole["file_count"]
    floats = [f.name for f in t.schema if pa.types.is_floating(f.type)]
    assert floats
    for name in floats:
        assert cut["columns"][name].pop("sum") == pytest.approx(whole["columns"][name].pop("sum"), rel=1e-12)
    assert cut == whole
    assert compare_metrics(whole, cut) == {"equal": True, "differences": []}


def test_key_and_id_columns_show_no_value() -> None:
    """Keys and pseudonymised ids get no min/max/sum, numbers included: the result file holds no id."""
    doc = _suite("ER_PRS_F")
    t = generate_rows(SF.table("ER_PRS_F"), 0, 2000, seed=5, universe=800, schemas=SF)
    metrics = _metrics(doc, t).to_dict()
    keys = {c for cols in key_sets(doc).values() for c in cols}
    assert any(pa.types.is_integer(t.schema.field(c).type) for c in keys)  # values a min/max would show
    for c in keys:
        assert not {"min", "max", "sum"} & set(metrics["columns"][c]), c
    assert "sum" in metrics["columns"]["PRS_PAI_MNT"]  # other numbers are summed
    ids = {v for v in t.column("BEN_NIR_PSA").to_pylist() if v is not None}
    text = json.dumps(metrics, default=str)
    assert ids and not any(i in text for i in ids)


def test_a_dropped_or_moved_column_is_a_difference() -> None:
    doc = _suite("T_MCOaaC")
    t = generate_rows(SF.table("T_MCOaaC"), 0, 500, seed=5, schemas=SF)
    source = _metrics(doc, t).to_dict()
    dropped = _metrics(doc, t.drop_columns([t.column_names[-1]])).to_dict()
    found = compare_metrics(source, dropped)
    assert not found["equal"]
    assert {"metric": "column", "column": t.column_names[-1], "source": "present", "destination": "absent"} in found[
        "differences"
    ]
    moved = _metrics(doc, t.select(list(reversed(t.column_names)))).to_dict()
    assert "column_order" in {d["metric"] for d in compare_metrics(source, moved)["differences"]}
