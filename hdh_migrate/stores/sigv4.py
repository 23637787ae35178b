"""AWS Signature Version 4 for the direct S3 path: the headers botocore's ``S3SigV4Auth`` would add.

Why not botocore's signer itself: it builds an ``AWSRequest``, a case-insensitive header map and the
signing key (four HMACs) for every request, ~100 us of GIL-held Python per request here, a tenth of the CPU
a 64 KiB object costs the copier. This is the same algorithm (AWS's SigV4 specification, S3 flavour: no
path normalisation, the query string as sent), with the signing key derived once a day. A unit test signs
a spread of requests both ways at the same instant and requires the same headers, byte for byte, so it
cannot drift from botocore unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# botocore.auth.SIGNED_HEADERS_BLACKLIST: hop-by-hop and tracing headers a proxy may rewrite
_UNSIGNED = frozenset(
    (
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    )
)


class StaticCredentials:
    """Keys given explicitly (connection or settings): what botocore's ``Credentials`` holds, without
    importing botocore's credential chain (~25 ms per command) for them."""

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key, self.secret_key, self.token = access_key, secret_key, token

    def get_frozen_credentials(self) -> StaticCredentials:
        return self


def _pairs(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (p.partition("=") for p in query.split("&"))]


def _now() -> time.struct_time:
    return time.gmtime()


def host_header(url: str) -> str:
    """The Host value botocore signs: lowercase host, the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class S3Signer:
    """Signs requests to one S3 endpoint and region; thread-safe (the key cache is one tuple, replaced whole)."""

    def __init__(self, credentials: Any, region: str, *, sign_payload: bool, service: str = "s3") -> None:
        self._credentials = credentials  # anything with get_frozen_credentials() (refreshable ones keep working)
        self._region, self._service, self._sign_payload = region, service, sign_payload
        self._key: tuple[str, str, bytes] = ("", "", b"")  # (date, secret, signing key)

    def _signing_key(self, date: str, secret: str) -> bytes:
        cached = self._key
        if cached[0] == date and cached[1] == secret:
            return cached[2]
        k = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
        for part in (self._region, self._service, "aws4_request"):
            k = hmac.digest(k, part.encode(), "sha256")
        self._key = (date, secret, k)
        return k

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | memoryview | None, *, host: str
    ) -> dict[str, str]:
        """headers plus X-Amz-Date, X-Amz-Content-SHA256, the session token if any, and Authorization.

        url is the URL as sent (path and query already encoded); host the Host header the client sends."""
        creds = self._credentials.get_frozen_credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", _now())
        out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-amz-date")}
        out["X-Amz-Date"] = stamp
        if creds.token:
            out["X-Amz-Security-Token"] = creds.token
        if not self._sign_payload:
            payload = UNSIGNED_PAYLOAD
        else:
            payload = hashlib.sha256(body).hexdigest() if body is not None and len(body) else EMPTY_SHA256
        out["X-Amz-Content-SHA256"] = payload

        signed: dict[str, str] = {}
        for name, value in out.items():
            lname = name.lower()
            if lname not in _UNSIGNED:
                value = " ".join(str(value).split())
                signed[lname] = f"{signed[lname]},{value}" if lname in signed else value
        signed.setdefault("host", host)
        names = sorted(signed)
        path_start = url.find("/", url.find("//") + 2)
        target = url[path_start:] if path_start >= 0 else "/"
        path, _, query = target.partition("?")
        canonical_query = ""
        if query:  # sorted by (name, value) as they are sent, already URI-encoded
            canonical_query = "&".join(f"{k}={v}" for k, v in sorted(_pairs(query)))
        canonical = "\n".join(
            (
                method.upper(),
                path,
                canonical_query,
                "".join(f"{n}:{signed[n]}\n" for n in names),
                ";".join(names),
                payload,
            )
        )
        date = stamp[:8]
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(date, creds.secret_key), to_sign.encode(), "sha256").hexdigest()
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return out
