"""Typed errors an operator can act on.

Every error says what happened and what to do, and is classed as *transient* (worth retrying: throttling,
timeouts, 5xx, a source that changed while it was read) or *permanent* (retrying cannot help: bad
credentials, a missing container, a checksum mismatch). The Airflow layer maps permanent errors to
``AirflowFailException`` and lets Airflow's own retry handle transient ones, so the class is the contract.
No message ever carries a secret: they name accounts, containers, buckets and keys, never keys' values.

``exit_code`` is the command line's: 2 for bad input (arguments, credentials, a missing container...), 1
when the run went through and found the data not right (objects that failed or differ, a failed table, a
refused cutover) or when a transient error outlived the retries.
"""

from __future__ import annotations


class HdhMigrateError(Exception):
    """Base of every error hdh-migrate raises on purpose."""

    transient: bool = False
    #: short stable name used in reports, alerts and the runbook
    code: str = "error"
    #: the command line's exit status for it (see the module's docstring); None: decided by ``transient``
    exit_code: int | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} -- {self.hint}" if self.hint else self.message

    @property
    def exit_status(self) -> int:
        if self.exit_code is not None:
            return self.exit_code
        return 1 if self.transient else 2


class TransientError(HdhMigrateError):
    """Retrying later may succeed."""

    transient = True
    code = "transient"


class PermanentError(HdhMigrateError):
    """Retrying without a change by a person cannot succeed."""

    code = "permanent"


class ConfigError(PermanentError):
    code = "config"


class MalformedURLError(ConfigError):
    code = "malformed_url"


class CredentialsError(PermanentError):
    code = "credentials"


class AccessDeniedError(PermanentError):
    code = "access_denied"


class ContainerNotFoundError(PermanentError):
    code = "container_not_found"


class BucketNotFoundError(PermanentError):
    code = "bucket_not_found"


class DestinationFullError(PermanentError):
    """The S3 store refuses writes for lack of space or quota: a person must free or buy space."""

    code = "destination_full"


class ObjectNotFoundError(PermanentError):
    code = "object_not_found"


class InvalidObjectNameError(PermanentError):
    code = "invalid_object_name"


class ChecksumMismatchError(PermanentError):
    code = "checksum_mismatch"


class StoreUnavailableError(TransientError):
    """Connection refused, timeout, 5xx: the store may come back."""

    code = "store_unavailable"


class ThrottledError(TransientError):
    code = "throttled"


class SourceChangedError(TransientError):
    """The source blob changed while it was being read (its etag no longer matches)."""

    code = "source_changed"


class CorruptedTransferError(TransientError):
    """The store rejected (BadDigest) or mis-stored the bytes sent: corrupted in transit, worth re-sending."""

    code = "corrupted_transfer"


class VerificationFailedError(PermanentError):
    """Objects at the destination are missing or differ from the source."""

    code = "verification_failed"
    exit_code = 1


class ExtraObjectsError(PermanentError):
    """Objects at the destination have no source: the destination is not the source (shared prefix, leftovers)."""

    code = "extra_objects"
    exit_code = 1


class CopyFailedError(HdhMigrateError):
    """Some objects could not be copied; transient if every failure was transient. ``code`` may name what
    failed (a shard whose objects failed on a checksum mismatch fails with ``checksum_mismatch``: the
    runbook's entry for it)."""

    code = "copy_failed"
    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, transient: bool = False, code: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.transient = transient
        if code:
            self.code = code
