"""What a copied object records at the destination about where its bytes came from and what they hash to.

These metadata names are read back by the re-run's skip decision, by verification and by auditors: they are
part of the destination's format, never renamed.
"""

from __future__ import annotations

from hdh_migrate import __version__
from hdh_migrate.errors import ChecksumMismatchError, InvalidObjectNameError
from hdh_migrate.stores.interface import ObjectInfo

# Destination metadata written by hdh-migrate (S3 lowercases user metadata keys; Azure metadata keys
# cannot contain '-', so these never collide with the blob's own metadata).
META_SHA256 = "hdh-sha256"
META_MD5 = "hdh-md5"
META_SOURCE_ETAG = "hdh-source-etag"
META_SOURCE_LAST_MODIFIED = "hdh-source-last-modified"
META_SOURCE_MD5 = "hdh-source-content-md5"
META_PART_SIZE = "hdh-part-size"
META_MULTIPART_ETAG = "hdh-multipart-etag"
META_TOOL = "hdh-copied-by"

MAX_METADATA_BYTES = 2048  # S3's limit on user metadata


def destination_metadata(info: ObjectInfo) -> dict[str, str]:
    """What the destination records at creation: the source's own metadata and its version."""
    meta = {k.lower(): v for k, v in info.metadata.items()}
    meta[META_SOURCE_ETAG] = info.etag
    meta[META_SOURCE_LAST_MODIFIED] = info.last_modified.isoformat()
    if info.content_md5:
        meta[META_SOURCE_MD5] = info.content_md5.hex()
    meta[META_TOOL] = f"hdh-migrate/{__version__}"
    return meta


def check_metadata(meta: dict[str, str], name: str) -> None:
    """Refuse metadata S3 cannot carry (non-ASCII, over its size limit) before anything is written."""
    for k, v in meta.items():
        if not (k.isascii() and v.isascii()):
            raise InvalidObjectNameError(
                f"metadata {k!r} of {name!r} is not ASCII, which S3 metadata headers cannot carry",
                hint="change the blob's metadata at the source",
            )
    size = sum(len(k) + len(v) for k, v in meta.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidObjectNameError(
            f"the metadata of {name!r} would take {size} bytes on S3, over its {MAX_METADATA_BYTES}-byte limit",
            hint="trim the blob's metadata at the source",
        )


def check_source_md5(where: str, info: ObjectInfo, md5_read: str | None) -> None:
    """Refuse bytes that do not match the source blob's own Content-MD5 (a corrupt blob, not worth a retry).

    where: the source location of the object, for the message (e.g. azure://container/name)."""
    if info.content_md5 and info.content_md5.hex() != md5_read:
        raise ChecksumMismatchError(
            f"{where}: the bytes read do not match the source's own "
            f"Content-MD5 ({info.content_md5.hex()} recorded, {md5_read} read)",
            hint="the source blob is corrupt or its Content-MD5 is wrong; check it at the source before copying",
        )
