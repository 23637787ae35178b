"""Delta sync during the dual run: exactly the new and changed blobs are copied; deletions are reported,
and mirrored only when asked. Against the real rig (Azurite + SeaweedFS) and a real SQLite state database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hdh_migrate.audit.state import open_state
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.transfer.changes import plan_delta
from hdh_migrate.transfer.manifest import write_inventory
from tests.helpers import migrate, payload, run_cli, seed


def test_delta_sync_copies_exactly_new_and_changed_and_reports_deletions(
    azure_container: AzureBlobStore, s3_bucket: S3Store, sqlite_url: str, tmp_path: Path
) -> None:
    st = open_state(sqlite_url)
    blobs = seed(azure_container)
    migrate(st, "dcir", azure_container, s3_bucket, tmp_path / "m")
    assert st.get("dcir").state == "verified"
    before = {o.name: o.etag for o in s3_bucket.list("migrated/")}

    azure_container.put("snds/dcir/part-100.parquet", payload(999, seed=100))  # new
    azure_container.put("snds/pmsi/new.parquet", payload(5000, seed=101))  # new, in a new folder
    azure_container.put("snds/dcir/part-002.parquet", payload(2002, seed=77))  # changed content, same size
    azure_container.delete("snds/dcir/part-004.parquet")  # deleted at the source

    src, dst = f"azure://{azure_container.container}/snds", f"s3://{s3_bucket.container}/migrated"
    r = run_cli(
        "delta-sync",
        src,
        dst,
        "--dataset",
        "dcir",
        "--db",
        sqlite_url,
        "--work-dir",
        str(tmp_path / "d1"),
        "--json",
        "--actor",
        "cron",
    )
    summary = json.loads(r.stdout)
    assert summary["delta"]["new"] == 2 and summary["delta"]["changed"] == 1 and summary["delta"]["unchanged"] == 4
    assert summary["copy"]["copied"] == 3 and summary["copy"]["failed"] == 0
    copied = sorted(pq.read_table(summary["copy_results"][0]).column("name").to_pylist())
    assert copied == ["snds/dcir/part-002.parquet", "snds/dcir/part-100.parquet", "snds/pmsi/new.parquet"]
    # unchanged objects were not rewritten
    after = {o.name: o.etag for o in s3_bucket.list("migrated/")}
    for i in (0, 1, 3, 5):
        key = f"migrated/dcir/part-{i:03d}.parquet"
        assert after[key] == before[key]
    got = b"".join(s3_bucket.iter_read("migrated/dcir/part-002.parquet", chunk_size=1 << 20))
    assert (
        hashlib.sha256(got).digest()
        == hashlib.sha256(payload(2002, seed=77)).digest()
        != hashlib.sha256(blobs["snds/dcir/part-002.parquet"]).digest()
    )
    # the deletion is reported, not mirrored: the object is still at the destination...
    assert summary["deleted"] == summary["deleted"] | {
        "count": 1,
        "since_last_listing": 1,
        "policy": "report",
        "mirrored": 0,
        "examples": ["migrated/dcir/part-004.parquet"],
    }
    assert "migrated/dcir/part-004.parquet" in after
    # ...and the destination is therefore not a faithful copy: the verification fails, saying why
    assert r.returncode == 1
    assert not summary["verification"]["ok"] and summary["verification"]["incremental"]
    assert "deletions policy 'report'" in summary["verification"]["reason"]
    assert not st.latest_check("dcir", "verify").ok
    assert st.runs("dcir")[-1].actor == "cron"

    # mirroring, when asked, deletes it at the destination, records it in the ledger, and verification passes
    r2 = run_cli(
        "delta-sync",
        src,
        dst,
        "--dataset",
        "dcir",
        "--db",
        sqlite_url,
        "--work-dir",
        str(tmp_path / "d2"),
        "--deletions",
        "mirror",
        "--actor",
        "ops-oncall",
    )
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "0 new, 0 changed" in r2.stdout and "verification: PASS" in r2.stdout, r2.stdout
    assert "deleted at the source: 1 (0 since the last listing); mirrored at the destination: 1" in r2.stdout
    assert s3_bucket.head("migrated/dcir/part-004.parquet") is None
    mirrored = [x for x in st.ledger("dcir") if x.kind == "deletions_mirrored"]
    assert len(mirrored) == 1 and mirrored[0].payload["count"] == 1 and mirrored[0].actor == "ops-oncall"
    assert mirrored[0].payload["examples"] == ["migrated/dcir/part-004.parquet"]
    check = st.latest_check("dcir", "verify")
    assert check.ok and check.source_fingerprint == st.get("dcir").source_fingerprint
    assert st.get("dcir").state == "verified"

    # nothing changed since: a third sync copies nothing and records no new check
    r3 = run_cli("delta-sync", src, dst, "--dataset", "dcir", "--db", sqlite_url, "--work-dir", str(tmp_path / "d3"))
    assert r3.returncode == 0 and "0 new, 0 changed, 7 unchanged; copied 0" in r3.stdout
    assert st.latest_check("dcir", "verify").id == check.id


def _info(name: str, etag: str, size: int, minute: int = 0) -> ObjectInfo:
    return ObjectInfo(name, size, etag, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute))


def test_plan_delta_compares_by_etag_size_and_date_in_bounded_memory(tmp_path: Path) -> None:
    previous = [_info(f"t/part-{i:06d}", f"e{i}", 100 + i) for i in range(20_000)]
    write_inventory(previous, tmp_path / "prev.parquet")
    now = [o for o in previous if o.name not in ("t/part-000005", "t/part-019999")]
    now[10] = _info(now[10].name, "changed-etag", now[10].size)
    now[11] = _info(now[11].name, now[11].etag, now[11].size + 1)
    now[12] = _info(now[12].name, now[12].etag, now[12].size, minute=5)  # date only: a candidate, HEAD decides
    now.append(_info("t/zz-new", "n1", 7))
    plan = plan_delta(reversed(now), tmp_path / "prev.parquet", tmp_path / "work")  # order does not matter
    assert (plan.new, plan.changed, plan.deleted, plan.unchanged) == (1, 3, 2, 19_998 - 3)
    changes = sorted(pq.read_table(plan.changes_path).column("name").to_pylist())
    assert changes == sorted(["t/zz-new", now[10].name, now[11].name, now[12].name])
    deleted = sorted(pq.read_table(plan.deleted_path).column("name").to_pylist())
    assert deleted == ["t/part-000005", "t/part-019999"]
    assert plan.inventory.objects == len(now)


def test_unknown_deletion_policy_is_refused(
    sqlite_url: str, azure_container: AzureBlobStore, s3_bucket: S3Store, tmp_path: Path
) -> None:
    r = run_cli(
        "delta-sync",
        f"azure://{azure_container.container}/snds",
        f"s3://{s3_bucket.container}/m",
        "--dataset",
        "x",
        "--db",
        sqlite_url,
        "--deletions",
        "purge",
    )
    assert r.returncode == 2 and "invalid choice: 'purge'" in r.stderr


pytestmark = pytest.mark.usefixtures("rig_env")
