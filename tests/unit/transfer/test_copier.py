"""The copier on in-memory stores: what lands, what a re-run does, and how each failure ends."""

from __future__ import annotations

import hashlib

import pytest

from hdh_migrate.errors import BucketNotFoundError, CorruptedTransferError, CredentialsError, SourceChangedError
from hdh_migrate.stores.memory import MemoryServer
from hdh_migrate.transfer.copier import META_SHA256, META_SOURCE_ETAG
from hdh_migrate.transfer.keyindex import KeyIndex

from .conftest import PART, Pair, payload

SIZES = {"empty": 0, "one": 1, "part-1": PART - 1, "part": PART, "part+1": PART + 1, "multi": 3 * PART + 12345}


@pytest.mark.parametrize("part_checksum", ["md5", "sha256", "crc32c"])
def test_copies_byte_for_byte_with_the_sha256_recorded(tmp_path, part_checksum: str) -> None:
    pair = Pair(MemoryServer("azure"), MemoryServer("s3", part_checksum=part_checksum), tmp_path)
    originals = {name: payload(size, seed=i) for i, (name, size) in enumerate(SIZES.items())}
    for name, data in originals.items():
        pair.put(name, data, md5=name != "multi")  # a large blob uploaded in blocks has no Content-MD5
    counts = pair.copy(part_size=PART, workers=4)
    assert (counts.copied, counts.failed, counts.copied_bytes) == (6, 0, sum(SIZES.values()))
    for name, data in originals.items():
        assert pair.dest_bytes(name) == data, name
        head = pair.dest_head(name)
        assert head.metadata[META_SHA256] == hashlib.sha256(data).hexdigest(), name
        assert head.metadata[META_SOURCE_ETAG] == pair.source.head(f"data/{name}").etag
    assert pair.dest_head("multi").etag.endswith("-4") and pair.dest_head("part+1").etag.endswith("-2")
    assert "hdh-md5" not in pair.dest_head("multi").metadata  # no source MD5 to check: not computed
    assert pair.dest_head("part+1").metadata["hdh-md5"] == hashlib.md5(originals["part+1"]).hexdigest()
    assert pair.uploads_left() == 0


@pytest.mark.parametrize("part_checksum", ["md5", "sha256", "crc32c"])
def test_each_part_carries_the_checksum_the_destination_checks(tmp_path, monkeypatch, part_checksum) -> None:
    pair = Pair(MemoryServer("azure"), MemoryServer("s3", part_checksum=part_checksum), tmp_path)
    data = payload(2 * PART + 3, seed=8)
    pair.put("big", data)
    sent: list[set[str]] = []
    upload_part = pair.dest.upload_part

    def spy(*args, **kw):
        sent.append({k for k in ("md5", "sha256", "crc32c") if kw.get(k) is not None})
        return upload_part(*args, **kw)

    monkeypatch.setattr(pair.dest, "upload_part", spy)
    assert pair.copy(part_size=PART).copied == 1
    assert sent == [{part_checksum}] * 3
    assert pair.dest_bytes("big") == data


def test_a_rerun_skips_what_is_already_copied(pair: Pair) -> None:
    for i in range(20):
        pair.put(f"f{i}", payload(1000 + i, seed=i))
    pair.put("big", payload(2 * PART, seed=99))
    assert pair.copy(part_size=PART).copied == 21
    writes = {op: pair.s3.requests.get(op, 0) for op in ("put", "upload_part", "start_multipart")}
    again = pair.copy(part_size=PART)
    assert (again.copied, again.skipped, again.skipped_bytes) == (0, 21, sum(o.size for o in pair.listing()))
    assert {op: pair.s3.requests.get(op, 0) for op in writes} == writes  # nothing sent again
    assert {r["reason"] for r in pair.rows} == {"already copied"}


def test_copies_what_is_missing_stale_or_rewritten_at_the_destination(pair: Pair) -> None:
    for i in range(5):
        pair.put(f"f{i}", payload(100, seed=i))
    pair.copy()
    pair.dest.delete("copy/f0")  # missing
    pair.put("f1", b"a new version at the source")  # stale
    head = pair.dest_head("f2")
    pair.dest.put("copy/f2", payload(100, seed=42), metadata=head.metadata)  # rewritten, provenance forged
    again = pair.copy()
    assert (again.copied, again.skipped) == (3, 2)
    reasons = {r["name"]: r["reason"] for r in pair.rows if r["status"] == "copied"}
    assert reasons == {
        "data/f0": "not at the destination",
        "data/f1": "the source changed since it was copied",
        "data/f2": "the destination object was rewritten after the copy (its ETag changed)",
    }
    for i in range(5):
        assert pair.dest_bytes(f"f{i}") == pair.source.read_range(f"data/f{i}", 0, 1000)


