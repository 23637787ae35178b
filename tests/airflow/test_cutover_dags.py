"""The dual-run and cutover DAGs, run for real with dag.test() against the rig and a SQLite state database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hdh_migrate.audit.documents import read_routing
from hdh_migrate.audit.signing import generate_key_pair
from hdh_migrate.audit.state import open_state
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import ROOT, close_state, migrate, payload, public_key_path, report_key_env, seed

DAGS = ("hdh_delta_sync", "hdh_cutover", "hdh_rollback")
pytestmark = pytest.mark.airflow


@pytest.fixture
def state_db(airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("HDH_MIGRATE_DB_URL", url)
    # the deployment's setup: the private key in the Connection, the public key pinned
    pem = report_key_env()["HDH_MIGRATE_REPORT_KEY"]
    monkeypatch.setenv("AIRFLOW_CONN_HDH_REPORT_KEY", json.dumps({"conn_type": "generic", "password": pem}))
    monkeypatch.setenv("HDH_MIGRATE_TRUSTED_KEYS", str(public_key_path()))
    yield url
    close_state(url)


def _states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def test_dags_import_documented_and_parse_offline(dagbag, airflow_home: Path) -> None:
    assert not {k: v for k, v in dagbag.import_errors.items() if any(d in k for d in DAGS)}
    for dag_id in DAGS:
        dag = dagbag.get_dag(dag_id)
        assert dag is not None and dag.doc_md, dag_id
        assert all(t.doc_md for t in dag.tasks), dag_id
        for name in dag.params:
            assert dag.params.get_param(name).description, f"{dag_id}: Param {name} has no description"
    assert dagbag.get_dag("hdh_delta_sync").schedule == "@hourly"
    code = f"""
import socket, sys, runpy
socket.socket.connect = lambda *a, **k: (_ for _ in ()).throw(AssertionError("network at parse time"))
sys.path.insert(0, {str(ROOT / "plugins")!r})
for f in {[f"{d}.py" for d in DAGS]!r}:
    runpy.run_path({str(ROOT / "dags")!r} + "/" + f)
