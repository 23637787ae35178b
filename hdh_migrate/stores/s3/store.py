"""The S3-compatible backend (the destination side): what is S3's own, over one of two transports.

The store keeps the backend's part: its features (from the provider profile, S3Settings), the server-side
encryption and integrity headers it sends, its typed errors (errors.py), and hdh-migrate's documents. Its
requests go through the transport chosen when it is opened (transport.choose): the direct path
(direct.py) for every request of a copy, a verification and a delta sync wherever it is equivalent, or
boto3 (sdk.py). What only boto3 does here (listing a resumed upload's parts, copies above the CopyObject
limit, documents under a retention lock, bucket management) is always boto3's, built on first use only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hdh_migrate.errors import BucketNotFoundError, CorruptedTransferError, HdhMigrateError, ObjectNotFoundError
from hdh_migrate.stores.interface import Features, ObjectInfo, PutResult
from hdh_migrate.stores.s3.direct import S3Direct, open_direct
from hdh_migrate.stores.s3.errors import typed_error
from hdh_migrate.stores.s3.sdk import S3Sdk
from hdh_migrate.stores.settings import S3Settings, encryption_summary, sse_c_raw
from hdh_migrate.stores.transport import DIRECT, SDK, Refusal, choose


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sse_fields(settings: S3Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(what every write sends, what every read sends) for the configured server-side encryption."""
    if settings.sse == "sse-c":
        raw = sse_c_raw(settings)
        read = {
            "SSECustomerAlgorithm": "AES256",
            "SSECustomerKey": b64(raw),
            "SSECustomerKeyMD5": b64(hashlib.md5(raw).digest()),
        }
        return dict(read), read
    if settings.sse == "aws:kms":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id or ""}, {}
    if settings.sse == "AES256":
        return {"ServerSideEncryption": "AES256"}, {}
    return {}, {}


def features_of(settings: S3Settings) -> Features:
    """What an S3 store can do, as its provider profile says (data/s3_providers.json -> S3Settings)."""
    return Features(
        open_read=True,
        multipart=True,
        replace_metadata=True,
        documents=True,
        # an ETag is the store's MD5 of what it holds only without SSE-C/KMS encryption
        etag_is_md5=settings.sse in ("none", "AES256"),
        part_checksum=settings.part_checksum,
        max_parts=settings.max_parts,
    )


