"""The Azure direct transport: ranged, etag-pinned blob reads, HEADs and streamed listings, with a read/list-only
container SAS, over the direct path's pooled connections (stores/direct.py says why it exists)."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

from hdh_migrate.errors import StoreUnavailableError
from hdh_migrate.stores.azure.endpoint import API_VERSION, container_sas, resolve
from hdh_migrate.stores.azure.sdk import AzureSdk, quoted
from hdh_migrate.stores.direct import pool_for, proxied, send
from hdh_migrate.stores.httppool import NETWORK_ERRORS, Answer
from hdh_migrate.stores.interface import ObjectInfo, info_from_headers
from hdh_migrate.stores.settings import AzureSettings
from hdh_migrate.stores.transport import Refusal


def open_direct(
    settings: AzureSettings, container: str, max_connections: int, sdk: AzureSdk
) -> tuple[AzureDirect | None, str]:
    """The direct transport for these settings, or None and why (the SDK then serves them)."""
    endpoint = resolve(settings)
    if endpoint is None:
        # settings only the SDK understands: ask it (an Entra ID token keeps the SDK for everything)
        url, name, key, sas = sdk.direct_credentials()
        if not key and not sas:
            return None, "no account key or SAS (an Entra ID token is signed by the SDK only)"
    else:
        url, name = endpoint.container_url(container), endpoint.account_name
        key, sas = endpoint.account_key, endpoint.sas_token
    if proxied(url):
        return None, f"a proxy is configured for {url}"
    direct = AzureDirect(
        container_url=url,
        sas_token=None if key else sas,
        account_name=name,
        account_key=key,
        container=container,
        maxsize=max_connections,
        ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE"),
    )
    return direct, ""


def _refusal(r: Answer) -> Refusal:
    return Refusal(r.status, r.headers.get("x-ms-error-code", ""))


class AzureDirect:
    """One container's reads and listings as single HTTP requests, authorised by a read/list-only SAS."""

    SAS_LIFETIME = timedelta(hours=8)

    def __init__(
        self,
        *,
        container_url: str,
        sas_token: str | None,
        account_name: str | None,
        account_key: str | None,
        container: str,
        maxsize: int,
        ca_bundle: str | None,
    ) -> None:
        self._container_url = container_url.rstrip("/")
        self._fixed_sas = sas_token.lstrip("?") if sas_token else None
        self._account_name, self._account_key, self.container = account_name, account_key, container
        self._sas: str | None = None
        self._sas_expiry = datetime.min.replace(tzinfo=UTC)
        self._sas_lock = threading.Lock()
        parts = urlsplit(container_url)
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
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
                    self.container,
                    permission="rl",
                    start=now - timedelta(minutes=15),  # tolerate clock skew with the service
                    expiry=expiry,
                    version=API_VERSION,
                )
                self._sas_expiry = expiry
            return self._sas

    def _blob(self, method: str, name: str, headers: Mapping[str, str], *, into: memoryview | None = None) -> Answer:
        """A GET or HEAD of one blob, read whole (with into: a successful body goes into that buffer)."""
        url = f"{self._container_url}/{quote(name, safe='/~')}?{self._token()}"
        hdrs = {"x-ms-version": API_VERSION, **headers}
        return send(
            self._pool, method, url, headers=lambda: hdrs, into=into, endpoint=self.endpoint, what=f"read {name}"
        )

    def _list_page(self, prefix: str, marker: str | None, page_size: int) -> Answer:
        """One page of a flat listing (with metadata), its body left unread for a streaming parse."""
        query = f"restype=container&comp=list&include=metadata&maxresults={page_size}"
        if prefix:
            query += f"&prefix={quote(prefix, safe='')}"
        if marker:
            query += f"&marker={quote(marker, safe='')}"
        url = f"{self._container_url}?{query}&{self._token()}"
        hdrs = {"x-ms-version": API_VERSION}
        r = send(
            self._pool, "GET", url, headers=lambda: hdrs, stream=True, endpoint=self.endpoint, what=f"list {prefix}"
        )
        if r.status != 200:
            r.read()
            raise _refusal(r)
        return r

    # -- the transport ------------------------------------------------------------------------------
    def check(self, prefix: str) -> None:
        self._list_page(prefix, None, 1).read()

    def list(self, prefix: str, page_size: int) -> Iterator[ObjectInfo]:
        """The List Blobs REST call, parsed as it streams (the SDK spends ~170 us of Python per blob on its
        models; this is the same XML, read with the C ElementTree parser, one element at a time)."""
        marker: str | None = None
        while True:
            r = self._list_page(prefix, marker, page_size)
            marker = None
            parser = ElementTree.XMLPullParser(events=("end",))
            try:
                for chunk in r.stream(256 * 1024):
                    parser.feed(chunk)
                    for _, el in parser.read_events():
                        if el.tag == "Blob":
                            yield _blob_info(el)
                            el.clear()
                        elif el.tag == "NextMarker":
                            marker = el.text or None
                parser.close()
            except NETWORK_ERRORS as exc:
                raise StoreUnavailableError(
                    f"the listing of azure://{self.container}/{prefix} broke off: {type(exc).__name__}",
                    hint="the task is retried with backoff",
                ) from None
            finally:
                r.release_conn()
            if not marker:
                return

    def head(self, name: str) -> ObjectInfo | None:
        r = self._blob("HEAD", name, {})
        if r.status == 404 and r.headers.get("x-ms-error-code", "BlobNotFound") == "BlobNotFound":
            return None
        if r.status != 200:
            raise _refusal(r)
        return info_from_headers(name, r.headers, meta_prefix="x-ms-meta-", content_md5=True)

    def read(self, name: str, offset: int, length: int, etag: str | None) -> bytes:
        return self._range(name, offset, length, etag).data

    def read_into(self, name: str, offset: int, into: memoryview, etag: str | None) -> None:
        """Exactly len(into) bytes, read from the socket into the caller's buffer; a body of another length
        is refused as a broken transfer (StoreUnavailableError, retried)."""
        self._range(name, offset, len(into), etag, into)

    def _range(self, name: str, offset: int, length: int, etag: str | None, into: memoryview | None = None) -> Answer:
        """A ranged, etag-pinned GET (its body read whole, or into the given buffer)."""
        headers = {"x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        if etag:
            headers["If-Match"] = quoted(etag)
        r = self._blob("GET", name, headers, into=into)  # transient failures retried there
        if r.status not in (200, 206):
            raise _refusal(r)
        return r


def _blob_info(el: ElementTree.Element) -> ObjectInfo:
    """ObjectInfo from one <Blob> element of a List Blobs answer (as the SDK would build it)."""
    name_el = el.find("Name")
    name = (name_el.text or "") if name_el is not None else ""
    if name_el is not None and name_el.get("Encoded") == "true":
        name = unquote(name)  # names with characters XML cannot carry come percent-encoded
    props = el.find("Properties")
    p = {c.tag: c.text for c in props} if props is not None else {}
    meta_el = el.find("Metadata")
    md5 = p.get("Content-MD5")
    return ObjectInfo(
        name=name,
        size=int(p.get("Content-Length") or 0),
        etag=(p.get("Etag") or "").strip('"'),
        last_modified=parsedate_to_datetime(p["Last-Modified"] or ""),
        content_type=p.get("Content-Type"),
        content_md5=base64.b64decode(md5) if md5 else None,
        metadata={c.tag: c.text or "" for c in meta_el} if meta_el is not None else {},
    )
