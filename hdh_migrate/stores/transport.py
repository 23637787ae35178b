"""The direct path: the requests a copy and a verification make, as single signed HTTP requests.

Why: profiling the copier (py-spy, ``bench/``) showed the SDKs, not the network, bounding it. Per request
the Azure SDK spends ~1.2 ms and botocore ~0.9 ms of GIL-held Python (policies, event hooks, serialisation,
response parsing), which caps a process near 250 small objects/s; botocore also streams a part body in
16 KiB blocks after an ``Expect: 100-continue`` round trip, and the Azure SDK spends ~170 us per blob
building listing models. And merely importing the two SDKs and building boto3's client costs ~0.35 s of
CPU per command (per Airflow task too), a fifth of a 512 MiB copy on this rig. So the calls of a copy, a
verification and a delta sync come here: S3 PUT, UploadPart, GET, HEAD, DELETE, ListObjectsV2, the
multipart create/complete/abort/list-uploads calls and the in-place CopyObject; Azure ranged GET, HEAD and
List Blobs. The SDKs keep the rest (bucket and container management, listing a resumed upload's parts,
copies above the CopyObject limit) and are imported only then. What must be right stays with the
libraries or is checked against them:

- S3 requests are signed with SigV4 (``sigv4.S3Signer``: the headers botocore's ``S3SigV4Auth`` adds, a
  test signs requests both ways and compares them), with the client's credentials;
- Azure requests use a read/list-only container SAS (``azure_endpoint.container_sas``: the SDK's
  string-to-sign, a test compares both) from the account key, or the configured SAS token as is;
- every failure is turned into the same typed errors as the SDK path (a botocore ``ClientError`` built from
  the S3 error document is handed to the S3 store's mapping; Azure error codes map one to one), and tests
  compare listings, properties and upload lists read both ways.

The path is used only where it is equivalent: an explicit S3 endpoint with path-style or virtual-hosted
addressing and no proxy configured for it, a key or SAS for Azure (an Entra ID token keeps the SDK).
``HDH_DIRECT_HTTP=0`` turns it off. Transient failures (connection errors, 5xx, throttling) are retried
here with backoff, as the SDKs' retry policies did.
"""

from __future__ import annotations

import os
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from hdh_migrate.errors import StoreUnavailableError, ThrottledError, TransientError
from hdh_migrate.stores.azure_endpoint import container_sas
from hdh_migrate.stores.httppool import NETWORK_ERRORS, Answer, Connections, fill
from hdh_migrate.stores.sigv4 import S3Signer, host_header

T = TypeVar("T")

ATTEMPTS = 4  # as botocore's "standard" retry mode and the Azure policy configured in stores/azure.py


def enabled() -> bool:
    return os.environ.get("HDH_DIRECT_HTTP", "1").strip().lower() not in ("0", "false", "no", "off")


def proxied(url: str) -> bool:
    """True when the environment routes this URL through a proxy (the SDKs honour it; we then keep them)."""
    host = urlsplit(url).hostname or ""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def pool_for(url: str, maxsize: int, ca_bundle: str | None = None) -> Connections:
    """Keep-alive connections to the origin of url (connections.py: http.client, pooled)."""
    return Connections(url, maxsize, ca_bundle if urlsplit(url).scheme == "https" else None)


