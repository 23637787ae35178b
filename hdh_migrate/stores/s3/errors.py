"""S3's refusals as typed errors: one mapping for both transports (the HTTP status, the error document's Code)."""

from __future__ import annotations

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
from hdh_migrate.stores.transport import Refusal

#: the code the SDK transport gives when botocore found no credentials at all
NO_CREDENTIALS = "NoCredentials"

_CRED_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
}
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}


def typed_error(r: Refusal, *, endpoint: str, bucket: str, what: str, key: str | None) -> HdhMigrateError:
    """The typed error for an S3 refusal met while trying to `what` (on `key`, or the bucket when None)."""
    code, status = r.code, r.status
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    if status == 0:
        return _unanswered(code, endpoint, what)
    if code == "NoSuchBucket" or (key is None and status == 404):
        return BucketNotFoundError(
            f"S3 bucket {bucket!r} does not exist on {endpoint}",
            hint="the bucket must be provisioned on the destination before the copy; check dest_bucket",
        )
    if code == "PreconditionFailed" or status == 412:
        return SourceChangedError(f"{where} changed while it was being read (If-Match failed)")
    if code in ("NoSuchKey", "NotFound") or status == 404:
        return ObjectNotFoundError(f"{where} does not exist")
    if code in ("QuotaExceeded", "InsufficientStorage") or status == 507:
        return DestinationFullError(
            f"the S3 store at {endpoint} refused to store {where}: {code or 'HTTP 507'} (no space or quota)",
            hint="raise the bucket's quota or free space with the provider, then clear the failed task",
        )
    if code in _CRED_CODES or code == "AccessDenied" or status == 403:
        return _refused(code, endpoint, where, what)
    if code in _DIGEST_CODES:
        return CorruptedTransferError(
            f"the S3 store rejected the bytes sent for {where}: their checksum did not match ({code})",
            hint="the data was corrupted in transit; the part is re-read and re-sent",
        )
    if code in _THROTTLE_CODES or status in (429, 503):
        return ThrottledError(f"the S3 store is throttling requests to {where} ({code or status})")
    if status >= 500:
        return StoreUnavailableError(f"the S3 store returned HTTP {status} ({code}) for {where} while trying to {what}")
    return HdhMigrateError(f"S3 error while trying to {what} {where}: {code or status}")


def _unanswered(code: str, endpoint: str, what: str) -> HdhMigrateError:
    if code == NO_CREDENTIALS:
        return CredentialsError(
            f"no S3 credentials for {endpoint}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the aws Connection's login/password)",
        )
    return StoreUnavailableError(
        f"cannot reach the S3 endpoint {endpoint} to {what}: {code}",
        hint="the store or the network is down; the task is retried with backoff",
    )


def _refused(code: str, endpoint: str, where: str, what: str) -> HdhMigrateError:
    if code in _CRED_CODES:
        return CredentialsError(
            f"the S3 endpoint {endpoint} refused the credentials ({code}) while trying to {what}",
            hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the aws Connection)",
        )
    return AccessDeniedError(
        f"access denied to {where} on {endpoint} while trying to {what}",
        hint="grant the key s3:PutObject, s3:GetObject, s3:ListBucket and multipart rights on the bucket",
    )
