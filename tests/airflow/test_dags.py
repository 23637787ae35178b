"""The Airflow DAGs: they import cleanly and offline, and a real run copies and verifies a dataset.

Runs use ``dag.test()`` against the real rig, with the Connections given the way a deployment gives them
(``AIRFLOW_CONN_*`` variables), in an Airflow home of the test session's own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, payload

pytestmark = pytest.mark.airflow


def test_dags_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    dag = dagbag.get_dag("hdh_migrate_dataset")
    assert dag is not None and dag.doc_md
    for t in dag.tasks:
        assert t.doc_md, f"{t.task_id} has no doc_md"
    expected = {
        "dataset",
        "source_conn_id",
        "source_container",
        "source_prefix",
        "dest_conn_id",
        "dest_bucket",
        "dest_prefix",
        "part_size_mib",
        "max_parallel",
        "verify",
        "dry_run",
    }
    assert expected <= set(dag.params.keys())
    for name in expected:
        assert dag.params.get_param(name).description, f"Param {name} has no description"


def test_dag_files_parse_offline_and_light(airflow_home: Path) -> None:
    """Parsing a DAG file opens no socket and loads no storage SDK (the dag-processor parses all day)."""
    code = f"""
import socket, sys
def refuse(*a, **k):
    raise AssertionError("network access at DAG parse time")
socket.socket.connect = refuse
sys.path.insert(0, {str(ROOT / "plugins")!r})
import runpy
for f in ("hdh_migrate_dataset.py",):
    runpy.run_path({str(ROOT / "dags")!r} + "/" + f)
heavy = [m for m in ("boto3", "azure.storage.blob", "pyarrow", "great_expectations") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def _conf(src, dst, **over):
    conf = {
        "dataset": "test-ds",
        "source_conn_id": "hdh_azure_source",
        "source_container": src.container,
        "source_prefix": "snds",
        "dest_conn_id": "hdh_s3_dest",
        "dest_bucket": dst.container,
        "dest_prefix": "migrated",
        "part_size_mib": 5,
        "max_parallel": 4,
        "verify": "full",
        "dry_run": False,
    }
    return conf | over


def test_full_run_copies_byte_identically_and_verifies(dagbag, azure_container, s3_bucket) -> None:
    originals = {f"snds/dcir/part-{i:03d}.parquet": payload(3000 + i, seed=i) for i in range(12)}
    originals["snds/pmsi/big.parquet"] = payload(11 * 1024 * 1024 + 5, seed=99)
    for name, data in originals.items():
        azure_container.put(name, data)
    dag = dagbag.get_dag("hdh_migrate_dataset")
    dr = dag.test(run_conf=_conf(azure_container, s3_bucket, shard_max_objects=5))
    assert dr.state == "success"
    tis = {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}
    copies = [ti for (tid, _), ti in tis.items() if tid == "copy_shard"]
    assert len(copies) >= 2, "expected several shards"
    assert all(ti.state == "success" for (tid, _), ti in tis.items() if tid != "validate_table")
    # no table folder with a suite here: the Great Expectations step has nothing to do
    assert all(ti.state == "skipped" for (tid, _), ti in tis.items() if tid == "validate_table")
    for name, data in originals.items():
        key = "migrated/" + name[len("snds/") :]
        got = b"".join(s3_bucket.iter_read(key, chunk_size=1 << 20))
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), key
    summary_ti = tis[("summary", -1)]
    result = summary_ti.xcom_pull(task_ids="summary")
    summary = json.loads(Path(result["summary"]).read_text())
    assert summary["ok"] and summary["verified"] == len(originals) and summary["copied"] == len(originals)
    assert summary["triggered_by"] == "dag_test"
    # a second run copies nothing: everything is already there and unchanged
    dr2 = dag.test(run_conf=_conf(azure_container, s3_bucket, dataset="test-ds-again"))
    assert dr2.state == "success"
    again = json.loads(Path(dr2.get_task_instance("summary").xcom_pull(task_ids="summary")["summary"]).read_text())
    assert again["copied"] == 0 and again["skipped"] == len(originals)


