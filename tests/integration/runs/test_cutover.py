"""Cutover and rollback, through the command line an operator uses, against the real rig.

Refused when verification failed, when validation failed, when the source changed since verification, or
when a check is missing -- each with its reason; allowed when everything is green; rollback points the
catalog and the routing document back at Azure and deletes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hdh_migrate.audit.documents import read_routing
from hdh_migrate.audit.state import StateStore, open_state
from hdh_migrate.errors import ExtraObjectsError
from hdh_migrate.runs.recording import record_validation
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import gx_result, hdh, migrate, payload, report_key_env, run_cli, seed

pytestmark = pytest.mark.usefixtures("rig_env")
KEY = report_key_env()
NO_KEY = {"HDH_MIGRATE_REPORT_KEY": "", "HDH_MIGRATE_REPORT_KEY_FILE": ""}


@pytest.fixture
def migrated(
    sqlite_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> tuple[str, StateStore]:
    st = open_state(sqlite_url)
    seed(azure_container)
    migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m", validation_required=True)
    return sqlite_url, st


def test_cutover_needs_every_check_then_switches_and_rollback_restores(
    state_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    st = open_state(state_url)
    blobs = seed(azure_container)
    migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m", validation_required=True)

    # missing check: the validation was never run
    r = hdh("cutover", "dcir", "--db", state_url, "--actor", "carol", "--work-dir", str(tmp_path / "c1"), env=KEY)
    assert r.returncode == 1
    assert "cutover of dcir REFUSED" in r.stderr
    assert "validation missing: no validation has been recorded for this dataset" in r.stderr
    assert read_routing(s3_bucket, "dcir") is None and st.get("dcir").authoritative == "azure"
    assert st.ledger("dcir")[-3].kind == "cutover_refused"

    # all green: the switch happens
    record_validation(st, "dcir", [gx_result("er_prs_f")], actor="bob", run_id="gx-1")
    r = hdh("cutover", "dcir", "--db", state_url, "--actor", "carol", "--work-dir", str(tmp_path / "c2"), env=KEY)
    assert r.returncode == 0, r.stderr
    assert "dcir: CUT OVER to s3://" in r.stdout
    routing = read_routing(s3_bucket, "dcir")
    assert routing["authoritative"] == "s3" and routing["url"] == f"s3://{s3_bucket.container}/migrated/"
    assert routing["locations"]["azure"] == f"azure://{azure_container.container}/snds/" and routing["actor"] == "carol"
    ds = st.get("dcir")
    assert (ds.state, ds.authoritative) == ("cut_over", "s3") and ds.routing_url.endswith("_hdh/routing/dcir.json")
    assert routing["report"] == ds.report_url and ds.report_url.startswith(f"s3://{s3_bucket.container}/_hdh-audit/")
    status = json.loads(hdh("status", "dcir", "--json", "--db", state_url).stdout)
    assert status["dataset"]["state"] == "cut_over" and status["history"][-1]["actor"] == "carol"
    local = tmp_path / "c2" / "report" / "report.json"
    assert hdh("report", "verify", str(local), env=KEY).returncode == 0

    # a second cutover is refused: it already is
    r = hdh("cutover", "dcir", "--db", state_url, "--work-dir", str(tmp_path / "c3"), env=KEY)
    assert r.returncode == 1 and "already cut over" in r.stderr

    # rollback: catalog and routing back to Azure, recorded, nothing deleted
    r = hdh("rollback", "dcir", "--db", state_url, "--actor", "dave", "--reason", "consumer regression")
    assert r.returncode == 0, r.stderr
    assert "ROLLED BACK" in r.stdout and "nothing was deleted" in r.stdout
    routing = read_routing(s3_bucket, "dcir")
    assert routing["authoritative"] == "azure" and routing["url"] == f"azure://{azure_container.container}/snds/"
    ds = st.get("dcir")
    assert (ds.state, ds.authoritative) == ("rolled_back", "azure")
    last = st.history("dcir")[-1]
    assert (last.from_state, last.to_state, last.actor) == ("cut_over", "rolled_back", "dave")
    assert last.evidence["reason"] == "consumer regression"
    assert len(list(s3_bucket.list("migrated/"))) == len(blobs) == len(list(azure_container.list("snds/")))
    assert hdh("audit", "verify", "--db", state_url).returncode == 0


def test_refused_when_verification_failed(
    migrated: tuple[str, StateStore], azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    url, st = migrated
    s3_bucket.put("migrated/dcir/stray.parquet", payload(2001, seed=666))  # at the destination, not the source
    with pytest.raises(ExtraObjectsError, match="have no source"):
        migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m2", run_id="migrate-2")
    record_validation(st, "dcir", [gx_result("er_prs_f")], actor="bob", run_id="gx-1")
    r = hdh("cutover", "dcir", "--db", url, "--no-sync", "--work-dir", str(tmp_path / "c"), env=KEY)
    assert r.returncode == 1
    assert "verification failed on run migrate-2" in r.stderr
    assert "migrated/dcir/stray.parquet" in r.stderr
    assert read_routing(s3_bucket, "dcir") is None


def test_refused_when_validation_failed(migrated: tuple[str, StateStore], s3_bucket: S3Store, tmp_path: Path) -> None:
    url, st = migrated
    record_validation(
        st, "dcir", [gx_result("er_prs_f", success=False), gx_result("er_pha_f")], actor="bob", run_id="gx-2"
    )
    r = run_cli("cutover", "dcir", "--db", url, "--work-dir", str(tmp_path / "c"), env=KEY)  # a real process
    assert r.returncode == 1
    assert "validation failed on run gx-2" in r.stderr and "tables er_prs_f failed" in r.stderr
    assert st.get("dcir").state == "verified"  # a failed validation does not advance the dataset


def test_refused_when_the_source_changed_since_verification(
    migrated: tuple[str, StateStore], azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    url, st = migrated
    record_validation(st, "dcir", [gx_result("er_prs_f")], actor="bob", run_id="gx-1")
    azure_container.put("snds/dcir/part-late.parquet", payload(10, seed=5))
    r = hdh("cutover", "dcir", "--db", url, "--no-sync", "--work-dir", str(tmp_path / "c"), "--json", env=KEY)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert any(
        "verification is stale: the source changed since the verification on" in x
        and "(run migrate-1) (6 objects then, 7 now)" in x
        for x in out["reasons"]
    ), out["reasons"]
    assert any(x.startswith("validation is stale") for x in out["reasons"])
    # the refusal has its signed report too
    local = tmp_path / "c" / "report" / "report.json"
    doc = json.loads(local.read_text())
    assert doc["decision"]["outcome"] == "refused" and doc["decision"]["reasons"] == out["reasons"]
    assert hdh("report", "verify", str(local), env=KEY).returncode == 0


def test_a_changed_source_is_synced_and_reverified_before_the_switch(
    sqlite_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    st = open_state(sqlite_url)
    seed(azure_container)
    migrate(st, "docs", azure_container, s3_bucket, tmp_path / "m", validation_required=False)
    azure_container.put("snds/dcir/part-late.parquet", payload(10, seed=5))
    r = hdh("cutover", "docs", "--db", sqlite_url, "--work-dir", str(tmp_path / "c"), env=KEY)
    assert r.returncode == 0, r.stderr
    assert "synced first: 1 new, 0 changed, 0 deleted" in r.stdout
    assert s3_bucket.head("migrated/dcir/part-late.parquet") is not None
    doc = json.loads((tmp_path / "c" / "report" / "report.json").read_text())
    assert [f["changed"] for f in doc["checks"]["freeze"]] == [True, False]
    assert doc["counts"]["listed"] == 7 and doc["integrity"]["matched"] == 7


def test_refused_without_a_signing_key(migrated: tuple[str, StateStore], tmp_path: Path) -> None:
    url, st = migrated
    record_validation(st, "dcir", [gx_result("er_prs_f")], actor="bob", run_id="gx-1")
    r = hdh("cutover", "dcir", "--db", url, "--work-dir", str(tmp_path / "c"), env=NO_KEY)
    assert r.returncode == 1 and "no report signing key" in r.stderr
    assert st.get("dcir").state == "validated"
