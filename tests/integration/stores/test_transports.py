"""The two transports of each backend, on the real servers: the direct path reads what the SDK reads, never builds
the SDK for the requests of a copy, retries a store that is briefly down, and serves the production shape of
the source (a read/list SAS). What every store does is the conformance suite's (tests/conformance/)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from hdh_migrate.errors import CredentialsError, StoreUnavailableError
from hdh_migrate.locations import Location
from hdh_migrate.stores import AzureBlobStore, S3Store, open_store
from hdh_migrate.stores.azure.endpoint import DEVSTORE_ACCOUNT, DEVSTORE_KEY, container_sas, resolve
from hdh_migrate.stores.settings import AzureSettings, Secret, s3_settings_from_env
from hdh_migrate.transfer.checksums import crc32c
from tests.helpers import payload

# names that need escaping in a URL, in XML, or both
NAMES = ["t/a b.bin", "t/ü/é.csv", "t/100%25 literal", "t/a+b&c<d>'\"", "t/deep/x/y/z", "t/empty"]


def _both(store: AzureBlobStore | S3Store) -> tuple[AzureBlobStore | S3Store, AzureBlobStore | S3Store]:
    loc = Location(store.kind, store.container, "")
    settings = {store.kind: store.settings}
    direct, sdk = (open_store(loc, **settings, transport=t) for t in ("direct", "sdk"))  # type: ignore[arg-type]
    assert (direct.transport, sdk.transport) == ("direct", "sdk")  # type: ignore[attr-defined]
    direct.page_size = sdk.page_size = 4  # across page boundaries
    return direct, sdk  # type: ignore[return-value]


def test_azure_direct_listing_and_heads_are_the_sdks(azure_container: AzureBlobStore) -> None:
    """The streamed REST listing and the direct HEAD give exactly what the SDK's do: names that need escaping,
    metadata (its case kept), Content-MD5, content types, sizes, etags and dates, across page boundaries."""
    for i, n in enumerate(NAMES):
        data = payload(i * 100, seed=i)
        azure_container.put(
            n,
            data,
            content_type=f"text/x-{i}",
            metadata={"Origin": "snds", "n": str(i)},
            md5=hashlib.md5(data).digest() if data else None,
        )
    direct, sdk = _both(azure_container)
    listed = list(direct.list("t/"))
    assert sorted(o.name for o in listed) == sorted(NAMES)
    assert listed == list(sdk.list("t/"))
    assert all(o.metadata == {"Origin": "snds", "n": str(NAMES.index(o.name))} for o in listed)
    for name in [*NAMES, "t/missing"]:
        assert direct.head(name) == sdk.head(name)


def test_s3_direct_control_plane_is_boto3s(s3_bucket: S3Store) -> None:
    """Listings, HEADs and unfinished uploads read the same through the direct path as through boto3; the
    requests of a copy (these, the multipart calls, the in-place metadata rewrite) never build boto3's client."""
    direct, sdk = _both(s3_bucket)
    for i, n in enumerate(NAMES):
        data = payload(i * 100, seed=i)
        direct.put(n, data, content_type=f"text/x-{i}", metadata={"n": str(i)}, md5=hashlib.md5(data).digest())
    uploads = {direct.start_multipart(n, content_type=None, metadata={"k": "v"}): n for n in NAMES[:3]}
    listed = list(direct.list("t/"))
    assert sorted(o.name for o in listed) == sorted(NAMES)
    assert listed == list(sdk.list("t/"))
    assert all(direct.head(n) == sdk.head(n) for n in [*NAMES, "t/missing"])
    got = sorted(direct.list_multipart_uploads("t/"))
    assert got == sorted(sdk.list_multipart_uploads("t/")) and {u: k for k, u, _ in got} == uploads
    upload_id, name = next(iter(uploads.items()))
    data = payload(1000)
    part = direct.upload_part(name, upload_id, 1, data, md5=hashlib.md5(data).digest(), crc32c=crc32c(data))
    direct.complete_multipart(name, upload_id, [part])
    direct.replace_metadata(name, size=len(data), content_type="text/csv", metadata={"hdh-sha256": "f" * 64})
    assert sdk.head(name).metadata == {"hdh-sha256": "f" * 64}  # type: ignore[union-attr]
    for upload_id, name in list(uploads.items())[1:]:
        direct.abort_multipart(name, upload_id)
    assert list(direct.list_multipart_uploads("t/")) == []
    assert not direct._sdk.built  # type: ignore[attr-defined]  # everything above went through the direct path


def test_direct_path_retries_a_store_that_is_briefly_down(rig_env: dict[str, str]) -> None:
    """A refused connection is retried with backoff, then reported as the store being unreachable (transient)."""
    down = S3Store(s3_settings_from_env(dict(rig_env, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")), "any-bucket")
    assert down.transport == "direct"
    with pytest.raises(StoreUnavailableError) as exc:
        down.put("k", b"x", md5=hashlib.md5(b"x").digest())
    assert "127.0.0.1:9" in str(exc.value)


def test_the_sdk_transport_reports_a_store_that_is_down(rig_env: dict[str, str]) -> None:
    settings = s3_settings_from_env(dict(rig_env, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9"))
    down = S3Store(settings, "any-bucket", transport="sdk")
    with pytest.raises(StoreUnavailableError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:9"):
        down.check_access()


def test_source_with_a_read_list_sas_only(azure_container: AzureBlobStore) -> None:
    """The production shape of the source side: an account URL and a read/list SAS (no key), served by the
    direct path; a forged signature is a credentials error, not a crash."""
    azure_container.put("s/one.bin", b"sovereign", content_type="text/plain")
    now = datetime.now(UTC)
    sas = container_sas(
        DEVSTORE_ACCOUNT,
        DEVSTORE_KEY,
        azure_container.container,
        permission="rl",
        start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=1),
    )
    url = resolve(azure_container.settings).account_url  # type: ignore[union-attr]
    loc = Location("azure", azure_container.container, "")
    st = open_store(loc, azure=AzureSettings(account_url=url, sas_token=Secret("?" + sas)))
    assert st.transport == "direct"  # type: ignore[attr-defined]
    st.check_access()
    st.check_access("s/")
    st.check_access("nothing/here/")  # an empty prefix is not an error: there is just nothing to copy
    assert [o.name for o in st.list("s/")] == ["s/one.bin"]
    assert st.head("s/one.bin").size == 9 and st.read_range("s/one.bin", 0, 9) == b"sovereign"  # type: ignore[union-attr]
    forged = sas.replace("sig=", "sig=A")
    bad = open_store(loc, azure=AzureSettings(account_url=url, sas_token=Secret(forged)))
    with pytest.raises(CredentialsError) as exc:
        bad.check_access()
    assert forged not in str(exc.value)
