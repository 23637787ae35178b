"""The copy engine: every blob under a source prefix to a destination prefix, in parallel, checked end to end.

A fixed set of threads take turns at the objects (fanout.py). For each, the copier decides (uptodate.py:
already copied, missing, stale, rewritten?), then copies it with retries: a small object is read and
written whole; a large one is cut into parts by a MultipartCopy (multipart.py), which the destination must
be able to write (``features.multipart``). Every byte read is hashed with SHA-256; MD5 is added where
something checks it (single-object PUTs, Content-MD5 parts, a source blob's own Content-MD5: an object sent
whole carries the source's Content-MD5 itself, so the store checks the bytes against it); the digests and
the source's version are recorded as destination metadata (provenance.py). A byte budget bounds the data in
flight, so peak memory depends on ``max_memory``, not on object sizes or counts; parts are read straight
from the socket into part buffers that are reused (budget.PartBuffers), not allocated per part.

Re-running is safe and cheap: an object whose destination already records the current source version and
whose content fingerprint (ETag) still matches is skipped; anything missing, stale or rewritten is copied
again. A failed multipart upload is aborted; one orphaned by a killed process is resumed or aborted the
next time its key is copied (resume.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hdh_migrate.errors import (
    ConfigError,
    CorruptedTransferError,
    HdhMigrateError,
    InvalidObjectNameError,
    SourceChangedError,
    TransientError,
)
from hdh_migrate.locations import Location
from hdh_migrate.sizes import human_bytes
from hdh_migrate.stores.interface import (
    MetadataRewriter,
    MultipartWriter,
    ObjectInfo,
    PutResult,
    ReadInto,
    Store,
    capability,
)
from hdh_migrate.transfer.budget import ByteBudget, PartBuffers, RateLimiter
from hdh_migrate.transfer.checksums import Digests, digest_bytes
from hdh_migrate.transfer.fanout import each_in_threads
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.keys import check_key, relative_name
from hdh_migrate.transfer.manifest import ResultsWriter
from hdh_migrate.transfer.multipart import MultipartCopy, MultipartDest, PartEngine
from hdh_migrate.transfer.options import MAX_PARTS, CopyOptions, objects_in_flight, part_size_for
from hdh_migrate.transfer.outcome import FATAL_ERRORS, Cancelled, CopyCounts, ObjectOutcome
from hdh_migrate.transfer.progress import Progress
from hdh_migrate.transfer.provenance import (
    META_MD5,
    META_MULTIPART_ETAG,
    META_PART_SIZE,
    META_SHA256,
    META_SOURCE_ETAG,
    META_SOURCE_LAST_MODIFIED,
    META_SOURCE_MD5,
    META_TOOL,
    check_metadata,
    check_source_md5,
    destination_metadata,
)
from hdh_migrate.transfer.uptodate import DestinationState, destination_state

# The engine's public names, importable from here as before the split (runs/, cli/, plugins/ use them).
__all__ = [
    "MAX_PARTS",
    "META_MD5",
    "META_MULTIPART_ETAG",
    "META_PART_SIZE",
    "META_SHA256",
    "META_SOURCE_ETAG",
    "META_SOURCE_LAST_MODIFIED",
    "META_SOURCE_MD5",
    "META_TOOL",
    "Cancelled",
    "Copier",
    "CopyCounts",
    "CopyOptions",
    "ObjectOutcome",
    "copy_objects",
    "objects_in_flight",
    "part_size_for",
]

log = logging.getLogger(__name__)

FORCED = DestinationState("forced", "rejected by a verification: copied again")


class Copier:
    """Copies objects from a source store to a destination store. One instance per run; thread-safe inside."""

    def __init__(
        self,
        source: Store,
        dest: Store,
        src: Location,
        dst: Location,
        options: CopyOptions | None = None,
        *,
        results: ResultsWriter | None = None,
        progress: Progress | None = None,
        force: Iterable[str] = (),
        dest_index: KeyIndex | None = None,
        on_done: Callable[[ObjectInfo], None] | None = None,
    ) -> None:
        self.source, self.dest, self.src, self.dst = source, dest, src, dst
        self.options = options or CopyOptions()
        self.options.validate()
        self.results = results
        self.progress = progress
        # source names to copy again whatever the destination looks like (e.g. those a verification
        # rejected: a byte flipped at rest leaves size, ETag and metadata intact)
        self.force = frozenset(force)
        # keys known to exist at the destination (a listing taken before the copy): a key absent from it
        # needs no HEAD request to be known missing
        self.dest_index = dest_index
        # called with each listed object once it has been dealt with (copied, skipped, failed): what
        # `copy --verify` uses to verify an object while later ones are still being copied
        self.on_done = on_done
        self.cancel = threading.Event()
        self.counts = CopyCounts()
        self.fatal: HdhMigrateError | None = None
        self._lock = threading.Lock()
        self.engine = self._engine(source, self.options, self.cancel, progress)
        self._writer, self._no_parts = _parts_writer(dest)
        # Single-object PUTs carry Content-MD5 unless the endpoint's profile sends x-amz-checksum-sha256
        self._put_checks_md5 = dest.features.part_checksum != "sha256"

    @staticmethod
    def _engine(source: Store, o: CopyOptions, cancel: threading.Event, progress: Progress | None) -> PartEngine:
        keep = PartBuffers.keep_for(o.max_memory, o.part_size, o.workers)
        return PartEngine(
            source=source,
            reader=capability(source, "read_into", ReadInto) if source.features.read_into else None,
            pool=ThreadPoolExecutor(o.workers, thread_name_prefix="hdh-part"),
            # the idle part buffers kept for reuse are held memory too: their bytes come out of the budget
            budget=ByteBudget(o.max_memory - keep * o.part_size),
            buffers=PartBuffers(o.part_size, keep),
            limiter=RateLimiter(o.bwlimit),
            cancel=cancel,
            progress=progress,
        )

    @property
    def budget(self) -> ByteBudget:
        return self.engine.budget

    # -- the run ------------------------------------------------------------------------------------
    def run(self, objects: Iterable[ObjectInfo]) -> CopyCounts:
        """Process every object; returns the counts. Memory stays bounded however many objects come.

        A fixed set of threads take turns at the objects (fanout.each_in_threads). The first fatal error, a
        broken listing or a cancellation stops the taking and is raised."""
        try:
            # a fatal error sets cancel too (see _one), so it stops the taking
            threads = objects_in_flight(self.options.workers)
            stopped = each_in_threads(objects, self._one, threads=threads, name="hdh-object", stop=self.cancel)
        finally:
            self.engine.pool.shutdown(wait=True)
        if self.fatal is not None:
            raise self.fatal
        if stopped:
            raise Cancelled("copy cancelled")
        return self.counts

    def close(self) -> None:
        self.engine.pool.shutdown(wait=True)
        self.engine.buffers.clear()

    def _one(self, info: ObjectInfo) -> None:
        with self._lock:
            self.counts.listed += 1
            self.counts.listed_bytes += info.size
        if self.fatal is not None:
            return
        try:
            outcome = self.process(info)
        except FATAL_ERRORS as exc:
            with self._lock:
                self.fatal = self.fatal or exc
            self.cancel.set()
            return
        except Exception as exc:
            log.exception("unexpected error on %s", info.name)
            reason = f"unexpected: {type(exc).__name__}: {exc}"
            outcome = ObjectOutcome(info.name, None, info.size, "failed", reason=reason, error_code="internal")
        self._record(outcome)
        if self.on_done is not None:
            self.on_done(info)

    def process(self, info: ObjectInfo) -> ObjectOutcome:
        """Decide and act for one object: skip, copy (with retries), or reject. Never raises for data."""
        start = time.monotonic()
        try:
            rel = relative_name(info.name, self.src.prefix)
            if info.metadata.get("hdi_isfolder") == "true" and info.size == 0:
                return ObjectOutcome(info.name, None, 0, "skipped", reason="folder marker (hierarchical namespace)")
            key = check_key(self.dst.key_for(rel))
        except InvalidObjectNameError as exc:
            return ObjectOutcome(info.name, None, info.size, "rejected", reason=str(exc), error_code=exc.code)
        return self._with_retries(info, key, start)

    def _with_retries(self, info: ObjectInfo, key: str, start: float) -> ObjectOutcome:
        """Attempts until one ends the object; transient errors are retried up to options.retries times."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._attempt(info, key, attempts, start)
            except (Cancelled, KeyboardInterrupt):
                return self._failed(info, key, "cancelled", "cancelled", attempts, start, transient=True)
            except FATAL_ERRORS:
                raise
            except TransientError as exc:
                if attempts > self.options.retries:
                    return self._failed(info, key, str(exc), exc.code, attempts, start, transient=True)
                fresh = self._before_retry(info, exc, attempts)
                if fresh is None:
                    why = "deleted at the source during the copy"
                    return self._failed(info, key, why, "source_deleted", attempts, start)
                info = fresh
            except HdhMigrateError as exc:
                return self._failed(info, key, str(exc), exc.code, attempts, start)

    def _before_retry(self, info: ObjectInfo, exc: TransientError, attempts: int) -> ObjectInfo | None:
        """Get ready to try again: a changed source is copied from its new version (None: it was deleted
        meanwhile); other transient errors (throttling, a store down, a damaged transfer) back off first."""
        with self._lock:
            self.counts.retried += 1
        if isinstance(exc, SourceChangedError):
            log.warning("%s changed during its copy; retrying from its new version", info.name)
            return self.source.head(info.name)
        time.sleep(min(2 ** (attempts - 1), 30))
        return info

    def _attempt(self, info: ObjectInfo, key: str, attempts: int, start: float) -> ObjectOutcome:
        state = self._state(info, key)
        if state.complete:
            status = "would_skip" if self.options.dry_run else "skipped"
            return self._outcome(info, key, status, state.reason, attempts, start)
        if self.options.dry_run:
            return self._outcome(info, key, "would_copy", state.reason, attempts, start)
        out = self._copy(info, key)
        out.attempts, out.seconds, out.reason = attempts, time.monotonic() - start, state.reason
        return out

    def _state(self, info: ObjectInfo, key: str) -> DestinationState:
        if info.name in self.force:
            return FORCED
        return destination_state(self.dest, info, key, index=self.dest_index, checksum=self.options.checksum)

    # -- copying ------------------------------------------------------------------------------------
    def _copy(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        if self.cancel.is_set():
            raise Cancelled("copy cancelled")
        if info.size <= self.options.part_size:
            return self._copy_single(info, key)
        return self._copy_multipart(info, key)

    def _copy_multipart(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        if self._writer is None:
            assert self._no_parts is not None
            raise ConfigError(
                f"{info.name} ({human_bytes(info.size)}) is larger than one part "
                f"({human_bytes(self.options.part_size)}), and {self._no_parts.message}",
                hint="copy it to a destination that writes in parts, or raise --part-size above its size",
            )
        part_size = part_size_for(info.size, self.options.part_size)
        r = MultipartCopy(self.engine, self._writer, info, key, part_size).run()
        return self._outcome(
            info,
            key,
            "copied",
            None,
            1,
            0.0,
            digests=r.digests,
            dest_etag=r.etag,
            parts=r.parts,
            part_size=r.part_size,
            resumed_parts=r.resumed_parts,
            resumed_bytes=r.resumed_bytes,
        )

    def _copy_single(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        """Read whole, write whole, in one request each; the object's bytes are held by the budget meanwhile."""
        if not self.engine.budget.acquire(info.size, self.cancel.is_set):
            raise Cancelled("copy cancelled")
        try:
            data = self._read_whole(info)
            d = self._single_digests(info, data)
            put = self._put(info, key, data, d)
        finally:
            self.engine.budget.release(info.size)
        if self.progress:
            self.progress.add_bytes(info.size)
        if self.dest.features.etag_is_md5 and put.etag != d.md5:
            raise CorruptedTransferError(
                f"{self.dest.kind}://{self.dest.container}/{key}: the store reports content MD5 {put.etag}, "
                f"we sent {d.md5}",
                hint="the store stored something else than what was sent; the object is re-sent",
            )
        return self._outcome(info, key, "copied", None, 1, 0.0, digests=d, dest_etag=put.etag, parts=1)

    def _read_whole(self, info: ObjectInfo) -> bytes:
        data = self.source.read_range(info.name, 0, info.size, etag=info.etag)
        self.engine.limiter.consume(len(data))
        if len(data) != info.size:
            raise SourceChangedError(f"{info.name}: read {len(data)} bytes, expected {info.size}")
        return data

    def _single_digests(self, info: ObjectInfo, data: bytes) -> Digests:
        if info.content_md5 is not None and self._put_checks_md5:
            # The PUT carries the source's own Content-MD5 and the store refuses bytes that do not
            # match it (BadDigest): the check of the bytes read against the source's MD5 is made by
            # the store, as rclone does, instead of a local MD5 (the costliest hash: ~0.1 ms of a
            # 64 KiB object's ~1 ms). A refusal is told apart in _put: rotten source or damaged transfer.
            return Digests(hashlib.sha256(data).hexdigest(), info.content_md5.hex(), len(data))
        d = digest_bytes(data)
        check_source_md5(self.engine.where(info.name), info, d.md5)
        return d

    def _put(self, info: ObjectInfo, key: str, data: bytes, d: Digests) -> PutResult:
        meta = destination_metadata(info) | {META_SHA256: d.sha256, META_MD5: d.md5 or ""}
        check_metadata(meta, info.name)
        try:
            md5, sha256 = bytes.fromhex(d.md5 or ""), bytes.fromhex(d.sha256)
            return self.dest.put(key, data, content_type=info.content_type, metadata=meta, md5=md5, sha256=sha256)
        except CorruptedTransferError:
            # the local MD5, only now: bytes that do not match the source's MD5 mean a corrupt source
            # (not worth a retry), bytes that do mean the transfer was damaged (retried)
            check_source_md5(self.engine.where(info.name), info, digest_bytes(data).md5)
            raise

    # -- bookkeeping --------------------------------------------------------------------------------
    def _outcome(
        self, info: ObjectInfo, key: str, status: str, reason: str | None, attempts: int, start: float, **kw: Any
    ) -> ObjectOutcome:
        return ObjectOutcome(
            info.name,
            key,
            info.size,
            status,
            reason=reason,
            source_etag=info.etag,
            source_last_modified=info.last_modified,
            source_content_md5=info.content_md5.hex() if info.content_md5 else None,
            attempts=attempts,
            seconds=time.monotonic() - start if start else 0.0,
            **kw,
        )

    def _failed(
        self,
        info: ObjectInfo,
        key: str,
        reason: str,
        code: str,
        attempts: int,
        start: float,
        *,
        transient: bool = False,
    ) -> ObjectOutcome:
        return self._outcome(info, key, "failed", reason, attempts, start, error_code=code, transient=transient)

    def _record(self, o: ObjectOutcome) -> None:
        with self._lock:
            self.counts.add(o)
        if self.progress:
            moved_nothing = o.status in ("skipped", "would_skip", "would_copy")
            self.progress.object_done(skipped_bytes=o.size if moved_nothing else 0, failed=o.failed)
        if o.failed:
            log.error("%s %s: %s", o.status, o.name, o.reason)
        if self.results:
            self.results.add(**o.result_row())


def _parts_writer(dest: Store) -> tuple[MultipartDest | None, ConfigError | None]:
    """The destination as a writer of parts (multipart upload, then the hash recorded in place), or why not."""
    try:
        capability(dest, "multipart", MultipartWriter)
        return capability(dest, "replace_metadata", MetadataRewriter), None
    except ConfigError as exc:
        return None, exc


def copy_objects(
    source: Store,
    dest: Store,
    src: Location,
    dst: Location,
    objects: Iterable[ObjectInfo],
    options: CopyOptions | None = None,
    *,
    results: ResultsWriter | None = None,
    progress: Progress | None = None,
    force: Iterable[str] = (),
    dest_index: KeyIndex | None = None,
    on_done: Callable[[ObjectInfo], None] | None = None,
) -> CopyCounts:
    """Copy the given objects (a listing, a manifest or a shard of one). The library entry point."""
    copier = Copier(
        source,
        dest,
        src,
        dst,
        options,
        results=results,
        progress=progress,
        force=force,
        dest_index=dest_index,
        on_done=on_done,
    )
    try:
        return copier.run(objects)
    finally:
        copier.close()
