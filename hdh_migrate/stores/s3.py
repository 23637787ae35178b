"""S3-compatible backend (destination side), on boto3 with per-endpoint behaviour from S3Settings."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import boto3
import urllib3
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectTimeoutError as BotoConnectTimeout,
)

from ..config import S3Settings, sse_c_raw
from ..errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    DestinationFullError,
    HdhMigrateError,
    ObjectNotFoundError,
    SourceChangedError,
    StoreUnavailableError,
    ThrottledError,
)
from . import direct
from .base import ObjectInfo, PutResult
from .direct import S3Direct

_CRED_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
}
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# boto3 parameter -> REST header, for the requests the direct data path sends
_HEADERS = {
    "ContentType": "Content-Type",
    "ContentMD5": "Content-MD5",
    "ChecksumSHA256": "x-amz-checksum-sha256",
    "ChecksumCRC32C": "x-amz-checksum-crc32c",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
    "SSECustomerAlgorithm": "x-amz-server-side-encryption-customer-algorithm",
    "SSECustomerKey": "x-amz-server-side-encryption-customer-key",
    "SSECustomerKeyMD5": "x-amz-server-side-encryption-customer-key-MD5",
}


def _info_from_headers(name: str, h: Any) -> ObjectInfo:
    """ObjectInfo from the headers of a HEAD or GET answer (user metadata keys lowercased, as boto3 gives them)."""
    return ObjectInfo(
        name=name,
        size=int(h["Content-Length"]),
        etag=h["ETag"].strip('"'),
        last_modified=parsedate_to_datetime(h["Last-Modified"]),
        content_type=h.get("Content-Type"),
        metadata={k[11:].lower(): v for k, v in h.items() if k.lower().startswith("x-amz-meta-")},
    )


def _error_document(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error response; empty strings when the body is not one."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""


class S3Store:
    kind = "s3"
    page_size = 1000

    def __init__(self, settings: S3Settings, bucket: str, *, max_connections: int = 16) -> None:
        self.settings = settings
        self.container = bucket
        config = Config(
            s3={"addressing_style": settings.addressing_style, "payload_signing_enabled": settings.payload_signing},
            # boto3 >= 1.36 adds CRC checksum headers by default; many S3-compatible stores reject them.
            request_checksum_calculation=settings.request_checksum_calculation,
            response_checksum_validation=settings.response_checksum_validation,
            retries={"mode": "standard", "max_attempts": 4},
            max_pool_connections=max_connections,
            connect_timeout=10,
            read_timeout=120,
            signature_version="s3v4",
        )
        self._session = boto3.session.Session()
        self._client = self._session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key.get() if settings.secret_access_key else None,
            aws_session_token=settings.session_token.get() if settings.session_token else None,
            config=config,
        )
        self._sse_write: dict[str, str] = {}
        self._sse_read: dict[str, str] = {}
        if settings.sse == "sse-c":
            raw = sse_c_raw(settings)
            self._sse_read = {
                "SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": b64(raw),
                "SSECustomerKeyMD5": b64(hashlib.md5(raw).digest()),
            }
            self._sse_write = dict(self._sse_read)
        elif settings.sse == "aws:kms":
            self._sse_write = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id or ""}
        elif settings.sse == "AES256":
            self._sse_write = {"ServerSideEncryption": "AES256"}
        self._direct = self._direct_path(max_connections)

    def _direct_path(self, max_connections: int) -> S3Direct | None:
        """The direct data path (see stores/direct.py) where it is equivalent to boto3's, else None."""
        endpoint = self._client.meta.endpoint_url
        if not direct.enabled() or direct.proxied(endpoint):
            return None
        if self.settings.addressing_style not in ("path", "virtual"):
            return None  # "auto" is botocore's decision per bucket name: leave it to botocore
        if self.settings.access_key_id and self.settings.secret_access_key:
            credentials = Credentials(
                self.settings.access_key_id,
                self.settings.secret_access_key.get(),
                self.settings.session_token.get() if self.settings.session_token else None,
            )
        else:
            credentials = self._session.get_credentials()  # env, profile, instance role... (refreshable)
        if credentials is None:
            return None  # let boto3 raise its NoCredentialsError, mapped to a clear message
        return S3Direct(
            endpoint_url=endpoint,
            bucket=self.container,
            region=self._client.meta.region_name or self.settings.region,
            addressing_style=self.settings.addressing_style,
            credentials=credentials,
            sign_payload=self.settings.payload_signing,
            maxsize=max_connections,
            ca_bundle=os.environ.get("AWS_CA_BUNDLE"),
        )

    @staticmethod
    def _direct_headers(fields: dict[str, Any]) -> dict[str, str]:
        """boto3 parameter names -> the S3 REST headers they stand for (the subset the data path sends)."""
        headers: dict[str, str] = {}
        for name, value in fields.items():
            if name == "Metadata":
                headers.update({f"x-amz-meta-{k}": v for k, v in value.items()})
            else:
                headers[_HEADERS[name]] = value
        return headers

    def _direct_call(
        self, operation: str, method: str, key: str, fields: dict[str, Any], *, missing_ok: bool = False, **kw: Any
    ) -> Any:
        """One direct request; an error answer becomes the ClientError boto3 would have raised (mapped by
        _errors), a 404 None when missing_ok."""
        assert self._direct is not None
        r = self._direct.request(method, key, headers=self._direct_headers(fields), **kw)
        if r.status == 404 and missing_ok:
            return None
        if r.status >= 300:
            code, message = _error_document(r.data)  # empty for a HEAD: its status says it all
            raise ClientError(
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": r.status}},
                operation,
            )
        return r

    @property
    def client(self) -> Any:
        return self._client

    # -- errors -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str, key: str | None = None) -> Iterator[None]:
        where = f"s3://{self.container}/{key}" if key is not None else f"s3://{self.container}"
        endpoint = self.settings.describe()
        try:
            yield
        except HdhMigrateError:
            raise
        except NoCredentialsError:
            raise CredentialsError(
                f"no S3 credentials for {endpoint}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the aws Connection's login/password)",
            ) from None
        except (EndpointConnectionError, BotoConnectTimeout, ReadTimeoutError, ConnectionClosedError) as exc:
            raise StoreUnavailableError(
                f"cannot reach the S3 endpoint {endpoint} to {what}: {type(exc).__name__}",
                hint="the store or the network is down; the task is retried with backoff",
            ) from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in ("NoSuchBucket",) or (key is None and status == 404):
                raise BucketNotFoundError(
                    f"S3 bucket {self.container!r} does not exist on {endpoint}",
                    hint="the bucket must be provisioned on the destination before the copy; check dest_bucket",
                ) from None
            if code == "PreconditionFailed" or status == 412:
                raise SourceChangedError(f"{where} changed while it was being read (If-Match failed)") from None
            if code in ("NoSuchKey", "NotFound") or status == 404:
                raise ObjectNotFoundError(f"{where} does not exist") from None
            if code in ("QuotaExceeded", "InsufficientStorage") or status == 507:
                raise DestinationFullError(
                    f"the S3 store at {endpoint} refused to store {where}: {code or 'HTTP 507'} (no space or quota)",
                    hint="raise the bucket's quota or free space with the provider, then clear the failed task",
                ) from None
            if code in _CRED_CODES:
                raise CredentialsError(
                    f"the S3 endpoint {endpoint} refused the credentials ({code}) while trying to {what}",
                    hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the aws Connection)",
                ) from None
            if code == "AccessDenied" or status == 403:
                raise AccessDeniedError(
                    f"access denied to {where} on {endpoint} while trying to {what}",
                    hint="grant the key s3:PutObject, s3:GetObject, s3:ListBucket and multipart rights on the bucket",
                ) from None
            if code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"):
                raise CorruptedTransferError(
                    f"the S3 store rejected the bytes sent for {where}: their checksum did not match ({code})",
                    hint="the data was corrupted in transit; the part is re-read and re-sent",
                ) from None
            if code in _THROTTLE_CODES or status in (429, 503):
                raise ThrottledError(f"the S3 store is throttling requests to {where} ({code or status})") from None
            if status >= 500:
                raise StoreUnavailableError(
                    f"the S3 store returned HTTP {status} ({code}) for {where} while trying to {what}"
                ) from None
            raise HdhMigrateError(f"S3 error while trying to {what} {where}: {code or status}") from None
        except BotoCoreError as exc:
            raise StoreUnavailableError(
                f"S3 client error while trying to {what} {where}: {type(exc).__name__}"
            ) from None

    # -- core operations ----------------------------------------------------------------------------
    def check_access(self) -> None:
        # A one-key listing rather than HeadBucket: HEAD responses carry no error body, so a refused
        # signature and a missing right would both read as a bare 403.
        with self._errors("open the bucket"):
            self._client.list_objects_v2(Bucket=self.container, MaxKeys=1)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._errors("list objects"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.container, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for o in page.get("Contents", ()):
                    yield ObjectInfo(
                        name=o["Key"], size=int(o["Size"]), etag=o["ETag"].strip('"'), last_modified=o["LastModified"]
                    )

    def _head_raw(self, key: str) -> dict[str, Any] | None:
        try:
            with self._errors("read the object's properties", key):
                return self._client.head_object(Bucket=self.container, Key=key, **self._sse_read)
        except ObjectNotFoundError:
            return None

    def head(self, name: str) -> ObjectInfo | None:
        if self._direct is not None:
            # one HEAD per object on every re-run and delta sync: the direct path costs a third of botocore's
            with self._errors("read the object's properties", name):
                r = self._direct_call("HeadObject", "HEAD", name, self._sse_read, missing_ok=True)
            return None if r is None else _info_from_headers(name, r.headers)
        h = self._head_raw(name)
        if h is None:
            return None
        return ObjectInfo(
            name=name,
            size=int(h["ContentLength"]),
            etag=h["ETag"].strip('"'),
            last_modified=h["LastModified"],
            content_type=h.get("ContentType"),
            metadata=dict(h.get("Metadata") or {}),
        )

    def open_read(self, name: str, *, chunk_size: int) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """The object's properties and a stream of its bytes from one GET (None when it does not exist).

        A full verification needs both; one request instead of a HEAD then a GET halves the per-object
        cost of verifying many small objects. Close the iterator (or exhaust it) to free the connection."""
        if self._direct is None:
            info = self.head(name)
            return None if info is None else (info, self.iter_read(name, chunk_size=chunk_size, etag=info.etag))
        with self._errors("read", name):
            r = self._direct_call("GetObject", "GET", name, self._sse_read, missing_ok=True, stream=True)
        if r is None:
            return None
        info = _info_from_headers(name, r.headers)

        def chunks() -> Iterator[bytes]:
            done = False
            try:
                with self._errors("read", name):
                    try:
                        yield from r.stream(chunk_size)
                    except urllib3.exceptions.HTTPError as exc:
                        raise StoreUnavailableError(
                            f"the connection to {self.settings.describe()} broke while reading s3://"
                            f"{self.container}/{name}: {type(exc).__name__}"
                        ) from None
                done = True
            finally:
                if not done:
                    r.close()  # an unread rest is dropped with its connection, not drained
                r.release_conn()

        return info, chunks()

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if length == 0:
            return b""
        extra: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        with self._errors("read", name):
            r = self._client.get_object(
                Bucket=self.container,
                Key=name,
                Range=f"bytes={offset}-{offset + length - 1}",
                **extra,
                **self._sse_read,
            )
            return r["Body"].read()

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        extra: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        with self._errors("read", name):
            body = self._client.get_object(Bucket=self.container, Key=name, **extra, **self._sse_read)["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def _integrity(self, md5: bytes | None, sha256: bytes | None, crc32c: bytes | None = None) -> dict[str, str]:
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
        if self._direct is not None:
            fields = {
                "ContentType": content_type or "application/octet-stream",
                "Metadata": metadata or {},
                **self._integrity(md5, sha256),
                **self._sse_write,
            }
            with self._errors("write", name):
                resp = self._direct_call("PutObject", "PUT", name, fields, body=data)
            return PutResult(etag=resp.headers["ETag"].strip('"'))
        with self._errors("write", name):
            r = self._client.put_object(
                Bucket=self.container,
                Key=name,
                Body=data,
                ContentType=content_type or "application/octet-stream",
                Metadata=metadata or {},
                **self._integrity(md5, sha256),
                **self._sse_write,
            )
        return PutResult(etag=r["ETag"].strip('"'))

    def delete(self, name: str) -> None:
        with self._errors("delete", name):
            self._client.delete_object(Bucket=self.container, Key=name)

    # -- multipart (the chunk writer capability) ----------------------------------------------------
    def start_multipart(self, name: str, *, content_type: str | None, metadata: dict[str, str]) -> str:
        extra: dict[str, Any] = {}
        if self.settings.part_checksum in ("sha256", "crc32c"):
            extra["ChecksumAlgorithm"] = self.settings.part_checksum.upper()
        with self._errors("start a multipart upload", name):
            r = self._client.create_multipart_upload(
                Bucket=self.container,
                Key=name,
                ContentType=content_type or "application/octet-stream",
                Metadata=metadata,
                **extra,
                **self._sse_write,
            )
        return str(r["UploadId"])

    def upload_part(
        self,
        name: str,
        upload_id: str,
        number: int,
        data: bytes,
        *,
        md5: bytes | None,
        sha256: bytes | None = None,
        crc32c: bytes | None = None,
    ) -> dict[str, str]:
        """Send one part with the integrity header of the endpoint's profile; the store refuses damaged bytes.

        The returned dict is what CompleteMultipartUpload needs for it (ETag, and the checksum when the
        upload declared an algorithm)."""
        integrity = self._integrity(md5, sha256, crc32c)
        if not integrity:
            raise ValueError(f"part {number} of {name}: no checksum for part_checksum={self.settings.part_checksum}")
        r: dict[str, Any]
        with self._errors(f"upload part {number}", name):
            if self._direct is not None:
                resp = self._direct_call(
                    "UploadPart",
                    "PUT",
                    name,
                    integrity | self._sse_read,
                    query=f"partNumber={number}&uploadId={quote(upload_id, safe='~')}",
                    body=data,
                )
                h = resp.headers
                r = {"ETag": h["ETag"]} | {f: h[n] for f, n in _HEADERS.items() if f.startswith("Checksum") and n in h}
            else:
                r = self._client.upload_part(
                    Bucket=self.container,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    **integrity,
                    **self._sse_read,
                )
        part = {"PartNumber": number, "ETag": r["ETag"]}
        for field_name, sent in integrity.items():
            if field_name == "ContentMD5":
                continue
            echoed = r.get(field_name)
            if echoed is not None and echoed != sent:
                raise CorruptedTransferError(
                    f"s3://{self.container}/{name}: part {number} stored with {field_name} {echoed}, we sent {sent}",
                    hint="the store kept other bytes than the ones sent; the part is re-sent",
                )
            part[field_name] = sent  # CompleteMultipartUpload must repeat each part's checksum
        return part

    def complete_multipart(self, name: str, upload_id: str, parts: list[dict[str, Any]]) -> PutResult:
        with self._errors("complete the multipart upload", name):
            r = self._client.complete_multipart_upload(
                Bucket=self.container, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return PutResult(etag=str(r["ETag"]).strip('"'))

    def abort_multipart(self, name: str, upload_id: str) -> None:
        with contextlib.suppress(ObjectNotFoundError), self._errors("abort the multipart upload", name):
            self._client.abort_multipart_upload(Bucket=self.container, Key=name, UploadId=upload_id)

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under prefix."""
        with self._errors("list multipart uploads"):
            for page in self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.container, Prefix=prefix
            ):
                for u in page.get("Uploads", ()):
                    yield u["Key"], u["UploadId"], u["Initiated"]

    def list_parts(self, name: str, upload_id: str) -> list[dict[str, Any]]:
        with self._errors("list the parts of a multipart upload", name):
            parts: list[dict[str, Any]] = []
            for page in self._client.get_paginator("list_parts").paginate(
                Bucket=self.container, Key=name, UploadId=upload_id
            ):
                parts.extend(page.get("Parts", ()))
            return parts

    def replace_metadata(self, name: str, *, size: int, content_type: str | None, metadata: dict[str, str]) -> None:
        """Rewrite an object's metadata in place (server-side copy onto itself).

        Used once per multipart object, to record the whole-object hash that is only known after the
        last byte was read. Objects above the provider's CopyObject limit go through a multipart copy.
        """
        base: dict[str, Any] = {
            "Bucket": self.container,
            "Key": name,
            "ContentType": content_type or "application/octet-stream",
            "Metadata": metadata,
            **self._sse_write,
        }
        copy_src_sse = {f"CopySource{k}": v for k, v in self._sse_read.items()}
        with self._errors("record the object's metadata", name):
            if size <= self.settings.max_copy_object_size:
                self._client.copy_object(
                    CopySource={"Bucket": self.container, "Key": name},
                    MetadataDirective="REPLACE",
                    **base,
                    **copy_src_sse,
                )
                return
            upload_id = self._client.create_multipart_upload(**base)["UploadId"]
            try:
                parts = []
                step = self.settings.max_copy_object_size
                for i, start in enumerate(range(0, size, step), start=1):
                    end = min(size, start + step) - 1
                    r = self._client.upload_part_copy(
                        Bucket=self.container,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=i,
                        CopySource={"Bucket": self.container, "Key": name},
                        CopySourceRange=f"bytes={start}-{end}",
                        **copy_src_sse,
                        **self._sse_read,
                    )
                    parts.append({"PartNumber": i, "ETag": r["CopyPartResult"]["ETag"]})
                self._client.complete_multipart_upload(
                    Bucket=self.container, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    self._client.abort_multipart_upload(Bucket=self.container, Key=name, UploadId=upload_id)
                raise

    def delete_bucket(self) -> None:
        """For the rig and tests only: empties the bucket (every version, unfinished uploads) and removes it.

        On SeaweedFS each bucket holds volumes of its own, so tests that left buckets behind would
        exhaust the server's volumes ("No writable volumes").
        """
        c = self._client
        with contextlib.suppress(BucketNotFoundError), self._errors("delete the bucket"):
            for key, upload_id, _ in list(self.list_multipart_uploads("")):
                self.abort_multipart(key, upload_id)
            for page in c.get_paginator("list_object_versions").paginate(Bucket=self.container):
                for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    with contextlib.suppress(ClientError):
                        c.delete_object(
                            Bucket=self.container,
                            Key=v["Key"],
                            VersionId=v["VersionId"],
                            BypassGovernanceRetention=True,
                        )
            for obj in list(self.list("")):
                with contextlib.suppress(ClientError):
                    c.delete_object(Bucket=self.container, Key=obj.name)
            c.delete_bucket(Bucket=self.container)

    def create_bucket(self, *, object_lock: bool = False) -> None:
        """For the rig and tests only: a sovereign store provisions buckets itself."""
        with contextlib.suppress(HdhMigrateError), self._errors("create the bucket"):
            self._client.create_bucket(Bucket=self.container, ObjectLockEnabledForBucket=object_lock)
