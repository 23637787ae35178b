"""Dual-run verification: the destination is read back independently of the copy and checked.

For each source object the destination must exist, have the same size, record the *current* source
version (etag) and the SHA-256 the copier computed from the source bytes; at depth ``full`` every
destination byte is re-read and hashed again, so a same-size object with one flipped byte fails; at depth
``both`` the source is re-read as well and the two fresh hashes are compared (the proof that needs no
trust in anything the copier wrote). Objects under the destination prefix with no source are reported as
extra. Verification never writes anything.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, cast

from hdh_migrate.errors import ConfigError, HdhMigrateError, InvalidObjectNameError
from hdh_migrate.locations import Location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores.interface import ObjectInfo, OpenRead, Store, capability
from hdh_migrate.transfer.checksums import digest_stream
from hdh_migrate.transfer.fanout import each_in_threads
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.keys import check_key, is_reserved, relative_name
from hdh_migrate.transfer.manifest import ResultsWriter
from hdh_migrate.transfer.options import objects_in_flight
from hdh_migrate.transfer.progress import Progress
from hdh_migrate.transfer.provenance import META_MD5, META_MULTIPART_ETAG, META_SHA256, META_SOURCE_ETAG

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


class Verdict(NamedTuple):
    """One object's verification: its problem (None when it matches), why, and the hashes compared."""

    problem: str | None = None
    detail: str | None = None
    source_sha256: str | None = None  # recorded at the copy, or re-read from the source (depth both)
    dest_sha256: str | None = None  # re-read from the destination (depths full and both)


