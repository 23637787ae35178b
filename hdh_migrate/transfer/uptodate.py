"""Is the destination object an up-to-date copy of the source object? What makes a re-run cheap and safe.

An object whose destination records the current source version and whose content fingerprint (ETag)
still matches is skipped; anything missing, stale (the source was rewritten since), rewritten at the
destination or left without its hash by an interrupted copy is copied again.
"""

from __future__ import annotations

from typing import NamedTuple

from hdh_migrate.sizes import MiB
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.transfer.checksums import digest_stream
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.provenance import META_MD5, META_MULTIPART_ETAG, META_SHA256, META_SOURCE_ETAG


class DestinationState(NamedTuple):
    state: str  # complete | missing | stale | differs | incomplete
    reason: str

    @property
    def complete(self) -> bool:
        return self.state == "complete"


MISSING = DestinationState("missing", "not at the destination")


def destination_state(
    dest: Store, info: ObjectInfo, key: str, *, index: KeyIndex | None = None, checksum: bool = False
) -> DestinationState:
    """What the destination holds for this source object. index: keys known to exist there (a listing taken
    before the copy), so that a key absent from it needs no HEAD request; checksum: re-read the destination
    and compare its SHA-256 with the recorded one (like rclone --checksum)."""
    if index is not None and key not in index:
        return MISSING
    head = dest.head(key)
    if head is None:
        return MISSING
    differs = _recorded_differs(dest, info, head)
    if differs is not None:
        return differs
    if checksum and not _content_matches(dest, key, head.metadata[META_SHA256]):
        return DestinationState("differs", "the destination content does not match the recorded SHA-256")
    return DestinationState("complete", "already copied")


def _recorded_differs(dest: Store, info: ObjectInfo, head: ObjectInfo) -> DestinationState | None:
    """Why the destination's properties and recorded provenance are not those of a copy of info, or None."""
    meta = head.metadata
    copied_from = meta.get(META_SOURCE_ETAG)
    if copied_from and copied_from != info.etag:
        return DestinationState("stale", "the source changed since it was copied")
    if head.size != info.size:
        return DestinationState("differs", f"size differs ({head.size} at the destination, {info.size} at the source)")
    if not copied_from:
        return DestinationState("differs", "the destination object was not written by hdh-migrate")
    if not meta.get(META_SHA256):
        return DestinationState("incomplete", "no recorded hash (an interrupted copy)")
    if dest.features.etag_is_md5 and head.etag not in (meta.get(META_MD5), meta.get(META_MULTIPART_ETAG)):
        return DestinationState("differs", "the destination object was rewritten after the copy (its ETag changed)")
    return None


def _content_matches(dest: Store, key: str, recorded_sha256: str) -> bool:
    return digest_stream(dest.iter_read(key, chunk_size=MiB), md5=False).sha256 == recorded_sha256
