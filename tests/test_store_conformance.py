"""One conformance suite, run against both real servers (Azurite and SeaweedFS) through the same interface.

This is what lets the copy engine treat both sides alike: listing, ranged and pinned reads, writes with an
integrity header, and typed errors for missing containers and refused credentials.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from hdh_migrate.errors import (
    BucketNotFoundError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    ObjectNotFoundError,
    SourceChangedError,
)
from hdh_migrate.stores import AzureBlobStore, S3Store
from hdh_migrate.stores.settings import azure_settings_from_env, s3_settings_from_env
from hdh_migrate.transfer.checksums import crc32c

from .helpers import payload


@pytest.fixture(params=["azure", "s3", "azure-sdk-only", "s3-sdk-only"])
def store(
    request: pytest.FixtureRequest,
    azure_container: AzureBlobStore,
    s3_bucket: S3Store,
    monkeypatch: pytest.MonkeyPatch,
):
    """Each backend twice: with the direct data path (the default) and with the SDKs alone (HDH_DIRECT_HTTP=0)."""
    if request.param.endswith("sdk-only"):
        monkeypatch.setenv("HDH_DIRECT_HTTP", "0")
    if request.param.startswith("azure"):
        st = AzureBlobStore(azure_container.settings, azure_container.container)
        assert (st.transport == "sdk") == request.param.endswith("sdk-only")
    else:
        st = S3Store(s3_bucket.settings, s3_bucket.container)
        assert (st.transport == "sdk") == request.param.endswith("sdk-only")
    return st


def test_put_head_list_read_delete(store) -> None:
    data = payload(70_000, seed=3)
    store.put(
        "p/a b/ü.bin",
        data,
        content_type="application/x-test",
        metadata={"origin": "snds"},
        md5=hashlib.md5(data).digest(),
    )
    store.put("p/other", b"x")
    store.put("q/outside", b"y")
    head = store.head("p/a b/ü.bin")
    assert head is not None and head.size == len(data) and head.content_type == "application/x-test"
    assert head.metadata.get("origin") == "snds"
    assert sorted(o.name for o in store.list("p/")) == ["p/a b/ü.bin", "p/other"]
    assert store.read_range("p/a b/ü.bin", 1000, 500) == data[1000:1500]
    assert b"".join(store.iter_read("p/a b/ü.bin", chunk_size=8192)) == data
    assert store.head("p/missing") is None
    store.delete("p/other")
    assert store.head("p/other") is None


def test_pinned_read_fails_when_the_object_changed(store) -> None:
    store.put("obj", b"version one")
    etag = store.head("obj").etag
    assert store.read_range("obj", 0, 7, etag=etag) == b"version"
    store.put("obj", b"version two")
    with pytest.raises(SourceChangedError):
        store.read_range("obj", 0, 7, etag=etag)


def test_read_into_a_reused_buffer(store) -> None:
    """The copier reads parts into buffers it reuses: a dirty buffer gets exactly the range, read after read
    on the same connections, and a pinned read of a changed blob still fails as a changed source."""
    if not hasattr(store, "read_range_into"):
        pytest.skip("a destination store: the copier reads parts from the source only")
    data = payload(300_000, seed=5)
    store.put("into.bin", data)
    etag = store.head("into.bin").etag
    buf = bytearray(b"\xff" * 120_000)
    for offset in (0, 100_000, 180_000, 0):
        view = memoryview(buf)[: min(120_000, len(data) - offset)]
        store.read_range_into("into.bin", offset, view, etag=etag)
        assert bytes(view) == data[offset : offset + len(view)]
    store.read_range_into("into.bin", 0, memoryview(buf)[:0], etag=etag)  # nothing to read: no request
    store.put("into.bin", data[::-1])
    with pytest.raises(SourceChangedError):
        store.read_range_into("into.bin", 0, memoryview(buf)[:10], etag=etag)


def test_listing_streams_across_pages(store) -> None:
    store.page_size = 40  # 105 objects: three pages, the last one partial
    for i in range(105):
        store.put(f"many/{i:05d}", b"")
    names = [o.name for o in store.list("many/")]
    assert sorted(names) == [f"many/{i:05d}" for i in range(105)]


@pytest.mark.parametrize("direct", ["1", "0"])
def test_missing_container_or_bucket_is_a_typed_error(rig_env, monkeypatch, direct: str) -> None:
    monkeypatch.setenv("HDH_DIRECT_HTTP", direct)
    with pytest.raises(ContainerNotFoundError, match="does not exist"):
        AzureBlobStore(azure_settings_from_env(), "no-such-container").check_access()
    with pytest.raises(BucketNotFoundError, match="does not exist"):
        S3Store(s3_settings_from_env(), "no-such-bucket").check_access()
    with pytest.raises(ContainerNotFoundError, match="does not exist"):
        AzureBlobStore(azure_settings_from_env(), "no-such-container").check_access("under/a/prefix/")
    with pytest.raises(BucketNotFoundError, match="does not exist"):
        S3Store(s3_settings_from_env(), "no-such-bucket").check_access("under/a/prefix/")


@pytest.mark.parametrize("direct", ["1", "0"])
def test_refused_credentials_are_a_typed_error_without_the_secret(
    rig_env, s3_bucket: S3Store, monkeypatch, direct: str
) -> None:
    monkeypatch.setenv("HDH_DIRECT_HTTP", direct)
    bad_az = dict(
        rig_env,
        AZURE_STORAGE_CONNECTION_STRING=rig_env["AZURE_STORAGE_CONNECTION_STRING"].replace(
            "AccountKey=Eby8", "AccountKey=Xby8"
        ),
    )
    with pytest.raises(CredentialsError) as exc:
        AzureBlobStore(azure_settings_from_env(bad_az), "anything").check_access()
    assert "Xby8" not in str(exc.value)
    bad_s3 = dict(rig_env, AWS_SECRET_ACCESS_KEY="wrong-secret-value")
    with pytest.raises(CredentialsError) as exc2:
        S3Store(s3_settings_from_env(bad_s3), s3_bucket.container).check_access()
    assert "wrong-secret-value" not in str(exc2.value)


@pytest.mark.parametrize("algo", ["md5", "crc32c"])
def test_s3_rejects_a_corrupted_part(s3_bucket: S3Store, algo: str) -> None:
    """The integrity header is really checked: a part whose bytes do not match its checksum is refused.

    This is what allows a provider profile to use a part checksum at all (seaweedfs: crc32c)."""
    store = S3Store(s3_bucket.settings.with_overrides(part_checksum=algo), s3_bucket.container)
    upload = store.start_multipart("k", content_type=None, metadata={})
    good = payload(1000)
    sums = {"md5": hashlib.md5(good).digest(), "crc32c": crc32c(good)}
    kwargs = {"md5": sums["md5"] if algo == "md5" else None, "crc32c": sums["crc32c"] if algo == "crc32c" else None}
    with pytest.raises(CorruptedTransferError, match="checksum"):
        store.upload_part("k", upload, 1, good[:-1] + b"!", **kwargs)
    part = store.upload_part("k", upload, 1, good, **kwargs)
    if algo == "crc32c":
        assert part["ChecksumCRC32C"] == base64.b64encode(crc32c(good)).decode()
    store.abort_multipart("k", upload)
    assert list(store.list_multipart_uploads("k")) == []


@pytest.mark.parametrize("direct", ["1", "0"])
def test_data_path_errors_are_typed(rig_env, azure_container, s3_bucket, monkeypatch, direct: str) -> None:
    """Reads and writes fail with the same typed, secret-free errors on the direct path as through the SDKs."""
    monkeypatch.setenv("HDH_DIRECT_HTTP", direct)
    az = AzureBlobStore(azure_settings_from_env(), azure_container.container)
    az.put("there", b"content")
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        az.read_range("not-there", 0, 10)
    with pytest.raises(ContainerNotFoundError, match="no-such-container"):
        AzureBlobStore(azure_settings_from_env(), "no-such-container").read_range("x", 0, 10)
    bad_key = rig_env["AZURE_STORAGE_CONNECTION_STRING"].replace("AccountKey=Eby8", "AccountKey=Xby8")
    bad_az = AzureBlobStore(
        azure_settings_from_env(dict(rig_env, AZURE_STORAGE_CONNECTION_STRING=bad_key)), azure_container.container
    )
    with pytest.raises(CredentialsError) as exc:
        bad_az.read_range("there", 0, 3)
    assert "Xby8" not in str(exc.value)
    assert az.read_range("there", 2, 3) == b"nte"

    # (a PUT into a missing bucket is not tested: SeaweedFS creates the bucket for an admin key; the copier
    # checks the bucket with a listing before it writes anything)
    bad_s3 = S3Store(
        s3_settings_from_env(dict(rig_env, AWS_SECRET_ACCESS_KEY="wrong-secret-value")), s3_bucket.container
    )
    with pytest.raises(CredentialsError) as exc2:
        bad_s3.put("k", b"x", md5=hashlib.md5(b"x").digest())
    assert "wrong-secret-value" not in str(exc2.value)
    with pytest.raises(CorruptedTransferError, match="checksum"):
        s3_bucket.put("k", b"y", md5=hashlib.md5(b"x").digest())
    assert s3_bucket.head("k") is None


def test_direct_path_retries_a_store_that_is_briefly_down(rig_env, s3_bucket) -> None:
    """A refused connection is retried with backoff, then reported as the store being unreachable (transient)."""
    from hdh_migrate.errors import StoreUnavailableError

    down = S3Store(s3_settings_from_env(dict(rig_env, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")), s3_bucket.container)
    assert down.transport == "direct"
    with pytest.raises(StoreUnavailableError) as exc:
        down.put("k", b"x", md5=hashlib.md5(b"x").digest())
    assert "127.0.0.1:9" in str(exc.value)


@pytest.mark.parametrize("direct", ["1", "0"])
def test_s3_open_read_gives_properties_and_bytes_in_one_go(s3_bucket, monkeypatch, direct: str) -> None:
    """What a full verification reads: the metadata the copier recorded and every byte, or None if absent."""
    monkeypatch.setenv("HDH_DIRECT_HTTP", direct)
    st = S3Store(s3_bucket.settings, s3_bucket.container)
    data = payload(3 * 1024 * 1024 + 5, seed=9)
    st.put("v/obj", data, content_type="text/csv", metadata={"hdh-sha256": "abc"}, md5=hashlib.md5(data).digest())
    info, chunks = st.open_read("v/obj", chunk_size=1024 * 1024)
    assert (info.size, info.etag, info.metadata["hdh-sha256"]) == (len(data), hashlib.md5(data).hexdigest(), "abc")
    assert info.content_type == "text/csv" and info.last_modified.tzinfo is not None
    assert b"".join(chunks) == data
    assert st.open_read("v/missing", chunk_size=1024) is None
    # what a verification uses: views of one reused buffer, each hashed before the next is read
    info, views = st.open_read("v/obj", chunk_size=1024 * 1024, reuse_buffer=True)
    h, sizes = hashlib.sha256(), []
    for view in views:
        h.update(view)
        sizes.append(len(view))
    assert h.hexdigest() == hashlib.sha256(data).hexdigest() and sum(sizes) == len(data) == info.size
    # an abandoned stream frees its connection: the store stays usable
    _, partial = st.open_read("v/obj", chunk_size=1024)
    next(partial)
    partial.close()
    assert st.read_range("v/obj", 10, 5) == data[10:15]


def test_azure_direct_listing_is_the_sdk_listing(azure_container, monkeypatch) -> None:
    """The streamed REST listing yields exactly what the SDK's does: names that need escaping, metadata,
    Content-MD5, content types, sizes, etags and dates, across page boundaries."""
    names = ["t/a b.bin", "t/ü/é.csv", "t/100%25 literal", "t/a+b&c<d>'\"", "t/deep/x/y/z", "t/empty"]
    for i, n in enumerate(names):
        data = payload(i * 100, seed=i)
        azure_container.put(
            n,
            data,
            content_type=f"text/x-{i}",
            metadata={"origin": "snds", "n": str(i)},
            md5=hashlib.md5(data).digest() if data else None,
        )
    direct_store = AzureBlobStore(azure_container.settings, azure_container.container)
    direct_store.page_size = 4
    monkeypatch.setenv("HDH_DIRECT_HTTP", "0")
    sdk_store = AzureBlobStore(azure_container.settings, azure_container.container)
    sdk_store.page_size = 4
    assert direct_store.transport == "direct" and sdk_store.transport == "sdk"
    direct_list, sdk_list = list(direct_store.list("t/")), list(sdk_store.list("t/"))
    assert sorted(o.name for o in direct_list) == sorted(names)
    assert direct_list == sdk_list
    assert all(o.metadata == {"origin": "snds", "n": str(names.index(o.name))} for o in direct_list)


def test_azure_direct_head_is_the_sdk_head(azure_container, monkeypatch) -> None:
    """Blob properties read by a direct HEAD equal the SDK's: size, etag, date, type, Content-MD5, metadata."""
    data = payload(1000, seed=3)
    azure_container.put(
        "h/ü é.bin",
        data,
        content_type="text/csv",
        metadata={"Origin": "snds", "hdi_isfolder": "x"},
        md5=hashlib.md5(data).digest(),
    )
    azure_container.put("h/plain", b"", content_type=None)
    direct_store = AzureBlobStore(azure_container.settings, azure_container.container)
    monkeypatch.setenv("HDH_DIRECT_HTTP", "0")
    sdk_store = AzureBlobStore(azure_container.settings, azure_container.container)
    assert direct_store.transport == "direct" and sdk_store.transport == "sdk"
    for name in ("h/ü é.bin", "h/plain"):
        assert direct_store.head(name) == sdk_store.head(name)
    assert direct_store.head("h/ü é.bin").metadata == {"Origin": "snds", "hdi_isfolder": "x"}
    assert direct_store.head("h/missing") is None and sdk_store.head("h/missing") is None


