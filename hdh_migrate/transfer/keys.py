"""Mapping a blob name to an S3 key, keeping it byte-for-byte where S3 allows it.

Spaces, unicode, ``%``, ``#`` and deep paths are kept exactly. Names that S3-compatible stores cannot hold
faithfully are rejected with the reason, never silently altered: control characters (not representable in
S3's XML listings), keys over 1,024 UTF-8 bytes, and empty, ``.`` or ``..`` path segments, which
filesystem-backed stores (SeaweedFS, MinIO in FS mode) collapse, so two blobs could land on one key.
"""

from __future__ import annotations

import unicodedata

from hdh_migrate.errors import InvalidObjectNameError

MAX_KEY_BYTES = 1024

#: where hdh-migrate writes its own documents at the destination, at the bucket's root: routing documents
#: (consumers read them) and audit reports. Never dataset objects, so never "extra" and never copied over.
ROUTING_PREFIX = "_hdh/routing/"
AUDIT_PREFIX = "_hdh-audit/"
RESERVED_PREFIXES = ("_hdh/", AUDIT_PREFIX)


def is_reserved(key: str) -> bool:
    """A key of hdh-migrate's own documents."""
    return key.startswith(RESERVED_PREFIXES)


def relative_name(name: str, prefix: str) -> str:
    if not name.startswith(prefix):
        raise InvalidObjectNameError(f"{name!r} is not under the prefix {prefix!r}")
    return name[len(prefix) :]


def check_key(key: str) -> str:
    """Return key unchanged if every S3-compatible store can hold it, else raise with the reason."""
    if not key:
        raise InvalidObjectNameError("empty object name")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidObjectNameError(
            f"name too long for S3 ({len(key.encode('utf-8'))} UTF-8 bytes > {MAX_KEY_BYTES})",
            hint="shorten the destination prefix, or rename the blob at the source",
        )
    for ch in key:
        if unicodedata.category(ch) == "Cc" or ch in "\ufffe\uffff":
            raise InvalidObjectNameError(
                f"name contains the control character U+{ord(ch):04X}, which S3 listings cannot carry",
                hint="rename the blob at the source",
            )
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        raise InvalidObjectNameError(
            "name has an empty, '.' or '..' path segment, which S3-compatible stores may collapse",
            hint="rename the blob at the source",
        )
    if key.endswith("/"):
        raise InvalidObjectNameError("name ends with '/', a folder marker rather than an object")
    return key
