"""The storage interface every backend implements: a small core, and optional capabilities declared.

rclone's shape: every store offers the core (``Store``: list, head, ranged and streamed reads, one-request
writes, delete); what only some stores can do is a separate small protocol (``ReadInto``, ``OpenRead``,
``MultipartWriter``, ``MetadataRewriter``, ``DocumentWriter``), and each backend declares which it
implements in its ``features``. The engine asks "can this store do X?" (``store.features.multipart``),
never "which store is this?". A conformance suite (``stores/conformance.py``) runs the same checks
against every backend, real servers and the in-memory store alike.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

from hdh_migrate.errors import ConfigError


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
    version_id: str | None = None


@dataclass(frozen=True)
class Features:
    """What a store can do beyond the core, and how it behaves where stores differ. Declared by each backend
    (from its provider profile, for S3), read by the engine."""

    #: ReadInto: a ranged read straight into the caller's buffer (the copier reuses its part buffers)
    read_into: bool = False
    #: OpenRead: an object's properties and a stream of its bytes from one request (verification)
    open_read: bool = False
    #: MultipartWriter: an object written in parts, each checked by the store, and resumable
    multipart: bool = False
    #: MetadataRewriter: an object's metadata replaced in place (the copier records the whole-object hash)
    replace_metadata: bool = False
    #: DocumentWriter: small documents written with store-side encryption and, where enabled, a retention lock
    documents: bool = False
    #: the ETag of an object written in one request is the MD5 of its bytes (S3 without SSE-C or SSE-KMS)
    etag_is_md5: bool = False
    #: the integrity header each part carries and the store checks: "md5", "sha256" or "crc32c"
    part_checksum: str = "md5"
    #: the store keeps the Content-MD5 given when an object is written and reports it (Azure)
    keeps_content_md5: bool = False
    #: a listing carries each object's content type, Content-MD5 and user metadata, as a HEAD does (Azure);
    #: without it (S3) a listing gives name, size, ETag and date only
    list_metadata: bool = False
    #: S3's multipart limits, as the provider enforces them
    max_parts: int = 10_000


class Store(Protocol):
    """The core every backend offers. Names are full object names inside the container or bucket."""

    kind: str  # "azure" or "s3": the URL scheme of its locations
    container: str
    features: Features
    page_size: int

    def describe(self) -> str:
        """Where the store is, for messages and reports: an endpoint, never a credential."""
        ...

    def check_access(self, prefix: str = "") -> None:
        """Raise a typed error if the container/bucket is missing or the credentials are refused."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under prefix, paginated and streamed: memory does not grow with the count."""
        ...

    def head(self, name: str) -> ObjectInfo | None:
        """The object's properties, or None when it does not exist."""
        ...

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        """Bytes [offset, offset+length); with etag, fail with SourceChangedError if the object changed."""
        ...

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        """The whole object, streamed in chunks (for verification re-reads)."""
        ...

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
        ...

    def delete(self, name: str) -> None: ...


@runtime_checkable
class ReadInto(Protocol):
    def read_range_into(self, name: str, offset: int, into: memoryview, *, etag: str | None = None) -> None:
        """Exactly len(into) bytes from offset into the caller's buffer (pinned to etag when given)."""
        ...


@runtime_checkable
class OpenRead(Protocol):
    def open_read(
        self, name: str, *, chunk_size: int, reuse_buffer: bool = False
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """The object's properties and a stream of its bytes from one request (None when it does not exist).
        reuse_buffer: the chunks are views of one buffer, each valid until the next is asked for."""
        ...


@runtime_checkable
class MultipartWriter(Protocol):
    def start_multipart(self, name: str, *, content_type: str | None, metadata: dict[str, str]) -> str: ...

    def upload_part(
        self,
        name: str,
        upload_id: str,
        number: int,
        data: bytes | memoryview,
        *,
        md5: bytes | None,
        sha256: bytes | None = None,
        crc32c: bytes | None = None,
    ) -> dict[str, Any]:
        """Send one part with the store's integrity header; returns what completing the upload needs for it."""
        ...

    def complete_multipart(self, name: str, upload_id: str, parts: list[dict[str, Any]]) -> PutResult: ...

    def abort_multipart(self, name: str, upload_id: str) -> None: ...

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under prefix."""
        ...

    def list_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        """The stored parts of an unfinished upload: PartNumber, Size, ETag."""
        ...


@runtime_checkable
class MetadataRewriter(Protocol):
    def replace_metadata(self, name: str, *, size: int, content_type: str | None, metadata: dict[str, str]) -> None:
        """Replace the object's metadata in place (its bytes unchanged)."""
        ...


@runtime_checkable
class DocumentWriter(Protocol):
    """hdh-migrate's own small documents (routing documents, audit reports) at the destination."""

    def put_document(
        self, name: str, body: bytes, *, content_type: str, retain_until: datetime | None = None, lock_mode: str = ""
    ) -> PutResult:
        """Write body with Content-MD5 and the store's own encryption (never a customer key, so that consumers
        and auditors can read it), locked until retain_until when given."""
        ...

    def read_document(self, name: str) -> bytes | None:
        """The document's bytes, or None when it does not exist."""
        ...

    def object_lock(self) -> tuple[bool, str]:
        """Whether documents can be locked here (S3 Object Lock enabled on the bucket), and why not."""
        ...

    def report_facts(self) -> dict[str, Any]:
        """What an audit report says of this store: provider, endpoint, encryption mode and key identity."""
        ...


def capability(store: Store, name: str, protocol: type[Any]) -> Any:
    """The store as the capability it declares, or a ConfigError naming what is missing."""
    if not getattr(store.features, name) or not isinstance(store, protocol):
        raise ConfigError(
            f"the {store.kind} store {store.describe()} cannot do {name.replace('_', ' ')}",
            hint="use a destination whose backend declares it (see stores/interface.py, Features)",
        )
    return store


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
