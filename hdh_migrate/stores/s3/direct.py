"""The S3 direct transport: every request of a copy, a verification and a delta sync as one SigV4-signed HTTP request
over the direct path's pooled connections (stores/direct.py says why it exists).

Requests take boto3's parameter names (``fields``), turned into the REST headers they stand for, so that
the store builds one set of fields for either transport; answers are parsed as botocore parses them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.stores.direct import pool_for, proxied, send
from hdh_migrate.stores.httppool import NETWORK_ERRORS, Answer, BodyLengthError
from hdh_migrate.stores.interface import ObjectInfo, info_from_headers
from hdh_migrate.stores.s3.sdk import S3Sdk
from hdh_migrate.stores.settings import S3Settings
from hdh_migrate.stores.sigv4 import S3Signer, StaticCredentials, host_header
from hdh_migrate.stores.transport import Refusal

_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# boto3 parameter -> REST header, for the requests the direct path sends
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
# the checksums an UploadPart answer echoes: (boto3 name, header)
_ECHOED = tuple((f, h) for f, h in _HEADERS.items() if f.startswith("Checksum") and f != "ChecksumAlgorithm")


def open_direct(settings: S3Settings, bucket: str, max_connections: int, sdk: S3Sdk) -> tuple[S3Direct | None, str]:
    """The direct transport where it is equivalent to boto3's, or None and why (boto3 then serves it)."""
    endpoint = settings.endpoint_url
    if not endpoint:
        return None, "no endpoint: AWS itself, whose endpoint rules are botocore's business"
    if proxied(endpoint):
        return None, f"a proxy is configured for {endpoint}"
    if settings.addressing_style not in ("path", "virtual"):
        return None, '"auto" addressing is botocore\'s decision per bucket name'
    if settings.access_key_id and settings.secret_access_key:
        credentials: Any = StaticCredentials(
            settings.access_key_id,
            settings.secret_access_key.get(),
            settings.session_token.get() if settings.session_token else None,
        )
    else:
        # env, profile, instance role... (refreshable), resolved as boto3 would
        credentials = sdk.botocore_session().get_credentials()
    if credentials is None:
        return None, "no credentials (boto3 then says so, mapped to a clear message)"
    direct = S3Direct(
        endpoint_url=endpoint,
        bucket=bucket,
        region=settings.region,
        addressing_style=settings.addressing_style,
        credentials=credentials,
        sign_payload=settings.payload_signing,
        maxsize=max_connections,
        ca_bundle=os.environ.get("AWS_CA_BUNDLE"),
    )
    return direct, ""


def _headers(fields: Mapping[str, Any]) -> dict[str, str]:
    """boto3 parameter names -> the S3 REST headers they stand for (the subset the data path sends)."""
    headers: dict[str, str] = {}
    for name, value in fields.items():
        if name == "Metadata":
            headers.update({f"x-amz-meta-{k}": v for k, v in value.items()})
        else:
            headers[_HEADERS[name]] = value
    return headers


