"""The direct path's Azure endpoint and SAS, against the Azure SDK's own."""

from __future__ import annotations

import pytest

from hdh_migrate.stores.settings import Secret


def test_container_sas_is_the_one_the_sdk_signs() -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from hdh_migrate.stores.azure.endpoint import DEVSTORE_KEY, container_sas

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

    from hdh_migrate.stores.azure.endpoint import API_VERSION

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

    from hdh_migrate.stores.azure.endpoint import resolve
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
    from hdh_migrate.stores.azure.endpoint import resolve
    from hdh_migrate.stores.settings import AzureSettings

    assert resolve(AzureSettings(account_url="https://hdhprod.blob.core.windows.net")) is None
