"""An in-memory store: every capability of the interface, kept in this process, for fast unit tests.

It behaves as the real servers do where the engine relies on it, and the conformance suite holds it to
that (``stores/conformance.py`` runs the same checks against it, Azurite and SeaweedFS): an ETag changes
when an object is rewritten, a read pinned to an old ETag fails as a changed source, a body whose
Content-MD5 / SHA-256 / CRC32C does not match is refused as a corrupted transfer, a multipart ETag is the
MD5 of the part MD5s, S3 metadata keys come back lowercased, Azure keeps a Content-MD5 given at write.

It never stands in for the real servers as proof: integration tests run on the rig. What it adds is what
the servers cannot do on demand: ``MemoryServer.inject`` makes the next matching request fail with a given
error (a throttled part, a store that drops), ``MemoryServer.rot`` changes stored bytes while leaving size,
ETag and metadata alone (bit rot at rest).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hdh_migrate.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    HdhMigrateError,
    ObjectNotFoundError,
    SourceChangedError,
)
from hdh_migrate.stores.interface import Features, ObjectInfo, PutResult

_clock = itertools.count(1)


def _crc32c(data: bytes | memoryview) -> bytes:
    import crc32c

    return crc32c.crc32c(data).to_bytes(4, "big")


@dataclass
class _Object:
    data: bytes
    etag: str
    last_modified: datetime
    content_type: str | None
    content_md5: bytes | None
    metadata: dict[str, str]
    version_id: str
    retain_until: datetime | None = None

    def info(self, name: str) -> ObjectInfo:
        size, meta = len(self.data), dict(self.metadata)
        return ObjectInfo(name, size, self.etag, self.last_modified, self.content_type, self.content_md5, meta)


@dataclass
class _Upload:
    key: str
    content_type: str | None
    metadata: dict[str, str]
    initiated: datetime
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Fault:
    op: str
    name: str | None
    error: Callable[[], HdhMigrateError]
    times: int


class MemoryServer:
    """One account (kind "azure") or endpoint (kind "s3"): its containers, shared by every store opened on it."""

    def __init__(
        self,
        kind: str = "s3",
        *,
        part_checksum: str = "md5",
        etag_is_md5: bool = True,
        object_lock: bool = False,
        secret: str = "memory-secret",
    ) -> None:
        if kind not in ("azure", "s3"):
            raise ValueError(kind)
        self.kind = kind
        self.features = Features(
            read_into=True,
            open_read=True,
            multipart=kind == "s3",
            replace_metadata=kind == "s3",
            documents=kind == "s3",
            etag_is_md5=kind == "s3" and etag_is_md5,
            part_checksum=part_checksum,
            keeps_content_md5=kind == "azure",
            list_metadata=kind == "azure",
        )
        self.object_lock_enabled = object_lock
        self.secret = secret  # what a store must be opened with (open's secret=None: this one)
        self.containers: dict[str, dict[str, _Object]] = {}
        self.uploads: dict[str, dict[str, _Upload]] = {}
        self.lock = threading.RLock()
        self._faults: list[_Fault] = []
        self.requests: dict[str, int] = {}

    def create(self, container: str) -> MemoryStore:
        with self.lock:
            self.containers.setdefault(container, {})
            self.uploads.setdefault(container, {})
        return self.open(container)

    def open(self, container: str, *, secret: str | None = None) -> MemoryStore:
        """A store on container; with another secret than the server's, every request is refused."""
        return MemoryStore(self, container, secret=secret)

    # -- test hooks -------------------------------------------------------------------------------------
    def inject(self, op: str, error: Callable[[], HdhMigrateError], *, name: str | None = None, times: int = 1) -> None:
        """The next ``times`` requests ``op`` (``read``, ``put``, ``upload_part``, ``head``, ``list``...) on
        ``name`` (any name when None) fail with ``error()``."""
        with self.lock:
            self._faults.append(_Fault(op, name, error, times))

    def rot(self, container: str, name: str, offset: int = 0) -> None:
        """Flip one stored byte; size, ETag and metadata stay as they were (what bit rot at rest looks like)."""
        with self.lock:
            obj = self.containers[container][name]
            data = bytearray(obj.data)
            data[offset] ^= 0xFF
            obj.data = bytes(data)

    def _request(self, op: str, name: str | None) -> None:
        with self.lock:
            self.requests[op] = self.requests.get(op, 0) + 1
            for f in self._faults:
                if f.op == op and f.times > 0 and (f.name is None or f.name == name):
                    f.times -= 1
                    raise f.error()