def test_force_copies_again_an_object_a_verification_rejected(pair: Pair) -> None:
    """Bit rot at the destination leaves size, ETag and metadata intact: only `force` re-sends it."""
    data = payload(5000, seed=3)
    pair.put("x", data)
    pair.copy()
    pair.s3.rot("dst", "copy/x", offset=10)
    assert pair.copy().skipped == 1  # the quick decision cannot see it
    counts = pair.copy(force=["data/x"])
    assert counts.copied == 1 and pair.rows[0]["reason"] == "rejected by a verification: copied again"
    assert pair.dest_bytes("x") == data


def test_checksum_option_finds_bit_rot_by_re_reading_the_destination(pair: Pair) -> None:
    pair.put("x", payload(5000, seed=3))
    pair.copy()
    pair.s3.rot("dst", "copy/x")
    assert pair.copy(checksum=True).copied == 1
    assert pair.rows[0]["reason"] == "the destination content does not match the recorded SHA-256"


@pytest.mark.parametrize("size", [1000, 3 * PART])
def test_a_source_rewritten_mid_copy_is_copied_again_from_its_new_version(pair: Pair, size: int) -> None:
    old, new = payload(size, seed=1), payload(size, seed=2)
    pair.put("moving", old)

    def rewrite_while_read() -> SourceChangedError:
        pair.put("moving", new)  # lands while the read is in flight: the read pinned to the old etag fails
        return SourceChangedError("data/moving changed while it was being read")

    pair.azure.inject("read", rewrite_while_read, name="data/moving")
    counts = pair.copy(part_size=PART)
    assert (counts.copied, counts.retried, counts.failed) == (1, 1, 0)
    assert pair.rows[0]["attempts"] == 2
    assert pair.dest_bytes("moving") == new  # never half old, half new
    assert pair.dest_head("moving").metadata[META_SHA256] == hashlib.sha256(new).hexdigest()
    assert pair.dest_head("moving").metadata[META_SOURCE_ETAG] == pair.source.head("data/moving").etag
    assert pair.uploads_left() == 0


def test_a_source_that_keeps_changing_fails_clearly_and_leaves_no_upload(pair: Pair) -> None:
    pair.put("moving", payload(3 * PART, seed=1))
    pair.azure.inject("read", lambda: SourceChangedError("changed"), name="data/moving", times=10)
    counts = pair.copy(part_size=PART, retries=1)
    assert (counts.copied, counts.failed, counts.retried) == (0, 1, 1)
    assert counts.errors[0]["code"] == "source_changed" and counts.errors[0]["transient"] == "true"
    assert pair.dest_head("moving") is None and pair.uploads_left() == 0


def test_a_blob_deleted_during_its_copy_is_reported_as_such(pair: Pair) -> None:
    pair.put("gone", payload(100))

    def delete_while_read() -> SourceChangedError:
        pair.source.delete("data/gone")
        return SourceChangedError("data/gone changed while it was being read")

    pair.azure.inject("read", delete_while_read, name="data/gone")
    counts = pair.copy()
    assert counts.failed == 1 and counts.errors[0]["code"] == "source_deleted"


def test_a_corrupted_part_is_sent_again_without_failing_the_object(pair: Pair) -> None:
    data = payload(3 * PART, seed=4)
    pair.put("big", data)
    pair.s3.inject("upload_part", lambda: CorruptedTransferError("BadDigest"), times=2)
    counts = pair.copy(part_size=PART, retries=0)
    assert (counts.copied, counts.retried) == (1, 0)
    assert pair.s3.requests["upload_part"] == 3 + 2
    assert pair.dest_bytes("big") == data


def test_a_part_damaged_on_every_send_fails_the_object_and_aborts_the_upload(pair: Pair) -> None:
    pair.put("big", payload(3 * PART, seed=4))
    pair.s3.inject("upload_part", lambda: CorruptedTransferError("BadDigest"), times=3)
    counts = pair.copy(part_size=PART, workers=1, retries=0)
    assert counts.failed == 1 and counts.errors[0]["code"] == "corrupted_transfer"
    assert pair.uploads_left() == 0 and pair.s3.requests["abort_multipart"] == 1


def test_a_single_object_damaged_on_its_way_is_sent_again(pair: Pair) -> None:
    data = payload(70_000, seed=5)
    pair.put("small", data)
    pair.s3.inject("put", lambda: CorruptedTransferError("BadDigest"))
    counts = pair.copy(retries=1)
    assert (counts.copied, counts.retried) == (1, 1) and pair.dest_bytes("small") == data


@pytest.mark.parametrize("size", [70_000, 2 * PART + 7])
def test_a_blob_whose_bytes_do_not_match_its_content_md5_is_refused_as_corrupt(pair: Pair, size: int) -> None:
    pair.put("rotten", payload(size, seed=6))
    pair.azure.rot("src", "data/rotten", offset=5)  # the stored Content-MD5 no longer matches the bytes
    counts = pair.copy(part_size=PART)
    assert (counts.failed, counts.retried) == (1, 0)  # corrupt at the source: not worth a retry
    assert counts.errors[0]["code"] == "checksum_mismatch"
    assert "do not match the source's own Content-MD5" in counts.errors[0]["message"]
    assert pair.dest_head("rotten") is None and pair.uploads_left() == 0


