"""Azure Blob Storage backend (source side): the official azure-storage-blob SDK, and the direct data path.

Reads and listings go through the direct path (stores/direct.py) wherever a key or SAS authorises it; the
SDK client is then built only for what needs it (writes for the rig and tests, an Entra ID token, a proxy),
on first use: importing it costs ~0.2 s of CPU per process, which a copy of a few large blobs or an
Airflow task would otherwise pay for nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from hdh_migrate.errors import (
    AccessDeniedError,
    ContainerNotFoundError,
    CredentialsError,
    HdhMigrateError,
    ObjectNotFoundError,
    SourceChangedError,
    StoreUnavailableError,
    ThrottledError,
)
from hdh_migrate.stores import transport as direct
from hdh_migrate.stores.azure_endpoint import API_VERSION, resolve
from hdh_migrate.stores.httppool import NETWORK_ERRORS, Answer
from hdh_migrate.stores.interface import Features, ObjectInfo, PutResult, info_from_headers
from hdh_migrate.stores.settings import AzureSettings
from hdh_migrate.stores.transport import AzureDirect

_MiB = 1024 * 1024


class AzureBlobStore:
    kind = "azure"
    page_size = 5000
    features = Features(read_into=True, open_read=False, keeps_content_md5=True)

    def __init__(
        self,
        settings: AzureSettings,
        container: str,
        *,
        max_connections: int = 16,
        max_single_get_size: int = 32 * _MiB,
        retry_total: int = 4,
    ) -> None:
        self.settings = settings
        self.container = container
        self._sdk_options = (max_connections, max_single_get_size, retry_total)
        self._sdk_lock = threading.Lock()
        self._sdk: tuple[Any, Any] | None = None  # (BlobServiceClient, ContainerClient), built on first use
        self._direct = self._direct_path(max_connections)

    def describe(self) -> str:
        return self.settings.describe()

    # -- the SDK client, on first use ---------------------------------------------------------------
    @property
    def _service(self) -> Any:
        return self._sdk_clients()[0]

    @property
    def _container(self) -> Any:
        return self._sdk_clients()[1]

    def _sdk_clients(self) -> tuple[Any, Any]:
        with self._sdk_lock:
            if self._sdk is None:
                self._sdk = self._build_sdk()
            return self._sdk

    def _build_sdk(self) -> tuple[Any, Any]:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        max_connections, max_single_get_size, retry_total = self._sdk_options
        settings = self.settings
        # One pooled HTTP session shared by all worker threads, sized to the worker count: the SDK's
        # default pool of 10 would drop connections (and re-handshake) as soon as more threads run.
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        kwargs: dict[str, Any] = {
            "transport": RequestsTransport(
                session=session, session_owner=False, connection_data_block_size=1024 * 1024
            ),
            # The SDK default waits 15 s before its first retry; an operator prefers fast, bounded tries
            # and Airflow's own retry for anything longer.
            "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=retry_total),
            "max_single_get_size": max_single_get_size,
            "max_chunk_get_size": max_single_get_size,
            "connection_timeout": 10,
            "read_timeout": 120,
        }
        if settings.connection_string:
            service = BlobServiceClient.from_connection_string(settings.connection_string.get(), **kwargs)
        else:
            credential: Any = None
            if settings.account_key:
                credential = settings.account_key.get()
            elif settings.sas_token:
                credential = settings.sas_token.get()
            else:
                try:
                    from azure.identity import DefaultAzureCredential
                except ImportError as exc:  # pragma: no cover - azure-identity ships with the provider
                    raise CredentialsError("no Azure key, SAS token or azure-identity available") from exc
                credential = DefaultAzureCredential()
            service = BlobServiceClient(settings.account_url, credential=credential, **kwargs)
        return service, service.get_container_client(self.container)

    def _direct_path(self, max_connections: int) -> AzureDirect | None:
        """The direct read path (see stores/direct.py) when a key or SAS authorises it, else None (SDK)."""
        if not direct.enabled():
            return None
        endpoint = resolve(self.settings)
        if endpoint is None:
            # settings only the SDK understands: ask it (an Entra ID token keeps the SDK for everything)
            cred = self._service.credential
            key = getattr(cred, "account_key", None)
            sas = self.settings.sas_token.get() if self.settings.sas_token else None
            if not key and not sas:
                return None
            url = self._container.url.split("?", 1)[0]
            name = getattr(cred, "account_name", None) or self._service.account_name
        else:
            url, name = endpoint.container_url(self.container), endpoint.account_name
            key, sas = endpoint.account_key, endpoint.sas_token
        if direct.proxied(url):
            return None
        return AzureDirect(
            container_url=url,
            api_version=API_VERSION,
            sas_token=None if key else sas,
            account_name=name,
            account_key=key,
            container=self.container,
            maxsize=max_connections,
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE"),
        )

    # -- errors -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str, name: str | None = None) -> Iterator[None]:
        try:
            yield
        except HdhMigrateError:
            raise
        except Exception as exc:
            mapped = self._sdk_error(exc, what, name)
            if mapped is None:
                raise
            raise mapped from None

    def _sdk_error(self, exc: Exception, what: str, name: str | None) -> HdhMigrateError | None:
        """The typed error for an exception of the SDK (None for anything else). Its exception classes are
        imported here, not at start: only an SDK call can have raised one, so the SDK is loaded by then."""
        if not type(exc).__module__.startswith("azure."):
            return None
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceModifiedError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if isinstance(exc, ResourceModifiedError):
            return self._status_error(412, "ConditionNotMet", what, name)
        if isinstance(exc, ResourceNotFoundError):
            code = str(getattr(exc, "error_code", "") or "")
            return self._status_error(404, code or ("ContainerNotFound" if name is None else ""), what, name)
        if isinstance(exc, ClientAuthenticationError):
            return CredentialsError(
                f"Azure refused the credentials for {self.settings.describe()} while trying to {what}",
                hint="check the account key, SAS token or connection string (expired SAS tokens are common)",
            )
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return StoreUnavailableError(
                f"cannot reach Azure at {self.settings.describe()} to {what}: {type(exc).__name__}",
                hint="the store or the network is down; the task is retried with backoff",
            )
        if isinstance(exc, HttpResponseError):
            code = str(getattr(exc, "error_code", "") or "")
            return self._status_error(exc.status_code or 0, code, what, name)
        return None

    def _status_error(self, status: int, code: str, what: str, name: str | None) -> HdhMigrateError:
        """The typed error for an Azure error status and x-ms-error-code, whichever path met it."""
        where = f"azure://{self.container}/{name}" if name else f"azure://{self.container}"
        if status in (304, 412):
            return SourceChangedError(
                f"{where} changed while it was being copied (its etag no longer matches)",
                hint="the object is retried from its new version; if it keeps changing, pause the writer "
                "or run the copy again once the source is quiet",
            )
        if status == 404:
            if "ContainerNotFound" in code:
                return ContainerNotFoundError(
                    f"Azure container {self.container!r} does not exist on {self.settings.describe()}",
                    hint="check the container name (source_container / the azure:// URL) and the account",
                )
            return ObjectNotFoundError(f"{where} does not exist (it may have been deleted during the run)")
        if status == 403 and "AuthorizationPermissionMismatch" in code:
            return AccessDeniedError(
                f"Azure denied access to {where} ({code})",
                hint="grant the identity 'Storage Blob Data Reader' on the container",
            )
        if status == 403:
            return CredentialsError(
                f"Azure refused the credentials for {self.settings.describe()} while trying to {what} "
                f"({code or 'HTTP 403'})",
                hint="check the account key, SAS token (permissions r,l and expiry) or connection string",
            )
        if status in (429, 503):
            return ThrottledError(f"Azure is throttling requests to {where} (HTTP {status})")
        if status >= 500:
            return StoreUnavailableError(f"Azure returned HTTP {status} for {where} while trying to {what}")
        return HdhMigrateError(f"Azure error while trying to {what} {where}: HTTP {status} {code}")

    # -- operations ---------------------------------------------------------------------------------
    @staticmethod
    def _info(props: Any) -> ObjectInfo:
        cs = props.content_settings
        md5 = bytes(cs.content_md5) if cs and cs.content_md5 else None
        return ObjectInfo(
            name=props.name,
            size=int(props.size),
            etag=str(props.etag).strip('"'),
            last_modified=props.last_modified,
            content_type=cs.content_type if cs else None,
            content_md5=md5,
            metadata=dict(props.metadata or {}),
        )

    def check_access(self, prefix: str = "") -> None:
        """Prove the container exists and that we may list and read it, before any work starts.

        One name is listed, under the prefix about to be worked on: a container-wide first name costs
        Azurite a sort of every blob in the container (0.27 s at 100,000 blobs, against 0.05 s)."""
        if self._direct is not None:
            r = self._direct.list_page(prefix, None, 1)
            r.read()
            r.release_conn()
            if r.status != 200:
                raise self._status_error(r.status, r.headers.get("x-ms-error-code", ""), "open the container", None)
            return
        with self._errors("open the container"):
            # Listing one name proves both existence and read/list permission, which a SAS scoped to a
            # container may allow even when get_container_properties is not.
            pages = self._container.list_blobs(name_starts_with=prefix or None, results_per_page=1).by_page()
            next(pages, None)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if self._direct is not None:
            yield from self._direct_list(prefix)
            return
        with self._errors("list blobs"):
            for props in self._container.list_blobs(
                name_starts_with=prefix or None, include=["metadata"], results_per_page=self.page_size
            ):
                yield self._info(props)

    def _direct_list(self, prefix: str) -> Iterator[ObjectInfo]:
        """The List Blobs REST call, parsed as it streams (the SDK spends ~170 us of Python per blob on its
        models; this is the same XML, read with the C ElementTree parser, one element at a time)."""
        assert self._direct is not None
        marker: str | None = None
        while True:
            r = self._direct.list_page(prefix, marker, self.page_size)
            if r.status != 200:
                raise self._status_error(r.status, r.headers.get("x-ms-error-code", ""), "list blobs", None)
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
        if self._direct is not None:
            r = self._direct.blob("HEAD", name, {})
            if r.status == 404 and r.headers.get("x-ms-error-code", "BlobNotFound") == "BlobNotFound":
                return None
            if r.status != 200:
                raise self._status_error(r.status, r.headers.get("x-ms-error-code", ""), "read properties", name)
            return info_from_headers(name, r.headers, meta_prefix="x-ms-meta-", content_md5=True)
        try:
            with self._errors("read properties", name):
                return self._info(self._container.get_blob_client(name).get_blob_properties())
        except ObjectNotFoundError:
            return None

    def read_range(self, name: str, offset: int, length: int, *, etag: str | None = None) -> bytes:
        if length == 0:
            return b""
        if self._direct is not None:
            return self._direct_range(name, offset, length, etag).data
        from azure.core import MatchConditions

        cond: dict[str, Any] = {}
        if etag:
            cond = {"etag": _quoted(etag), "match_condition": MatchConditions.IfNotModified}
        with self._errors("read", name):
            return (
                self._container.get_blob_client(name)
                .download_blob(offset=offset, length=length, max_concurrency=1, **cond)
                .readall()
            )

    def _direct_range(
        self, name: str, offset: int, length: int, etag: str | None, into: memoryview | None = None
    ) -> Answer:
        """A ranged, etag-pinned GET (its body read whole, or into the given buffer)."""
        headers = {"x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        if etag:
            headers["If-Match"] = _quoted(etag)
        assert self._direct is not None
        r = self._direct.blob("GET", name, headers, into=into)  # transient failures retried there
        if r.status not in (200, 206):
            raise self._status_error(r.status, r.headers.get("x-ms-error-code", ""), "read", name)
        return r

    def read_range_into(self, name: str, offset: int, into: memoryview, *, etag: str | None = None) -> None:
        """read_range, into the caller's buffer (exactly len(into) bytes): the copier reuses its part buffers.

        A body of another length is refused as a broken transfer (StoreUnavailableError, retried)."""
        if not len(into):
            return
        if self._direct is None:
            data = self.read_range(name, offset, len(into), etag=etag)
            if len(data) != len(into):
                raise SourceChangedError(f"{name}: short read at offset {offset}")
            into[:] = data
            return
        self._direct_range(name, offset, len(into), etag, into)

    def iter_read(self, name: str, *, chunk_size: int, etag: str | None = None) -> Iterator[bytes]:
        info = self.head(name)
        if info is None:
            raise ObjectNotFoundError(f"azure://{self.container}/{name} does not exist")
        pin = etag or info.etag
        for offset in range(0, info.size, chunk_size):
            yield self.read_range(name, offset, min(chunk_size, info.size - offset), etag=pin)

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
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type=content_type or "application/octet-stream", content_md5=md5)
        with self._errors("write", name):
            r = self._container.get_blob_client(name).upload_blob(
                data, overwrite=True, metadata=metadata, content_settings=settings, max_concurrency=4
            )
        return PutResult(etag=str(r["etag"]).strip('"'))

    def delete(self, name: str) -> None:
        with self._errors("delete", name):
            self._container.delete_blob(name)

    def delete_container(self) -> None:
        """For the rig and tests only: removes the container and everything in it."""
        with contextlib.suppress(ContainerNotFoundError), self._errors("delete the container"):
            self._container.delete_container()

    def create_container(self) -> None:
        """For the rig and tests only: in production the container already exists."""
        from azure.core.exceptions import ResourceExistsError

        with self._errors("create the container"), contextlib.suppress(ResourceExistsError):
            self._container.create_container()


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


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'