def test_s3_direct_control_plane_is_boto3s(s3_bucket, monkeypatch) -> None:
    """Listings (names that need escaping, across pages), HEAD and unfinished uploads read the same through the
    direct path as through boto3, and a copy never builds the boto3 client."""
    names = ["t/a b.bin", "t/ü/é.csv", "t/100%25 literal", "t/a+b&c<d>'\"", "t/deep/x/y/z", "t/empty"]
    direct_store = S3Store(s3_bucket.settings, s3_bucket.container)
    direct_store.page_size = 4
    for i, n in enumerate(names):
        data = payload(i * 100, seed=i)
        direct_store.put(n, data, content_type=f"text/x-{i}", metadata={"n": str(i)}, md5=hashlib.md5(data).digest())
    uploads = {direct_store.start_multipart(n, content_type=None, metadata={"k": "v"}): n for n in names[:3]}
    monkeypatch.setenv("HDH_DIRECT_HTTP", "0")
    sdk_store = S3Store(s3_bucket.settings, s3_bucket.container)
    sdk_store.page_size = 4
    assert direct_store.transport == "direct" and sdk_store.transport == "sdk"
    direct_list = list(direct_store.list("t/"))
    assert sorted(o.name for o in direct_list) == sorted(names)
    assert direct_list == list(sdk_store.list("t/"))
    assert all(direct_store.head(n) == sdk_store.head(n) for n in names)
    got = sorted(direct_store.list_multipart_uploads("t/"))
    assert got == sorted(sdk_store.list_multipart_uploads("t/"))
    assert {u: k for k, u, _ in got} == uploads
    for upload_id, key in uploads.items():
        direct_store.abort_multipart(key, upload_id)
    assert list(direct_store.list_multipart_uploads("t/")) == []
    assert not direct_store._sdk.built  # everything above went through the direct path