class S3Store:
    kind = "s3"
    page_size = 1000

    def __init__(
        self, settings: S3Settings, bucket: str, *, max_connections: int = 16, transport: str | None = None
    ) -> None:
        self.settings = settings
        self.container = bucket
        self.features = features_of(settings)
        self._sse_write, self._sse_read = sse_fields(settings)
        self._sdk = S3Sdk(settings, bucket, max_connections=max_connections)
        self._wire: S3Direct | S3Sdk = choose(
            transport,
            lambda: open_direct(settings, bucket, max_connections, self._sdk),
            self._sdk,
            where=f"s3://{bucket} on {settings.describe()}",
        )
        #: the transport chosen when the store was opened: "direct" or "sdk"
        self.transport = DIRECT if isinstance(self._wire, S3Direct) else SDK

    def describe(self) -> str:
        return self.settings.describe()

    @property
    def client(self) -> Any:
        """The boto3 client (built on first use), for what the store does not offer."""
        return self._sdk.client

    def _error(self, r: Refusal, what: str, key: str | None = None) -> HdhMigrateError:
        return typed_error(r, endpoint=self.settings.describe(), bucket=self.container, what=what, key=key)

    # -- the core -----------------------------------------------------------------------------------
    def check_access(self, prefix: str = "") -> None:
        # A one-key listing rather than HeadBucket: HEAD responses carry no error body, so a refused
        # signature and a missing right would both read as a bare 403.
        try:
            self._wire.check(prefix)
        except Refusal as r:
            raise self._error(r, "open the bucket") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            yield from self._wire.list(prefix, self.page_size)
        except Refusal as r:
            raise self._error(r, "list objects") from None

    def head(self, name: str) -> ObjectInfo | None:
        try:
            return self._wire.head(name, self._sse_read)
        except Refusal as r:
            raise self._error(r, "read the object's properties", name) from None

    def open_read(
        self, name: str, *, chunk_size: int, reuse_buffer: bool = False
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """The object's properties and a stream of its bytes from one GET (None when it does not exist).

        A full verification needs both; one request instead of a HEAD then a GET halves the per-object
        cost of verifying many small objects. Close the iterator (or exhaust it) to free the connection.

        reuse_buffer: the chunks are views of one buffer, each valid only until the next is asked for
        (for a caller that hashes them at once). Every chunk otherwise costs a fresh allocation, the page
        faults of its first touch and a copy: a third of a verification's CPU (perf), for nothing."""
        try:
            return self._wire.open(name, self._sse_read, chunk_size, reuse_buffer)
        except Refusal as r:
            raise self._error(r, "read", name) from None

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if length == 0:
            return b""
        fields = {"Range": f"bytes={offset}-{offset + length - 1}", **self._sse_read}
        if etag:
            fields["IfMatch"] = f'"{etag}"'
        try:
            return self._wire.get(name, fields)
        except Refusal as r:
            raise self._error(r, "read", name) from None

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        fields = {"IfMatch": f'"{etag}"', **self._sse_read} if etag else self._sse_read
        try:
            yield from self._wire.stream(name, fields, chunk_size)  # a broken body: StoreUnavailableError
        except Refusal as r:
            raise self._error(r, "read", name) from None

    def _integrity(self, md5: bytes | None, sha256: bytes | None, crc32c: bytes | None = None) -> dict[str, str]:
        """The integrity header of the provider profile's part_checksum (Content-MD5 when it has no value)."""
        if self.settings.part_checksum == "sha256" and sha256 is not None:
            return {"ChecksumSHA256": b64(sha256)}
        if self.settings.part_checksum == "crc32c" and crc32c is not None:
            return {"ChecksumCRC32C": b64(crc32c)}
        if md5 is not None:
            return {"ContentMD5": b64(md5)}
        return {}

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
        fields = {
            "ContentType": content_type or "application/octet-stream",
            "Metadata": metadata or {},
            **self._integrity(md5, sha256),
            **self._sse_write,
        }
        try:
            return PutResult(*self._wire.put(name, data, fields))
        except Refusal as r:
            raise self._error(r, "write", name) from None

    def delete(self, name: str) -> None:
        try:
            self._wire.delete(name)
        except Refusal as r:
            raise self._error(r, "delete", name) from None

    # -- multipart (the MultipartWriter capability) -------------------------------------------------
    def start_multipart(self, name: str, *, content_type: str | None, metadata: dict[str, str]) -> str:
        fields: dict[str, Any] = {"ContentType": content_type or "application/octet-stream", "Metadata": metadata}
        if self.settings.part_checksum in ("sha256", "crc32c"):
            fields["ChecksumAlgorithm"] = self.settings.part_checksum.upper()
        try:
            return self._wire.create_multipart(name, fields | self._sse_write)
        except Refusal as r:
            raise self._error(r, "start a multipart upload", name) from None

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
    ) -> dict[str, str]:
        """Send one part with the integrity header of the endpoint's profile; the store refuses damaged bytes.

        The returned dict is what CompleteMultipartUpload needs for it (ETag, and the checksum when the
        upload declared an algorithm). data may be a view of a buffer the caller reuses once this returns:
        nothing here keeps it."""
        integrity = self._integrity(md5, sha256, crc32c)
        if not integrity:
            raise ValueError(f"part {number} of {name}: no checksum for part_checksum={self.settings.part_checksum}")
        try:
            answer = self._wire.upload_part(name, upload_id, number, data, integrity | self._sse_read)
        except Refusal as r:
            raise self._error(r, f"upload part {number}", name) from None
        part = {"PartNumber": number, "ETag": answer["ETag"]}
        for field_name, sent in integrity.items():
            if field_name == "ContentMD5":
                continue
            echoed = answer.get(field_name)
            if echoed is not None and echoed != sent:
                raise CorruptedTransferError(
                    f"s3://{self.container}/{name}: part {number} stored with {field_name} {echoed}, we sent {sent}",
                    hint="the store kept other bytes than the ones sent; the part is re-sent",
                )
            part[field_name] = sent  # CompleteMultipartUpload must repeat each part's checksum
        return part

    def complete_multipart(self, name: str, upload_id: str, parts: list[dict[str, Any]]) -> PutResult:
        try:
            return PutResult(self._wire.complete_multipart(name, upload_id, parts))
        except Refusal as r:
            raise self._error(r, "complete the multipart upload", name) from None

    def abort_multipart(self, name: str, upload_id: str) -> None:
        """Abort an unfinished upload (one already gone is not an error)."""
        try:
            self._wire.abort_multipart(name, upload_id)
        except Refusal as r:
            error = self._error(r, "abort the multipart upload", name)
            if not isinstance(error, ObjectNotFoundError):
                raise error from None

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under prefix."""
        try:
            yield from self._wire.list_multipart_uploads(prefix)
        except Refusal as r:
            raise self._error(r, "list multipart uploads") from None

    def list_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        try:
            return self._sdk.list_parts(name, upload_id)
        except Refusal as r:
            raise self._error(r, "list the parts of a multipart upload", name) from None

    def replace_metadata(self, name: str, *, size: int, content_type: str | None, metadata: dict[str, str]) -> None:
        """Rewrite an object's metadata in place (server-side copy onto itself).

        Used once per multipart object, to record the whole-object hash that is only known after the
        last byte was read. Objects above the provider's CopyObject limit go through a multipart copy.
        """
        fields = {"ContentType": content_type or "application/octet-stream", "Metadata": metadata, **self._sse_write}
        copy_src_sse = {f"CopySource{k}": v for k, v in self._sse_read.items()}
        step = self.settings.max_copy_object_size
        try:
            if size <= step:
                self._wire.copy_in_place(name, fields | copy_src_sse)
            else:
                self._sdk.copy_in_parts(name, size, step, fields, copy_src_sse | self._sse_read)
        except Refusal as r:
            raise self._error(r, "record the object's metadata", name) from None

    # -- documents (the DocumentWriter capability) --------------------------------------------------
    def _document_sse(self) -> dict[str, str]:
        """Store-side encryption for hdh-migrate's own documents; never SSE-C, so consumers and auditors can
        read them without the customer key."""
        return {} if self.settings.sse == "sse-c" else self._sse_write

    def put_document(
        self, name: str, body: bytes, *, content_type: str, retain_until: datetime | None = None, lock_mode: str = ""
    ) -> PutResult:
        fields: dict[str, Any] = {"ContentType": content_type, "ContentMD5": b64(hashlib.md5(body).digest())}
        if retain_until is not None:
            fields |= {"ObjectLockMode": lock_mode or "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
        try:
            # boto3's: the direct path sends no Object Lock headers
            return PutResult(*self._sdk.put(name, body, fields | self._document_sse()))
        except Refusal as r:
            raise self._error(r, "write", name) from None

    def read_document(self, name: str) -> bytes | None:
        try:
            return self._wire.get(name, {})
        except Refusal as r:
            error = self._error(r, "read", name)
            if isinstance(error, ObjectNotFoundError):
                return None
            raise error from None

    def object_lock(self) -> tuple[bool, str]:
        if not self.settings.supports_object_lock:
            return False, f"the provider profile {self.settings.provider!r} does not support S3 Object Lock"
        try:
            conf = self._sdk.object_lock_configuration()
        except Refusal as r:  # any refusal means: no lock configuration we can use
            return False, (
                f"bucket {self.container} has no Object Lock configuration ({r.code or r.status}): create it with "
                "Object Lock to make audit files immutable"
            )
        if (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
            return False, f"Object Lock is not enabled on bucket {self.container}"
        return True, ""

    def report_facts(self) -> dict[str, Any]:
        return {
            "provider": self.settings.provider,
            "endpoint": self.settings.describe(),
            "encryption": encryption_summary(self.settings),
        }

    # -- for the rig and tests only: a sovereign store provisions buckets itself ----------------------
    def create_bucket(self, *, object_lock: bool = False) -> None:
        """Create the bucket (one that already exists, or any refusal, is left to the first request to report)."""
        with contextlib.suppress(Refusal):
            self._sdk.create_bucket(object_lock=object_lock)

    def delete_bucket(self) -> None:
        """Empties the bucket (every version, unfinished uploads) and removes it; one already gone is no error.

        On SeaweedFS each bucket holds volumes of its own, so tests that left buckets behind would
        exhaust the server's volumes ("No writable volumes").
        """
        try:
            self._sdk.delete_bucket()
        except Refusal as r:
            error = self._error(r, "delete the bucket")
            if not isinstance(error, BucketNotFoundError):
                raise error from None
