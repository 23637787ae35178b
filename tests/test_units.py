"""Pure logic, no servers: sizes, URLs, names, part sizing, in-order hashing, budgets, settings."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from hdh_migrate.errors import ConfigError, InvalidObjectNameError, MalformedURLError
from hdh_migrate.locations import parse_location
from hdh_migrate.sizes import GiB, MiB, TiB, parse_size
from hdh_migrate.stores.settings import S3Settings, Secret, encryption_summary, s3_settings_from_env
from hdh_migrate.transfer.budget import ByteBudget, PartBuffers
from hdh_migrate.transfer.checksums import OrderedHasher, crc32c, multipart_etag
from hdh_migrate.transfer.copier import MAX_PARTS, CopyOptions, part_size_for
from hdh_migrate.transfer.keys import check_key


def test_sizes_parse_like_rclone() -> None:
    assert parse_size("8MiB") == 8 * MiB
    assert parse_size("8M") == 8 * MiB
    assert parse_size("1.5GiB") == int(1.5 * GiB)
    assert parse_size("1000") == 1000
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("eight")


def test_locations_keep_prefix_as_folder() -> None:
    loc = parse_location("azure://snds-raw/dcir/2024")
    assert (loc.scheme, loc.container, loc.prefix) == ("azure", "snds-raw", "dcir/2024/")
    assert parse_location("s3://bucket-1").prefix == ""
    assert parse_location("s3://bucket-1/a/").key_for("x/y.parquet") == "a/x/y.parquet"


@pytest.mark.parametrize(
    "url", ["", "azure:/c/p", "http://c/p", "azure://Bad_Container/p", "s3://ab/p", "azure://ok-container/a//b"]
)
def test_malformed_locations_are_rejected(url: str) -> None:
    with pytest.raises(MalformedURLError):
        parse_location(url)


@pytest.mark.parametrize("key", ["a b/ü é.parquet", "x%20y#z", "deep/" * 50 + "f", "日本語/データ.csv"])
def test_names_kept_exactly(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a\x01b", "control character"),
        ("a//b", "segment"),
        ("a/../b", "segment"),
        ("x" * 1025, "too long"),
        ("dir/", "folder marker"),
    ],
)
def test_unsafe_names_rejected_with_reason(key: str, why: str) -> None:
    with pytest.raises(InvalidObjectNameError, match=why):
        check_key(key)


def test_part_size_grows_to_respect_the_10000_part_limit() -> None:
    assert part_size_for(100 * MiB, 8 * MiB) == 8 * MiB
    assert part_size_for(1, 1 * MiB) == 5 * MiB  # S3 minimum
    for size in (80 * GiB, 1 * TiB, 5 * TiB):
        part = part_size_for(size, 8 * MiB)
        assert -(-size // part) <= MAX_PARTS
        assert part % MiB == 0


def test_copy_options_refuse_a_budget_smaller_than_two_parts() -> None:
    with pytest.raises(ConfigError, match="max-memory"):
        CopyOptions(part_size=64 * MiB, max_memory=100 * MiB).validate()
    with pytest.raises(ConfigError, match="part size"):
        CopyOptions(part_size=1 * MiB).validate()


def test_ordered_hasher_gives_the_whole_object_hash_whatever_the_part_order() -> None:
    data = random.Random(1).randbytes(10_000)
    parts = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    order = list(range(1, len(parts) + 1))
    random.Random(2).shuffle(order)
    h = OrderedHasher()
    released: list[int] = []
    for n in order:
        released += h.add(n, parts[n - 1])
    assert sorted(released) == list(range(1, len(parts) + 1))
    d = h.digests()
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.md5 == hashlib.md5(data).hexdigest()
    assert d.size == len(data)


def test_multipart_etag_matches_s3_rule() -> None:
    md5s = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert multipart_etag(md5s) == hashlib.md5(b"".join(md5s)).hexdigest() + "-2"


def test_byte_budget_never_exceeds_capacity_under_contention() -> None:
    budget = ByteBudget(10)

    def worker() -> None:
        for _ in range(200):
            budget.acquire(3)
            assert budget.used <= 10
            budget.release(3)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak <= 10 and budget.used == 0


def test_s3_settings_from_env_apply_profile_then_overrides() -> None:
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "AWS_REGION": "gra"})
    assert (s.addressing_style, s.request_checksum_calculation, s.region) == ("virtual", "when_required", "gra")
    s = s3_settings_from_env({"HDH_S3_PROVIDER": "ovhcloud", "HDH_S3_ADDRESSING_STYLE": "path"})
    assert s.addressing_style == "path"
    with pytest.raises(ConfigError, match="unknown S3 provider"):
        s3_settings_from_env({"HDH_S3_PROVIDER": "nope"})


def test_sse_c_key_is_validated_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        S3Settings(sse="sse-c", sse_c_key=Secret("c2hvcnQ="))
    import base64

    key = base64.b64encode(bytes(range(32))).decode()
    s = S3Settings(sse="sse-c", sse_c_key=Secret(key))
    summary = encryption_summary(s)
    assert summary["mode"] == "sse-c" and summary["sse_c_key_fingerprint"].startswith("sha256:")
    assert key not in repr(s) and key not in str(summary)


def test_allocator_tuning_applies_once_and_respects_explicit_variables(monkeypatch) -> None:
    import platform

    from hdh_migrate.transfer import allocator as memory

    monkeypatch.setattr(memory, "_done", False)
    applied = memory.tune_allocator()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert memory.tune_allocator() is applied  # idempotent


def test_key_index_membership_with_and_without_keys(tmp_path) -> None:
    from hdh_migrate.transfer.keyindex import KeyIndex

    keys = [f"data/part={i % 7}/obj-{i:05d}.bin" for i in range(5000)]
    index = KeyIndex(keys)
    assert len(index) == 5000
    assert all(k in index for k in keys[::97])
    assert "data/part=0/obj-99999.bin" not in index
    empty = KeyIndex(())
    assert len(empty) == 0 and keys[0] not in empty
    index.save(str(tmp_path / "i.npy"))
    empty.save(str(tmp_path / "e.npy"))
    again = KeyIndex.load(str(tmp_path / "i.npy"))
    assert len(again) == 5000 and keys[123] in again and "nope" not in again
    assert len(KeyIndex.load(str(tmp_path / "e.npy"))) == 0


def test_container_sas_is_the_one_the_sdk_signs() -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from hdh_migrate.stores.azure_endpoint import DEVSTORE_KEY, container_sas

    start = datetime(2026, 11, 24, 9, 45, tzinfo=UTC)
    for container in ("hdh-source", "c0ntainer-with-digits"):
        sdk = generate_container_sas(
            "hdhaccount",
            container,
            account_key=DEVSTORE_KEY,
            permission=ContainerSasPermissions(read=True, list=True),
            start=start,
            expiry=start + timedelta(hours=8),
        )
        ours = container_sas(
            "hdhaccount", DEVSTORE_KEY, container, permission="rl", start=start, expiry=start + timedelta(hours=8)
        )
        assert ours == sdk


def test_pinned_azure_api_version_is_one_the_sdk_speaks() -> None:
    from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS

    from hdh_migrate.stores.azure_endpoint import API_VERSION

    assert API_VERSION in _SUPPORTED_API_VERSIONS


@pytest.mark.parametrize(
    "settings",
    [
        {
            "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
        },
        {"connection_string": "UseDevelopmentStorage=true"},
        {
            "connection_string": "DefaultEndpointsProtocol=https;AccountName=hdhprod;AccountKey=a2V5;"
            "EndpointSuffix=core.windows.net"
        },
        {"connection_string": "AccountName=hdhprod;AccountKey=a2V5"},
        {"connection_string": "BlobEndpoint=https://hdhprod.blob.core.windows.net/;SharedAccessSignature=sv=x&sig=y"},
        {"account_url": "https://hdhprod.blob.core.windows.net", "account_key": "a2V5"},
        {"account_url": "https://hdhprod-secondary.blob.core.windows.net/", "account_key": "a2V5"},
        {"account_url": "http://127.0.0.1:10000/devstoreaccount1", "account_key": "a2V5"},
        {"account_url": "https://hdhprod.blob.core.windows.net", "sas_token": "?sv=x&sig=y"},
    ],
)
def test_azure_endpoint_resolves_as_the_sdk_does(settings: dict[str, str]) -> None:
    """The direct path finds the container URL, the account and the credential the SDK would use."""
    from azure.storage.blob import BlobServiceClient

    from hdh_migrate.stores.azure_endpoint import resolve
    from hdh_migrate.stores.settings import AzureSettings

    ours = resolve(AzureSettings(**{k: v if k == "account_url" else Secret(v) for k, v in settings.items()}))
    assert ours is not None
    if "connection_string" in settings:
        sdk = BlobServiceClient.from_connection_string(settings["connection_string"])
    else:
        sdk = BlobServiceClient(
            settings["account_url"], credential=settings.get("account_key") or settings.get("sas_token")
        )
    assert ours.container_url("hdh-src") == sdk.get_container_client("hdh-src").url.split("?")[0]
    key = getattr(sdk.credential, "account_key", None)
    assert ours.account_key == key
    if key:
        assert ours.account_name == sdk.credential.account_name
    else:
        assert ours.sas_token and ours.sas_token in sdk.get_container_client("hdh-src").url


def test_azure_endpoint_leaves_entra_id_to_the_sdk() -> None:
    from hdh_migrate.stores.azure_endpoint import resolve
    from hdh_migrate.stores.settings import AzureSettings

    assert resolve(AzureSettings(account_url="https://hdhprod.blob.core.windows.net")) is None


def test_no_spinning_blas_threads_in_a_hdh_process() -> None:
    """pyarrow pulls in numpy, whose OpenBLAS would start a spinning thread per extra core; hdh-migrate needs none."""
    import os
    import subprocess
    import sys

    code = (
        "import os, hdh_migrate, pyarrow.parquet; "
        "print(sorted(open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.count("'python'") == 1, out  # the main thread only (OpenBLAS's threads take the process's name)


def test_object_feed_hands_objects_across_threads_and_never_blocks_a_dead_reader() -> None:
    """copy --verify's feed: everything put before close is read, in order; once abandoned (the verification
    died), put returns at once even when the feed is full, and the reader stops."""
    from datetime import UTC, datetime

    from hdh_migrate.stores.interface import ObjectInfo
    from hdh_migrate.transfer.verify import ObjectFeed

    infos = [ObjectInfo(name=f"o{i}", size=i, etag="e", last_modified=datetime.now(UTC)) for i in range(50)]
    feed = ObjectFeed(maxsize=4)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(o.name for o in feed))
    reader.start()
    for info in infos:
        feed.put(info)
    feed.close()
    reader.join(timeout=10)
    assert got == [o.name for o in infos]

    stuck = ObjectFeed(maxsize=1)
    stuck.put(infos[0])
    stuck.abandon()
    done = threading.Event()
    threading.Thread(target=lambda: (stuck.put(infos[1]), done.set())).start()
    assert done.wait(5)
    assert list(stuck) == []


def test_part_buffers_are_reused_within_their_keep_and_reserved_out_of_the_budget() -> None:
    assert PartBuffers.keep_for(512 * MiB, 8 * MiB, 8) == 8  # one per worker
    assert PartBuffers.keep_for(64 * MiB, 8 * MiB, 8) == 2  # a quarter of a small budget
    assert PartBuffers.keep_for(3 * 8 * MiB, 8 * MiB, 8) == 0  # a tiny budget: nothing kept idle
    pool = PartBuffers(1024, keep=2)
    a, b, c = pool.take(1024), pool.take(10), pool.take(1024)
    assert len(a) == len(b) == len(c) == 1024  # a short last part still gets a whole reusable buffer
    for buf in (a, b, c):
        pool.give(buf)
    again = [pool.take(1024), pool.take(1024), pool.take(1024)]
    assert sum(any(x is y for y in (a, b, c)) for x in again) == 2  # only two were kept
    pool.give(bytearray(2048))  # an odd size (a part size grown for a huge object) is never kept
    assert all(len(pool.take(1024)) == 1024 for _ in range(3))
    assert len(PartBuffers(1024, keep=0).take(10)) == 10  # no reuse: no whole-part allocation either
    from hdh_migrate.stores.interface import Features
    from hdh_migrate.transfer.copier import Copier

    store = type("Store", (), {"features": Features()})()
    copier = Copier(store, store, None, None, CopyOptions())  # type: ignore[arg-type]
    try:
        assert copier.budget.capacity + 8 * 8 * MiB == 512 * MiB  # idle buffers count against --max-memory
    finally:
        copier.close()


def test_crc32c_takes_bytes_and_buffers_alike() -> None:
    data = bytes(range(256)) * 1000
    assert crc32c(b"hello world") == bytes.fromhex("c99465aa")  # AWS's x-amz-checksum-crc32c yZRlqg==
    assert crc32c(data) == crc32c(bytearray(data)) == crc32c(memoryview(bytearray(data)))


@pytest.mark.parametrize("sign_payload", [False, True])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE/token+with=chars"])
def test_sigv4_headers_are_the_ones_botocore_signs(
    monkeypatch: pytest.MonkeyPatch, sign_payload: bool, token: str | None
) -> None:
    """The direct path's own SigV4 signer gives, at the same instant, exactly the headers (Authorization
    included) that botocore's S3SigV4Auth gives, for every request shape the data path sends."""
    import datetime as dt

    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from hdh_migrate.stores import sigv4

    instants = [dt.datetime(2026, 11, 24, 13, 5, 9, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=dt.UTC)]
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)

    class Botocore(S3SigV4Auth):
        def _should_sha256_sign_payload(self, request):  # the rule S3Direct applies (payload_signing setting)
            return sign_payload

    requests = [
        (
            "PUT",
            "http://127.0.0.1:8333/hdh/ab/x%20y/%C3%BC.bin",
            {
                "Content-Type": "text/csv",
                "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "x-amz-meta-hdh-sha256": "ab" * 32,
                "x-amz-meta-note": "  two   spaces  ",
            },
            b"x" * 70_000,
        ),
        (
            "PUT",
            "http://127.0.0.1:8333/hdh/k?partNumber=12&uploadId=2~abc%2Fdef",
            {"x-amz-checksum-crc32c": "yZRlqg=="},
            memoryview(bytearray(b"part bytes")),
        ),
        (
            "GET",
            "http://127.0.0.1:8333/hdh?list-type=2&prefix=a%2Fb&encoding-type=url&max-keys=1000"
            "&continuation-token=abc%3D%3D",
            {},
            None,
        ),
        (
            "POST",
            "http://127.0.0.1:8333/hdh/k?uploads",
            {"x-amz-meta-a": "1", "x-amz-checksum-algorithm": "CRC32C"},
            None,
        ),
        ("HEAD", "http://127.0.0.1:8333/hdh/k", {"Range": "bytes=0-9", "If-Match": '"abc"'}, b""),
        ("DELETE", "https://bucket.s3.fr-par.scw.cloud/k?uploadId=u", {"User-Agent": "hdh"}, None),
        (
            "GET",
            "https://s3.example.org:8443/hdh/k",
            {"x-amz-server-side-encryption-customer-algorithm": "AES256"},
            None,
        ),
    ]
    signer = sigv4.S3Signer(creds, "eu-west-3", sign_payload=sign_payload)
    for instant in instants:  # one signer across two dates: its cached signing key must follow the date
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda instant=instant: instant)
        monkeypatch.setattr(sigv4, "_now", lambda instant=instant: instant.timetuple())
        for method, url, headers, body in requests:
            req = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
            Botocore(creds.get_frozen_credentials(), "s3", "eu-west-3").add_auth(req)
            expected = dict(req.headers.items())
            ours = signer.headers(method, url, headers, body, host=sigv4.host_header(url))
            assert ours == expected, (method, url)


