"""``azure://CONTAINER/PREFIX`` and ``s3://BUCKET/PREFIX`` locations, parsed strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hdh_migrate.errors import MalformedURLError

# Azure container names: 3-63 chars, lowercase letters, digits and single hyphens (and "$root"/"$logs").
_CONTAINER = re.compile(r"^(?:\$root|\$logs|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
# S3 bucket names (the strict DNS-compatible rules every sovereign provider enforces).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Location:
    scheme: str  # "azure" or "s3"
    container: str  # container (Azure) or bucket (S3)
    prefix: str  # "" or a prefix ending in "/"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.container}/{self.prefix}"

    def key_for(self, relative: str) -> str:
        return self.prefix + relative


def parse_location(url: str, *, expect: str | None = None) -> Location:
    """Parse a location URL; the prefix is treated as a folder, as ``rclone copy`` does.

    ``azure://c/data`` and ``azure://c/data/`` both mean "everything under data/", so the blob
    ``data/a/b.parquet`` maps to ``<dest prefix>/a/b.parquet``.
    """
    m = re.match(r"^([a-z0-9]+)://([^/]*)(?:/(.*))?$", url or "")
    if not m:
        raise MalformedURLError(
            f"malformed location {url!r}",
            hint="write azure://CONTAINER/PREFIX for the source and s3://BUCKET/PREFIX for the destination",
        )
    scheme, container, prefix = m.group(1), m.group(2), m.group(3) or ""
    if scheme not in ("azure", "s3"):
        raise MalformedURLError(f"unknown scheme {scheme!r} in {url!r}", hint="use azure:// or s3://")
    if expect and scheme != expect:
        raise MalformedURLError(f"{url!r} should be an {expect}:// location")
    if scheme == "azure" and not _CONTAINER.match(container):
        raise MalformedURLError(
            f"{container!r} is not a valid Azure container name",
            hint="3-63 characters: lowercase letters, digits and single hyphens",
        )
    if scheme == "s3" and not _BUCKET.match(container):
        raise MalformedURLError(
            f"{container!r} is not a valid S3 bucket name",
            hint="3-63 characters: lowercase letters, digits, dots and hyphens",
        )
    prefix = prefix.lstrip("/")
    if "//" in prefix:
        raise MalformedURLError(f"empty path segment in {url!r}", hint="remove the doubled '/'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Location(scheme, container, prefix)
