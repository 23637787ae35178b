"""Azure's refusals as typed errors: one mapping for both transports (an Azure error status and x-ms-error-code)."""

from __future__ import annotations

from hdh_migrate.errors import (
    AccessDeniedError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    HdhMigrateError,
    ObjectNotFoundError,
    SourceChangedError,
    StoreUnavailableError,
    ThrottledError,
)
from hdh_migrate.stores.transport import Refusal

# what Azure answers when the bytes it received do not match the Content-MD5 (or CRC64) sent with them
_DIGEST_CODES = ("Md5Mismatch", "Crc64Mismatch", "InvalidMd5")


def typed_error(r: Refusal, *, endpoint: str, container: str, what: str, name: str | None) -> HdhMigrateError:
    """The typed error for an Azure refusal met while trying to `what` (on blob `name`, or the container)."""
    status, code = r.status, r.code
    where = f"azure://{container}/{name}" if name else f"azure://{container}"
    if status == 0:
        return StoreUnavailableError(
            f"cannot reach Azure at {endpoint} to {what}: {code}",
            hint="the store or the network is down; the task is retried with backoff",
        )
    if status in (304, 412):
        return SourceChangedError(
            f"{where} changed while it was being copied (its etag no longer matches)",
            hint="the object is retried from its new version; if it keeps changing, pause the writer "
            "or run the copy again once the source is quiet",
        )
    if status == 404:
        if "ContainerNotFound" in code:
            return ContainerNotFoundError(
                f"Azure container {container!r} does not exist on {endpoint}",
                hint="check the container name (source_container / the azure:// URL) and the account",
            )
        return ObjectNotFoundError(f"{where} does not exist (it may have been deleted during the run)")
    if status == 403:
        return _refused(code, endpoint, where, what)
    if status == 400 and code in _DIGEST_CODES:
        return CorruptedTransferError(
            f"Azure rejected the bytes sent for {where}: their checksum did not match ({code})",
            hint="the data was corrupted in transit; it is sent again",
        )
    if status in (429, 503):
        return ThrottledError(f"Azure is throttling requests to {where} (HTTP {status})")
    if status >= 500:
        return StoreUnavailableError(f"Azure returned HTTP {status} for {where} while trying to {what}")
    return HdhMigrateError(f"Azure error while trying to {what} {where}: HTTP {status} {code}")


def _refused(code: str, endpoint: str, where: str, what: str) -> HdhMigrateError:
    if "AuthorizationPermissionMismatch" in code:
        return AccessDeniedError(
            f"Azure denied access to {where} ({code})",
            hint="grant the identity 'Storage Blob Data Reader' on the container",
        )
    return CredentialsError(
        f"Azure refused the credentials for {endpoint} while trying to {what} ({code or 'HTTP 403'})",
        hint="check the account key, SAS token (permissions r,l and expiry) or connection string",
    )