def with_retries(call: Callable[[], T], what: str) -> T:
    """Run call, retrying transient failures with jittered exponential backoff (0.25 s, 0.5 s, 1 s)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except TransientError:
            if attempt == ATTEMPTS:
                raise
        time.sleep(random.uniform(0.5, 1.0) * 0.25 * 2 ** (attempt - 1))
    raise AssertionError(what)  # pragma: no cover - the loop returns or raises


def unreachable(exc: Exception, endpoint: str, what: str) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"cannot reach {endpoint} to {what}: {type(exc).__name__}",
        hint="the store or the network is down; the request was retried, and the task is retried with backoff",
    )


def send(
    pool: Connections,
    method: str,
    url: str,
    *,
    headers: Callable[[], Mapping[str, str]],
    body: bytes | memoryview | None = None,
    stream: bool = False,
    into: memoryview | None = None,
    endpoint: str,
    what: str,
) -> Answer:
    """One request, retried while transient (no connection, 5xx, throttled); any other answer is returned.

    headers is called per attempt (a signature carries the time). Answers are read whole and their
    connection freed, except a successful one with stream, whose body the caller streams and releases, or
    one with into, whose body is read straight from the socket into that buffer (connections.fill): a
    connection broken while reading it is retried like one broken before the answer. Bodies are the
    stored bytes, never decoded (a blob stored with Content-Encoding: gzip is copied and hashed as stored,
    as the SDKs give it)."""

    def once() -> Answer:
        try:
            r = pool.request(method, url, body=body, headers=headers())
            if into is not None and r.status < 300:
                fill(r, into)
            elif not (stream and r.status < 300):
                r.data  # noqa: B018 - read whole (and the connection released) while errors are retried
        except NETWORK_ERRORS as exc:
            raise unreachable(exc, endpoint, what) from None
        if r.status < 500 and r.status != 429:
            return r
        answer = " ".join(filter(None, (f"HTTP {r.status}", r.headers.get("x-ms-error-code"))))
        if r.status in (429, 503):
            raise ThrottledError(f"{endpoint} is throttling requests: {answer} to {what}")
        raise StoreUnavailableError(f"{endpoint} returned {answer} to {what}")

    return with_retries(once, what)


# -- S3 ----------------------------------------------------------------------------------------------
class S3Direct:
    """The S3 requests of the data path for one bucket, SigV4-signed (sigv4.S3Signer)."""

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
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        self._host = host_header(self._base)
        self._pool = pool_for(self._base, maxsize, ca_bundle)  # virtual-hosted: the bucket's own host

    def url(self, key: str, query: str = "") -> str:
        """The object's URL; key "" is the bucket itself (path style without a trailing slash, as botocore)."""
        base = self._base if key or self._virtual else self._base[:-1]
        return base + quote(key, safe="/~") + (f"?{query}" if query else "")

    def _signed(
        self, method: str, url: str, body: bytes | memoryview | None, headers: Mapping[str, str]
    ) -> dict[str, str]:
        return self._signer.headers(method, url, headers, body, host=self._host)

    def request(
        self,
        method: str,
        key: str,
        *,
        query: str = "",
        body: bytes | memoryview | None = None,
        headers: Mapping[str, str],
        stream: bool = False,
    ) -> Answer:
        """One signed request, retried while transient; returns any other response for the caller to map.

        With stream, a successful response's body is left unread (the caller streams it, then closes)."""
        url = self.url(key, query)
        return send(
            self._pool,
            method,
            url,
            headers=lambda: self._signed(method, url, body, headers),
            body=body,
            stream=stream,
            endpoint=self.endpoint,
            what=f"{method} {key}",
        )


# -- Azure -------------------------------------------------------------------------------------------
class AzureDirect:
    """Ranged, etag-pinned blob reads and streamed listings with a read/list-only container SAS."""

    SAS_LIFETIME = timedelta(hours=8)

    def __init__(
        self,
        *,
        container_url: str,
        api_version: str,
        sas_token: str | None,
        account_name: str | None,
        account_key: str | None,
        container: str,
        maxsize: int,
        ca_bundle: str | None,
    ) -> None:
        self._container_url = container_url.rstrip("/")
        self._api_version = api_version
        self._fixed_sas = sas_token.lstrip("?") if sas_token else None
        self._account_name, self._account_key, self._container = account_name, account_key, container
        self._sas: str | None = None
        self._sas_expiry = datetime.min.replace(tzinfo=UTC)
        self._sas_lock = threading.Lock()
        self.endpoint = f"{urlsplit(container_url).scheme}://{urlsplit(container_url).netloc}"
        self._pool = pool_for(container_url, maxsize, ca_bundle)

    def _token(self) -> str:
        if self._fixed_sas is not None:
            return self._fixed_sas
        now = datetime.now(UTC)
        with self._sas_lock:
            if self._sas is None or now > self._sas_expiry - timedelta(hours=1):
                expiry = now + self.SAS_LIFETIME
                self._sas = container_sas(
                    self._account_name or "",
                    self._account_key or "",
                    self._container,
                    permission="rl",
                    start=now - timedelta(minutes=15),  # tolerate clock skew with the service
                    expiry=expiry,
                    version=self._api_version,
                )
                self._sas_expiry = expiry
            return self._sas

    def blob(self, method: str, name: str, headers: Mapping[str, str], *, into: memoryview | None = None) -> Answer:
        """A GET or HEAD of one blob, read whole (with into: a successful body goes into that buffer)."""
        url = f"{self._container_url}/{quote(name, safe='/~')}?{self._token()}"
        hdrs = {"x-ms-version": self._api_version, **headers}
        return send(
            self._pool, method, url, headers=lambda: hdrs, into=into, endpoint=self.endpoint, what=f"read {name}"
        )

    def list_page(self, prefix: str, marker: str | None, page_size: int) -> Answer:
        """One page of a flat listing (with metadata), its body left unread for a streaming parse."""
        query = f"restype=container&comp=list&include=metadata&maxresults={page_size}"
        if prefix:
            query += f"&prefix={quote(prefix, safe='')}"
        if marker:
            query += f"&marker={quote(marker, safe='')}"
        url = f"{self._container_url}?{query}&{self._token()}"
        hdrs = {"x-ms-version": self._api_version}
        return send(
            self._pool, "GET", url, headers=lambda: hdrs, stream=True, endpoint=self.endpoint, what=f"list {prefix}"
        )
