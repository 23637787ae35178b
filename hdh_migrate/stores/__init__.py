"""Storage backends. ``open_source``/``open_destination`` build them from settings and a location."""

from __future__ import annotations

from hdh_migrate.locations import Location, parse_location
from hdh_migrate.stores.azure import AzureBlobStore
from hdh_migrate.stores.interface import ObjectInfo, PutResult, Store
from hdh_migrate.stores.s3 import S3Store
from hdh_migrate.stores.settings import AzureSettings, S3Settings, azure_settings_from_env, s3_settings_from_env

__all__ = [
    "AzureBlobStore",
    "ObjectInfo",
    "PutResult",
    "S3Store",
    "Store",
    "open_store",
]


def open_store(
    location: Location | str,
    *,
    azure: AzureSettings | None = None,
    s3: S3Settings | None = None,
    max_connections: int = 16,
) -> AzureBlobStore | S3Store:
    """A store for a location; settings default to the environment (the CLI's way)."""
    loc = parse_location(location) if isinstance(location, str) else location
    if loc.scheme == "azure":
        return AzureBlobStore(azure or azure_settings_from_env(), loc.container, max_connections=max_connections)
    return S3Store(s3 or s3_settings_from_env(), loc.container, max_connections=max_connections)
