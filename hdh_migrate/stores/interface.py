"""The storage interface every backend implements (rclone's shape: small core + optional capabilities).

The copy and verify logic only ever talks to these methods, so a conformance suite run against both
real servers proves a backend, and a new backend (another source cloud) is one module.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
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


def info_from_headers(
    name: str, h: Mapping[str, str], *, meta_prefix: str, lower_meta: bool = False, content_md5: bool = False
) -> ObjectInfo:
    """ObjectInfo from the headers of a HEAD or GET answer, as each SDK would build it: user metadata under
    meta_prefix (lowercased for S3, as boto3 gives it; as stored for Azure), Content-MD5 where the store
    keeps one (Azure)."""
    md5 = h.get("Content-MD5") if content_md5 else None
    n = len(meta_prefix)
    return ObjectInfo(
        name=name,
        size=int(h["Content-Length"]),
        etag=h["ETag"].strip('"'),
        last_modified=parsedate_to_datetime(h["Last-Modified"]),
        content_type=h.get("Content-Type"),
        content_md5=base64.b64decode(md5) if md5 else None,
        metadata={
            (k[n:].lower() if lower_meta else k[n:]): v for k, v in h.items() if k.lower().startswith(meta_prefix)
        },
    )


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
