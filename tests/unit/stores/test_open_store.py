"""open_store: the backend from the location, the transport chosen once, the features from the provider profile.

No request is sent: opening a store builds its transport, never a connection.
"""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from hdh_migrate.errors import ConfigError
from hdh_migrate.stores import AzureBlobStore, S3Store, open_store
from hdh_migrate.stores.interface import Features
from hdh_migrate.stores.settings import AzureSettings, Secret, s3_settings

AZURITE = AzureSettings(
    connection_string=Secret(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
)
SEAWEEDFS = s3_settings(
    provider="seaweedfs",
    overrides={
        "endpoint_url": "http://127.0.0.1:8333",
        "access_key_id": "id",
        "secret_access_key": Secret("not-a-real-secret"),
    },
)


@pytest.fixture(autouse=True)
def _no_proxy_no_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HDH_DIRECT_HTTP", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_the_location_picks_the_backend_and_the_direct_path_by_default() -> None:
    az = open_store("azure://hdh-src/data/", azure=AZURITE)
    s3 = open_store("s3://hdh-dst/x/", s3=SEAWEEDFS)
    assert isinstance(az, AzureBlobStore) and (az.container, az.transport) == ("hdh-src", "direct")
    assert isinstance(s3, S3Store) and (s3.container, s3.transport) == ("hdh-dst", "direct")


@pytest.mark.parametrize("location", ["azure://hdh-src/", "s3://hdh-dst/"])
def test_transport_asked_for_or_switched_off(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"azure": AZURITE, "s3": SEAWEEDFS}
    assert open_store(location, **settings, transport="sdk").transport == "sdk"  # type: ignore[attr-defined]
    monkeypatch.setenv("HDH_DIRECT_HTTP", "0")
    assert open_store(location, **settings).transport == "sdk"  # type: ignore[attr-defined]
    assert open_store(location, **settings, transport="direct").transport == "direct"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="unknown store transport"):
        open_store(location, **settings, transport="urllib3")


def test_settings_the_direct_path_cannot_serve_keep_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint (AWS itself), "auto" addressing, a proxy: the SDK by default, a ConfigError saying why if
    "direct" is asked for."""
    cases = {
        "AWS itself": (replace(SEAWEEDFS, endpoint_url=None), "no endpoint"),
        "auto addressing": (replace(SEAWEEDFS, addressing_style="auto"), "auto"),
    }
    for settings, why in cases.values():
        assert open_store("s3://hdh-dst/", s3=settings).transport == "sdk"  # type: ignore[attr-defined]
        with pytest.raises(ConfigError, match=why):
            open_store("s3://hdh-dst/", s3=settings, transport="direct")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert open_store("s3://hdh-dst/", s3=SEAWEEDFS).transport == "sdk"  # type: ignore[attr-defined]
    assert open_store("azure://hdh-src/", azure=AZURITE).transport == "sdk"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="proxy") as exc:
        open_store("azure://hdh-src/", azure=AZURITE, transport="direct")
    assert "a2V5" not in str(exc.value)


def test_features_are_declared_from_the_provider_profile() -> None:
    az = open_store("azure://hdh-src/", azure=AZURITE)
    assert az.features == Features(read_into=True, keeps_content_md5=True, list_metadata=True)
    s3 = open_store("s3://hdh-dst/", s3=SEAWEEDFS)
    expected = Features(
        open_read=True, multipart=True, replace_metadata=True, documents=True, etag_is_md5=True, part_checksum="crc32c"
    )
    assert s3.features == expected
    generic = open_store("s3://hdh-dst/", s3=SEAWEEDFS.with_overrides(part_checksum="md5", max_parts=1000))
    assert (generic.features.part_checksum, generic.features.max_parts) == ("md5", 1000)
    key = Secret(base64.b64encode(bytes(32)).decode())
    sse_c = open_store("s3://hdh-dst/", s3=SEAWEEDFS.with_overrides(sse="sse-c", sse_c_key=key))
    assert not sse_c.features.etag_is_md5  # an SSE-C object's ETag is not the MD5 of its bytes
