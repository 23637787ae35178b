"""hdh_migrate_dataset on Airflow's distributed engine: CeleryExecutor, PostgreSQL, Redis, two workers.

One deployment for the module (``hdh_migrate.dev.airflow_celery``): a fresh PostgreSQL database for Airflow's
metadata (and the Celery results), another one for the migration state (``HDH_MIGRATE_DB_URL``), an empty
Redis database number and a queue of its own as the broker, and two ``airflow celery worker`` processes
(``w1``, ``w2``, concurrency 2), each in its own session. Everything is on 127.0.0.1 and is dropped at the end.

* several shards run, some on each worker, and the dataset verifies;
* one worker is killed (SIGKILL, its whole session) in the middle of a shard: the scheduler notices the
  missing heartbeat, the shard is retried on the other worker, resumes the unfinished multipart upload,
  and the dataset still verifies: same names, same bytes, nothing extra, no unfinished upload left;
* the migration state database lives on the same PostgreSQL.

Run them on their own with ``.venv/bin/pytest -m distributed``. Without PostgreSQL or Redis on 127.0.0.1
(and when a stopped one cannot be started the documented way) they are skipped with the reason.
The shard durations and bytes go to ``tests/artifacts/distributed-runs.json`` (docs/SCALING.md reads them).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hdh_migrate.dev import airflow_celery
from hdh_migrate.stores import AzureBlobStore, S3Store
from tests.helpers import payload, run_cli


def distributed(fn: Any) -> Any:
    """The marks of the tests that need the Celery deployment (``pytest -m distributed`` runs them)."""
    return pytest.mark.distributed(pytest.mark.airflow(pytest.mark.slow(fn)))


DAG = "hdh_migrate_dataset"
MiB = 1024 * 1024
MEASURED: dict[str, Any] = {"runs": []}  # what the tests saw, written to the artifacts folder at the end


@pytest.fixture(scope="module")
def celery(
    tmp_path_factory: pytest.TempPathFactory, rig_env: dict[str, str], artifacts: Path
) -> Iterator[airflow_celery.CeleryAirflow]:
    why = airflow_celery.ensure_services()
    if why:
        pytest.skip(f"distributed tests need PostgreSQL and Redis on 127.0.0.1: {why}")
    home = tmp_path_factory.mktemp("airflow-celery")
    t0 = time.monotonic()
    dep = airflow_celery.start_celery(
        home, workers=2, concurrency=2, extra_env={"HDH_MIGRATE_WORK_DIR": str(home / "work")}
    )
    try:
        dep.af.set_connections_from_rig()
        dep.af.ensure_pool("hdh_source_store", 2, "listing the source")
        dep.af.ensure_pool("hdh_dest_store", 4, "copy and verify")
        dep.af.wait_dag(DAG)
        MEASURED["deployment_ready_s"] = round(time.monotonic() - t0, 1)
        yield dep
    finally:
        dep.stop()
        if MEASURED["runs"]:
            (artifacts / "distributed-runs.json").write_text(json.dumps(MEASURED, indent=2, default=str))


# -- helpers -----------------------------------------------------------------------------------------
def _seed(store: AzureBlobStore, sizes: dict[str, int]) -> dict[str, str]:
    """Upload deterministic objects; return name -> SHA-256 of the bytes."""
    digests = {}
    for i, (name, size) in enumerate(sorted(sizes.items())):
        data = payload(size, seed=i + 1)
        store.put(name, data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def _seconds(ti: dict[str, Any]) -> float:
    if ti.get("duration") is not None:
        return float(ti["duration"])
    start, end = ti.get("start_date"), ti.get("end_date")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() if start and end else 0.0


def _record(dep: airflow_celery.CeleryAirflow, name: str, run_id: str, wall_s: float) -> dict[str, Any]:
    """Per-shard worker, duration and bytes (REST API task instances + copy_shard XComs), kept for SCALING.md."""
    tis = dep.af.task_instances(DAG, run_id)
    shards = []
    for ti in sorted(tis, key=lambda t: (t["task_id"], t["map_index"])):
        if ti["task_id"] not in ("copy_shard", "verify_shard"):
            continue
        out = dep.af.xcom(DAG, run_id, ti["task_id"], map_index=ti["map_index"]) or {}
        nbytes = out.get("copied_bytes", out.get("bytes_read", 0))
        secs = _seconds(ti)
        shards.append(
            {
                "task": ti["task_id"],
                "map_index": ti["map_index"],
                "worker": dep.worker_of(ti["hostname"]),
                "try": ti["try_number"],
                "seconds": round(secs, 2),
                "bytes": nbytes,
                "objects": out.get("objects", out.get("matched")),
                "mib_s": round(nbytes / MiB / secs, 1) if secs else None,
            }
        )
    per_worker: dict[str, dict[str, float]] = {}
    for s in shards:
        if s["task"] == "copy_shard" and s["worker"]:
            w = per_worker.setdefault(s["worker"], {"shards": 0, "bytes": 0, "busy_s": 0.0})
            w["shards"] += 1
            w["bytes"] += s["bytes"]
            w["busy_s"] += s["seconds"]
    run = {
        "name": name,
        "run_id": run_id,
        "wall_s": round(wall_s, 1),
        "shards": shards,
        "copy_per_worker": {
            k: v | {"mib_s_while_busy": round(v["bytes"] / MiB / v["busy_s"], 1) if v["busy_s"] else None}
            for k, v in per_worker.items()
        },
    }
    MEASURED["runs"].append(run)
    for s in shards:
        dep.say(
            f"  {s['task']:12} [{s['map_index']}] on {s['worker']} try {s['try']}: {s['seconds']:6.1f} s, "
            f"{s['bytes'] / MiB:7.1f} MiB, {s['mib_s']} MiB/s"
        )
    return run


def _assert_same_dataset(source: AzureBlobStore, dest: S3Store, digests: dict[str, str], tmp: Path) -> None:
    """Nothing lost or duplicated: the same names, byte-identical (recorded SHA-256 and a full re-read by
    ``hdh-migrate verify``), nothing extra, no unfinished multipart upload."""
    src = {o.name: o.size for o in source.list("ds/")}
    dst = {o.name: o.size for o in dest.list("ds/")}
    assert src == dst
    assert sorted(digests) == sorted(dst)
    for name, sha in digests.items():
        head = dest.head(name)
        assert head is not None and head.metadata.get("hdh-sha256") == sha, name
    assert list(dest.list_multipart_uploads("")) == []
    out = run_cli(
        "verify",
        f"azure://{source.container}/ds",
        f"s3://{dest.container}/ds",
        "--depth",
        "full",
        "--json",
        "--no-progress",
        "--work-dir",
        str(tmp / "verify"),
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    counts = json.loads(out.stdout)["counts"]
    assert counts["matched"] == len(digests) and counts["extra"] == 0 and counts["missing"] == 0


# -- tests -------------------------------------------------------------------------------------------
@distributed
def test_shards_run_on_both_workers_and_the_dataset_verifies(
    celery: airflow_celery.CeleryAirflow, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    # 36 objects: 30 small (64 KiB - 2 MiB, single PUT) and 6 of 12 MiB (multipart, 5 MiB parts); 6 shards
    sizes = {f"ds/t{i % 3}/part-{i:03d}.bin": 64 * 1024 + (i * 61_003) % (2 * MiB) for i in range(30)}
    sizes |= {f"ds/t{i % 3}/big-{i:03d}.bin": 12 * MiB for i in range(6)}
    digests = _seed(azure_container, sizes)
    conf = {
        "dataset": "dist-shards",
        "source_container": azure_container.container,
        "source_prefix": "ds",
        "dest_bucket": s3_bucket.container,
        "dest_prefix": "ds",
        "part_size_mib": 5,
        "max_parallel": 4,
        "verify": "full",
        "dry_run": False,
        "shard_max_objects": 6,
    }
    t0 = time.monotonic()
    run_id = celery.af.trigger(DAG, conf)
    assert celery.af.wait_run(DAG, run_id, timeout=300) == "success"
    wall = time.monotonic() - t0
    run = _record(celery, "six shards, two workers", run_id, wall)

    copies = [s for s in run["shards"] if s["task"] == "copy_shard"]
    assert len(copies) == 6
    assert {s["worker"] for s in copies} == {"w1", "w2"}, copies  # the shards were spread over both workers
    assert all(s["try"] == 1 for s in copies)
    summary = celery.af.xcom(DAG, run_id, "summary")
    assert summary["ok"] and summary["verified"] == 36 and summary["copied"] == 36
    _assert_same_dataset(azure_container, s3_bucket, digests, tmp_path)
    MEASURED["state_check"] = {"dataset": "dist-shards", "run_id": run_id}


def _shard_keys(dep: airflow_celery.CeleryAirflow, run_id: str) -> dict[int, set[str]]:
    """map_index -> the object names of that shard (the plan task's shard manifests)."""
    import pyarrow.parquet as pq

    shards = dep.af.xcom(DAG, run_id, "plan") or []
    return {i: set(pq.read_table(s["path"], columns=["name"]).column("name").to_pylist()) for i, s in enumerate(shards)}


@distributed
def test_killed_worker_mid_shard_is_retried_on_the_other_worker(
    celery: airflow_celery.CeleryAirflow, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    # 2 shards of 2 x 128 MiB + 2 small ones: at ~25-35 MiB/s per shard (two shards share this machine's
    # 2 cores), each copy lasts long enough to be caught with a multipart upload half done
    sizes = {f"ds/part-{i}.bin": 128 * MiB if i % 2 == 0 else 100_000 for i in range(8)}
    digests = _seed(azure_container, sizes)
    conf = {
        "dataset": "dist-kill",
        "source_container": azure_container.container,
        "source_prefix": "ds",
        "dest_bucket": s3_bucket.container,
        "dest_prefix": "ds",
        "part_size_mib": 8,
        "max_parallel": 2,
        "verify": "full",
        "dry_run": False,
        "shard_max_objects": 4,
    }
    t0 = time.monotonic()
    run_id = celery.af.trigger(DAG, conf)

    # wait for a copy_shard that is running and has stored at least one part of a multipart upload
    victim: tuple[int, str] | None = None
    keys: dict[int, set[str]] = {}
    deadline = time.monotonic() + 180
    while victim is None:
        assert time.monotonic() < deadline, "no copy_shard was caught in the middle of a multipart upload"
        tis = [t for t in celery.af.task_instances(DAG, run_id) if t["task_id"] == "copy_shard"]
        running = {t["map_index"]: celery.worker_of(t.get("hostname")) for t in tis if t["state"] == "running"}
        if running and not keys:
            keys = _shard_keys(celery, run_id)
        for key, upload_id, _ in s3_bucket.list_multipart_uploads("ds/"):
            shard = next((i for i, names in keys.items() if key in names), None)
            if shard in running and running[shard] and s3_bucket.list_parts(key, upload_id):
                victim = (shard, running[shard])
                break
        if victim is None:
            time.sleep(0.3)
    shard, killed = victim
    caught_at = time.monotonic() - t0
    celery.kill_worker(killed)
    survivor = ({"w1", "w2"} - {killed}).pop()
    assert celery.worker_alive(survivor)

    assert celery.af.wait_run(DAG, run_id, timeout=300) == "success"
    wall = time.monotonic() - t0
    run = _record(celery, "worker killed mid-shard", run_id, wall)
    run |= {"killed": killed, "killed_shard": shard, "killed_after_s": round(caught_at, 1)}

    tries = celery.tries(DAG, run_id, "copy_shard", shard)
    by_try = {t["try_number"]: t for t in tries}
    assert celery.worker_of(by_try[1]["hostname"]) == killed
    assert by_try[1]["state"] in ("failed", "up_for_retry")  # the scheduler saw its heartbeat stop
    last = by_try[max(by_try)]
    assert last["state"] == "success" and max(by_try) >= 2
    assert celery.worker_of(last["hostname"]) == survivor  # retried on the other worker
    run["retry_tries"] = [
        {
            "try": t["try_number"],
            "worker": celery.worker_of(t["hostname"]),
            "state": t["state"],
            "start": t.get("start_date"),
            "end": t.get("end_date"),
        }
        for t in tries
    ]
    summary = celery.af.xcom(DAG, run_id, "summary")
    assert summary["ok"] and summary["verified"] == len(sizes)
    _assert_same_dataset(azure_container, s3_bucket, digests, tmp_path)
    log = "\n".join(
        p.read_text(errors="replace")
        for p in (Path(celery.af.home) / "logs").rglob("*.log")
        if f"run_id={run_id}" in str(p) and "copy_shard" in str(p)
    )
    assert "resuming the multipart upload" in log  # try 2 reused the parts try 1 had stored

    celery.start_worker(killed)  # leave the deployment whole for any later test
    celery.wait_workers([killed])


@distributed
def test_migration_state_database_is_on_the_same_postgresql(celery: airflow_celery.CeleryAirflow) -> None:
    from hdh_migrate.audit.state import open_state, schema_revision

    url = celery.env["HDH_MIGRATE_DB_URL"]
    metadata_url = celery.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert url.startswith("postgresql") and url.rsplit("/", 1)[0] == metadata_url.rsplit("/", 1)[0]
    state = open_state(url)  # the workers' HDH_MIGRATE_DB_URL: schema migrated on the shared PostgreSQL
    assert schema_revision(state.engine) is not None
    ran = MEASURED.get("state_check")
    if not ran:
        pytest.skip("the migration run of test_shards_run_on_both_workers_and_the_dataset_verifies did not finish")
    found = state.find(ran["dataset"])
    assert found is not None, f"{ran['dataset']} is not in the state database {url}"
    assert found.state in ("copied", "verified", "validated")
    states = [t.to_state for t in state.history(ran["dataset"])]
    assert "copying" in states and "copied" in states[states.index("copying") :], states
    runs = [r for r in state.runs(ran["dataset"]) if r.run_id == ran["run_id"]]
    assert runs and runs[0].ok and runs[0].kind == "migrate"
    check = state.latest_check(ran["dataset"], "verify")
    assert check is not None and check.ok and check.run_id == ran["run_id"]
    if any(r["name"] == "worker killed mid-shard" for r in MEASURED["runs"]):
        killed = state.find("dist-kill")  # the run that lost a worker recorded its verification too
        assert killed is not None and killed.state in ("copied", "verified", "validated")
        killed_check = state.latest_check("dist-kill", "verify")
        assert killed_check is not None and killed_check.ok
    state.close()


def test_missing_services_give_a_reason_to_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL/Redis and no way to start them: a reason for a visible skip, nothing started."""
    said: list[str] = []
    monkeypatch.setattr(airflow_celery.airflow_local, "port_open", lambda port, host="127.0.0.1": False)
    monkeypatch.setattr(airflow_celery.shutil, "which", lambda name: None)
    why = airflow_celery.ensure_services(say=said.append)
    assert why is not None and "PostgreSQL is not running on 127.0.0.1:5432" in why and "not installed" in why
    why = airflow_celery.ensure_services(start=False)
    assert why == "PostgreSQL is not running on 127.0.0.1:5432"