def _listing(n: int) -> list:
    from datetime import UTC, datetime

    from hdh_migrate.stores.interface import ObjectInfo

    return [
        ObjectInfo(
            name=f"claims/part={i % 3}/obj-{i}.bin",
            size=1000 + i,
            etag=f"0x8D{i:012X}",
            last_modified=datetime(2026, 11, 24, 12, 0, i, tzinfo=UTC),
            content_type="application/octet-stream",
            content_md5=hashlib.md5(str(i).encode()).digest() if i % 2 else None,
            metadata={"source": "sniiram"} if i % 3 == 0 else {},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n,keep", [(5, 10), (5, 3), (0, 10)])
def test_inventory_gives_the_listing_and_the_same_manifest_held_or_streamed(tmp_path, n: int, keep: int) -> None:
    """Held in memory (written by a thread) or streamed to Parquet past `keep`: the job sees the objects in
    listing order, and the manifest on disk holds every one of them, with its hash in the stats."""
    from hdh_migrate.transfer.checksums import file_sha256
    from hdh_migrate.transfer.manifest import Inventory, iter_inventory

    listed = _listing(n)
    inv = Inventory.take(iter(listed), tmp_path / "inv" / "inventory.parquet", keep=keep)
    assert (inv.objects, inv.bytes) == (n, sum(o.size for o in listed))
    assert list(inv.rows()) == listed
    stats = inv.stats()
    assert (stats.objects, stats.bytes) == (n, inv.bytes)
    assert stats.sha256 == file_sha256(stats.path)
    assert list(iter_inventory(stats.path)) == listed
    assert list(inv.rows()) == listed  # a second pass (find_extras after the copy) sees them all again


def test_inventory_write_errors_reach_the_job(tmp_path) -> None:
    from hdh_migrate.transfer.manifest import Inventory

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the work folder should be")
    inv = Inventory.take(iter(_listing(3)), blocker / "inventory.parquet")
    assert len(list(inv.rows())) == 3
    with pytest.raises(OSError):
        inv.stats()


def test_results_writer_without_rows_leaves_an_empty_manifest(tmp_path) -> None:
    from hdh_migrate.transfer.manifest import RESULT_FIELDS, ResultsWriter, read_results

    with ResultsWriter(tmp_path / "results.parquet") as w:
        pass
    assert read_results(w.path) == []
    import pyarrow.parquet as pq

    assert tuple(pq.read_schema(w.path).names) == RESULT_FIELDS


def test_copy_and_verify_modules_load_without_pyarrow() -> None:
    """pyarrow and numpy (~0.15 s) are imported by the job's manifest thread, not before the first transfer."""
    import subprocess
    import sys

    code = (
        "import sys, hdh_migrate.cli, hdh_migrate.runs.migration; "
        "print(sorted({'pyarrow', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
