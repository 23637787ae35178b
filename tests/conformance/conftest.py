"""The stores the conformance suite (hdh_migrate/stores/conformance.py) runs against.

The real servers through both transports: Azurite, SeaweedFS with its profile's part checksum (crc32c) and
with the two others (the checksum decides what a corrupted part is refused by); and the in-memory store in
both flavours, with each part checksum. The checks of one target share its container or bucket (each check
writes under a prefix of its own): one bucket per target, not per check, keeps SeaweedFS's volume churn
(and most of the suite's time) down.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hdh_migrate.locations import Location
from hdh_migrate.stores import AzureBlobStore, S3Store, open_store
from hdh_migrate.stores.conformance import Target
from hdh_migrate.stores.memory import MemoryServer
from hdh_migrate.stores.settings import Secret, azure_settings_from_env, s3_settings_from_env

REAL = ["azurite-direct", "azurite-sdk", "seaweedfs-direct", "seaweedfs-sdk", "seaweedfs-md5", "seaweedfs-sha256"]
MEMORY = ["memory-azure", "memory-s3-md5", "memory-s3-sha256", "memory-s3-crc32c"]


def _azurite(env: dict[str, str], container: str, transport: str) -> Target:
    settings = azure_settings_from_env(env)
    conn = env["AZURE_STORAGE_CONNECTION_STRING"]
    key = next(p.split("=", 1)[1] for p in conn.split(";") if p.startswith("AccountKey="))
    wrong = "X" + key[1:]
    bad = azure_settings_from_env(dict(env, AZURE_STORAGE_CONNECTION_STRING=conn.replace(key, wrong)))
    store = open_store(Location("azure", container, ""), azure=settings, transport=transport)
    assert isinstance(store, AzureBlobStore) and store.transport == transport
    store.create_container()
    return Target(
        store,
        missing=lambda: open_store(Location("azure", "no-such-container", ""), azure=settings, transport=transport),
        refused=lambda: open_store(Location("azure", container, ""), azure=bad, transport=transport),
        wrong_secret=wrong,
    )


def _seaweedfs(env: dict[str, str], bucket: str, transport: str, part_checksum: str | None = None) -> Target:
    settings = s3_settings_from_env(env).with_overrides(part_checksum=part_checksum)
    wrong = "wrong-secret-value"
    bad = settings.with_overrides(secret_access_key=Secret(wrong))
    store = open_store(Location("s3", bucket, ""), s3=settings, transport=transport)
    assert isinstance(store, S3Store) and store.transport == transport
    store.create_bucket()
    return Target(
        store,
        missing=lambda: open_store(Location("s3", "no-such-bucket", ""), s3=settings, transport=transport),
        refused=lambda: open_store(Location("s3", bucket, ""), s3=bad, transport=transport),
        wrong_secret=wrong,
    )


def _real(name: str, env: dict[str, str]) -> Target:
    place = f"conf-{uuid.uuid4().hex[:12]}"
    if name.startswith("azurite-"):
        return _azurite(env, place, name.removeprefix("azurite-"))
    if name in ("seaweedfs-direct", "seaweedfs-sdk"):
        return _seaweedfs(env, place, name.removeprefix("seaweedfs-"))
    return _seaweedfs(env, place, "direct", part_checksum=name.removeprefix("seaweedfs-"))


def _memory(kind: str, part_checksum: str = "md5") -> Target:
    server = MemoryServer(kind, part_checksum=part_checksum)
    store = server.create("conformance")
    wrong = "wrong-memory-secret"
    return Target(
        store,
        missing=lambda: server.open("no-such-container"),
        refused=lambda: server.open("conformance", secret=wrong),
        wrong_secret=wrong,
    )


@pytest.fixture(scope="module", params=REAL + MEMORY)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    name: str = request.param
    if name == "memory-azure":
        yield _memory("azure")
    elif name.startswith("memory-s3-"):
        yield _memory("s3", part_checksum=name.removeprefix("memory-s3-"))
    else:
        t = _real(name, request.getfixturevalue("rig_env"))
        yield t
        if isinstance(t.store, AzureBlobStore):
            t.store.delete_container()
        else:
            assert isinstance(t.store, S3Store)
            t.store.delete_bucket()