@pytest.mark.parametrize(
    "error", [lambda: CredentialsError("S3 refused the credentials"), lambda: BucketNotFoundError("no bucket")]
)
def test_a_fatal_error_stops_the_run_at_once(pair: Pair, error) -> None:
    for i in range(200):
        pair.put(f"f{i}", payload(100, seed=i))
    pair.s3.inject("head", error, times=10_000)
    with pytest.raises(type(error())):
        pair.copy(workers=1)
    assert pair.s3.requests["head"] < 20  # not one refusal per object
    assert list(pair.dest.list("")) == []


def test_a_missing_bucket_stops_the_run_even_without_a_head_request(pair: Pair) -> None:
    pair.put("f", b"x")
    pair.s3.containers.pop("dst")
    with pytest.raises(BucketNotFoundError):
        pair.copy(dest_index=KeyIndex(()))


def _md5(data: bytes | bytearray) -> bytes:
    return hashlib.md5(data).digest()


def test_a_resumed_upload_reuses_only_the_parts_that_match_the_source(pair: Pair) -> None:
    """Beyond rclone (its issue #87): a killed copy's parts are reused, but only those holding the right bytes."""
    data = payload(4 * PART, seed=22)
    pair.put("obj", data, md5=False)
    other = pair.dest.start_multipart("copy/obj", content_type=None, metadata={})  # an older, emptier leftover
    pair.dest.upload_part("copy/obj", other, 1, data[:PART], md5=_md5(data[:PART]))
    upload = pair.dest.start_multipart("copy/obj", content_type=None, metadata={})
    bad = bytearray(data[:PART])
    bad[100] ^= 1
    pair.dest.upload_part("copy/obj", upload, 1, bytes(bad), md5=_md5(bad))  # same size, other bytes
    right = data[PART : 2 * PART]
    pair.dest.upload_part("copy/obj", upload, 2, right, md5=_md5(right))  # the right bytes
    short = data[2 * PART : 2 * PART + 10]
    pair.dest.upload_part("copy/obj", upload, 3, short, md5=_md5(short))  # wrong size
    sent = pair.s3.requests["upload_part"]
    counts = pair.copy(part_size=PART)
    assert (counts.copied, counts.resumed_parts, counts.resumed_bytes) == (1, 1, PART)
    assert pair.s3.requests["upload_part"] - sent == 3  # parts 1, 3, 4 sent; 2 reused
    assert pair.dest_bytes("obj") == data
    assert pair.dest_head("obj").metadata[META_SHA256] == hashlib.sha256(data).hexdigest()
    assert pair.uploads_left() == 0  # the other leftover was aborted


def test_dry_run_writes_nothing(pair: Pair) -> None:
    for i in range(4):
        pair.put(f"f{i}", payload(100, seed=i))
    pair.put("big", payload(2 * PART, seed=9))
    counts = pair.copy(dry_run=True, part_size=PART)
    assert (counts.would_copy, counts.copied, counts.would_copy_bytes) == (5, 0, 400 + 2 * PART)
    assert list(pair.dest.list("")) == [] and pair.uploads_left() == 0
    assert not {"put", "upload_part", "start_multipart"} & pair.s3.requests.keys()
    pair.copy(part_size=PART)
    assert pair.copy(dry_run=True, part_size=PART).skipped == 5


def test_a_destination_that_cannot_write_parts_copies_small_objects_and_refuses_large_ones(tmp_path) -> None:
    pair = Pair(MemoryServer("azure"), MemoryServer("s3"), tmp_path)
    pair.dest = MemoryServer("azure").create("dst")  # an Azure container: no multipart upload
    pair.put("small", b"fits in one request")
    pair.put("big", payload(PART + 1))
    counts = pair.copy(part_size=PART)
    assert (counts.copied, counts.failed) == (1, 1)
    assert counts.errors[0]["name"] == "data/big" and counts.errors[0]["code"] == "config"
    assert "larger than one part" in counts.errors[0]["message"]
    assert "cannot do multipart" in counts.errors[0]["message"]


def test_rejected_names_are_reported_and_the_others_copied(pair: Pair) -> None:
    pair.put("good.csv", b"ok")
    pair.put("a//b.csv", b"collapsing")
    pair.put("folder", b"", metadata={"hdi_isfolder": "true"})  # a hierarchical namespace's directory
    counts = pair.copy()
    assert (counts.copied, counts.rejected, counts.skipped) == (1, 1, 1)
    assert counts.errors[0]["name"] == "data/a//b.csv" and "segment" in counts.errors[0]["message"]
    assert [o.name for o in pair.dest.list("")] == ["copy/good.csv"]
