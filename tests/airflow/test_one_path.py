"""One code path: the same dataset migrated and cut over by the command line and by the DAGs gives the
same decisions and the same evidence -- the records equal but for run ids, actors, times and run folders.

The dataset (a table with a Great Expectations suite, and other files) goes through ``hdh-migrate migrate``
then ``hdh-migrate cutover`` (real processes, a state database of their own), and through
``hdh_migrate_dataset`` then ``hdh_cutover`` (``dag.test()``, another state database) to the same
destination, emptied in between, so object keys, ETags and hashes are the same on both paths. Before the
switch, each path is also asked to cut over a source that changed since its verification, without syncing:
both refuse, for the same reasons."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hdh_migrate.audit.state import StateStore, open_state
from hdh_migrate.dev.seed import seed_table
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.validation.schema import get_table
from tests.helpers import close_state, payload, report_key_env, run_cli

pytestmark = pytest.mark.airflow
KEY = report_key_env()
#: fields that name a run or its moment, never its outcome
VOLATILE = {
    "run_id",
    "triggered_by",
    "started",
    "finished",
    "seconds",
    "mib_per_s",
    "at",
    "generated_at",
    "validated_at",
    "actor",
    "by",
    "since",
    "retain_until",
    "head_hash",
    "head_seq",
    "value",
    "ledger_seq",
    "transition_id",
    "id",
    "check_id",
    "base_check_id",
    "routing_version",
    "verified_run_id",
    "verified_at",
}


def _normalise(obj: Any, folders: list[str]) -> Any:
    """The record with its run's identity taken out: run folders, run ids and times (and the hashes of files
    that hold times, compared separately)."""
    if isinstance(obj, dict):
        return {k: ("<volatile>" if k in VOLATILE else _normalise(v, folders)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalise(v, folders) for v in obj]
    if isinstance(obj, str):
        for f in folders:
            obj = obj.replace(f, "<run>")
        obj = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?( UTC|[+Z][\d:]*)?", "<time>", obj)
        obj = re.sub(r"\d{8}T\d{6}(\.\d+)?Z?", "<time>", obj)  # in file and folder names
        return re.sub(r"\(run [^)]+\)", "(run <id>)", obj)
    return obj


def _rows(path: str, drop: tuple[str, ...] = ("seconds",)) -> list[dict[str, Any]]:
    t = pq.read_table(path)
    return sorted(t.drop_columns([c for c in drop if c in t.column_names]).to_pylist(), key=lambda r: r["name"])


def _decisions(st: StateStore, dataset: str) -> dict[str, Any]:
    return {
        "transitions": [(t.from_state, t.to_state) for t in st.history(dataset)],
        "checks": [(c.kind, c.ok, c.source_fingerprint) for c in st.checks(dataset)],
        "runs": [(r.kind, r.ok) for r in st.runs(dataset)],
        "ledger": [r.kind for r in st.ledger(dataset)],
    }


def _cli(*args: str, home: Path) -> Any:
    return run_cli(*args, env={"HDH_MIGRATE_HOME": str(home), "HDH_MIGRATE_ACTOR": "cli", **KEY})


def _empty(bucket: S3Store, prefix: str) -> None:
    for o in list(bucket.list(prefix)):
        bucket.delete(o.name)


def test_the_command_line_and_the_dags_decide_alike_and_leave_the_same_evidence(
    dagbag, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path, monkeypatch
) -> None:
    base = f"azure://{azure_container.container}/snds"
    seed_table(base, get_table("IR_BEN_R"), 1200, seed=3, rows_per_file=700, store=azure_container)
    for i in range(3):
        azure_container.put(f"snds/docs/note-{i}.bin", payload(4000 + i, seed=i))
    src, dst = base, f"s3://{s3_bucket.container}/migrated"
    cli_db, dag_db = f"sqlite:///{tmp_path / 'cli.db'}", f"sqlite:///{tmp_path / 'dag.db'}"
    home = tmp_path / "cli-home"

    # -- the command line -----------------------------------------------------------------------------------
    r = _cli(
        "migrate",
        src,
        dst,
        "--dataset",
        "snds",
        "--db",
        cli_db,
        "--part-size",
        "5MiB",
        "--workers",
        "4",
        "--json",
        home=home,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    cli_record = json.loads(r.stdout)
    late = "snds/docs/late.bin"
    azure_container.put(late, b"written after the verification")
    r = _cli("cutover", "snds", "--db", cli_db, "--no-sync", "--json", home=home)
    assert r.returncode == 1
    cli_refusal = json.loads(r.stdout)
    azure_container.delete(late)
    r = _cli("cutover", "snds", "--db", cli_db, "--json", home=home)
    assert r.returncode == 0, r.stderr[-3000:]
    cli_cutover = json.loads(r.stdout)

    # -- the DAGs, on the same data, to the same (emptied) destination, with the same Params ----------------
    _empty(s3_bucket, "")
    monkeypatch.setenv("HDH_MIGRATE_DB_URL", dag_db)
    for var, value in KEY.items():
        monkeypatch.setenv(var, value)
    conf = cli_record["params"] | {"source_conn_id": "hdh_azure_source", "dest_conn_id": "hdh_s3_dest"}
    dr = dagbag.get_dag("hdh_migrate_dataset").test(run_conf=conf)
    assert dr.state == "success"
    dag_record = json.loads(Path(dr.get_task_instance("summary").xcom_pull(task_ids="summary")["summary"]).read_text())
    azure_container.put(late, b"written after the verification")
    refused = dagbag.get_dag("hdh_cutover").test(run_conf={"dataset": "snds", "sync": False})
    assert refused.state == "failed"
    azure_container.delete(late)
    dr_cut = dagbag.get_dag("hdh_cutover").test(run_conf={"dataset": "snds"})
    assert dr_cut.state == "success"
    dag_report = dr_cut.get_task_instance("report").xcom_pull(task_ids="report")

    # -- the same decisions ----------------------------------------------------------------------------------
    cli_st, dag_st = open_state(cli_db), open_state(dag_db)
    try:
        assert _decisions(cli_st, "snds") == _decisions(dag_st, "snds")
        dag_refusal = next(r for r in dag_st.ledger("snds") if r.kind == "cutover_refused").payload["reasons"]
        assert cli_refusal["reasons"] and _normalise(cli_refusal["reasons"], []) == _normalise(dag_refusal, [])
        assert cli_st.get("snds").source_fingerprint == dag_st.get("snds").source_fingerprint
    finally:
        close_state(cli_db)
        close_state(dag_db)

    # -- the same run records ----------------------------------------------------------------------------------
    folders = [cli_record["work_dir"], dag_record["work_dir"]]
    conn_ids = ("source_conn_id", "dest_conn_id")
    for rec in (cli_record, dag_record):
        rec["params"] = {k: v for k, v in rec["params"].items() if k not in conn_ids}  # the CLI has none
        for section in ("copy", "verification"):
            for f in rec[section]["files"]:
                assert Path(f["path"]).exists()
                f["sha256"] = "<per-object timings inside: compared below without them>"
        rec.pop("results", None)  # the copy file again, under the first summaries' key
    assert _normalise(cli_record, folders) == _normalise(dag_record, folders)
    assert cli_record["ok"] and cli_record["validations"][0]["table"] == "IR_BEN_R"

    # -- the same evidence, object by object, and the same validation result ----------------------------------
    for section in ("copy", "verification"):
        cli_files, dag_files = cli_record[section]["files"], dag_record[section]["files"]
        assert [_rows(f["path"]) for f in cli_files] == [_rows(f["path"]) for f in dag_files]
    cli_v, dag_v = (json.loads(Path(r["validations"][0]["result"]).read_text()) for r in (cli_record, dag_record))
    assert _normalise(cli_v, folders) == _normalise(dag_v, folders)

    # -- the same report ---------------------------------------------------------------------------------------
    cli_doc = json.loads(Path(cli_cutover["report"]["local"]).read_text())
    dag_doc = json.loads(Path(dag_report["local"]).read_text())
    report_folders = [str(Path(cli_cutover["report"]["local"]).parents[1]), str(Path(dag_report["local"]).parents[1])]
    for doc in (cli_doc, dag_doc):
        doc["files"]["html"]["sha256"] = "<the page shows the run's id and times>"
        doc["config_hash"] = "<over the Params, which name the Connections on one side only>"
        doc["config"]["params"] = {k: v for k, v in doc["config"]["params"].items() if k not in conn_ids}
    assert _normalise(cli_doc, folders + report_folders) == _normalise(dag_doc, folders + report_folders)
    assert cli_doc["integrity"]["evidence_sha256"] == dag_doc["integrity"]["evidence_sha256"]
    # both bundles carry the Data Docs GX built for both sides, and both check out with the public key alone
    for local in (cli_cutover["report"]["local"], dag_report["local"]):
        doc = json.loads(Path(local).read_text())
        pages = doc["validation"][0]["data_docs_pages"]
        assert doc["validation"][0]["data_docs_included"] and set(pages) == {"source", "destination"}
        assert all((Path(local).parent / p).is_file() for p in pages.values())
        r = run_cli("report", "verify", local, env={"HDH_MIGRATE_REPORT_KEY": ""})
        assert r.returncode == 0, r.stderr
