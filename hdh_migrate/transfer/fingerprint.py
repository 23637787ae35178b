"""An order-independent fingerprint of a source listing: "has anything changed since it was verified?"

The cutover's freeze check lists the source again and must decide, for millions of objects, whether the
listing is the one that was verified. Listings come back in store order (Azure sorts, SeaweedFS walks a
tree), so the fingerprint must not depend on order and must be computable while streaming, in constant
memory: each entry ``(name, etag, size)`` is hashed with SHA-256, the hashes are added modulo 2**256, and
the count is kept alongside. Any added, removed, renamed, rewritten (new etag) or resized object changes
it; two listings with the same objects give the same fingerprint whatever their order.

Format: ``v1:<count>:<64 hex digits>`` -- readable in a report, comparable as a string.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the storage SDKs are not needed to fingerprint (and take a second to import)
    from hdh_migrate.stores.interface import ObjectInfo

_MOD = 1 << 256
VERSION = "v1"


class Fingerprint:
    """Accumulates entries one by one (a listing streams through it; nothing is kept)."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, name: str, etag: str, size: int) -> None:
        entry = f"{name}\0{etag}\0{size}".encode()
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(entry).digest(), "big")) % _MOD
        self.count += 1

    def add_info(self, info: ObjectInfo) -> None:
        self.add(info.name, info.etag, info.size)

    @property
    def value(self) -> str:
        return f"{VERSION}:{self.count}:{self._sum:064x}"


def fingerprint_inventory(path: str | Path, *, batch_rows: int = 50_000) -> str:
    """The fingerprint of an inventory Parquet (only the three columns it needs are read)."""
    import pyarrow.parquet as pq  # lazy: pyarrow and numpy cost ~0.15 s of import; Fingerprint needs neither

    fp = Fingerprint()
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["name", "etag", "size"]):
        for name, etag, size in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), batch.column(2).to_pylist(), strict=True
        ):
            fp.add(name, etag, size)
    return fp.value


def fingerprint_count(value: str | None) -> int | None:
    """The object count a fingerprint was taken over (for messages: "12 objects then, 13 now")."""
    if not value:
        return None
    try:
        return int(value.split(":")[1])
    except (IndexError, ValueError):
        return None