heavy = ("boto3", "azure.storage.blob", "pyarrow", "alembic", "hdh_migrate.audit.state")
heavy = [m for m in heavy if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_delta_sync_then_cutover_then_rollback(
    dagbag, state_db: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    st = open_state(state_db)
    seed(azure_container)
    migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m", validation_required=False)

    # dual run: a new blob at the source, picked up by the (here: triggered) delta sync
    azure_container.put("snds/dcir/part-100.parquet", payload(321, seed=100))
    dr = dagbag.get_dag("hdh_delta_sync").test(run_conf={"dataset": "dcir", "max_parallel": 2})
    assert dr.state == "success", _states(dr)
    sync = next(ti for ti in dr.get_task_instances() if ti.task_id == "sync").xcom_pull(task_ids="sync", map_indexes=0)
    assert (sync["new"], sync["changed"], sync["copied"], sync["ok"]) == (1, 0, 1, True)
    assert s3_bucket.head("migrated/dcir/part-100.parquet") is not None

    # another change just before the cutover: the freeze check sees it, the DAG syncs and re-verifies first
    azure_container.put("snds/dcir/part-101.parquet", payload(123, seed=101))
    dr = dagbag.get_dag("hdh_cutover").test(run_conf={"dataset": "dcir", "max_parallel": 2})
    states = _states(dr)
    assert dr.state == "success", states
    assert states == {
        "freeze_check": "success",
        "changed": "success",
        "delta_sync": "success",
        "preflight": "success",
        "switch": "success",
        "report": "success",
    }
    routing = read_routing(s3_bucket, "dcir")
    assert routing["authoritative"] == "s3" and routing["run_id"] == dr.run_id
    ds = st.get("dcir")
    assert ds.state == "cut_over" and ds.authoritative == "s3" and ds.authoritative_run_id == dr.run_id
    cut = st.history("dcir")[-1]
    assert cut.to_state == "cut_over" and cut.actor  # the triggering user (or the run type, under dag.test)
    rep = dr.get_task_instance("report").xcom_pull(task_ids="report")
    doc = json.loads(Path(rep["local"]).read_text())
    assert doc["decision"]["outcome"] == "cut_over" and doc["counts"]["listed"] == 8
    assert [f["changed"] for f in doc["checks"]["freeze"]] == [True, False]
    assert s3_bucket.head(rep["url"].split("/", 3)[3]) is not None

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all() if (e.extra or {}).get("dataset") == "dcir"]
    assert events and events[-1].extra["authoritative"] == "s3"

    dr = dagbag.get_dag("hdh_rollback").test(run_conf={"dataset": "dcir", "reason": "consumer regression"})
    assert dr.state == "success", _states(dr)
    assert read_routing(s3_bucket, "dcir")["authoritative"] == "azure"
    assert st.get("dcir").authoritative == "azure" and st.history("dcir")[-1].to_state == "rolled_back"
    assert len(list(s3_bucket.list("migrated/"))) == 8  # nothing deleted
    assert st.verify_ledger().ok


def test_cutover_dag_refuses_with_the_reason_and_switches_nothing(
    dagbag,
    state_db: str,
    azure_container: AzureBlobStore,
    s3_bucket: S3Store,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    st = open_state(state_db)
    seed(azure_container, 3)
    migrate(st, "pmsi", azure_container, s3_bucket, tmp_path / "m", validation_required=True)
    dr = dagbag.get_dag("hdh_cutover").test(run_conf={"dataset": "pmsi"})
    states = _states(dr)
    assert dr.state == "failed"
    assert states["preflight"] == "failed" and states["switch"] == "upstream_failed"
    assert dr.get_task_instance("preflight").try_number == 1  # permanent: not retried
    assert any("validation missing" in r.getMessage() for r in caplog.records)
    assert read_routing(s3_bucket, "pmsi") is None and st.get("pmsi").state == "verified"
    refused = [r for r in st.ledger("pmsi") if r.kind == "cutover_refused"]
    assert len(refused) == 1 and "validation missing" in refused[0].payload["reasons"][0]
    assert [r.kind for r in st.ledger("pmsi")][-1] == "run_cutover"


def test_the_trigger_does_not_choose_the_signing_key(
    state_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The deployment names the key's Connection; a run asking for another one is refused before anything."""
    from airflow.sdk.exceptions import AirflowFailException
    from hdh_airflow.cutover_tasks import report_key

    assert report_key({"report_key_conn_id": "hdh_report_key"}).key_id.startswith("sha256:")
    with pytest.raises(AirflowFailException, match="does not choose the key that signs its report"):
        report_key({"report_key_conn_id": "my_own_key"})
    # a key of the old kind in the Connection is refused with what to do
    monkeypatch.setenv("AIRFLOW_CONN_HDH_REPORT_KEY", json.dumps({"conn_type": "generic", "password": "old-secret"}))
    with pytest.raises(AirflowFailException, match=r"\[report_key\].*old kind \(HMAC\)"):
        report_key({})
    # a key the deployment does not pin is refused
    pem = report_key_env()["HDH_MIGRATE_REPORT_KEY"]
    monkeypatch.setenv("AIRFLOW_CONN_HDH_REPORT_KEY", json.dumps({"conn_type": "generic", "password": pem}))
    pinned = tmp_path / "pinned.pem"
    pinned.write_bytes(generate_key_pair()[1])
    monkeypatch.setenv("HDH_MIGRATE_TRUSTED_KEYS", str(pinned))
    with pytest.raises(AirflowFailException, match="not among the public keys this deployment trusts"):
        report_key({})


def test_the_cutover_dag_first_finishes_a_switch_that_died_half_way(
    dagbag,
    state_db: str,
    azure_container: AzureBlobStore,
    s3_bucket: S3Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A switch died after writing its routing document, before its commit (consumers told S3, the catalog
    says Azure). The next hdh_cutover run puts the document back in line before it switches."""
    from hdh_migrate.audit import documents
    from hdh_migrate.runs import cutover, intents
    from hdh_migrate.runs.context import RunContext
    from hdh_migrate.runs.pair import open_pair

    st = open_state(state_db)
    seed(azure_container, 3)
    migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m", validation_required=False)
    pair = open_pair(st.get("dcir").source_url, st.get("dcir").dest_url)
    ctx = RunContext(tmp_path / "c", "died-1", "carol", "dcir")
    real = documents.publish_routing

    def publish_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # the process is killed: nothing below runs

    with monkeypatch.context() as m:
        m.setattr(documents, "publish_routing", publish_then_die)
        m.setattr(intents, "_undo", lambda *a, **k: None)
        with pytest.raises(KeyboardInterrupt):
            cutover.switch(st, pair.dest, ctx, [cutover.freeze_check(st, pair, ctx)], synced=False)
    assert read_routing(s3_bucket, "dcir")["run_id"] == "died-1" and st.get("dcir").authoritative == "azure"

    dr = dagbag.get_dag("hdh_cutover").test(run_conf={"dataset": "dcir"})
    assert dr.state == "success", _states(dr)
    kinds = [r.kind for r in st.ledger("dcir")]
    assert kinds.count("routing_intent_recovered") == 1 and kinds.count("routing_intent") == 2
    routing, ds = read_routing(s3_bucket, "dcir"), st.get("dcir")
    assert routing["authoritative"] == ds.authoritative == "s3" and routing["run_id"] == ds.authoritative_run_id
    assert st.pending_intents("dcir") == [] and not ds.report_pending
