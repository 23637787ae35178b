"""Resuming a multipart upload that a killed run left unfinished, instead of sending every part again.

Beyond rclone (its issue #87): a large object interrupted halfway does not start over. Stored parts are
only candidates: a part is reused when the source bytes re-read for it have exactly the MD5 the store
reports for it (checked by the part task, multipart.py), so a source that changed, a different part size
or a corrupted part simply gets re-sent (with any part checksum profile: the MD5 of a candidate part is
computed on resume only). Only possible when ETags are MD5s (no SSE-C/KMS); otherwise, and for every other
upload of the key, the leftovers are aborted: no orphan parts stay behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hdh_migrate.stores.interface import MultipartWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resumable:
    upload_id: str | None = None  # None: nothing to resume, start a new upload
    stored: dict[int, str] = field(default_factory=dict)  # part number -> MD5 (hex) the store reports

    def md5_of(self, number: int) -> str | None:
        return self.stored.get(number)


def find_resumable(dest: MultipartWriter, key: str, size: int, part_size: int, *, etag_is_md5: bool) -> Resumable:
    """The unfinished upload of this key with the most reusable parts; every other one is aborted."""
    uploads = [upload_id for k, upload_id, _ in dest.list_multipart_uploads(key) if k == key]
    best = Resumable()
    if etag_is_md5:
        for upload_id in uploads:
            usable = _usable_parts(dest, key, upload_id, size, part_size)
            if len(usable) > len(best.stored):
                best = Resumable(upload_id, usable)
    for upload_id in uploads:
        if upload_id != best.upload_id:
            log.info("aborting an unfinished multipart upload of %s left by an earlier run", key)
            dest.abort_multipart(key, upload_id)
    return best


def _usable_parts(dest: MultipartWriter, key: str, upload_id: str, size: int, part_size: int) -> dict[int, str]:
    """The stored parts of the size this copy would send them at: part number -> their MD5."""
    usable = {}
    for p in dest.list_parts(key, upload_id):
        n, psize = int(p["PartNumber"]), int(p["Size"])
        if psize == min(part_size, size - (n - 1) * part_size):
            usable[n] = str(p["ETag"]).strip('"')
    return usable
