"""A source and a destination in memory (stores/memory.py), for the engine's unit tests: seconds, not minutes.

The in-memory store behaves as the real servers do where the engine relies on it (the conformance suite
holds it to that), and it can fail a request at an exact moment (``inject``) or rot stored bytes (``rot``).
It never stands in for the real servers: tests/integration/transfer runs the engine on the rig.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from hdh_migrate.locations import Location, parse_location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.memory import MemoryServer, MemoryStore
from hdh_migrate.transfer.copier import Copier, CopyCounts, CopyOptions
from hdh_migrate.transfer.manifest import ResultsWriter, read_results
from hdh_migrate.transfer.verify import VerifyCounts, verify_objects

from ...helpers import payload

__all__ = ["PART", "Pair", "payload"]

PART = 5 * MiB


@dataclass
class Pair:
    """An Azure-like source container ``src`` (prefix data/) and an S3-like destination bucket ``dst``
    (prefix copy/), each on its own in-memory server."""

    azure: MemoryServer
    s3: MemoryServer
    tmp: Any
    source: MemoryStore = field(init=False)
    dest: MemoryStore = field(init=False)
    src: Location = field(default_factory=lambda: parse_location("azure://src/data"))
    dst: Location = field(default_factory=lambda: parse_location("s3://dst/copy"))
    runs: int = 0

    def __post_init__(self) -> None:
        self.source, self.dest = self.azure.create("src"), self.s3.create("dst")

    def put(self, name: str, data: bytes, *, md5: bool = True, **kw: Any) -> ObjectInfo:
        """A source blob; with its Content-MD5, as Put Blob stores one (blobs uploaded in blocks have none)."""
        self.source.put(f"data/{name}", data, md5=hashlib.md5(data).digest() if md5 else None, **kw)
        info = self.source.head(f"data/{name}")
        assert info is not None
        return info

    def listing(self) -> list[ObjectInfo]:
        return list(self.source.list(self.src.prefix))

    def copier(self, **opts: Any) -> Copier:
        kw = {k: opts.pop(k) for k in ("force", "dest_index", "results") if k in opts}
        return Copier(self.source, self.dest, self.src, self.dst, CopyOptions(**opts), **kw)

    def copy(self, objects: Iterable[ObjectInfo] | None = None, **opts: Any) -> CopyCounts:
        """Copy (the listing by default) with these CopyOptions; the results rows are in self.rows."""
        self.runs += 1
        results = ResultsWriter(self.tmp / f"results-{self.runs}.parquet")
        copier = self.copier(results=results, **opts)
        try:
            return copier.run(self.listing() if objects is None else objects)
        finally:
            copier.close()
            results.close()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The results manifest of the last copy, one row per object."""
        return read_results(self.tmp / f"results-{self.runs}.parquet")

    def verify(self, depth: str = "full", objects: Iterable[ObjectInfo] | None = None) -> VerifyCounts:
        listed = self.listing() if objects is None else objects
        return verify_objects(self.source, self.dest, self.src, self.dst, listed, depth=depth, workers=2)

    def dest_bytes(self, name: str) -> bytes:
        return b"".join(self.dest.iter_read(f"copy/{name}", chunk_size=MiB))

    def dest_head(self, name: str) -> ObjectInfo | None:
        return self.dest.head(f"copy/{name}")

    def uploads_left(self) -> int:
        return len(self.s3.uploads["dst"])


@pytest.fixture
def pair(tmp_path) -> Pair:
    return Pair(MemoryServer("azure"), MemoryServer("s3"), tmp_path)
