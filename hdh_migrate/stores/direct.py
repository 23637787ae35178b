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
- Azure requests use a read/list-only container SAS (``azure.endpoint.container_sas``: the SDK's
  string-to-sign, a test compares both) from the account key, or the configured SAS token as is;
- every failure is turned into the same typed errors as the SDK path (both transports report a store's
  error answer as a ``transport.Refusal``, which the backend maps in one place), and tests compare
  listings, properties and upload lists read both ways.

This module is what both backends' direct transports share (``azure/direct.py``, ``s3/direct.py``): the
pooled connections (``httppool.py``), one request retried while transient, and whether a URL goes
through a proxy. The path is used only where it is equivalent: an explicit S3 endpoint with path-style or
virtual-hosted addressing and no proxy configured for it, a key or SAS for Azure (an Entra ID token keeps
the SDK). ``HDH_DIRECT_HTTP=0`` turns it off. Transient failures (connection errors, 5xx, throttling) are
retried here with backoff, as the SDKs' retry policies did.
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from hdh_migrate.errors import StoreUnavailableError, ThrottledError, TransientError
from hdh_migrate.stores.httppool import NETWORK_ERRORS, Answer, Connections, fill

T = TypeVar("T")

ATTEMPTS = 4  # as botocore's "standard" retry mode and the Azure policy configured in stores/azure/sdk.py


def proxied(url: str) -> bool:
    """True when the environment routes this URL through a proxy (the SDKs honour it; we then keep them)."""
    host = urlsplit(url).hostname or ""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def pool_for(url: str, maxsize: int, ca_bundle: str | None = None) -> Connections:
    """Keep-alive connections to the origin of url (httppool.py: http.client, pooled)."""
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
    one with into, whose body is read straight from the socket into that buffer (httppool.fill): a
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
