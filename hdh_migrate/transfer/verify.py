"""Dual-run verification: the destination is read back independently of the copy and checked.

For each source object the destination must exist, have the same size, record the *current* source
version (etag) and the SHA-256 the copier computed from the source bytes; at depth ``full`` every
destination byte is re-read and hashed again, so a same-size object with one flipped byte fails; at depth
``both`` the source is re-read as well and the two fresh hashes are compared (the proof that needs no
trust in anything the copier wrote). Objects under the destination prefix with no source are reported as
extra. Verification never writes anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from hdh_migrate.errors import ConfigError, HdhMigrateError, InvalidObjectNameError
from hdh_migrate.locations import Location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.stores.s3 import S3Store
from hdh_migrate.transfer.checksums import digest_stream
from hdh_migrate.transfer.copier import META_MD5, META_MULTIPART_ETAG, META_SHA256, META_SOURCE_ETAG, objects_in_flight
from hdh_migrate.transfer.fanout import each_in_threads
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.keys import check_key, is_reserved, relative_name
from hdh_migrate.transfer.manifest import ResultsWriter
from hdh_migrate.transfer.progress import Progress

DEPTHS = ("quick", "full", "both")


@dataclass
class VerifyCounts:
    depth: str = "full"
    checked: int = 0
    checked_bytes: int = 0
    matched: int = 0
    missing: int = 0
    differs: int = 0
    extra: int = 0
    errors: int = 0
    bytes_read: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.differs == 0 and self.extra == 0 and self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


class Verifier:
    def __init__(
        self,
        source: Store,
        dest: S3Store,
        src: Location,
        dst: Location,
        *,
        depth: str = "full",
        workers: int = 8,
        results: ResultsWriter | None = None,
        progress: Progress | None = None,
        max_problems: int = 10_000,
    ) -> None:
        if depth not in DEPTHS:
            raise ConfigError(
                f"verification depth {depth!r} is not one of {DEPTHS}",
                hint="quick: sizes, versions and recorded hashes; full: re-read the destination; "
                "both: re-read both sides",
            )
        self.source, self.dest, self.src, self.dst = source, dest, src, dst
        self.depth = depth
        self.workers = workers
        self.results = results
        self.progress = progress
        self.max_problems = max_problems
        self.counts = VerifyCounts(depth=depth)
        self._lock = threading.Lock()
        self._etag_is_md5 = dest.features.etag_is_md5

    def run(self, objects: Iterable[ObjectInfo]) -> VerifyCounts:
        """Check every object. As the copier: a fixed set of threads take turns at the objects (small
        objects wait on round trips, so there are more threads than workers; each streams through one
        1 MiB buffer). A broken listing stops the taking and is raised."""
        each_in_threads(
            objects, self._one, threads=objects_in_flight(self.workers), name="hdh-verify", stop=threading.Event()
        )
        return self.counts

    def _one(self, info: ObjectInfo) -> None:
        start = time.monotonic()
        key: str | None = None
        try:
            key = check_key(self.dst.key_for(relative_name(info.name, self.src.prefix)))
            problem, detail, src_sha, dst_sha = self.check(info, key)
        except InvalidObjectNameError as exc:
            problem, detail, src_sha, dst_sha = "rejected_name", str(exc), None, None
        except HdhMigrateError as exc:
            problem, detail, src_sha, dst_sha = "error", str(exc), None, None
        with self._lock:
            c = self.counts
            c.checked += 1
            c.checked_bytes += info.size
            if problem is None:
                c.matched += 1
            elif problem == "missing":
                c.missing += 1
            elif problem in ("error", "rejected_name"):
                c.errors += 1
            else:
                c.differs += 1
            if problem and len(c.problems) < self.max_problems:
                c.problems.append({"name": info.name, "key": key or "", "problem": problem, "detail": detail or ""})
        if self.progress:
            self.progress.object_done(
                skipped_bytes=0 if self.depth != "quick" else info.size, failed=problem is not None
            )
        if self.results:
            self.results.add(
                name=info.name,
                key=key,
                size=info.size,
                status="ok" if problem is None else problem,
                reason=detail,
                source_sha256=src_sha,
                dest_sha256=dst_sha,
                source_etag=info.etag,
                source_last_modified=info.last_modified,
                seconds=time.monotonic() - start,
            )

    def _read_hash(self, store: Store, name: str, etag: str | None = None) -> str:
        chunks = store.iter_read(name, chunk_size=MiB, etag=etag)
        d = digest_stream(self._counting(chunks), md5=False)
        return d.sha256

    def _counting(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            with self._lock:
                self.counts.bytes_read += len(chunk)
            if self.progress:
                self.progress.add_bytes(len(chunk))
            yield chunk

    def check(self, info: ObjectInfo, key: str) -> tuple[str | None, str | None, str | None, str | None]:
        """(problem or None, detail, recorded source SHA-256, destination SHA-256 read back)."""
        if self.depth == "quick":
            head = self.dest.head(key)
            return self._judge(info, key, head, None)
        # full / both: one GET gives the properties and the bytes (no separate HEAD)
        opened = self.dest.open_read(key, chunk_size=MiB, reuse_buffer=True)  # chunks are hashed at once
        if opened is None:
            return self._judge(info, key, None, None)
        head, chunks = opened
        try:
            return self._judge(info, key, head, chunks)
        finally:
            chunks.close()  # type: ignore[attr-defined]

    def _judge(
        self, info: ObjectInfo, key: str, head: ObjectInfo | None, chunks: Iterator[bytes] | None
    ) -> tuple[str | None, str | None, str | None, str | None]:
        if head is None:
            return "missing", "not at the destination", None, None
        meta = head.metadata
        recorded = meta.get(META_SHA256)
        copied_from = meta.get(META_SOURCE_ETAG)
        if copied_from and copied_from != info.etag:
            # The listing may be older than the copy (a blob rewritten between inventory and copy was copied
            # in its new version): judge against the source as it is now, not as it was listed.
            now = self.source.head(info.name)
            if now is None or now.etag != copied_from:
                return (
                    "stale",
                    "the source changed after it was copied (its etag is not the one recorded)",
                    recorded,
                    None,
                )
            info = now
        if head.size != info.size:
            return "size_differs", f"{head.size} bytes at the destination, {info.size} at the source", recorded, None
        if not copied_from:
            return "no_hash", "no source version recorded at the destination (not copied by hdh-migrate?)", None, None
        if not recorded:
            return "no_hash", "no source SHA-256 recorded at the destination (not copied by hdh-migrate?)", None, None
        if self._etag_is_md5 and head.etag not in (meta.get(META_MD5), meta.get(META_MULTIPART_ETAG)):
            return (
                "etag_differs",
                "the destination object was rewritten after the copy (its ETag changed)",
                recorded,
                None,
            )
        if chunks is None:
            return None, None, recorded, None
        got = digest_stream(self._counting(chunks), md5=False).sha256
        if got != recorded:
            return ("hash_differs", f"destination content SHA-256 {got} is not the source's {recorded}", recorded, got)
        if self.depth == "both":
            src_hash = self._read_hash(self.source, info.name, etag=info.etag)
            if src_hash != got:
                return (
                    "source_hash_differs",
                    f"source re-read gives SHA-256 {src_hash}, destination {got}",
                    src_hash,
                    got,
                )
            return None, None, src_hash, got
        return None, None, recorded, got


class ObjectFeed:
    """Objects handed over by other threads (the copier's, as each object is done), read as one iterable.

    ``copy --verify`` verifies an object as soon as it is copied instead of after the whole copy: the
    destination read and its hashing fill the gaps the copy leaves (its start, its tail, the stores' waits),
    and the copy does not wait for verification. Bounded, so a slow verification holds the copier back
    rather than piling objects up in memory; ``abandon`` (the verification failed) turns ``put`` into a no-op
    so that the copier can never block on a reader that is gone."""

    _END = object()

    def __init__(self, maxsize: int = 10_000) -> None:
        import queue

        self._queue: Any = queue.Queue(maxsize)
        self._abandoned = threading.Event()

    def put(self, info: ObjectInfo) -> None:
        import queue

        while not self._abandoned.is_set():
            try:
                self._queue.put(info, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """No more objects: the iteration ends once the ones already handed over are read."""
        self.put(self._END)  # type: ignore[arg-type]

    def abandon(self) -> None:
        """Stop both sides: put does nothing more, and the iteration ends at its next object."""
        self._abandoned.set()

    def __iter__(self) -> Iterator[ObjectInfo]:
        import queue

        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._abandoned.is_set():
                    return
                continue
            if item is self._END or self._abandoned.is_set():
                return
            yield item


def find_extras(dest: S3Store, dst: Location, src: Location, source_objects: Iterable[ObjectInfo]) -> Iterator[str]:
    """Destination keys under the prefix that no source object maps to (see KeyIndex for the method)."""
    expected = KeyIndex(dst.key_for(relative_name(o.name, src.prefix)) for o in source_objects)
    for obj in dest.list(dst.prefix):
        if is_reserved(obj.name) or is_reserved(obj.name[len(dst.prefix) :]):
            continue  # hdh-migrate's own routing documents and audit reports, not dataset objects
        if obj.name not in expected:
            yield obj.name


def verify_objects(
    source: Store,
    dest: S3Store,
    src: Location,
    dst: Location,
    objects: Iterable[ObjectInfo],
    *,
    depth: str = "full",
    workers: int = 8,
    results: ResultsWriter | None = None,
    progress: Progress | None = None,
) -> VerifyCounts:
    return Verifier(source, dest, src, dst, depth=depth, workers=workers, results=results, progress=progress).run(
        objects
    )
