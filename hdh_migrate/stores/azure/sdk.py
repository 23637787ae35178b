"""The Azure SDK transport (azure-storage-blob), and what only the SDK does: writes (the rig and tests write the
source), container management, Entra ID tokens, proxies.

Its client is built on first use: importing the SDK costs ~0.2 s of CPU per process, which a copy of a few
large blobs or an Airflow task on the direct path would otherwise pay for nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from hdh_migrate.errors import CredentialsError, HdhMigrateError, SourceChangedError
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.settings import AzureSettings
from hdh_migrate.stores.transport import Refusal


def refusal(exc: Exception, container_level: bool) -> Refusal | None:
    """The Refusal an exception of the SDK stands for (None for anything else). The SDK's exception classes
    are imported here, not at start: only an SDK call can have raised one, so the SDK is loaded by then."""
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

    code = getattr(exc, "error_code", None)
    code = str(getattr(code, "value", code) or "")  # a StorageErrorCode member, or its value
    if isinstance(exc, ResourceModifiedError):
        return Refusal(412, code or "ConditionNotMet")
    if isinstance(exc, ResourceNotFoundError):
        return Refusal(404, code or ("ContainerNotFound" if container_level else ""))
    if isinstance(exc, ClientAuthenticationError):
        return Refusal(403, code or "AuthenticationFailed")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return Refusal(0, type(exc).__name__)
    if isinstance(exc, HttpResponseError):
        return Refusal(exc.status_code or 0, code or type(exc).__name__)
    return None


@contextlib.contextmanager
def refusals(container_level: bool = False) -> Iterator[None]:
    """SDK exceptions raised inside, as Refusals (container_level: a 404 without a code is the container's)."""
    try:
        yield
    except HdhMigrateError:
        raise
    except Exception as exc:
        r = refusal(exc, container_level)
        if r is None:
            raise
        raise r from None


def blob_info(props: Any) -> ObjectInfo:
    """ObjectInfo from the SDK's BlobProperties."""
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


def quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


class AzureSdk:
    """One container through azure-storage-blob. Thread-safe; the client is built on first use."""

    def __init__(
        self,
        settings: AzureSettings,
        container: str,
        *,
        max_connections: int,
        max_single_get_size: int,
        retry_total: int,
    ) -> None:
        self.settings, self.container = settings, container
        self._options = (max_connections, max_single_get_size, retry_total)
        self._lock = threading.Lock()
        self._clients: tuple[Any, Any] | None = None  # (BlobServiceClient, ContainerClient)

    @property
    def service(self) -> Any:
        """The SDK's BlobServiceClient."""
        return self._built()[0]

    @property
    def container_client(self) -> Any:
        """The SDK's ContainerClient of this container."""
        return self._built()[1]

    def _built(self) -> tuple[Any, Any]:
        with self._lock:
            if self._clients is None:
                service = self._service()
                self._clients = service, service.get_container_client(self.container)
            return self._clients

    def _service(self) -> Any:
        # the SDK, imported on first use (~0.2 s of CPU, see the module's docstring)
        from azure.storage.blob import BlobServiceClient

        settings = self.settings
        kwargs = self._client_options()
        if settings.connection_string:
            return BlobServiceClient.from_connection_string(settings.connection_string.get(), **kwargs)
        credential: Any
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
        return BlobServiceClient(settings.account_url, credential=credential, **kwargs)

    def _client_options(self) -> dict[str, Any]:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import ExponentialRetry

        max_connections, max_single_get_size, retry_total = self._options
        # One pooled HTTP session shared by all worker threads, sized to the worker count: the SDK's
        # default pool of 10 would drop connections (and re-handshake) as soon as more threads run.
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return {
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

    def direct_credentials(self) -> tuple[str, str | None, str | None, str | None]:
        """(container URL, account name, account key, SAS) as the SDK resolved them from settings only it
        understands, for the direct path; no key and no SAS means an Entra ID token (SDK only)."""
        cred = self.service.credential
        key = getattr(cred, "account_key", None)
        sas = self.settings.sas_token.get() if self.settings.sas_token else None
        name = getattr(cred, "account_name", None) or self.service.account_name
        return self.container_client.url.split("?", 1)[0], name, key, sas

    # -- the transport ------------------------------------------------------------------------------
    def check(self, prefix: str) -> None:
        # Listing one name proves both existence and read/list permission, which a SAS scoped to a
        # container may allow even when get_container_properties is not.
        with refusals(container_level=True):
            pages = self.container_client.list_blobs(name_starts_with=prefix or None, results_per_page=1).by_page()
            next(pages, None)

    def list(self, prefix: str, page_size: int) -> Iterator[ObjectInfo]:
        with refusals(container_level=True):
            for props in self.container_client.list_blobs(
                name_starts_with=prefix or None, include=["metadata"], results_per_page=page_size
            ):
                yield blob_info(props)

    def head(self, name: str) -> ObjectInfo | None:
        try:
            with refusals():
                return blob_info(self.container_client.get_blob_client(name).get_blob_properties())
        except Refusal as r:
            if r.status == 404 and "ContainerNotFound" not in r.code:
                return None
            raise

    def read(self, name: str, offset: int, length: int, etag: str | None) -> bytes:
        from azure.core import MatchConditions

        cond: dict[str, Any] = {}
        if etag:
            cond = {"etag": quoted(etag), "match_condition": MatchConditions.IfNotModified}
        with refusals():
            blob = self.container_client.get_blob_client(name)
            return blob.download_blob(offset=offset, length=length, max_concurrency=1, **cond).readall()

    def read_into(self, name: str, offset: int, into: memoryview, etag: str | None) -> None:
        data = self.read(name, offset, len(into), etag)
        if len(data) != len(into):
            raise SourceChangedError(f"{name}: short read at offset {offset}")
        into[:] = data

    # -- only through the SDK -----------------------------------------------------------------------
    def put(
        self, name: str, data: bytes, *, content_type: str | None, metadata: dict[str, str] | None, md5: bytes | None
    ) -> str:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type=content_type or "application/octet-stream", content_md5=md5)
        with refusals():
            r = self.container_client.get_blob_client(name).upload_blob(
                data, overwrite=True, metadata=metadata, content_settings=settings, max_concurrency=4
            )
        return str(r["etag"]).strip('"')

    def delete(self, name: str) -> None:
        with refusals():
            self.container_client.delete_blob(name)

    def create_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with refusals(container_level=True), contextlib.suppress(ResourceExistsError):
            self.container_client.create_container()

    def delete_container(self) -> None:
        with refusals(container_level=True):
            self.container_client.delete_container()
