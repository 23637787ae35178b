"""The S3 SDK transport (boto3), and what only boto3 does here: listing a resumed upload's parts, copies above the
CopyObject limit, documents under an Object Lock retention, the bucket's lock configuration, bucket
management for the rig and tests, and endpoints the direct path does not serve (AWS itself, "auto"
addressing, a proxy).

Its client is built on first use: boto3's import and its service model cost ~0.15 s of CPU, paid by every
command and every Airflow task otherwise. Requests take boto3's own parameters (``fields``: ContentType,
Metadata, ContentMD5, SSECustomerKey...), which the direct transport turns into the same headers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hdh_migrate.errors import HdhMigrateError, StoreUnavailableError
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.s3.errors import NO_CREDENTIALS
from hdh_migrate.stores.settings import S3Settings
from hdh_migrate.stores.transport import Refusal


def refusal(exc: Exception) -> Refusal | None:
    """The Refusal an exception of botocore stands for (None for anything else). botocore's exception classes
    are imported here, not at start: only a boto3 call can have raised one, so botocore is loaded by then."""
    if not type(exc).__module__.startswith("botocore."):
        return None
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return Refusal(status or 500, str(err.get("Code", "")), str(err.get("Message", "")))
    if isinstance(exc, NoCredentialsError):
        return Refusal(0, NO_CREDENTIALS)
    if isinstance(exc, BotoCoreError):  # no answer: connection refused or broken, timeouts
        return Refusal(0, type(exc).__name__)
    return None


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """botocore exceptions raised inside, as Refusals."""
    try:
        yield
    except HdhMigrateError:
        raise
    except Exception as exc:
        r = refusal(exc)
        if r is None:
            raise
        raise r from None


def _info(key: str, h: dict[str, Any]) -> ObjectInfo:
    """ObjectInfo from a HeadObject or GetObject answer (S3 keeps no Content-MD5)."""
    return ObjectInfo(
        name=key,
        size=int(h["ContentLength"]),
        etag=h["ETag"].strip('"'),
        last_modified=h["LastModified"],
        content_type=h.get("ContentType"),
        metadata=dict(h.get("Metadata") or {}),
    )


class S3Sdk:
    """One bucket through boto3. Thread-safe; the client is built on first use."""

    def __init__(self, settings: S3Settings, bucket: str, *, max_connections: int) -> None:
        self.settings, self.bucket = settings, bucket
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._session: Any = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The boto3 client (built on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    @property
    def built(self) -> bool:
        """Whether the boto3 client was built (the direct path never needs it for a copy)."""
        return self._client is not None

    def botocore_session(self) -> Any:
        """botocore's session (its credential chain: environment, profile, instance role...), on first use."""
        if self._session is None:
            import botocore.session  # ~25 ms, only for credentials not given explicitly

            self._session = botocore.session.Session()
        return self._session

    def _build_client(self) -> Any:
        # boto3, imported on first use (~0.15 s of CPU, see the module's docstring)
        import boto3
        from botocore.config import Config

        settings = self.settings
        config = Config(
            s3={"addressing_style": settings.addressing_style, "payload_signing_enabled": settings.payload_signing},
            # boto3 >= 1.36 adds CRC checksum headers by default; many S3-compatible stores reject them.
            request_checksum_calculation=settings.request_checksum_calculation,
            response_checksum_validation=settings.response_checksum_validation,
            retries={"mode": "standard", "max_attempts": 4},
            max_pool_connections=self._max_connections,
            connect_timeout=10,
            read_timeout=120,
            signature_version="s3v4",
        )
        session = boto3.session.Session(botocore_session=self.botocore_session())
        return session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key.get() if settings.secret_access_key else None,
            aws_session_token=settings.session_token.get() if settings.session_token else None,
            config=config,
        )

    # -- the transport ------------------------------------------------------------------------------
    def check(self, prefix: str) -> None:
        with refusals():
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1, Prefix=prefix)

    def list(self, prefix: str, page_size: int) -> Iterator[ObjectInfo]:
        with refusals():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
            )
            for page in pages:
                for o in page.get("Contents", ()):
                    yield ObjectInfo(
                        name=o["Key"], size=int(o["Size"]), etag=o["ETag"].strip('"'), last_modified=o["LastModified"]
                    )

    def head(self, key: str, fields: dict[str, Any]) -> ObjectInfo | None:
        try:
            with refusals():
                return _info(key, self.client.head_object(Bucket=self.bucket, Key=key, **fields))
        except Refusal as r:
            if r.status == 404:
                return None
            raise

    def get(self, key: str, fields: dict[str, Any]) -> bytes:
        with refusals():
            return self.client.get_object(Bucket=self.bucket, Key=key, **fields)["Body"].read()

    def open(
        self, key: str, fields: dict[str, Any], chunk_size: int, reuse_buffer: bool
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """One GetObject: its properties and its body in chunks (reuse_buffer is the direct path's saving)."""
        try:
            with refusals():
                r = self.client.get_object(Bucket=self.bucket, Key=key, **fields)
        except Refusal as refused:
            if refused.status == 404:
                return None
            raise
        return _info(key, r), self._chunks(r["Body"], key, chunk_size)

    def stream(self, key: str, fields: dict[str, Any], chunk_size: int) -> Iterator[bytes]:
        with refusals():
            body = self.client.get_object(Bucket=self.bucket, Key=key, **fields)["Body"]
        yield from self._chunks(body, key, chunk_size)

    def _chunks(self, body: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        """The body, chunk by chunk; a connection broken meanwhile is the store being unavailable (as on the
        direct path), and the body is closed however the reading ends."""
        try:
            yield from body.iter_chunks(chunk_size)
        except Exception as exc:
            if refusal(exc) is None:
                raise
            raise StoreUnavailableError(
                f"the connection to {self.settings.describe()} broke while reading s3://{self.bucket}/{key}: "
                f"{type(exc).__name__}"
            ) from None
        finally:
            body.close()

    def put(self, key: str, body: bytes, fields: dict[str, Any]) -> tuple[str, str | None]:
        """(ETag, version id) of the object written."""
        with refusals():
            r = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **fields)
        return r["ETag"].strip('"'), r.get("VersionId")

    def delete(self, key: str) -> None:
        with refusals():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def create_multipart(self, key: str, fields: dict[str, Any]) -> str:
        with refusals():
            return str(self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **fields)["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, body: bytes | memoryview, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The answer: ETag, and the checksum the store computed when the upload declared an algorithm."""
        with refusals():
            return self.client.upload_part(  # type: ignore[no-any-return]
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body if isinstance(body, bytes) else bytes(body),  # botocore takes no memoryview
                **fields,
            )

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> str:
        with refusals():
            r = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return str(r["ETag"]).strip('"')

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with refusals():
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        with refusals():
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for u in page.get("Uploads", ()):
                    yield u["Key"], u["UploadId"], u["Initiated"]

    def copy_in_place(self, key: str, fields: dict[str, Any]) -> None:
        """CopyObject of the object onto itself with new metadata (fields: the new ones, and SSE)."""
        with refusals():
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                **fields,
            )

    # -- only through boto3 -------------------------------------------------------------------------
    def list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        with refusals():
            for page in self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            ):
                parts.extend(page.get("Parts", ()))
        return parts

    def copy_in_parts(
        self, key: str, size: int, step: int, fields: dict[str, Any], part_fields: dict[str, Any]
    ) -> None:
        """The object onto itself with new metadata (fields), in UploadPartCopy parts of step bytes: CopyObject
        refuses objects above the provider's limit. part_fields: the SSE-C of the source and the target."""
        c = self.client
        with refusals():
            upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=key, **fields)["UploadId"]
            try:
                parts = []
                for i, start in enumerate(range(0, size, step), start=1):
                    r = c.upload_part_copy(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=i,
                        CopySource={"Bucket": self.bucket, "Key": key},
                        CopySourceRange=f"bytes={start}-{min(size, start + step) - 1}",
                        **part_fields,
                    )
                    parts.append({"PartNumber": i, "ETag": r["CopyPartResult"]["ETag"]})
                c.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                raise

    def object_lock_configuration(self) -> dict[str, Any]:
        with refusals():
            return self.client.get_object_lock_configuration(Bucket=self.bucket)  # type: ignore[no-any-return]

    def create_bucket(self, *, object_lock: bool) -> None:
        with refusals():
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=object_lock)

    def delete_bucket(self) -> None:
        """Empties the bucket (unfinished uploads, every version, every object) and removes it."""
        from botocore.exceptions import ClientError  # loaded with the client

        c = self.client
        with refusals():
            for key, upload_id, _ in list(self.list_multipart_uploads("")):
                with contextlib.suppress(ClientError):
                    c.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            for page in c.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
                for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    with contextlib.suppress(ClientError):
                        c.delete_object(
                            Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True
                        )
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for o in page.get("Contents", ()):
                    with contextlib.suppress(ClientError):
                        c.delete_object(Bucket=self.bucket, Key=o["Key"])
            c.delete_bucket(Bucket=self.bucket)
