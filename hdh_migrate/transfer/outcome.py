"""What became of each object (copied, skipped, failed, rejected...), and the run's counts of them.

``CopyCounts`` fields are the JSON keys of a run's summary.json and ``ObjectOutcome.result_row`` gives the
columns of the results manifest: both are read by operators and auditors, so their names stay as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hdh_migrate.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ContainerNotFoundError,
    CredentialsError,
    HdhMigrateError,
)
from hdh_migrate.transfer.checksums import Digests


class Cancelled(HdhMigrateError):
    code = "cancelled"


# Errors that no other object can escape either: the run stops at the first one instead of failing
# millions of objects one by one.
FATAL_ERRORS = (CredentialsError, AccessDeniedError, BucketNotFoundError, ContainerNotFoundError)

#: statuses whose object is counted as a failure (in the counts' errors and the progress line)
FAILED_STATUSES = ("failed", "rejected")


@dataclass
class ObjectOutcome:
    name: str
    key: str | None
    size: int
    status: str  # copied | skipped | failed | rejected | would_copy | would_skip
    reason: str | None = None
    digests: Digests | None = None
    source_etag: str | None = None
    source_last_modified: datetime | None = None
    source_content_md5: str | None = None
    dest_etag: str | None = None
    parts: int | None = None
    part_size: int | None = None
    attempts: int = 0
    error_code: str | None = None
    transient: bool = False
    seconds: float = 0.0
    resumed_parts: int = 0  # parts of an interrupted upload reused in this copy
    resumed_bytes: int = 0

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def result_row(self) -> dict[str, Any]:
        """The row of the results manifest (its columns: manifest.RESULT_FIELDS)."""
        d = self.digests
        return {
            "name": self.name,
            "key": self.key,
            "size": self.size,
            "status": self.status,
            "reason": self.reason,
            "source_sha256": d.sha256 if d else None,
            "dest_sha256": None,
            "md5": d.md5 if d else None,
            "source_etag": self.source_etag,
            "source_last_modified": self.source_last_modified,
            "source_content_md5": self.source_content_md5,
            "dest_etag": self.dest_etag,
            "parts": self.parts,
            "part_size": self.part_size,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "seconds": self.seconds,
        }


@dataclass
class CopyCounts:
    listed: int = 0
    listed_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    rejected: int = 0
    would_copy: int = 0
    would_copy_bytes: int = 0
    retried: int = 0
    resumed_parts: int = 0  # parts of interrupted multipart uploads reused, not re-sent
    resumed_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    #: the first errors are kept for the summary; the results manifest has every one
    MAX_ERRORS = 100

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.rejected == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def add(self, o: ObjectOutcome) -> None:
        """Count one object's outcome (the caller holds the lock that guards the counts)."""
        if o.status == "copied":
            self.copied += 1
            self.copied_bytes += o.size
            self.resumed_parts += o.resumed_parts
            self.resumed_bytes += o.resumed_bytes
        elif o.status in ("skipped", "would_skip"):
            self.skipped += 1
            self.skipped_bytes += o.size
        elif o.status == "would_copy":
            self.would_copy += 1
            self.would_copy_bytes += o.size
        elif o.status == "rejected":
            self.rejected += 1
        else:
            self.failed += 1
        if o.failed and len(self.errors) < self.MAX_ERRORS:
            self.errors.append(
                {
                    "name": o.name,
                    "code": o.error_code or "",
                    "message": o.reason or "",
                    "transient": str(o.transient).lower(),
                }
            )
