"""The conformance suite as a library: run() reports every check, and each kind of misbehaviour it exists to
catch does fail it (stores broken on purpose, built on the in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hdh_migrate.errors import CredentialsError
from hdh_migrate.stores import conformance
from hdh_migrate.stores.conformance import Target
from hdh_migrate.stores.interface import Features, ObjectInfo
from hdh_migrate.stores.memory import MemoryServer, MemoryStore


def _target(server: MemoryServer, store: MemoryStore) -> Target:
    server.create(store.container)
    return Target(
        store,
        missing=lambda: server.open("no-such-container"),
        refused=lambda: type(store)(server, store.container, secret="wrong-secret"),
        wrong_secret="wrong-secret",
    )


def test_run_reports_every_check() -> None:
    server = MemoryServer("azure")
    outcomes = conformance.run(_target(server, server.open("c")))
    assert list(outcomes) == list(conformance.CHECKS)
    assert outcomes["multipart_upload_and_metadata_rewrite"] == "skipped: the azure store does not declare multipart"
    assert outcomes["read_into_a_reused_buffer"] == "passed"


class IgnoresThePin(MemoryStore):
    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        return super().read_range(name, offset, length)


class LosesTheLastPage(MemoryStore):
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(list(super().list(prefix))[: self.page_size])


class ShowsTheSecret(MemoryStore):
    def check_access(self, prefix: str = "") -> None:
        if self._refused:
            raise CredentialsError("refused: the key wrong-secret is not valid")
        super().check_access(prefix)


class ListsMetadataItDoesNotDeclare(MemoryStore):
    """What the in-memory store did before it was held to S3's listings: a listing as rich as a HEAD."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for o in super().list(prefix):
            yield self.head(o.name) or o


class DeclaresDocumentsItCannotWrite:
    """A core-only store (no DocumentWriter methods) that claims documents."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.kind, self.container, self.page_size = store.kind, store.container, store.page_size
        self.features = Features(documents=True)
        self.describe, self.check_access, self.list, self.head = (
            store.describe,
            store.check_access,
            store.list,
            store.head,
        )
        self.read_range, self.iter_read, self.put, self.delete = (
            store.read_range,
            store.iter_read,
            store.put,
            store.delete,
        )


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (IgnoresThePin, "pinned_read_fails_after_a_rewrite"),
        (LosesTheLastPage, "listing_across_pages"),
        (ShowsTheSecret, "refused_credentials_are_a_typed_error_without_the_secret"),
        (ListsMetadataItDoesNotDeclare, "objects_round_trip"),
    ],
)
def test_a_misbehaving_store_fails_its_check(broken: type[MemoryStore], check: str) -> None:
    server = MemoryServer("s3")
    target = _target(server, broken(server, "c"))
    with pytest.raises(AssertionError):
        conformance.CHECKS[check](target)
    with pytest.raises(AssertionError, match=check):
        conformance.run(target)
    conformance.CHECKS[check](_target(server, MemoryStore(server, "d")))  # the well-behaved store passes


def test_a_capability_declared_but_not_implemented_fails() -> None:
    server = MemoryServer("s3")
    target = _target(server, server.open("c"))
    target.store = DeclaresDocumentsItCannotWrite(server.open("c"))  # type: ignore[assignment]
    with pytest.raises(AssertionError, match="declares documents but does not implement DocumentWriter"):
        conformance.CHECKS["capabilities"](target)