def _error_document(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error response; empty strings when the body is not one."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""


def _xml(body: bytes) -> ElementTree.Element:
    """An S3 answer's XML with the namespace dropped from every tag.

    S3 may answer CompleteMultipartUpload and CopyObject with 200 and an error document (the failure
    happened after the status line was sent); like botocore, that is an error, with the status of a
    server failure so that it is retried."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise Refusal(500, "InternalError", "unreadable answer") from None
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    if root.tag == "Error":
        raise Refusal(500, root.findtext("Code") or "", root.findtext("Message") or "")
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


class S3Direct:
    """One bucket's requests, SigV4-signed (sigv4.S3Signer), each retried while transient (direct.send)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str,
        addressing_style: str,
        credentials: Any,  # get_frozen_credentials() per request: botocore's refreshable ones keep working
        sign_payload: bool,
        maxsize: int,
        ca_bundle: str | None,
    ) -> None:
        # bodies carry Content-MD5 or an x-amz-checksum the store verifies, so hashing them again for the
        # signature is optional: the client's rule (Config s3.payload_signing_enabled)
        self._signer = S3Signer(credentials, region, sign_payload=sign_payload)
        parts = urlsplit(endpoint_url.rstrip("/"))
        self._virtual = addressing_style == "virtual"
        if self._virtual:
            self._base = f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}/"
        else:
            self._base = f"{parts.scheme}://{parts.netloc}{parts.path}/{quote(bucket)}/"
        self.bucket, self.describe = bucket, endpoint_url
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        self._host = host_header(self._base)
        self._pool = pool_for(self._base, maxsize, ca_bundle)  # virtual-hosted: the bucket's own host

    def url(self, key: str, query: str = "") -> str:
        """The object's URL; key "" is the bucket itself (path style without a trailing slash, as botocore)."""
        base = self._base if key or self._virtual else self._base[:-1]
        return base + quote(key, safe="/~") + (f"?{query}" if query else "")

    def _call(
        self,
        method: str,
        key: str,
        fields: Mapping[str, Any],
        *,
        query: str = "",
        body: bytes | memoryview | None = None,
        stream: bool = False,
        missing_ok: bool = False,
    ) -> Answer:
        """One signed request, retried while transient; an error answer raised as a Refusal (but a 404 returned
        when missing_ok). With stream, a successful answer's body is left for the caller to stream and close."""
        url, headers = self.url(key, query), _headers(fields)
        r = send(
            self._pool,
            method,
            url,
            headers=lambda: self._signer.headers(method, url, headers, body, host=self._host),
            body=body,
            stream=stream,
            endpoint=self.endpoint,
            what=f"{method} {key}",
        )
        if r.status < 300 or (missing_ok and r.status == 404):
            return r
        code, message = _error_document(r.data)  # empty for a HEAD: its status says it all
        raise Refusal(r.status, code, message)

    # -- the transport ------------------------------------------------------------------------------
    def check(self, prefix: str) -> None:
        self._call("GET", "", {}, query=_query(list_type=2, max_keys=1, prefix=prefix or None))

    def list(self, prefix: str, page_size: int) -> Iterator[ObjectInfo]:
        """ListObjectsV2, page by page; keys come URL-encoded (encoding-type=url), as boto3 asks for them,
        so that names XML cannot carry survive, and are decoded as botocore decodes them."""
        token: str | None = None
        while True:
            query = _query(
                list_type=2, continuation_token=token, encoding_type="url", max_keys=page_size, prefix=prefix or None
            )
            root = _xml(self._call("GET", "", {}, query=query).data)
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

    def head(self, key: str, fields: Mapping[str, Any]) -> ObjectInfo | None:
        # one HEAD per object on every re-run and delta sync: the direct path costs a third of botocore's
        r = self._call("HEAD", key, fields, missing_ok=True)
        if r.status == 404:
            return None
        return info_from_headers(key, r.headers, meta_prefix="x-amz-meta-", lower_meta=True)

    def get(self, key: str, fields: Mapping[str, Any]) -> bytes:
        return bytes(self._call("GET", key, fields).data)

    def open(
        self, key: str, fields: Mapping[str, Any], chunk_size: int, reuse_buffer: bool
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """One GET: the object's properties (metadata keys lowercased, as boto3 gives them) and its body."""
        r = self._call("GET", key, fields, stream=True, missing_ok=True)
        if r.status == 404:
            return None  # its body was read whole, its connection released (direct.send)
        info = info_from_headers(key, r.headers, meta_prefix="x-amz-meta-", lower_meta=True)
        return info, self._stream(r, key, chunk_size, info.size if reuse_buffer else None)

    def stream(self, key: str, fields: Mapping[str, Any], chunk_size: int) -> Iterator[bytes]:
        yield from self._stream(self._call("GET", key, fields, stream=True), key, chunk_size)

    def _stream(self, r: Answer, key: str, chunk_size: int, reuse_for: int | None = None) -> Iterator[bytes]:
        """The body of a GET, chunk by chunk; its connection is freed however the reading ends.

        With reuse_for (the body's length), the body is read straight from the socket into one buffer,
        and its length is checked against it."""
        done = False
        try:
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
                    f"the connection to {self.describe} broke while reading s3://{self.bucket}/{key}: "
                    f"{type(exc).__name__}"
                ) from None
            done = True
        finally:
            if not done:
                r.close()  # an unread rest is dropped with its connection, not drained
            r.release_conn()

    def put(self, key: str, body: bytes, fields: Mapping[str, Any]) -> tuple[str, str | None]:
        """(ETag, version id) of the object written."""
        h = self._call("PUT", key, fields, body=body).headers
        return h["ETag"].strip('"'), h.get("x-amz-version-id")

    def delete(self, key: str) -> None:
        self._call("DELETE", key, {})

    def create_multipart(self, key: str, fields: Mapping[str, Any]) -> str:
        r = self._call("POST", key, fields, query=_query(uploads=""))
        return _xml(r.data).findtext("UploadId") or ""

    def upload_part(
        self, key: str, upload_id: str, number: int, body: bytes | memoryview, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The answer: ETag, and the checksum the store computed when the upload declared an algorithm."""
        query = f"partNumber={number}&uploadId={quote(upload_id, safe='~')}"
        h = self._call("PUT", key, fields, query=query, body=body).headers
        return {"ETag": h["ETag"]} | {f: h[n] for f, n in _ECHOED if n in h}

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> str:
        body = "".join(
            "<Part>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in p.items()) + "</Part>" for p in parts
        )
        data = f'<CompleteMultipartUpload xmlns="{_S3_NS}">{body}</CompleteMultipartUpload>'.encode()
        fields = {"ContentType": "application/xml"}
        r = self._call("POST", key, fields, query=_query(uploadId=upload_id), body=data)
        return (_xml(r.data).findtext("ETag") or "").strip('"')

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._call("DELETE", key, {}, query=_query(uploadId=upload_id))

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        key_marker: str | None = None
        id_marker: str | None = None
        while True:
            # keys as they are (XML-escaped), as boto3 asks for them: SeaweedFS ignores encoding-type here
            query = _query(uploads="", key_marker=key_marker, prefix=prefix or None, upload_id_marker=id_marker)
            root = _xml(self._call("GET", "", {}, query=query).data)
            for u in root.iterfind("Upload"):
                yield u.findtext("Key") or "", u.findtext("UploadId") or "", _timestamp(u.findtext("Initiated"))
            key_marker, id_marker = root.findtext("NextKeyMarker"), root.findtext("NextUploadIdMarker")
            if root.findtext("IsTruncated") != "true" or not (key_marker or id_marker):
                return

    def copy_in_place(self, key: str, fields: Mapping[str, Any]) -> None:
        """CopyObject of the object onto itself with new metadata (fields: the new ones, and SSE)."""
        source = quote(f"{self.bucket}/{key}", safe="-._~/")
        r = self._call("PUT", key, {"CopySource": source, "MetadataDirective": "REPLACE", **fields})
        _xml(r.data)  # a 200 may carry an error document
