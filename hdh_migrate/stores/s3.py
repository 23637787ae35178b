"""S3-compatible backend (destination side): boto3, and the direct path, with per-endpoint behaviour from S3Settings.

Every request a copy, a verification or a delta sync makes (listings, HEAD, GET, PUT, the multipart
calls, the in-place copy that records the hash) goes through the direct path (stores/direct.py) where it
is equivalent; the boto3 client is built on first use only, for the rest (listing a resumed upload's parts,
copies above the CopyObject limit, bucket management for the rig and tests, endpoints the direct path does
not serve). Building it costs ~0.15 s of CPU (boto3's import and its service model), paid by every command
and every Airflow task otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree
from xml.sax.saxutils import escape

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

from hdh_migrate.errors import (
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
from hdh_migrate.stores import transport as direct
from hdh_migrate.stores.httppool import NETWORK_ERRORS, BodyLengthError
from hdh_migrate.stores.interface import Features, ObjectInfo, PutResult, info_from_headers
from hdh_migrate.stores.settings import S3Settings, encryption_summary, sse_c_raw
from hdh_migrate.stores.sigv4 import StaticCredentials
from hdh_migrate.stores.transport import S3Direct

_CRED_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
}
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}


_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


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
    "ChecksumAlgorithm": "x-amz-checksum-algorithm",
    "MetadataDirective": "x-amz-metadata-directive",
    "CopySource": "x-amz-copy-source",
    "CopySourceSSECustomerAlgorithm": "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "CopySourceSSECustomerKey": "x-amz-copy-source-server-side-encryption-customer-key",
    "CopySourceSSECustomerKeyMD5": "x-amz-copy-source-server-side-encryption-customer-key-MD5",
    "IfMatch": "If-Match",
    "Range": "Range",
}


def _info_from_headers(name: str, h: Any) -> ObjectInfo:
    """Metadata keys lowercased, as boto3 gives them; S3 keeps no Content-MD5."""
    return info_from_headers(name, h, meta_prefix="x-amz-meta-", lower_meta=True)


def _error_document(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error response; empty strings when the body is not one."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""


def _xml(body: bytes, operation: str) -> ElementTree.Element:
    """An S3 answer's XML with the namespace dropped from every tag.

    S3 may answer CompleteMultipartUpload and CopyObject with 200 and an error document (the failure
    happened after the status line was sent); like botocore, that is an error, with the status of a
    server failure so that it is retried."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ClientError(
            {
                "Error": {"Code": "InternalError", "Message": "unreadable answer"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            operation,
        ) from None
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    if root.tag == "Error":
        raise ClientError(
            {
                "Error": {"Code": root.findtext("Code") or "", "Message": root.findtext("Message") or ""},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            operation,
        )
    return root


def _query(**params: str | int | None) -> str:
    """A query string, each value encoded as SigV4 canonicalises it (None: left out; "": a bare flag)."""
    out = []
    for k, v in params.items():
        if v is None:
            continue
        k = k.replace("_", "-")
        out.append(k if v == "" else f"{k}={quote(str(v), safe='-_.~')}")
    return "&".join(out)


def _timestamp(text: str | None) -> datetime:
    return datetime.fromisoformat(text or "")


class S3Store:
    kind = "s3"
    page_size = 1000

    def __init__(self, settings: S3Settings, bucket: str, *, max_connections: int = 16) -> None:
        self.settings = settings
        self.container = bucket
        self._max_connections = max_connections
        self._client_lock = threading.Lock()
        self._session: Any = None
        self._client_obj: Any = None  # the boto3 client, built on first use
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
        self.features = Features(
            read_into=False,
            open_read=True,
            multipart=True,
            replace_metadata=True,
            documents=True,
            # an ETag is the store's MD5 of what it holds only without SSE-C/KMS encryption
            etag_is_md5=settings.sse in ("none", "AES256"),
            part_checksum=settings.part_checksum,
        )

    def describe(self) -> str:
        return self.settings.describe()

    @property
    def client(self) -> Any:
        """The boto3 client (built on first use)."""
        with self._client_lock:
            if self._client_obj is None:
                self._client_obj = self._build_client()
            return self._client_obj

    _client = client  # the name the SDK-path code below uses

    def _build_client(self) -> Any:
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
        session = boto3.session.Session(botocore_session=self._botocore_session())
        return session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key.get() if settings.secret_access_key else None,
            aws_session_token=settings.session_token.get() if settings.session_token else None,
            config=config,
        )

    def _botocore_session(self) -> Any:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.Session()
        return self._session

    def _direct_path(self, max_connections: int) -> S3Direct | None:
        """The direct path (see stores/direct.py) where it is equivalent to boto3's, else None."""
        endpoint = self.settings.endpoint_url
        if not endpoint or not direct.enabled() or direct.proxied(endpoint):
            return None  # no endpoint: AWS itself, whose endpoint rules are botocore's business
        if self.settings.addressing_style not in ("path", "virtual"):
            return None  # "auto" is botocore's decision per bucket name: leave it to botocore
        if self.settings.access_key_id and self.settings.secret_access_key:
            credentials: Any = StaticCredentials(
                self.settings.access_key_id,
                self.settings.secret_access_key.get(),
                self.settings.session_token.get() if self.settings.session_token else None,
            )
        else:
            # env, profile, instance role... (refreshable), resolved as boto3 would
            credentials = self._botocore_session().get_credentials()
        if credentials is None:
            return None  # let boto3 raise its NoCredentialsError, mapped to a clear message
        return S3Direct(
            endpoint_url=endpoint,
            bucket=self.container,
            region=self.settings.region,
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
    def check_access(self, prefix: str = "") -> None:
        # A one-key listing rather than HeadBucket: HEAD responses carry no error body, so a refused
        # signature and a missing right would both read as a bare 403.
        with self._errors("open the bucket"):
            if self._direct is not None:
                query = _query(list_type=2, max_keys=1, prefix=prefix or None)
                self._direct_call("ListObjectsV2", "GET", "", {}, query=query)
            else:
                self._client.list_objects_v2(Bucket=self.container, MaxKeys=1, Prefix=prefix)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if self._direct is not None:
            yield from self._direct_list(prefix)
            return
        with self._errors("list objects"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.container, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for o in page.get("Contents", ()):
                    yield ObjectInfo(
                        name=o["Key"], size=int(o["Size"]), etag=o["ETag"].strip('"'), last_modified=o["LastModified"]
                    )

    def _direct_list(self, prefix: str) -> Iterator[ObjectInfo]:
        """ListObjectsV2, page by page; keys come URL-encoded (encoding-type=url), as boto3 asks for them,
        so that names XML cannot carry survive, and are decoded as botocore decodes them."""
        token: str | None = None
        while True:
            query = _query(
                list_type=2,
                continuation_token=token,
                encoding_type="url",
                max_keys=self.page_size,
                prefix=prefix or None,
            )
            with self._errors("list objects"):
                r = self._direct_call("ListObjectsV2", "GET", "", {}, query=query)
                root = _xml(r.data, "ListObjectsV2")
            for o in root.iterfind("Contents"):
                yield ObjectInfo(
                    name=unquote_plus(o.findtext("Key") or ""),
                    size=int(o.findtext("Size") or 0),
                    etag=(o.findtext("ETag") or "").strip('"'),
                    last_modified=_timestamp(o.findtext("LastModified")),
                )
            token = root.findtext("NextContinuationToken")
            if root.findtext("IsTruncated") != "true" or not token:
                return

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

    def open_read(
        self, name: str, *, chunk_size: int, reuse_buffer: bool = False
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """The object's properties and a stream of its bytes from one GET (None when it does not exist).

        A full verification needs both; one request instead of a HEAD then a GET halves the per-object
        cost of verifying many small objects. Close the iterator (or exhaust it) to free the connection.

        reuse_buffer: the chunks are views of one buffer, each valid only until the next is asked for
        (for a caller that hashes them at once). Every chunk otherwise costs a fresh allocation, the page
        faults of its first touch and a copy: a third of a verification's CPU (perf), for nothing."""
        if self._direct is None:
            info = self.head(name)
            return None if info is None else (info, self.iter_read(name, chunk_size=chunk_size, etag=info.etag))
        with self._errors("read", name):
            r = self._direct_call("GetObject", "GET", name, self._sse_read, missing_ok=True, stream=True)
        if r is None:
            return None
        info = _info_from_headers(name, r.headers)
        return info, self._stream(r, name, chunk_size, info.size if reuse_buffer else None)

    def _stream(self, r: Any, name: str, chunk_size: int, reuse_for: int | None = None) -> Iterator[bytes]:
        """The body of a direct GET, chunk by chunk; its connection is freed however the reading ends.

        With reuse_for (the body's length), the body is read straight from the socket into one buffer,
        and its length is checked against it."""
        done = False
        try:
            with self._errors("read", name):
                try:
                    if reuse_for is not None:
                        view = memoryview(bytearray(min(chunk_size, max(reuse_for, 1))))
                        got = 0
                        while n := r.readinto(view):
                            got += n
                            yield view[:n]
                        if got != reuse_for:
                            raise BodyLengthError(f"the body ended after {got} of {reuse_for} bytes")
                    else:
                        yield from r.stream(chunk_size)
                except NETWORK_ERRORS as exc:
                    raise StoreUnavailableError(
                        f"the connection to {self.settings.describe()} broke while reading s3://"
                        f"{self.container}/{name}: {type(exc).__name__}"
                    ) from None
            done = True
        finally:
            if not done:
                r.close()  # an unread rest is dropped with its connection, not drained
            r.release_conn()

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if length == 0:
            return b""
        extra: dict[str, Any] = {"IfMatch": f'"{etag}"'} if etag else {}
        if self._direct is not None:
            fields = {"Range": f"bytes={offset}-{offset + length - 1}", **extra, **self._sse_read}
            with self._errors("read", name):
                return bytes(self._direct_call("GetObject", "GET", name, fields).data)
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
        if self._direct is not None:
            with self._errors("read", name):
                r = self._direct_call("GetObject", "GET", name, extra | self._sse_read, stream=True)
            yield from self._stream(r, name, chunk_size)
            return
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
            if self._direct is not None:
                self._direct_call("DeleteObject", "DELETE", name, {})
            else:
                self._client.delete_object(Bucket=self.container, Key=name)

    # -- multipart (the chunk writer capability) ----------------------------------------------------
    def start_multipart(self, name: str, *, content_type: str | None, metadata: dict[str, str]) -> str:
        extra: dict[str, Any] = {}
        if self.settings.part_checksum in ("sha256", "crc32c"):
            extra["ChecksumAlgorithm"] = self.settings.part_checksum.upper()
        if self._direct is not None:
            fields = {
                "ContentType": content_type or "application/octet-stream",
                "Metadata": metadata,
                **extra,
                **self._sse_write,
            }
            with self._errors("start a multipart upload", name):
                r = self._direct_call("CreateMultipartUpload", "POST", name, fields, query=_query(uploads=""))
                return _xml(r.data, "CreateMultipartUpload").findtext("UploadId") or ""
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
                    Body=data if isinstance(data, bytes) else bytes(data),  # botocore takes no memoryview
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
        if self._direct is not None:
            body = "".join(
                "<Part>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in p.items()) + "</Part>" for p in parts
            )
            data = f'<CompleteMultipartUpload xmlns="{_S3_NS}">{body}</CompleteMultipartUpload>'.encode()
            with self._errors("complete the multipart upload", name):
                r = self._direct_call(
                    "CompleteMultipartUpload",
                    "POST",
                    name,
                    {"ContentType": "application/xml"},
                    query=_query(uploadId=upload_id),
                    body=data,
                )
                etag = _xml(r.data, "CompleteMultipartUpload").findtext("ETag") or ""
            return PutResult(etag=etag.strip('"'))
        with self._errors("complete the multipart upload", name):
            r = self._client.complete_multipart_upload(
                Bucket=self.container, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return PutResult(etag=str(r["ETag"]).strip('"'))

    def abort_multipart(self, name: str, upload_id: str) -> None:
        with contextlib.suppress(ObjectNotFoundError), self._errors("abort the multipart upload", name):
            if self._direct is not None:
                self._direct_call("AbortMultipartUpload", "DELETE", name, {}, query=_query(uploadId=upload_id))
            else:
                self._client.abort_multipart_upload(Bucket=self.container, Key=name, UploadId=upload_id)

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of every unfinished multipart upload under prefix."""
        if self._direct is not None:
            key_marker: str | None = None
            id_marker: str | None = None
            while True:
                # keys as they are (XML-escaped), as boto3 asks for them: SeaweedFS ignores encoding-type here
                query = _query(uploads="", key_marker=key_marker, prefix=prefix or None, upload_id_marker=id_marker)
                with self._errors("list multipart uploads"):
                    r = self._direct_call("ListMultipartUploads", "GET", "", {}, query=query)
                    root = _xml(r.data, "ListMultipartUploads")
                for u in root.iterfind("Upload"):
                    yield (
                        u.findtext("Key") or "",
                        u.findtext("UploadId") or "",
                        _timestamp(u.findtext("Initiated")),
                    )
                key_marker, id_marker = root.findtext("NextKeyMarker"), root.findtext("NextUploadIdMarker")
                if root.findtext("IsTruncated") != "true" or not (key_marker or id_marker):
                    return
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
            if size <= self.settings.max_copy_object_size and self._direct is not None:
                fields = {
                    "CopySource": quote(f"{self.container}/{name}", safe="-._~/"),
                    "MetadataDirective": "REPLACE",
                    "ContentType": base["ContentType"],
                    "Metadata": metadata,
                    **self._sse_write,
                    **copy_src_sse,
                }
                r = self._direct_call("CopyObject", "PUT", name, fields)
                _xml(r.data, "CopyObject")
                return
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

    # -- documents (the DocumentWriter capability) --------------------------------------------------------
    def _document_sse(self) -> dict[str, str]:
        """Store-side encryption for hdh-migrate's own documents; never SSE-C, so consumers and auditors can
        read them without the customer key."""
        if self.settings.sse == "aws:kms":
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.kms_key_id or ""}
        if self.settings.sse == "AES256":
            return {"ServerSideEncryption": "AES256"}
        return {}

    def put_document(
        self, name: str, body: bytes, *, content_type: str, retain_until: datetime | None = None, lock_mode: str = ""
    ) -> PutResult:
        lock: dict[str, Any] = {}
        if retain_until is not None:
            lock = {"ObjectLockMode": lock_mode or "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until}
        with self._errors("write", name):
            r = self._client.put_object(
                Bucket=self.container,
                Key=name,
                Body=body,
                ContentType=content_type,
                ContentMD5=b64(hashlib.md5(body).digest()),
                **lock,
                **self._document_sse(),
            )
        return PutResult(etag=str(r["ETag"]).strip('"'), version_id=r.get("VersionId"))

    def read_document(self, name: str) -> bytes | None:
        if self.head(name) is None:
            return None
        with self._errors("read", name):
            return self._client.get_object(Bucket=self.container, Key=name)["Body"].read()

    def object_lock(self) -> tuple[bool, str]:
        if not self.settings.supports_object_lock:
            return False, f"the provider profile {self.settings.provider!r} does not support S3 Object Lock"
        try:
            conf = self._client.get_object_lock_configuration(Bucket=self.container)
        except (ClientError, BotoCoreError) as exc:  # any refusal means: no lock configuration we can use
            why = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            return False, (
                f"bucket {self.container} has no Object Lock configuration ({why}): create it with Object Lock to "
                "make audit files immutable"
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
