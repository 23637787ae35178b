"""One conformance suite, run against both real servers (Azurite and SeaweedFS) through the same interface.

This is what lets the copy engine treat both sides alike: listing, ranged and pinned reads, writes with an
integrity header, and typed errors for missing containers and refused credentials.
"""

from __future__ import annotations

import hashlib

import pytest

from hdh_migrate.config import azure_settings_from_env, s3_settings_from_env
from hdh_migrate.errors import (
    BucketNotFoundError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    SourceChangedError,
)
from hdh_migrate.stores import AzureBlobStore, S3Store

from .helpers import payload


@pytest.fixture(params=["azure", "s3"])
def store(request: pytest.FixtureRequest, azure_container: AzureBlobStore, s3_bucket: S3Store):
    return azure_container if request.param == "azure" else s3_bucket


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


def test_listing_streams_across_pages(store) -> None:
    store.page_size = 40  # 105 objects: three pages, the last one partial
    for i in range(105):
        store.put(f"many/{i:05d}", b"")
    names = [o.name for o in store.list("many/")]
    assert sorted(names) == [f"many/{i:05d}" for i in range(105)]


def test_missing_container_or_bucket_is_a_typed_error(rig_env) -> None:
    with pytest.raises(ContainerNotFoundError, match="does not exist"):
        AzureBlobStore(azure_settings_from_env(), "no-such-container").check_access()
    with pytest.raises(BucketNotFoundError, match="does not exist"):
        S3Store(s3_settings_from_env(), "no-such-bucket").check_access()


def test_refused_credentials_are_a_typed_error_without_the_secret(rig_env, s3_bucket: S3Store) -> None:
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


def test_s3_rejects_a_corrupted_part(s3_bucket: S3Store) -> None:
    """The integrity header is really checked: a part whose bytes do not match its MD5/SHA-256 is refused."""
    upload = s3_bucket.start_multipart("k", content_type=None, metadata={})
    good = payload(1000)
    with pytest.raises(CorruptedTransferError, match="checksum"):
        s3_bucket.upload_part("k", upload, 1, good[:-1] + b"!", md5=hashlib.md5(good).digest(), sha256=None)
    s3_bucket.abort_multipart("k", upload)
    assert list(s3_bucket.list_multipart_uploads("k")) == []
