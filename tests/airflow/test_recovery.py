"""Failure and recovery on a real Airflow (scheduler, LocalExecutor, REST API), as an operator lives it.

A blob that is corrupt at the source (its bytes do not match its own Content-MD5) fails its shard at once
with a message saying what to do; the other shards finish. The data owner re-uploads the blob; the
operator clears the failed task (the REST call behind the UI's "Clear" button); the run completes, and the
objects copied before the failure are not sent again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hdh_migrate.dev import airflow_local
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import payload

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
DAG = "hdh_migrate_dataset"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, rig_env: dict[str, str]) -> Iterator[airflow_local.LocalAirflow]:
    home = tmp_path_factory.mktemp("airflow-recovery")
    af = airflow_local.start(
        home, extra_env={"HDH_MIGRATE_WORK_DIR": str(home / "work"), "HDH_MIGRATE_DB_URL": f"sqlite:///{home}/state.db"}
    )
    try:
        af.wait_healthy()
        af.set_connections_from_rig()
        af.ensure_pool("hdh_source_store", 2, "listing the source")
        af.ensure_pool("hdh_dest_store", 4, "copy and verify")
        af.wait_dag(DAG)
        yield af
    finally:
        af.stop()


def _put_with_md5(store: AzureBlobStore, name: str, data: bytes, md5_of: bytes) -> None:
    """Upload data, then record the Content-MD5 of md5_of: a blob whose bytes rotted after it was written."""
    from azure.storage.blob import BlobServiceClient, ContentSettings

    store.put(name, data)
    blob = BlobServiceClient.from_connection_string(
        store.settings.connection_string.get()  # type: ignore[union-attr]
    ).get_blob_client(store.container, name)
    blob.set_http_headers(ContentSettings(content_type="text/csv", content_md5=hashlib.md5(md5_of).digest()))


def test_failed_shard_cleared_by_the_operator_completes_without_recopying(
    airflow, azure_container: AzureBlobStore, s3_bucket: S3Store
) -> None:
    good = {f"ds/part-{i:03d}.csv": payload(2000, seed=i) for i in range(12)}
    for name, data in good.items():
        _put_with_md5(azure_container, name, data, data)
    broken = "ds/part-999.csv"
    real = payload(2000, seed=999)
    _put_with_md5(azure_container, broken, real[:-1] + b"X", real)  # corrupt at the source
    conf = {
        "dataset": "recovery",
        "source_container": azure_container.container,
        "source_prefix": "ds",
        "dest_bucket": s3_bucket.container,
        "dest_prefix": "ds",
        "part_size_mib": 5,
        "max_parallel": 4,
        "verify": "full",
        "dry_run": False,
        "shard_max_objects": 5,
    }
    run_id = airflow.trigger(DAG, conf)
    assert airflow.wait_run(DAG, run_id, timeout=600) == "failed"
    tis = airflow.task_instances(DAG, run_id)
    failed = [t for t in tis if t["state"] == "failed"]
    assert [t["task_id"] for t in failed] == ["copy_shard"]
    assert failed[0]["try_number"] == 1  # a checksum mismatch is permanent: no retry burnt on it
    assert "objects" in (failed[0].get("rendered_map_index") or "")  # readable name: "shard N: ..."
    assert all(t["state"] == "success" for t in tis if t["task_id"] == "copy_shard" and t is not failed[0])
    log = (Path(airflow.home) / "logs").rglob("*.log")
    text = "\n".join(p.read_text(errors="replace") for p in log)
    assert "HDH-MIGRATE ALERT dataset=recovery task=copy_shard" in text and "error=checksum_mismatch" in text
    assert "do not match the source's own Content-MD5" in text
    before = {o.name: (o.last_modified, o.etag) for o in s3_bucket.list("ds/")}
    assert len(before) == 12  # everything but the broken blob: a shard carries on past one bad object
    time.sleep(1.1)  # so that a re-sent object would get a later Last-Modified

    _put_with_md5(azure_container, broken, real, real)  # the data owner repairs the blob
    shard = failed[0]["map_index"]
    airflow.api(
        "POST",
        f"/dags/{DAG}/clearTaskInstances",
        {
            "dag_run_id": run_id,
            "task_ids": [["copy_shard", shard]],
            "only_failed": True,
            "include_downstream": True,
            "reset_dag_runs": True,
            "dry_run": False,
        },
    )
    assert airflow.wait_run(DAG, run_id, timeout=600) == "success"
    after = {o.name: (o.last_modified, o.etag) for o in s3_bucket.list("ds/")}
    assert len(after) == 13
    assert {k: v for k, v in after.items() if k in before} == before  # nothing copied before was re-sent
    fixed = b"".join(s3_bucket.iter_read(broken, chunk_size=1 << 20))
    assert fixed == real
    summary = airflow.xcom(DAG, run_id, "summary")
    assert summary["ok"] and summary["verified"] == 13
    assert json.loads(Path(summary["summary"]).read_text())["copied"] >= 1
