"""Storage backends behind one interface (interface.py), opened by one factory, ``open_store``.

The tree: ``interface.py`` (the core ``Store`` and the optional capabilities a backend declares in its
``Features``), ``azure/`` and ``s3/`` (the two backends, each a store over a direct or an SDK transport),
``direct.py`` with ``httppool.py`` and ``sigv4.py`` (the direct HTTP path both backends share),
``transport.py`` (what every transport shares, and the choice between them), ``settings.py`` (connection
settings from the environment), ``memory.py`` (an in-memory store for unit tests) and ``conformance.py``
(the checks every backend passes, a library any backend's tests can run).
"""

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
    transport: str | None = None,
) -> Store:
    """The store of a location's container or bucket; settings default to the environment (the CLI's way).

    transport: "direct" (single HTTP requests, the fast path of every copy), "sdk" (azure-storage-blob or
    boto3), or None: the direct path unless ``HDH_DIRECT_HTTP=0`` or the settings need the SDK (no explicit
    S3 endpoint, "auto" addressing, a proxy, an Entra ID token...). Asking for "direct" where it cannot
    serve is a ConfigError that says why."""
    loc = parse_location(location) if isinstance(location, str) else location
    if loc.scheme == "azure":
        settings = azure or azure_settings_from_env()
        return AzureBlobStore(settings, loc.container, max_connections=max_connections, transport=transport)
    return S3Store(s3 or s3_settings_from_env(), loc.container, max_connections=max_connections, transport=transport)