class Verifier:
    def __init__(
        self,
        source: Store,
        dest: Store,
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
        # one GET gives the properties and the bytes where the destination can (no separate HEAD)
        self._opener: OpenRead | None = capability(dest, "open_read", OpenRead) if dest.features.open_read else None

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
            verdict = self.check(info, key)
        except InvalidObjectNameError as exc:
            verdict = Verdict("rejected_name", str(exc))
        except HdhMigrateError as exc:
            verdict = Verdict("error", str(exc))
        self._count(info, key, verdict)
        if self.progress:
            skipped = 0 if self.depth != "quick" else info.size
            self.progress.object_done(skipped_bytes=skipped, failed=verdict.problem is not None)
        if self.results:
            self.results.add(
                name=info.name,
                key=key,
                size=info.size,
                status="ok" if verdict.problem is None else verdict.problem,
                reason=verdict.detail,
                source_sha256=verdict.source_sha256,
                dest_sha256=verdict.dest_sha256,
                source_etag=info.etag,
                source_last_modified=info.last_modified,
                seconds=time.monotonic() - start,
            )

    def _count(self, info: ObjectInfo, key: str | None, verdict: Verdict) -> None:
        problem = verdict.problem
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
                c.problems.append(
                    {"name": info.name, "key": key or "", "problem": problem, "detail": verdict.detail or ""}
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

    def check(self, info: ObjectInfo, key: str) -> Verdict:
        """The verdict on one object: quick from its properties, full and both from its bytes as well."""
        if self.depth == "quick":
            return self._judge(info, self.dest.head(key), None)
        opened = self._open(key)
        if opened is None:
            return self._judge(info, None, None)
        head, chunks = opened
        try:
            return self._judge(info, head, chunks)
        finally:
            close = getattr(chunks, "close", None)  # a stream not read to its end holds a connection
            if close is not None:
                close()

    def _open(self, key: str) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        if self._opener is not None:
            return self._opener.open_read(key, chunk_size=MiB, reuse_buffer=True)  # chunks are hashed at once
        head = self.dest.head(key)
        if head is None:
            return None
        return head, self.dest.iter_read(key, chunk_size=MiB, etag=head.etag)

    def _judge(self, info: ObjectInfo, head: ObjectInfo | None, chunks: Iterator[bytes] | None) -> Verdict:
        if head is None:
            return Verdict("missing", "not at the destination")
        recorded = head.metadata.get(META_SHA256)
        current = self._source_copied(info, head)
        if current is None:
            return Verdict(
                "stale", "the source changed after it was copied (its etag is not the one recorded)", recorded
            )
        wrong = self._recorded_problem(current, head)
        if wrong is not None:
            return wrong
        if chunks is None:
            return Verdict(None, None, recorded)
        return self._reread(current, recorded or "", chunks)

    def _source_copied(self, info: ObjectInfo, head: ObjectInfo) -> ObjectInfo | None:
        """The source object the destination is a copy of: info, or the source as it is now when the listing
        is older than the copy (a blob rewritten between inventory and copy was copied in its new version);
        None when the destination records a version the source no longer has (stale)."""
        copied_from = head.metadata.get(META_SOURCE_ETAG)
        if not copied_from or copied_from == info.etag:
            return info
        now = self.source.head(info.name)
        return now if now is not None and now.etag == copied_from else None

    def _recorded_problem(self, info: ObjectInfo, head: ObjectInfo) -> Verdict | None:
        """What the destination's properties and recorded provenance show wrong, without reading a byte."""
        meta = head.metadata
        recorded = meta.get(META_SHA256)
        if head.size != info.size:
            return Verdict("size_differs", f"{head.size} bytes at the destination, {info.size} at the source", recorded)
        if not meta.get(META_SOURCE_ETAG):
            return Verdict("no_hash", "no source version recorded at the destination (not copied by hdh-migrate?)")
        if not recorded:
            return Verdict("no_hash", "no source SHA-256 recorded at the destination (not copied by hdh-migrate?)")
        if self._etag_is_md5 and head.etag not in (meta.get(META_MD5), meta.get(META_MULTIPART_ETAG)):
            why = "the destination object was rewritten after the copy (its ETag changed)"
            return Verdict("etag_differs", why, recorded)
        return None

    def _reread(self, info: ObjectInfo, recorded: str, chunks: Iterator[bytes]) -> Verdict:
        """Depth full: the destination's bytes hashed again; depth both: the source's too, and compared."""
        got = digest_stream(self._counting(chunks), md5=False).sha256
        if got != recorded:
            return Verdict(
                "hash_differs", f"destination content SHA-256 {got} is not the source's {recorded}", recorded, got
            )
        if self.depth != "both":
            return Verdict(None, None, recorded, got)
        src_hash = self._read_hash(self.source, info.name, etag=info.etag)
        if src_hash != got:
            return Verdict(
                "source_hash_differs", f"source re-read gives SHA-256 {src_hash}, destination {got}", src_hash, got
            )
        return Verdict(None, None, src_hash, got)


class ObjectFeed:
    """Objects handed over by other threads (the copier's, as each object is done), read as one iterable.

    ``copy --verify`` verifies an object as soon as it is copied instead of after the whole copy: the
    destination read and its hashing fill the gaps the copy leaves (its start, its tail, the stores' waits),
    and the copy does not wait for verification. Bounded, so a slow verification holds the copier back
    rather than piling objects up in memory; ``abandon`` (the verification failed) turns ``put`` into a no-op
    so that the copier can never block on a reader that is gone."""

    _END = object()

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._abandoned = threading.Event()

    def put(self, info: ObjectInfo) -> None:
        self._offer(info)

    def close(self) -> None:
        """No more objects: the iteration ends once the ones already handed over are read."""
        self._offer(self._END)

    def _offer(self, item: object) -> None:
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def abandon(self) -> None:
        """Stop both sides: put does nothing more, and the iteration ends at its next object."""
        self._abandoned.set()

    def __iter__(self) -> Iterator[ObjectInfo]:
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._abandoned.is_set():
                    return
                continue
            if item is self._END or self._abandoned.is_set():
                return
            yield cast(ObjectInfo, item)


def find_extras(dest: Store, dst: Location, src: Location, source_objects: Iterable[ObjectInfo]) -> Iterator[str]:
    """Destination keys under the prefix that no source object maps to (see KeyIndex for the method)."""
    expected = KeyIndex(dst.key_for(relative_name(o.name, src.prefix)) for o in source_objects)
    for obj in dest.list(dst.prefix):
        if is_reserved(obj.name) or is_reserved(obj.name[len(dst.prefix) :]):
            continue  # hdh-migrate's own routing documents and audit reports, not dataset objects
        if obj.name not in expected:
            yield obj.name


def verify_objects(
    source: Store,
    dest: Store,
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