def test_bad_params_fail_fast_with_clear_messages(dagbag, azure_container, s3_bucket, caplog) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dagbag.get_dag("hdh_migrate_dataset")

    def validate(conf: dict) -> None:
        params = copy.deepcopy(dag.params)
        params.update(conf)
        params.validate()  # what the trigger form and the REST API do before creating a run

    validate(_conf(azure_container, s3_bucket))
    with pytest.raises(ParamValidationError, match="part_size_mib"):
        validate(_conf(azure_container, s3_bucket, part_size_mib=-8))
    with pytest.raises(ParamValidationError, match="source_container"):
        validate(_conf(azure_container, s3_bucket, source_container=""))
    # an unknown connection id passes the form but fails the first task at once, naming the fix
    dr = dag.test(run_conf=_conf(azure_container, s3_bucket, source_conn_id="no_such_conn"))
    assert dr.state == "failed"
    inv = dr.get_task_instance("inventory")
    assert inv.state == "failed" and inv.try_number == 1  # permanent: not retried
    alerts = [r.getMessage() for r in caplog.records if "HDH-MIGRATE ALERT" in r.getMessage()]
    assert alerts, "no alert was raised"
    assert "dataset=test-ds task=inventory" in alerts[0] and "error=config" in alerts[0]
    assert "'no_such_conn' does not exist" in alerts[0] and "Admin > Connections" in alerts[0]


def test_run_validates_seeded_snds_tables_on_both_sides(
    dagbag, azure_container, s3_bucket, tmp_path, monkeypatch, caplog
) -> None:
    from hdh_migrate.dev.seed import seed_table
    from hdh_migrate.validation.schema import get_table

    base = f"azure://{azure_container.container}/snds"
    seed_table(base, get_table("IR_BEN_R"), 1500, seed=7, rows_per_file=800, store=azure_container)
    seed_table(base, get_table("ER_PRS_F"), 1500, seed=7, universe=1500, rows_per_file=800, store=azure_container)
    dag = dagbag.get_dag("hdh_migrate_dataset")
    caplog.set_level("INFO", logger="hdh_migrate.validation")
    # files this small would share one group (validate.file_groups): one group per file, as with real files
    monkeypatch.setattr("hdh_migrate.validation.files.GROUP_BYTES", 1)
    dr = dag.test(run_conf=_conf(azure_container, s3_bucket, dataset="snds-validate", validate_processes=2))
    assert dr.state == "success"
    # each table's two files went to two worker processes (spawned from the task, stores from Connections)
    spread = [r.getMessage() for r in caplog.records if "runs on 2 processes" in r.getMessage()]
    assert len(spread) == 4, spread  # two tables, two sides
    assert not [r for r in caplog.records if "worker processes unavailable" in r.getMessage()]
    validated = sorted(
        ti.xcom_pull(task_ids="validate_table", map_indexes=ti.map_index)["table"]
        for ti in dr.get_task_instances()
        if ti.task_id == "validate_table"
    )
    assert validated == ["ER_PRS_F", "IR_BEN_R"]
    summary = json.loads(Path(dr.get_task_instance("summary").xcom_pull(task_ids="summary")["summary"]).read_text())
    assert [v["table"] for v in summary["validations"]] == ["ER_PRS_F", "IR_BEN_R"]
    assert all(v["success"] and Path(v["data_docs"]).exists() for v in summary["validations"])

    # a suite the data does not meet fails the table's task, naming the table, both sides and the expectation
    suites = tmp_path / "suites"
    suites.mkdir()
    doc = json.loads((ROOT / "expectations" / "IR_BEN_R.json").read_text())
    doc["expectations"].append(
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 5}, "meta": {"hdh_origin": "hand"}}
    )
    (suites / "IR_BEN_R.json").write_text(json.dumps(doc))
    monkeypatch.setenv("HDH_MIGRATE_EXPECTATIONS_DIR", str(suites))
    caplog.clear()
    dr2 = dag.test(run_conf=_conf(azure_container, s3_bucket, dataset="snds-bad-suite"))
    assert dr2.state == "failed"
    failed = [ti for ti in dr2.get_task_instances() if ti.state == "failed"]
    assert [ti.task_id for ti in failed] == ["validate_table"]
    alert = next(r.getMessage() for r in caplog.records if "HDH-MIGRATE ALERT" in r.getMessage())
    assert "error=validation_failed" in alert and "IR_BEN_R" in alert
    assert "source" in alert and "destination" in alert and "expect_table_row_count_to_equal" in alert
