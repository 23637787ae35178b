"""The core copy/verify engine against the real rig: Azurite -> SeaweedFS.

What only the real servers can show: their ETags, If-Match pinning, Content-MD5 and checksum refusals,
SSE-C, a process killed mid-copy, the CLI's messages and exit codes. The engine's failure paths at an exact
moment (a part failing with the budget full, a cancel, a corrupted part) are unit-tested on the in-memory
store in tests/unit/transfer.

Each test checks what a user would: the bytes at the destination are the source's, byte for byte; the
recorded SHA-256 is the hash of those bytes; re-runs copy nothing that is already right; damage is found
and repaired; bad input gets a clear message and a non-zero exit.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from azure.storage.blob import ContentSettings

from hdh_migrate.locations import parse_location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.transfer.copier import META_SHA256, META_SOURCE_ETAG, CopyOptions, copy_objects
from hdh_migrate.transfer.manifest import ResultsWriter, read_results
from hdh_migrate.transfer.verify import verify_objects
from tests.helpers import CLI, payload, run_cli

PART = 5 * MiB


def _urls(src: AzureBlobStore, dst: S3Store, sp: str = "data", dp: str = "copy") -> tuple[str, str]:
    return f"azure://{src.container}/{sp}", f"s3://{dst.container}/{dp}"


def _dest_bytes(dst: S3Store, key: str) -> bytes:
    return b"".join(dst.iter_read(key, chunk_size=MiB))


def _copy(src: AzureBlobStore, dst: S3Store, *, sp: str = "data", dp: str = "copy", **opts):
    s, d = parse_location(f"azure://{src.container}/{sp}"), parse_location(f"s3://{dst.container}/{dp}")
    return copy_objects(src, dst, s, d, src.list(s.prefix), CopyOptions(**opts))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HDH_MIGRATE_HOME", str(tmp_path / "state"))
    return tmp_path


def test_byte_identical_at_every_size_boundary(azure_container, s3_bucket, home) -> None:
    sizes = {"empty": 0, "one": 1, "part-1": PART - 1, "part": PART, "part+1": PART + 1, "multi": 3 * PART + 12345}
    originals = {}
    for i, (name, size) in enumerate(sizes.items()):
        originals[name] = payload(size, seed=i)
        azure_container.put(f"data/{name}.bin", originals[name])
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--part-size", "5MiB", "--workers", "4", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "copied 6 objects" in r.stdout
    for name, data in originals.items():
        key = f"copy/{name}.bin"
        assert _dest_bytes(s3_bucket, key) == data, name
        meta = s3_bucket.head(key).metadata
        assert meta[META_SHA256] == hashlib.sha256(data).hexdigest(), name
        assert meta[META_SOURCE_ETAG] == azure_container.head(f"data/{name}.bin").etag
        assert "hdh-source-last-modified" in meta
    # multipart objects really were multipart: their ETag carries the part count
    assert s3_bucket.head("copy/multi.bin").etag.endswith("-4")
    assert s3_bucket.head("copy/part+1.bin").etag.endswith("-2")
    v = run_cli("verify", src_url, dst_url, "--no-progress")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "6/6 objects match" in v.stdout


def test_thousand_small_objects_then_idempotent_rerun(azure_container, s3_bucket, home) -> None:
    for i in range(1000):
        azure_container.put(f"data/claims/part-{i:04d}.csv", payload(256, seed=i), content_type="text/csv")
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--workers", "16", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["counts"]["copied"] == 1000 and summary["counts"]["failed"] == 0
    assert sum(1 for _ in s3_bucket.list("copy/")) == 1000
    # the inventory manifest lists every blob, with its etag
    import pyarrow.parquet as pq

    inv = pq.read_table(summary["inventory"]["path"])
    assert inv.num_rows == 1000 and set(inv.column_names) >= {"name", "size", "etag", "last_modified", "content_md5"}
    before = {o.name: o.last_modified for o in s3_bucket.list("copy/")}
    again = run_cli("copy", src_url, dst_url, "--workers", "16", "--no-progress", "--json")
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout)["counts"]
    assert counts["copied"] == 0 and counts["skipped"] == 1000
    assert {o.name: o.last_modified for o in s3_bucket.list("copy/")} == before  # nothing re-sent


def test_names_metadata_and_content_type_preserved(azure_container, s3_bucket, home) -> None:
    names = ["data/a b/ü é.parquet", "data/x%20y#z.csv", "data/" + "deep/" * 30 + "leaf.json", "data/日本/データ.txt"]
    for i, n in enumerate(names):
        azure_container.put(
            n,
            payload(100, seed=i),
            content_type="application/vnd.apache.parquet",
            metadata={"Producer": "cnam", "schema_version": "3"},
        )
    _copy(azure_container, s3_bucket)
    keys = sorted(o.name for o in s3_bucket.list("copy/"))
    assert keys == sorted("copy/" + n[len("data/") :] for n in names)
    for n in names:
        head = s3_bucket.head("copy/" + n[len("data/") :])
        assert head.content_type == "application/vnd.apache.parquet"
        assert head.metadata["producer"] == "cnam" and head.metadata["schema_version"] == "3"


def test_corrupted_destination_fails_verify_and_copy_repairs_it(azure_container, s3_bucket, home) -> None:
    for i in range(5):
        azure_container.put(f"data/f{i}.bin", payload(10_000, seed=i))
    azure_container.put("data/big.bin", payload(2 * PART + 7, seed=99))
    src_url, dst_url = _urls(azure_container, s3_bucket)
    assert run_cli("copy", src_url, dst_url, "--no-progress").returncode == 0
    # flip one byte of each of two objects, same size, keeping their metadata (a careful corruption)
    for key in ("copy/f3.bin", "copy/big.bin"):
        head = s3_bucket.head(key)
        data = bytearray(_dest_bytes(s3_bucket, key))
        data[len(data) // 2] ^= 0x01
        s3_bucket.client.put_object(
            Bucket=s3_bucket.container, Key=key, Body=bytes(data), Metadata=head.metadata, ContentType=head.content_type
        )
    v = run_cli("verify", src_url, dst_url, "--no-progress")
    assert v.returncode == 1
    assert "copy/f3.bin" in v.stdout and "copy/big.bin" in v.stdout
    assert "4/6 objects match" in v.stdout
    r = run_cli("copy", src_url, dst_url, "--no-progress", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["counts"]["copied"] == 2  # exactly the two damaged ones
    assert run_cli("verify", src_url, dst_url, "--no-progress").returncode == 0
    assert _dest_bytes(s3_bucket, "copy/big.bin") == payload(2 * PART + 7, seed=99)


def test_full_verify_catches_a_flip_even_when_etag_and_metadata_were_forged(azure_container, s3_bucket, home) -> None:
    """Quick checks trust the ETag; only re-reading (depth full) catches bytes changed behind its back."""
    azure_container.put("data/x.bin", payload(50_000, seed=5))
    _copy(azure_container, s3_bucket)
    head = s3_bucket.head("copy/x.bin")
    data = bytearray(_dest_bytes(s3_bucket, "copy/x.bin"))
    data[0] ^= 0xFF
    forged = dict(head.metadata, **{"hdh-md5": hashlib.md5(bytes(data)).hexdigest()})
    s3_bucket.client.put_object(Bucket=s3_bucket.container, Key="copy/x.bin", Body=bytes(data), Metadata=forged)
    src_url, dst_url = _urls(azure_container, s3_bucket)
    assert run_cli("verify", src_url, dst_url, "--depth", "quick", "--no-progress").returncode == 0
    full = run_cli("verify", src_url, dst_url, "--no-progress")
    assert full.returncode == 1 and "HASH_DIFFERS" in full.stdout and "copy/x.bin" in full.stdout


def test_verify_reports_missing_extra_and_stale(azure_container, s3_bucket, home) -> None:
    for i in range(3):
        azure_container.put(f"data/f{i}", payload(100, seed=i))
    _copy(azure_container, s3_bucket)
    s3_bucket.delete("copy/f0")  # missing
    s3_bucket.put("copy/stray", b"not from the source")  # extra
    azure_container.put("data/f2", b"a new version at the source")  # stale
    src_url, dst_url = _urls(azure_container, s3_bucket)
    v = run_cli("verify", src_url, dst_url, "--no-progress")
    assert v.returncode == 1
    lines = v.stdout.splitlines()
    assert any(line.startswith("MISSING") and "copy/f0" in line for line in lines)
    assert any(line.startswith("EXTRA") and "copy/stray" in line for line in lines)
    assert any(line.startswith("STALE") and "copy/f2" in line for line in lines)


def test_source_rewritten_during_copy_is_detected_and_retried(azure_container, s3_bucket, home) -> None:
    old = payload(4 * PART, seed=1)
    new = payload(4 * PART, seed=2)
    azure_container.put("data/moving.bin", old)
    s, d = parse_location(f"azure://{azure_container.container}/data"), parse_location(f"s3://{s3_bucket.container}/c")
    # 2 MiB/s read limit: the 20 MiB object takes ~10 s, and the rewrite lands in the middle
    options = CopyOptions(part_size=PART, workers=2, max_memory=4 * PART, bwlimit=2 * MiB)
    writer = threading.Timer(2.0, lambda: azure_container.put("data/moving.bin", new))
    results = ResultsWriter(home / "results.parquet")
    writer.start()
    try:
        counts = copy_objects(
            azure_container, s3_bucket, s, d, azure_container.list(s.prefix), options, results=results
        )
    finally:
        writer.join()
        results.close()
    assert counts.retried >= 1 and counts.copied == 1 and counts.failed == 0
    row = read_results(home / "results.parquet")[0]
    assert row["attempts"] >= 2
    # never half old, half new: the destination is exactly the new version, with its hash
    assert _dest_bytes(s3_bucket, "c/moving.bin") == new
    assert s3_bucket.head("c/moving.bin").metadata[META_SHA256] == hashlib.sha256(new).hexdigest()
    assert list(s3_bucket.list_multipart_uploads("c/")) == []


def test_killed_copy_completes_on_rerun_without_resending_finished_objects(azure_container, s3_bucket, home) -> None:
    for i in range(120):
        azure_container.put(f"data/small/{i:03d}", payload(20_000, seed=i))
    azure_container.put("data/large.bin", payload(4 * PART, seed=7))
    src_url, dst_url = _urls(azure_container, s3_bucket)
    proc = subprocess.Popen(
        [CLI, "copy", src_url, dst_url, "--workers", "2", "--bwlimit", "1MiB", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(1 for _ in s3_bucket.list("copy/")) < 25:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    finished = {o.name: (o.last_modified, o.etag) for o in s3_bucket.list("copy/")}
    assert 25 <= len(finished) < 121
    r = run_cli("copy", src_url, dst_url, "--workers", "4", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["counts"]
    assert counts["skipped"] >= len(finished) - 2  # at most the objects caught mid-write are re-sent
    assert counts["copied"] + counts["skipped"] == 121
    after = {o.name: (o.last_modified, o.etag) for o in s3_bucket.list("copy/")}
    unchanged = [k for k, v in finished.items() if after.get(k) == v]
    assert len(unchanged) >= len(finished) - 2
    assert list(s3_bucket.list_multipart_uploads("copy/")) == []  # no orphan parts left behind
    assert run_cli("verify", src_url, dst_url, "--no-progress").returncode == 0


def test_dry_run_writes_nothing(azure_container, s3_bucket, home) -> None:
    for i in range(4):
        azure_container.put(f"data/f{i}", payload(100, seed=i))
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--dry-run", "--no-progress")
    assert r.returncode == 0 and "4 objects" in r.stdout and "would be copied" in r.stdout
    assert list(s3_bucket.list("")) == []


def test_sha256_part_checksums_and_sse_c(azure_container, s3_bucket, home, rig_env) -> None:
    import base64

    key = base64.b64encode(os.urandom(32)).decode()
    data = payload(2 * PART + 3, seed=8)
    azure_container.put("data/secret.bin", data)
    azure_container.put("data/small.bin", b"tiny")
    env = {"HDH_S3_SSE_C_KEY": key, "HDH_S3_PART_CHECKSUM": "sha256"}
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--no-progress", "--json", env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["encryption"]["mode"] == "sse-c"
    assert summary["encryption"]["sse_c_key_fingerprint"].startswith("sha256:")
    assert key not in r.stdout + r.stderr
    # without the key the store refuses to serve the object: it really is encrypted with the customer key
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError):
        s3_bucket.client.get_object(Bucket=s3_bucket.container, Key="copy/secret.bin")
    v = run_cli("verify", src_url, dst_url, "--no-progress", env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    assert key not in v.stdout + v.stderr


# -- bad input: a clear message and a non-zero exit -------------------------------------------------
def test_bad_input_gets_clear_errors(azure_container, s3_bucket, home, rig_env) -> None:
    azure_container.put("data/f", b"x")
    src_url, dst_url = _urls(azure_container, s3_bucket)
    cases = [
        (("copy", "azure://no-such-container/data", dst_url), {}, "container 'no-such-container' does not exist"),
        (("copy", src_url, "s3://no-such-bucket/x"), {}, "bucket 'no-such-bucket' does not exist"),
        (("copy", "azure:/bad", dst_url), {}, "malformed location"),
        (("copy", src_url, "azure://other/x"), {}, "should be an s3:// location"),
        (("copy", src_url, dst_url), {"AWS_SECRET_ACCESS_KEY": "wrong-s3-secret"}, "refused the credentials"),
        (
            ("copy", src_url, dst_url),
            {"AZURE_STORAGE_CONNECTION_STRING": rig_env["AZURE_STORAGE_CONNECTION_STRING"].replace("Eby8", "Zby8")},
            "Azure refused the credentials",
        ),
        (("copy", src_url, dst_url, "--part-size", "1MiB"), {}, "outside S3's limits"),
        (("copy", src_url, dst_url, "--part-size", "lots"), {}, "not a size"),
    ]
    for args, env, message in cases:
        r = run_cli(*args, "--no-progress", env=env)
        assert r.returncode != 0, (args, r.stdout)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "wrong-s3-secret" not in r.stderr and "Zby8" not in r.stderr
    assert list(s3_bucket.list("")) == []


def test_read_only_destination_key_stops_the_run_at_once(azure_container, s3_bucket, home, rig_env) -> None:
    for i in range(50):
        azure_container.put(f"data/f{i}", payload(100, seed=i))
    from hdh_migrate.dev import rig

    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--no-progress", env=rig.env(reader=True))
    assert r.returncode == 2
    assert "access denied" in r.stderr and "grant the key" in r.stderr
    assert list(s3_bucket.list("")) == []


def test_invalid_names_are_rejected_and_reported(azure_container, s3_bucket, home) -> None:
    azure_container.put("data/good.csv", b"ok")
    azure_container.put("data/a//b.csv", b"collapsing")
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--no-progress")
    assert r.returncode == 1
    assert "a//b.csv" in r.stderr and "segment" in r.stderr
    assert [o.name for o in s3_bucket.list("copy/")] == ["copy/good.csv"]


def test_library_verify_counts(azure_container, s3_bucket, home) -> None:
    """The library entry points (used by the Airflow tasks) without the CLI."""
    for i in range(10):
        azure_container.put(f"data/f{i}", payload(1000, seed=i))
    counts = _copy(azure_container, s3_bucket)
    assert counts.ok and counts.copied == 10
    s, d = (
        parse_location(f"azure://{azure_container.container}/data"),
        parse_location(f"s3://{s3_bucket.container}/copy"),
    )
    v = verify_objects(azure_container, s3_bucket, s, d, azure_container.list(s.prefix), depth="both")
    assert v.ok and v.matched == 10 and v.bytes_read == 2 * 10 * 1000


def test_killed_large_object_resumes_its_multipart_upload(azure_container, s3_bucket, home) -> None:
    """Beyond rclone (its issue #87): a large object interrupted halfway does not start over."""
    data = payload(8 * PART, seed=21)
    azure_container.put("data/huge.bin", data)
    src_url, dst_url = _urls(azure_container, s3_bucket)
    proc = subprocess.Popen(
        [CLI, "copy", src_url, dst_url, "--part-size", "5MiB", "--workers", "2", "--bwlimit", "4MiB", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )

    def stored_parts() -> int:
        uploads = list(s3_bucket.list_multipart_uploads("copy/"))
        return len(s3_bucket.list_parts(uploads[0][0], uploads[0][1])) if uploads else 0

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stored_parts() < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stored_parts() >= 3 and s3_bucket.head("copy/huge.bin") is None
    r = run_cli("copy", src_url, dst_url, "--part-size", "5MiB", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["counts"]
    assert counts["copied"] == 1 and counts["resumed_parts"] >= 3  # those parts were not sent again
    assert counts["resumed_bytes"] == counts["resumed_parts"] * PART
    assert _dest_bytes(s3_bucket, "copy/huge.bin") == data
    assert s3_bucket.head("copy/huge.bin").metadata[META_SHA256] == hashlib.sha256(data).hexdigest()
    assert list(s3_bucket.list_multipart_uploads("copy/")) == []
    assert run_cli("verify", src_url, dst_url, "--no-progress").returncode == 0


def test_verify_judges_against_the_source_as_it_is_now(azure_container, s3_bucket, home) -> None:
    """A blob rewritten after the listing but before its copy is copied in its new version: not stale."""
    azure_container.put("data/f", b"old version")
    s, d = parse_location(f"azure://{azure_container.container}/data"), parse_location(f"s3://{s3_bucket.container}/c")
    listed = list(azure_container.list(s.prefix))  # the inventory
    azure_container.put("data/f", b"the new version")  # changed before the copy reached it
    counts = copy_objects(azure_container, s3_bucket, s, d, listed, CopyOptions())
    assert counts.copied == 1 and counts.retried == 1
    v = verify_objects(azure_container, s3_bucket, s, d, listed)
    assert v.ok and v.matched == 1
    azure_container.put("data/f", b"changed again after the copy")
    assert verify_objects(azure_container, s3_bucket, s, d, listed).problems[0]["problem"] == "stale"


def test_single_put_is_checked_against_the_source_md5(azure_container, s3_bucket, home) -> None:
    """An object sent whole carries the source's own Content-MD5, so the store checks the bytes read against
    it: a blob whose stored MD5 disagrees with its bytes is refused as corrupt at the source (not retried as
    a damaged transfer), the others land with that MD5 as ETag and ``hdh-md5``."""
    good, bad = payload(70_000, seed=43), payload(70_000, seed=44)
    azure_container.put("data/good.bin", good)  # Put Blob stores a Content-MD5 by itself
    assert azure_container.head("data/good.bin").content_md5 == hashlib.md5(good).digest()
    azure_container.put("data/rotten.bin", bad)
    azure_container._container.get_blob_client("data/rotten.bin").set_http_headers(
        ContentSettings(content_md5=bytearray(hashlib.md5(b"what it held once").digest()))
    )
    counts = _copy(azure_container, s3_bucket)
    assert (counts.copied, counts.failed, counts.retried) == (1, 1, 0)
    assert counts.errors[0]["name"] == "data/rotten.bin" and counts.errors[0]["code"] == "checksum_mismatch"
    assert "do not match the source's own Content-MD5" in counts.errors[0]["message"]
    assert s3_bucket.head("copy/rotten.bin") is None
    head = s3_bucket.head("copy/good.bin")
    assert head.etag == hashlib.md5(good).hexdigest() == head.metadata["hdh-md5"]
    assert head.metadata[META_SHA256] == hashlib.sha256(good).hexdigest()
    assert _dest_bytes(s3_bucket, "copy/good.bin") == good


def test_whole_object_md5_is_checked_when_the_source_has_one(azure_container, s3_bucket, home) -> None:
    """A multipart copy computes the whole-object MD5 only to check a source Content-MD5: a blob whose stored
    MD5 disagrees with its bytes is refused; one without any gets SHA-256 and the multipart ETag only."""
    data = payload(2 * PART + 7, seed=41)
    md5 = hashlib.md5(data).digest()
    azure_container.put("data/with-md5.bin", data, md5=md5)
    azure_container.put("data/no-md5.bin", data)
    # Put Blob stores a Content-MD5 by itself; blobs uploaded in blocks (most large ones) have none
    azure_container._container.get_blob_client("data/no-md5.bin").set_http_headers(ContentSettings())
    assert azure_container.head("data/no-md5.bin").content_md5 is None
    azure_container.put("data/wrong-md5.bin", data)
    # Azure does not check a Content-MD5 set after the upload: a wrong one is what a damaged blob looks like
    azure_container._container.get_blob_client("data/wrong-md5.bin").set_http_headers(
        ContentSettings(content_md5=bytearray(hashlib.md5(b"something else").digest()))
    )
    counts = _copy(azure_container, s3_bucket, part_size=PART)
    assert (counts.copied, counts.failed) == (2, 1)
    assert counts.errors[0]["name"] == "data/wrong-md5.bin" and counts.errors[0]["code"] == "checksum_mismatch"
    assert "Content-MD5" in counts.errors[0]["message"]
    assert s3_bucket.head("copy/wrong-md5.bin") is None and list(s3_bucket.list_multipart_uploads("copy/")) == []
    with_md5 = s3_bucket.head("copy/with-md5.bin").metadata
    assert with_md5["hdh-md5"] == md5.hex() and with_md5[META_SHA256] == hashlib.sha256(data).hexdigest()
    no_md5 = s3_bucket.head("copy/no-md5.bin")
    assert "hdh-md5" not in no_md5.metadata and no_md5.metadata[META_SHA256] == hashlib.sha256(data).hexdigest()
    assert no_md5.metadata["hdh-multipart-etag"] == no_md5.etag
    assert _dest_bytes(s3_bucket, "copy/no-md5.bin") == data
    # and the re-run trusts neither less nor more: both are complete, nothing is copied again
    again = _copy(azure_container, s3_bucket, part_size=PART)
    assert (again.copied, again.skipped, again.failed) == (0, 2, 1)


def test_copy_with_verify_checks_everything_in_one_run(azure_container, s3_bucket, home) -> None:
    """`copy --verify full` re-reads every destination byte after the copy; its verdict decides the exit status."""
    for i in range(5):
        azure_container.put(f"data/f{i}.bin", payload(PART + i * 1000 if i == 4 else 1000 + i, seed=i))
    s3_bucket.put("copy/stray.bin", b"not from the source")  # an object the source does not have
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--part-size", "5MiB", "--verify", "full", "--no-progress", "--json")
    assert r.returncode != 0, r.stdout
    summary = json.loads(r.stdout[r.stdout.find("{") :])
    assert summary["counts"]["copied"] == 5 and summary["counts"]["ok"] is True
    v = summary["verify"]
    assert (v["depth"], v["counts"]["matched"], v["counts"]["extra"], v["ok"]) == ("full", 5, 1, False)
    assert v["counts"]["bytes_read"] == sum(o.size for o in azure_container.list("data/"))
    assert summary["ok"] is False
    s3_bucket.delete("copy/stray.bin")
    again = run_cli("copy", src_url, dst_url, "--verify", "full", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skipped 5 already copied" in again.stdout and "verify (full) OK: 5/5 objects match" in again.stdout


def test_content_encoded_blobs_are_copied_and_verified_as_stored(azure_container, s3_bucket, home) -> None:
    """A blob stored gzip-compressed with Content-Encoding: gzip (common for exported CSVs) is copied as the
    stored bytes, not inflated on the way; its SHA-256 is that of the stored bytes, and a full verification
    of a destination object stored with Content-Encoding agrees."""
    import gzip

    raw = gzip.compress(b"ben_idt_ano;sex;age\n" * 20000)
    big = gzip.compress(payload(7 * MiB, seed=5), compresslevel=1)  # barely compressible: a multipart copy
    for name, data in (("data/small.csv.gz", raw), ("data/big.csv.gz", big)):
        azure_container._container.get_blob_client(name).upload_blob(
            data, overwrite=True, content_settings=ContentSettings(content_type="text/csv", content_encoding="gzip")
        )
    src_url, dst_url = _urls(azure_container, s3_bucket)
    r = run_cli("copy", src_url, dst_url, "--part-size", "5MiB", "--verify", "full", "--no-progress", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["counts"]["copied"] == 2 and len(big) > PART
    for name, data in (("small.csv.gz", raw), ("big.csv.gz", big)):
        assert _dest_bytes(s3_bucket, f"copy/{name}") == data
        assert s3_bucket.head(f"copy/{name}").metadata[META_SHA256] == hashlib.sha256(data).hexdigest()
    s3_bucket.client.put_object(Bucket=s3_bucket.container, Key="enc/x.gz", Body=raw, ContentEncoding="gzip")
    info, chunks = s3_bucket.open_read("enc/x.gz", chunk_size=MiB)
    assert info.size == len(raw)
    assert b"".join(chunks) == raw