class MemoryStore:
    """A container (Azure) or bucket (S3) of a MemoryServer."""

    page_size = 1000

    def __init__(self, server: MemoryServer, container: str, *, secret: str | None = None) -> None:
        self.server = server
        self.kind = server.kind
        self.container = container
        self.features = server.features
        self._refused = secret is not None and secret != server.secret

    def describe(self) -> str:
        return f"memory ({self.kind})"

    # -- helpers ----------------------------------------------------------------------------------------
    def _request(self, op: str, name: str | None) -> None:
        """Count the request and fail it as an injected fault says; refused credentials first, as a server."""
        if self._refused:
            raise CredentialsError(
                f"{self.describe()} refused the credentials for {self.kind}://{self.container}",
                hint="check the secret the store was opened with",
            )
        self.server._request(op, name)

    def _objects(self) -> dict[str, _Object]:
        objects = self.server.containers.get(self.container)
        if objects is None:
            if self.kind == "azure":
                raise ContainerNotFoundError(f"Azure container {self.container!r} does not exist on {self.describe()}")
            raise BucketNotFoundError(f"S3 bucket {self.container!r} does not exist on {self.describe()}")
        return objects

    def _get(self, name: str) -> _Object:
        obj = self._objects().get(name)
        if obj is None:
            raise ObjectNotFoundError(f"{self.kind}://{self.container}/{name} does not exist")
        return obj

    def _pinned(self, name: str, etag: str | None) -> _Object:
        obj = self._get(name)
        if etag is not None and obj.etag != etag:
            raise SourceChangedError(f"{self.kind}://{self.container}/{name} changed while it was being read")
        return obj

    def _etag(self, data: bytes) -> str:
        if self.features.etag_is_md5:
            return hashlib.md5(data, usedforsecurity=False).hexdigest()
        if self.kind == "azure":
            return f"0x8D{next(_clock):014X}"
        return uuid.uuid4().hex

    def _meta(self, metadata: dict[str, str] | None) -> dict[str, str]:
        meta = dict(metadata or {})
        return {k.lower(): v for k, v in meta.items()} if self.kind == "s3" else meta

    def _store(self, name: str, obj: _Object) -> PutResult:
        old = self._objects().get(name)
        now = datetime.now(UTC)
        if old is not None and old.retain_until is not None and old.retain_until > now:
            raise AccessDeniedError(f"{self.kind}://{self.container}/{name} is locked until {old.retain_until}")
        self._objects()[name] = obj
        return PutResult(obj.etag, obj.version_id)

    def _new(self, data: bytes, content_type: str | None, metadata: dict[str, str] | None, **kw: Any) -> _Object:
        return _Object(
            data=data,
            etag=kw.pop("etag", None) or self._etag(data),
            last_modified=datetime.now(UTC),
            content_type=content_type or "application/octet-stream",
            content_md5=kw.pop("content_md5", None),
            metadata=self._meta(metadata),
            version_id=uuid.uuid4().hex,
            **kw,
        )

    def _check_integrity(
        self, where: str, data: bytes | memoryview, md5: bytes | None, sha256: bytes | None, crc: bytes | None = None
    ) -> tuple[str, bytes] | None:
        """The one checksum the real store receives, checked against data: as the S3 store picks it, the
        provider's part checksum when given, else MD5 (Azure: MD5 only). Returns (algorithm, value), or None
        when none was given."""
        algo = self.features.part_checksum if self.kind == "s3" else "md5"
        sent = {"sha256": sha256, "crc32c": crc}.get(algo)
        if sent is None:
            algo, sent = "md5", md5
        if sent is None:
            return None
        hashers = {
            "md5": lambda: hashlib.md5(data, usedforsecurity=False).digest(),
            "sha256": lambda: hashlib.sha256(data).digest(),
            "crc32c": lambda: _crc32c(data),
        }
        if sent != hashers[algo]():
            raise CorruptedTransferError(f"the store rejected the bytes sent for {where}: checksum mismatch")
        return algo, sent

    # -- the core ---------------------------------------------------------------------------------------
    def check_access(self, prefix: str = "") -> None:
        self._request("check_access", None)
        with self.server.lock:
            self._objects()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        marker = ""
        while True:
            self._request("list", None)
            with self.server.lock:
                names = sorted(n for n in self._objects() if n.startswith(prefix) and n > marker)[: self.page_size]
                page = [self._listed(n, self._objects()[n]) for n in names]
            yield from page
            if len(names) < self.page_size:
                return
            marker = names[-1]

    def _listed(self, name: str, obj: _Object) -> ObjectInfo:
        """What a listing says of an object: all a HEAD says (Azure), or name, size, ETag and date (S3)."""
        if self.features.list_metadata:
            return obj.info(name)
        return ObjectInfo(name, len(obj.data), obj.etag, obj.last_modified)

    def head(self, name: str) -> ObjectInfo | None:
        self._request("head", name)
        with self.server.lock:
            obj = self._objects().get(name)
            return obj.info(name) if obj is not None else None

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if length == 0:
            return b""
        self._request("read", name)
        with self.server.lock:
            return self._pinned(name, etag).data[offset : offset + length]

    def read_range_into(self, name: str, offset: int, into: memoryview, *, etag: str | None = None) -> None:
        if not len(into):
            return
        data = self.read_range(name, offset, len(into), etag=etag)
        if len(data) != len(into):
            raise SourceChangedError(f"{name}: short read at offset {offset}")
        into[:] = data

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        self._request("read", name)
        with self.server.lock:
            data = self._pinned(name, etag).data
        for offset in range(0, len(data), chunk_size):
            yield data[offset : offset + chunk_size]

    def open_read(
        self, name: str, *, chunk_size: int, reuse_buffer: bool = False
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        self._request("read", name)
        with self.server.lock:
            obj = self._objects().get(name)
            if obj is None:
                return None
            info, data = obj.info(name), obj.data
        return info, (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

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
        self._request("put", name)
        data = bytes(data)
        self._check_integrity(f"{self.kind}://{self.container}/{name}", data, md5, sha256)
        keep_md5 = md5 if self.features.keeps_content_md5 else None
        with self.server.lock:
            return self._store(name, self._new(data, content_type, metadata, content_md5=keep_md5))

    def delete(self, name: str) -> None:
        self._request("delete", name)
        with self.server.lock:
            obj = self._get(name)
            if obj.retain_until is not None and obj.retain_until > datetime.now(UTC):
                raise AccessDeniedError(f"{self.kind}://{self.container}/{name} is locked until {obj.retain_until}")
            del self._objects()[name]

    # -- multipart ----------------------------------------------------------------------------------------
    def start_multipart(self, name: str, *, content_type: str | None, metadata: dict[str, str]) -> str:
        self._request("start_multipart", name)
        upload_id = uuid.uuid4().hex
        with self.server.lock:
            self._objects()
            self.server.uploads[self.container][upload_id] = _Upload(
                name, content_type, self._meta(metadata), datetime.now(UTC)
            )
        return upload_id

    def _upload(self, name: str, upload_id: str) -> _Upload:
        up = self.server.uploads.get(self.container, {}).get(upload_id)
        if up is None or up.key != name:
            raise ObjectNotFoundError(f"no multipart upload {upload_id} of {name}")
        return up

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
        self._request("upload_part", name)
        sent = self._check_integrity(f"part {number} of {name}", data, md5, sha256, crc32c)
        if sent is None:
            raise ValueError(f"part {number} of {name}: no checksum for part_checksum={self.features.part_checksum}")
        body = bytes(data)
        with self.server.lock:
            self._upload(name, upload_id).parts[number] = body
        part: dict[str, Any] = {"PartNumber": number, "ETag": f'"{hashlib.md5(body).hexdigest()}"'}
        algo, value = sent
        if algo != "md5":  # what completing the upload must repeat, as the S3 store returns it
            part[{"sha256": "ChecksumSHA256", "crc32c": "ChecksumCRC32C"}[algo]] = base64.b64encode(value).decode()
        return part

    def complete_multipart(self, name: str, upload_id: str, parts: list[dict[str, Any]]) -> PutResult:
        self._request("complete_multipart", name)
        with self.server.lock:
            up = self._upload(name, upload_id)
            numbers = [int(p["PartNumber"]) for p in parts]
            stored = {n: f'"{hashlib.md5(b).hexdigest()}"' for n, b in up.parts.items()}
            if numbers != sorted(numbers) or any(stored.get(int(p["PartNumber"])) != p["ETag"] for p in parts):
                # S3 answers InvalidPart (400), which the S3 store reports as a plain HdhMigrateError
                raise HdhMigrateError(f"S3 error while trying to complete the multipart upload of {name}: InvalidPart")
            md5s = [hashlib.md5(up.parts[n]).digest() for n in numbers]
            etag = f"{hashlib.md5(b''.join(md5s)).hexdigest()}-{len(numbers)}"
            obj = self._new(b"".join(up.parts[n] for n in numbers), up.content_type, up.metadata, etag=etag)
            del self.server.uploads[self.container][upload_id]
            return self._store(name, obj)

    def abort_multipart(self, name: str, upload_id: str) -> None:
        self._request("abort_multipart", name)
        with self.server.lock:
            self.server.uploads.get(self.container, {}).pop(upload_id, None)

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        self._request("list_multipart_uploads", None)
        with self.server.lock:
            self._objects()
            found = [(u.key, uid, u.initiated) for uid, u in self.server.uploads[self.container].items()]
        yield from sorted(f for f in found if f[0].startswith(prefix))

    def list_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        self._request("list_parts", name)
        with self.server.lock:
            up = self._upload(name, upload_id)
            return [
                {"PartNumber": n, "Size": len(b), "ETag": f'"{hashlib.md5(b).hexdigest()}"'}
                for n, b in sorted(up.parts.items())
            ]

    def replace_metadata(self, name: str, *, size: int, content_type: str | None, metadata: dict[str, str]) -> None:
        """As S3's in-place copy: the bytes and ETag stay, content type and metadata are replaced."""
        self._request("replace_metadata", name)
        with self.server.lock:
            obj = self._get(name)
            self._objects()[name] = replace(obj, content_type=content_type, metadata=self._meta(metadata))

    # -- documents ----------------------------------------------------------------------------------------
    def put_document(
        self, name: str, body: bytes, *, content_type: str, retain_until: datetime | None = None, lock_mode: str = ""
    ) -> PutResult:
        self._request("put", name)
        with self.server.lock:
            return self._store(name, self._new(bytes(body), content_type, {}, retain_until=retain_until))

    def read_document(self, name: str) -> bytes | None:
        self._request("read", name)
        with self.server.lock:
            obj = self._objects().get(name)
            return obj.data if obj is not None else None

    def object_lock(self) -> tuple[bool, str]:
        if self.server.object_lock_enabled:
            return True, ""
        return False, f"Object Lock is not enabled on bucket {self.container}"

    def report_facts(self) -> dict[str, Any]:
        return {
            "provider": "memory",
            "endpoint": self.describe(),
            "encryption": {"mode": "none", "kms_key_id": None, "sse_c_key_fingerprint": None},
        }


__all__ = ["MemoryServer", "MemoryStore"]
