"""The storage interface every backend implements (rclone's shape: small core + optional capabilities).

The copy and verify logic only ever talks to these methods, so a conformance suite run against both
real servers proves a backend, and a new backend (another source cloud) is one module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a HEAD tells about one object; the inventory manifest holds these fields."""

    name: str
    size: int
    etag: str  # without quotes
    last_modified: datetime
    content_type: str | None = None
    content_md5: bytes | None = None  # raw 16 bytes when the store keeps one
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PutResult:
    etag: str


class Store(Protocol):
    """Operations both sides offer. Names are full object names inside the container/bucket."""

    kind: str  # "azure" or "s3"
    container: str

    def check_access(self, prefix: str = "") -> None:
        """Raise a typed error if the container/bucket is missing or the credentials are refused."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under prefix, paginated and streamed: memory does not grow with the count."""

    def head(self, name: str) -> ObjectInfo | None:
        """The object's properties, or None when it does not exist."""

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        """Bytes [offset, offset+length); with etag, fail with SourceChangedError if the object changed."""

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        """The whole object, streamed in chunks (for verification re-reads)."""

    def put(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        md5: bytes | None = None,
        sha256: bytes | None = None,
    ) -> PutResult:
        """Store data in one request; md5/sha256 let the store reject corrupted bytes."""

    def delete(self, name: str) -> None: ...
