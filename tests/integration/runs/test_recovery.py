"""On the real rig (Azurite + SeaweedFS), through the command line: the ledger anchored at the destination
catches a dropped tail and a rebuilt chain; a switch that died half-way and a cutover without its report are
shown by `hdh-migrate status` and finished by `hdh-migrate recover`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hdh_migrate.audit import documents, ledger
from hdh_migrate.audit.anchors import ANCHOR_PREFIX
from hdh_migrate.audit.documents import read_routing
from hdh_migrate.audit.state import StateStore, open_state
from hdh_migrate.runs import cutover, intents
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.pair import open_pair
from hdh_migrate.runs.recording import record_validation
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import gx_result, hdh, migrate, report_key_env, seed

pytestmark = pytest.mark.usefixtures("rig_env")
KEY = report_key_env()
NO_KEY = {"HDH_MIGRATE_REPORT_KEY": "", "HDH_MIGRATE_REPORT_KEY_FILE": ""}


class Killed(BaseException):
    """The process dies here."""


def _ready(url: str, src: AzureBlobStore, dst: S3Store, tmp: Path) -> StateStore:
    st = open_state(url)
    seed(src)
    migrate(st, "dcir", src, dst, tmp / "m", validation_required=True)
    record_validation(st, "dcir", [gx_result("er_prs_f")], actor="bob", run_id="gx-1")
    return st


def _tamper(st: StateStore, *statements: str) -> None:
    with st.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ledger DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER ledger_no_update")
            conn.exec_driver_sql("DROP TRIGGER ledger_no_delete")
        for s in statements:
            conn.exec_driver_sql(s)


def _agree(st: StateStore, dst: S3Store) -> None:
    ds, doc = st.get("dcir"), read_routing(dst, "dcir")
    assert doc["authoritative"] == ds.authoritative and st.pending_intents("dcir") == []


def test_anchors_at_the_destination_catch_a_dropped_tail(
    state_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    st = _ready(state_url, azure_container, s3_bucket, tmp_path)
    r = hdh("cutover", "dcir", "--db", state_url, "--work-dir", str(tmp_path / "c"), env=KEY)
    assert r.returncode == 0, r.stderr
    assert len(list(s3_bucket.list(ANCHOR_PREFIX))) >= 3  # migration, switch, report
    head = st.ledger_head()[0]
    r = hdh("audit", "verify", "--db", state_url)
    assert r.returncode == 0, r.stderr
    assert f"anchor(s) checked in s3://{s3_bucket.container}/; newest: record {head} written " in r.stdout
    assert json.loads(hdh("audit", "verify", "--db", state_url, "--json").stdout)["anchors"]["newest_seq"] == head

    _tamper(st, f"DELETE FROM ledger WHERE seq > {head - 4}")
    assert hdh("audit", "verify", "--db", state_url, "--no-anchors").returncode == 0  # the chain alone: valid
    r = hdh("audit", "verify", "--db", state_url)
    assert r.returncode == 1 and "removed from its end" in r.stderr and ANCHOR_PREFIX in r.stderr
    r = hdh("audit", "verify", "--db", state_url, "--anchors-from", f"s3://{s3_bucket.container}/", "--json")
    assert r.returncode == 1 and head - 4 < json.loads(r.stdout)["broken_seq"] <= head  # the oldest anchor lost


def test_anchors_at_the_destination_catch_a_rebuilt_chain(
    state_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    st = _ready(state_url, azure_container, s3_bucket, tmp_path)
    assert hdh("cutover", "dcir", "--db", state_url, "--work-dir", str(tmp_path / "c"), env=KEY).returncode == 0
    originals = st.ledger()
    _tamper(st, "DELETE FROM ledger")
    with st.engine.begin() as conn:  # the whole chain re-appended, valid hashes, one actor rewritten
        for rec in originals:
            actor = "mallory" if rec.actor == "carol" else rec.actor
            ledger.append(conn, kind=rec.kind, dataset=rec.dataset, actor=actor, run_id=rec.run_id, payload=rec.payload)
    assert st.verify_ledger().ok
    r = hdh("audit", "verify", "--db", state_url)
    assert r.returncode == 1 and "the ledger was rebuilt" in r.stderr


def test_a_switch_that_died_after_its_document_is_shown_and_recovered(
    state_url: str,
    azure_container: AzureBlobStore,
    s3_bucket: S3Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    st = _ready(state_url, azure_container, s3_bucket, tmp_path)
    pair = open_pair(st.get("dcir").source_url, st.get("dcir").dest_url)
    ctx = RunContext(tmp_path / "c", "cutover-1", "carol", "dcir")
    real = documents.publish_routing

    def publish_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr(documents, "publish_routing", publish_then_die)
        m.setattr(intents, "_undo", lambda *a, **k: None)
        freezes = [cutover.freeze_check(st, pair, ctx)]
        with pytest.raises(Killed):
            cutover.switch(st, pair.dest, ctx, freezes, synced=False)
    assert read_routing(s3_bucket, "dcir")["authoritative"] == "s3" and st.get("dcir").authoritative == "azure"

    r = hdh("status", "dcir", "--db", state_url)
    assert "a cut_over by run cutover-1" in r.stdout and "did not commit" in r.stdout
    assert "switch or rollback did not finish" in hdh("status", "--db", state_url).stdout
    r = hdh("recover", "dcir", "--db", state_url, "--actor", "oscar", env=KEY)
    assert r.returncode == 0, r.stderr
    assert "the cut_over of run cutover-1 never committed" in r.stdout and "(azure is authoritative)" in r.stdout
    _agree(st, s3_bucket)
    assert "did not commit" not in hdh("status", "dcir", "--db", state_url).stdout
    r = hdh("cutover", "dcir", "--db", state_url, "--work-dir", str(tmp_path / "c2"), env=KEY)
    assert r.returncode == 0, r.stderr
    _agree(st, s3_bucket)
    assert hdh("audit", "verify", "--db", state_url).returncode == 0


def test_a_cutover_without_its_report_is_not_final_until_recovered(
    sqlite_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    """The switch committed, the report step never ran (its task failed for good, or the process died)."""
    st = _ready(sqlite_url, azure_container, s3_bucket, tmp_path)
    pair = open_pair(st.get("dcir").source_url, st.get("dcir").dest_url)
    ctx = RunContext(tmp_path / "c", "cutover-1", "carol", "dcir")
    sw = cutover.switch(st, pair.dest, ctx, [cutover.freeze_check(st, pair, ctx)], synced=False)
    report_key = sw["report"].split("/", 3)[3]
    assert s3_bucket.head(report_key) is None

    r = hdh("status", "dcir", "--db", sqlite_url)
    assert "report         MISSING: the cutover is not final" in r.stdout
    assert json.loads(hdh("status", "dcir", "--db", sqlite_url, "--json").stdout)["unfinished"]["report_pending"]
    assert "signed report is MISSING" in hdh("status", "--db", sqlite_url).stdout
    r = hdh("recover", "dcir", "--db", sqlite_url, env=NO_KEY)
    assert r.returncode == 2 and "no signing key" in r.stderr

    r = hdh("recover", "dcir", "--db", sqlite_url, "--work-dir", str(tmp_path / "rec"), env=KEY)
    assert r.returncode == 0, r.stderr
    assert f"the missing cutover report was written: {sw['report']}" in r.stdout
    assert s3_bucket.head(report_key) is not None and not st.get("dcir").report_pending
    local = tmp_path / "rec" / "recovered-report" / "report" / "report.json"
    assert hdh("report", "verify", str(local), env=KEY).returncode == 0
    assert json.loads(local.read_text())["decision"]["by"] == "carol"
    assert "MISSING" not in hdh("status", "dcir", "--db", sqlite_url).stdout
    assert "nothing to recover" in hdh("recover", "dcir", "--db", sqlite_url, env=KEY).stdout