def test_s3_direct_multipart_and_metadata_rewrite(s3_bucket) -> None:
    """The multipart calls and the in-place metadata rewrite, on the direct path: the object, its ETag and
    its new metadata are what S3 promises; completing with a wrong part is refused with a typed error."""
    st = S3Store(s3_bucket.settings, s3_bucket.container)
    part1, part2 = payload(5 * 1024 * 1024, seed=1), payload(1234, seed=2)
    upload = st.start_multipart("mp/obj & more", content_type="application/x-parquet", metadata={"stage": "1"})
    parts = [
        st.upload_part("mp/obj & more", upload, i, d, md5=hashlib.md5(d).digest(), crc32c=crc32c(d))
        for i, d in enumerate((part1, part2), start=1)
    ]
    done = st.complete_multipart("mp/obj & more", upload, parts)
    expected = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest() + "-2"
    assert done.etag == expected
    st.replace_metadata(
        "mp/obj & more",
        size=len(part1) + len(part2),
        content_type="application/x-parquet",
        metadata={"stage": "2", "hdh-sha256": "f" * 64},
    )
    info = st.head("mp/obj & more")
    assert info.metadata == {"stage": "2", "hdh-sha256": "f" * 64} and info.content_type == "application/x-parquet"
    assert st.read_range("mp/obj & more", len(part1) - 2, 4) == part1[-2:] + part2[:2]
    upload = st.start_multipart("mp/bad", content_type=None, metadata={})
    good = st.upload_part("mp/bad", upload, 1, part1, md5=hashlib.md5(part1).digest(), crc32c=crc32c(part1))
    with pytest.raises(Exception) as exc:
        st.complete_multipart("mp/bad", upload, [dict(good, ETag='"' + "0" * 32 + '"')])
    assert type(exc.value).__module__.startswith("hdh_migrate")  # typed, not a raw parser or HTTP error
    st.abort_multipart("mp/bad", upload)
    st.abort_multipart("mp/bad", upload)  # twice: an upload already gone is not an error
    assert not st._sdk.built


def test_source_with_a_read_list_sas_only(rig_env, azure_container) -> None:
    """The production shape of the source side: an account URL and a read/list SAS (no key); a wrong
    signature is a credentials error, not a crash."""
    from datetime import UTC, datetime, timedelta

    from hdh_migrate.stores.azure.endpoint import DEVSTORE_KEY, container_sas, resolve
    from hdh_migrate.stores.settings import AzureSettings, Secret

    azure_container.put("s/one.bin", b"sovereign", content_type="text/plain")
    now = datetime.now(UTC)
    sas = container_sas(
        "devstoreaccount1",
        DEVSTORE_KEY,
        azure_container.container,
        permission="rl",
        start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=1),
    )
    url = resolve(azure_container.settings).account_url
    st = AzureBlobStore(AzureSettings(account_url=url, sas_token=Secret("?" + sas)), azure_container.container)
    assert st.transport == "direct"
    st.check_access()
    st.check_access("s/")
    st.check_access("nothing/here/")  # an empty prefix is not an error: there is just nothing to copy
    assert [o.name for o in st.list("s/")] == ["s/one.bin"]
    assert st.head("s/one.bin").size == 9 and st.read_range("s/one.bin", 0, 9) == b"sovereign"
    forged = sas.replace("sig=", "sig=A")
    bad = AzureBlobStore(AzureSettings(account_url=url, sas_token=Secret(forged)), azure_container.container)
    with pytest.raises(CredentialsError):
        bad.check_access()
