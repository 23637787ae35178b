"""The copy engine: every blob under an Azure prefix to an S3 prefix, in parallel chunks, checked end to end.

Small objects are read and written whole, many at a time on a thread pool. Large objects are cut into
parts: ranged reads from Azure (pinned to the etag the listing saw, so a blob rewritten mid-copy fails
clearly instead of landing half old, half new) feed S3 multipart upload parts, in parallel, each sent with
an integrity header the store checks (Content-MD5, or the CRC32C/SHA-256 checksum of the endpoint's
profile). Every byte read is hashed with SHA-256, in order, whatever order the parts finish in; MD5 is
added where something checks it (single-object PUTs, Content-MD5 parts, a source blob's own Content-MD5:
an object sent whole carries the source's Content-MD5 itself, so the store checks the bytes against it);
the digests and the source's version are recorded as destination metadata. A byte budget bounds the data
in flight, so peak memory depends on ``max_memory``, not on object sizes or counts; parts are read straight
from the socket into part buffers that are reused (budget.PartBuffers), not allocated per part.

Re-running is safe and cheap: an object whose destination already records the current source version and
whose content fingerprint (ETag) still matches is skipped; anything missing, stale or rewritten is copied
again. A failed multipart upload is aborted; one orphaned by a killed process is aborted the next time its
key is copied.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hdh_migrate import __version__
from hdh_migrate.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ChecksumMismatchError,
    ConfigError,
    ContainerNotFoundError,
    CorruptedTransferError,
    CredentialsError,
    HdhMigrateError,
    InvalidObjectNameError,
    PermanentError,
    SourceChangedError,
    TransientError,
)
from hdh_migrate.locations import Location
from hdh_migrate.sizes import GiB, MiB, human_bytes
from hdh_migrate.stores.interface import ObjectInfo, Store
from hdh_migrate.stores.s3 import S3Store, b64
from hdh_migrate.transfer.budget import ByteBudget, PartBuffers, RateLimiter
from hdh_migrate.transfer.checksums import Digests, OrderedHasher, crc32c, digest_bytes, digest_stream, multipart_etag
from hdh_migrate.transfer.fanout import each_in_threads
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.keys import check_key, relative_name
from hdh_migrate.transfer.manifest import ResultsWriter
from hdh_migrate.transfer.progress import Progress

log = logging.getLogger(__name__)

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

MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata

# Objects in flight per worker. A worker is a part transfer; a small object spends most of its time waiting
# for two round trips (read, write) under the GIL-free network wait, so 8 objects in flight left the stores
# idle between requests: measured on 1,000 x 64 KiB (bench/), 8/16/32 objects in flight copied in
# 2.47/2.08/1.84 s, with less CPU per object. Parts stay at one per worker (32 parts of 8 MiB in flight
# made large objects slower). The memory budget still bounds the bytes held, whatever the count.
OBJECTS_PER_WORKER = 4


def objects_in_flight(workers: int) -> int:
    return workers * OBJECTS_PER_WORKER


def part_size_for(size: int, requested: int) -> int:
    """The requested part size, grown (to a whole MiB) so that no object needs more than 10,000 parts."""
    part = max(requested, MIN_PART_SIZE)
    if math.ceil(size / part) > MAX_PARTS:
        part = math.ceil(size / MAX_PARTS / MiB) * MiB
    return min(part, MAX_PART_SIZE)


@dataclass(frozen=True)
class CopyOptions:
    part_size: int = 8 * MiB
    workers: int = 8
    max_memory: int = 512 * MiB
    dry_run: bool = False
    bwlimit: int | None = None  # bytes/s read from the source, None = unlimited
    retries: int = 3  # per object, for transient errors (source changed, throttling, corrupted transfer)
    checksum: bool = False  # decide "already copied" by re-reading the destination (like rclone --checksum)

    def validate(self) -> None:
        if self.part_size < MIN_PART_SIZE or self.part_size > MAX_PART_SIZE:
            raise ConfigError(
                f"part size {human_bytes(self.part_size)} is outside S3's limits",
                hint="use a part size between 5 MiB and 5 GiB (8 MiB to 64 MiB is usual)",
            )
        if self.workers < 1 or self.workers > 256:
            raise ConfigError(f"workers must be between 1 and 256, not {self.workers}")
        if self.max_memory < 2 * self.part_size:
            raise ConfigError(
                f"--max-memory {human_bytes(self.max_memory)} is less than two parts of {human_bytes(self.part_size)}",
                hint="raise --max-memory or lower --part-size (the budget holds the parts in flight)",
            )
        if self.bwlimit is not None and self.bwlimit <= 0:
            raise ConfigError("the bandwidth limit must be positive")


@dataclass
class ObjectOutcome:
    name: str
    key: str | None
    size: int
    status: str  # copied | skipped | failed | rejected | would_copy | would_skip
    reason: str | None = None
    digests: Digests | None = None
    source_etag: str | None = None
    source_last_modified: datetime | None = None
    source_content_md5: str | None = None
    dest_etag: str | None = None
    parts: int | None = None
    part_size: int | None = None
    attempts: int = 0
    error_code: str | None = None
    transient: bool = False
    seconds: float = 0.0


@dataclass
class CopyCounts:
    listed: int = 0
    listed_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    rejected: int = 0
    would_copy: int = 0
    would_copy_bytes: int = 0
    retried: int = 0
    resumed_parts: int = 0  # parts of interrupted multipart uploads reused, not re-sent
    resumed_bytes: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.rejected == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def destination_metadata(info: ObjectInfo) -> dict[str, str]:
    """What the destination records at creation: the source's own metadata and its version."""
    meta = {k.lower(): v for k, v in info.metadata.items()}
    meta[META_SOURCE_ETAG] = info.etag
    meta[META_SOURCE_LAST_MODIFIED] = info.last_modified.isoformat()
    if info.content_md5:
        meta[META_SOURCE_MD5] = info.content_md5.hex()
    meta[META_TOOL] = f"hdh-migrate/{__version__}"
    return meta


def _check_metadata(meta: dict[str, str], name: str) -> None:
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


class Cancelled(HdhMigrateError):
    code = "cancelled"


# Errors that no other object can escape either: the run stops at the first one instead of failing
# millions of objects one by one.
FATAL_ERRORS = (CredentialsError, AccessDeniedError, BucketNotFoundError, ContainerNotFoundError)


class Copier:
    """Copies objects from a source store to an S3 store. One instance per run; thread-safe inside."""

    def __init__(
        self,
        source: Store,
        dest: S3Store,
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
        self.source = source
        # called with each listed object once it has been dealt with (copied, skipped, failed): what
        # `copy --verify` uses to verify an object while later ones are still being copied
        self.on_done = on_done
        # keys known to exist at the destination (a listing taken before the copy): a key absent from it
        # needs no HEAD request to be known missing
        self.dest_index = dest_index
        # source names to copy again whatever the destination looks like (e.g. those a verification
        # rejected: a byte flipped at rest leaves size, ETag and metadata intact)
        self.force = frozenset(force)
        self.dest = dest
        self.src = src
        self.dst = dst
        self.options = options or CopyOptions()
        self.options.validate()
        self.results = results
        self.progress = progress
        keep = PartBuffers.keep_for(self.options.max_memory, self.options.part_size, self.options.workers)
        self._buffers = PartBuffers(self.options.part_size, keep)
        # the idle part buffers kept for reuse are held memory too: their bytes come out of the budget
        self.budget = ByteBudget(self.options.max_memory - keep * self.options.part_size)
        self._read_into = source.read_range_into if source.features.read_into else None  # type: ignore[attr-defined]
        self.limiter = RateLimiter(self.options.bwlimit)
        self.cancel = threading.Event()
        self.counts = CopyCounts()
        self.fatal: HdhMigrateError | None = None
        self._lock = threading.Lock()
        self._parts = ThreadPoolExecutor(self.options.workers, thread_name_prefix="hdh-part")
        self._etag_is_md5 = dest.features.etag_is_md5
        # Single-object PUTs carry Content-MD5 unless the endpoint's profile sends x-amz-checksum-sha256
        self._put_checks_md5 = dest.features.part_checksum != "sha256"

    # -- the run ------------------------------------------------------------------------------------
    def run(self, objects: Iterable[ObjectInfo]) -> CopyCounts:
        """Process every object; returns the counts. Memory stays bounded however many objects come.

        A fixed set of threads take turns at the objects (fanout.each_in_threads). The first fatal error, a
        broken listing or a cancellation stops the taking and is raised."""

        def one(info: ObjectInfo) -> None:
            with self._lock:
                self.counts.listed += 1
                self.counts.listed_bytes += info.size
            self._process(info)

        try:
            # a fatal error sets cancel too (see _process), so it stops the taking
            stopped = each_in_threads(
                objects, one, threads=objects_in_flight(self.options.workers), name="hdh-object", stop=self.cancel
            )
        finally:
            self._parts.shutdown(wait=True)
        if self.fatal is not None:
            raise self.fatal
        if stopped:
            raise Cancelled("copy cancelled")
        return self.counts

    def close(self) -> None:
        self._parts.shutdown(wait=True)
        self._buffers.clear()

    def _process(self, info: ObjectInfo) -> None:
        if self.fatal is not None:
            return
        try:
            outcome = self.process(info)
        except FATAL_ERRORS as exc:
            with self._lock:
                if self.fatal is None:
                    self.fatal = exc
            self.cancel.set()
            return
        except Exception as exc:
            log.exception("unexpected error on %s", info.name)
            outcome = ObjectOutcome(
                info.name,
                None,
                info.size,
                "failed",
                reason=f"unexpected: {type(exc).__name__}: {exc}",
                error_code="internal",
            )
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
        attempts = 0
        current = info
        while True:
            attempts += 1
            try:
                if current.name in self.force:
                    state, reason = "forced", "rejected by a verification: copied again"
                else:
                    state, reason = self.destination_state(current, key)
                if state == "complete":
                    return self._outcome(
                        current, key, "would_skip" if self.options.dry_run else "skipped", reason, attempts, start
                    )
                if self.options.dry_run:
                    return self._outcome(current, key, "would_copy", reason, attempts, start)
                out = self._copy(current, key)
                out.attempts, out.seconds, out.reason = attempts, time.monotonic() - start, reason
                return out
            except (Cancelled, KeyboardInterrupt):
                return self._failed(current, key, "cancelled", "cancelled", attempts, start, transient=True)
            except FATAL_ERRORS:
                raise
            except SourceChangedError as exc:
                if attempts > self.options.retries:
                    return self._failed(current, key, str(exc), exc.code, attempts, start, transient=True)
                log.warning("%s changed during its copy; retrying from its new version", info.name)
                with self._lock:
                    self.counts.retried += 1
                fresh = self.source.head(info.name)
                if fresh is None:
                    return self._failed(
                        current, key, "deleted at the source during the copy", "source_deleted", attempts, start
                    )
                current = fresh
            except TransientError as exc:
                if attempts > self.options.retries:
                    return self._failed(current, key, str(exc), exc.code, attempts, start, transient=True)
                with self._lock:
                    self.counts.retried += 1
                time.sleep(min(2 ** (attempts - 1), 30))
            except PermanentError as exc:
                return self._failed(current, key, str(exc), exc.code, attempts, start)
            except HdhMigrateError as exc:
                return self._failed(current, key, str(exc), exc.code, attempts, start)

    # -- deciding -----------------------------------------------------------------------------------
    def destination_state(self, info: ObjectInfo, key: str) -> tuple[str, str]:
        """("complete" | "missing" | "stale" | "differs" | "incomplete", why)."""
        if self.dest_index is not None and key not in self.dest_index:
            return "missing", "not at the destination"
        head = self.dest.head(key)
        if head is None:
            return "missing", "not at the destination"
        meta = head.metadata
        copied_from = meta.get(META_SOURCE_ETAG)
        if copied_from and copied_from != info.etag:
            return "stale", "the source changed since it was copied"
        if head.size != info.size:
            return "differs", f"size differs ({head.size} at the destination, {info.size} at the source)"
        if not copied_from:
            return "differs", "the destination object was not written by hdh-migrate"
        if not meta.get(META_SHA256):
            return "incomplete", "no recorded hash (an interrupted copy)"
        if self._etag_is_md5 and head.etag not in (meta.get(META_MD5), meta.get(META_MULTIPART_ETAG)):
            return "differs", "the destination object was rewritten after the copy (its ETag changed)"
        if self.options.checksum:
            got = digest_stream(self.dest.iter_read(key, chunk_size=MiB), md5=False)
            if got.sha256 != meta[META_SHA256]:
                return "differs", "the destination content does not match the recorded SHA-256"
        return "complete", "already copied"

    # -- copying ------------------------------------------------------------------------------------
    def _copy(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        if info.size <= self.options.part_size:
            return self._copy_single(info, key)
        return self._copy_multipart(info, key)

    def _check_source_md5(self, info: ObjectInfo, digests: Digests) -> None:
        if info.content_md5 and info.content_md5.hex() != digests.md5:
            raise ChecksumMismatchError(
                f"azure://{self.src.container}/{info.name}: the bytes read do not match the source's own "
                f"Content-MD5 ({info.content_md5.hex()} recorded, {digests.md5} read)",
                hint="the source blob is corrupt or its Content-MD5 is wrong; check it at the source before copying",
            )

    def _copy_single(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        if self.cancel.is_set():
            raise Cancelled("copy cancelled")
        if not self.budget.acquire(info.size, self.cancel.is_set):
            raise Cancelled("copy cancelled")
        try:
            data = self.source.read_range(info.name, 0, info.size, etag=info.etag)
            self.limiter.consume(len(data))
            if len(data) != info.size:
                raise SourceChangedError(f"{info.name}: read {len(data)} bytes, expected {info.size}")
            if info.content_md5 is not None and self._put_checks_md5:
                # The PUT carries the source's own Content-MD5 and the store refuses bytes that do not
                # match it (BadDigest): the check of the bytes read against the source's MD5 is made by
                # the store, as rclone does, instead of a local MD5 (the costliest hash: ~0.1 ms of a
                # 64 KiB object's ~1 ms). A refusal is told apart below: rotten source or damaged transfer.
                d = Digests(hashlib.sha256(data).hexdigest(), info.content_md5.hex(), len(data))
            else:
                d = digest_bytes(data)
                self._check_source_md5(info, d)
            meta = destination_metadata(info) | {META_SHA256: d.sha256, META_MD5: d.md5}
            _check_metadata(meta, info.name)
            try:
                put = self.dest.put(
                    key,
                    data,
                    content_type=info.content_type,
                    metadata=meta,
                    md5=bytes.fromhex(d.md5 or ""),
                    sha256=bytes.fromhex(d.sha256),
                )
            except CorruptedTransferError:
                # the local MD5, only now: bytes that do not match the source's MD5 mean a corrupt source
                # (not worth a retry), bytes that do mean the transfer was damaged (retried)
                self._check_source_md5(info, digest_bytes(data))
                raise
        finally:
            self.budget.release(info.size)
        if self.progress:
            self.progress.add_bytes(info.size)
        if self._etag_is_md5 and put.etag != d.md5:
            raise CorruptedTransferError(
                f"s3://{self.dst.container}/{key}: the store reports content MD5 {put.etag}, we sent {d.md5}",
                hint="the store stored something else than what was sent; the object is re-sent",
            )
        return self._outcome(info, key, "copied", None, 1, 0.0, digests=d, dest_etag=put.etag, parts=1)

    def _resumable_upload(self, key: str, size: int, part_size: int) -> tuple[str | None, dict[int, str]]:
        """Find an unfinished multipart upload of this key left by a killed run, and its reusable parts.

        Stored parts are only candidates: a part is reused when the source bytes re-read for it have
        exactly the MD5 the store reports for it (checked in the part task), so a source that changed,
        a different part size or a corrupted part simply gets re-sent (with any part checksum profile: the
        MD5 of a candidate part is computed on resume only). Only possible when ETags are MD5s (no
        SSE-C/KMS); otherwise, and for every other upload of the key, the leftovers are aborted: no orphan
        parts stay behind.
        """
        uploads = [(k, u) for k, u, _ in self.dest.list_multipart_uploads(key) if k == key]
        best: tuple[str | None, dict[int, str]] = (None, {})
        if self._etag_is_md5:
            for _, upload_id in uploads:
                usable = {}
                for p in self.dest.list_parts(key, upload_id):
                    n, psize = int(p["PartNumber"]), int(p["Size"])
                    if psize == min(part_size, size - (n - 1) * part_size):
                        usable[n] = str(p["ETag"]).strip('"')
                if len(usable) > len(best[1]):
                    best = (upload_id, usable)
        for _, upload_id in uploads:
            if upload_id != best[0]:
                log.info("aborting an unfinished multipart upload of %s left by an earlier run", key)
                self.dest.abort_multipart(key, upload_id)
        return best

    def _copy_multipart(self, info: ObjectInfo, key: str) -> ObjectOutcome:
        part_size = part_size_for(info.size, self.options.part_size)
        count = math.ceil(info.size / part_size)
        meta = destination_metadata(info) | {META_PART_SIZE: str(part_size)}
        _check_metadata(meta | {META_SHA256: "0" * 64, META_MD5: "0" * 32, META_MULTIPART_ETAG: "0" * 40}, info.name)
        upload_id, stored = self._resumable_upload(key, info.size, part_size)
        if upload_id is None:
            upload_id = self.dest.start_multipart(key, content_type=info.content_type, metadata=meta)
        else:
            log.info("resuming the multipart upload of %s: %d parts already stored", key, len(stored))
        # the whole-object MD5 is only computed when the source has one to check it against
        hasher = OrderedHasher(md5=info.content_md5 is not None)
        held: dict[int, int] = {}  # part number -> bytes of budget it holds
        buffers: dict[int, bytearray] = {}  # part number -> its reusable buffer, until sent and hashed
        # parts read into reused buffers (a source that can read into one, at the configured part size)
        pooled = self._read_into is not None and self._buffers.keep > 0 and part_size == self._buffers.size
        held_lock = threading.Lock()
        parts: list[dict[str, Any] | None] = [None] * count
        part_md5s: list[bytes | None] = [None] * count
        failed = threading.Event()
        futures: list[Future[None]] = []

        def release(numbers: list[int]) -> None:
            with held_lock:
                for n in numbers:
                    self.budget.release(held.pop(n))
                    if n in buffers:  # sent and hashed: nothing reads it any more
                        self._buffers.give(buffers.pop(n))

        def do_part(number: int, offset: int, length: int) -> None:
            if failed.is_set() or self.cancel.is_set():
                return
            data: bytes | memoryview
            if self._read_into is not None:
                # straight from the socket into a reused buffer: no allocation, no page faults
                buf = self._buffers.take(length)
                data = memoryview(buf)[:length]
                self._read_into(info.name, offset, data, etag=info.etag)
                with held_lock:
                    buffers[number] = buf
            else:
                data = self.source.read_range(info.name, offset, length, etag=info.etag)
            self.limiter.consume(len(data))
            if len(data) != length:
                raise SourceChangedError(f"{info.name}: short read of part {number}")
            algo = self.dest.features.part_checksum
            # MD5 (the slowest hash) only where something checks it: Content-MD5 parts, or a part an
            # interrupted upload already stored, to prove it holds these very bytes
            md5 = hashlib.md5(data, usedforsecurity=False).digest() if algo == "md5" or number in stored else None
            sha = hashlib.sha256(data).digest() if algo == "sha256" else None
            crc = crc32c(data) if algo == "crc32c" else None
            if md5 is not None and stored.get(number) == md5.hex():  # the same bytes are stored: reuse the part
                reused: dict[str, Any] = {"PartNumber": number, "ETag": f'"{md5.hex()}"'}
                if sha is not None:
                    reused["ChecksumSHA256"] = b64(sha)
                if crc is not None:
                    reused["ChecksumCRC32C"] = b64(crc)
                parts[number - 1] = reused
                with self._lock:
                    self.counts.resumed_parts += 1
                    self.counts.resumed_bytes += length
            for attempt in range(3):
                if parts[number - 1] is not None:
                    break
                try:
                    parts[number - 1] = self.dest.upload_part(
                        key, upload_id, number, data, md5=md5 if algo == "md5" else None, sha256=sha, crc32c=crc
                    )
                except CorruptedTransferError:
                    if attempt == 2:
                        raise
            etag = str(parts[number - 1]["ETag"]).strip('"')  # type: ignore[index]
            if md5 is not None and self._etag_is_md5 and etag != md5.hex():
                raise CorruptedTransferError(f"s3://{self.dst.container}/{key}: part {number} stored with MD5 {etag}")
            part_md5s[number - 1] = md5
            if self.progress:
                self.progress.add_bytes(length)
            release(hasher.add(number, data))

        def on_done(fut: Future[None]) -> None:
            if fut.exception() is not None:
                failed.set()

        try:
            for number in range(1, count + 1):
                if failed.is_set() or self.cancel.is_set():
                    break
                offset = (number - 1) * part_size
                length = min(part_size, info.size - offset)
                need = part_size if pooled else length  # a reused buffer holds a whole part
                if not self.budget.acquire(need, lambda: failed.is_set() or self.cancel.is_set()):
                    break
                with held_lock:
                    held[number] = need
                fut = self._parts.submit(do_part, number, offset, length)
                fut.add_done_callback(on_done)
                futures.append(fut)
            wait(futures, return_when=FIRST_EXCEPTION)
            if failed.is_set():
                failed_exc = [f.exception() for f in futures if f.done() and f.exception() is not None]
                wait(futures)
                # prefer the most telling error: a source change explains any other failure
                changed = [e for e in failed_exc if isinstance(e, SourceChangedError)]
                raise (changed or failed_exc)[0]  # type: ignore[misc]
            wait(futures)
            if self.cancel.is_set():
                raise Cancelled("copy cancelled")
            d = hasher.digests()
            if d.size != info.size:
                raise SourceChangedError(f"{info.name}: read {d.size} bytes, expected {info.size}")
            self._check_source_md5(info, d)
            done_parts = [p for p in parts if p is not None]
            completed = self.dest.complete_multipart(key, upload_id, done_parts)
        except BaseException:
            failed.set()
            wait(futures)
            self.dest.abort_multipart(key, upload_id)
            raise
        finally:
            with held_lock:
                for n in list(held):
                    self.budget.release(held.pop(n))
        known = [m for m in part_md5s if m is not None]
        mp_etag = multipart_etag(known) if len(known) == count else None  # every part MD5 is needed for it
        if self._etag_is_md5 and mp_etag is not None and completed.etag != mp_etag:
            raise CorruptedTransferError(
                f"s3://{self.dst.container}/{key}: the store's multipart ETag {completed.etag} is not {mp_etag}",
                hint="the store assembled other parts than the ones sent; the object is re-sent",
            )
        final = meta | {META_SHA256: d.sha256, META_MULTIPART_ETAG: completed.etag}
        if d.md5 is not None:
            final[META_MD5] = d.md5
        self.dest.replace_metadata(key, size=info.size, content_type=info.content_type, metadata=final)
        head = self.dest.head(key)
        return self._outcome(
            info,
            key,
            "copied",
            None,
            1,
            0.0,
            digests=d,
            dest_etag=head.etag if head else completed.etag,
            parts=count,
            part_size=part_size,
        )

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
            c = self.counts
            if o.status == "copied":
                c.copied += 1
                c.copied_bytes += o.size
            elif o.status in ("skipped", "would_skip"):
                c.skipped += 1
                c.skipped_bytes += o.size
            elif o.status == "would_copy":
                c.would_copy += 1
                c.would_copy_bytes += o.size
            elif o.status == "rejected":
                c.rejected += 1
            else:
                c.failed += 1
            if o.status in ("failed", "rejected") and len(c.errors) < 100:
                c.errors.append(
                    {
                        "name": o.name,
                        "code": o.error_code or "",
                        "message": o.reason or "",
                        "transient": str(o.transient).lower(),
                    }
                )
        if self.progress:
            self.progress.object_done(
                skipped_bytes=o.size if o.status in ("skipped", "would_skip", "would_copy") else 0,
                failed=o.status in ("failed", "rejected"),
            )
        if o.status in ("failed", "rejected"):
            log.error("%s %s: %s", o.status, o.name, o.reason)
        if self.results:
            d = o.digests
            self.results.add(
                name=o.name,
                key=o.key,
                size=o.size,
                status=o.status,
                reason=o.reason,
                source_sha256=d.sha256 if d else None,
                dest_sha256=None,
                md5=d.md5 if d else None,
                source_etag=o.source_etag,
                source_last_modified=o.source_last_modified,
                source_content_md5=o.source_content_md5,
                dest_etag=o.dest_etag,
                parts=o.parts,
                part_size=o.part_size,
                attempts=o.attempts,
                error_code=o.error_code,
                seconds=o.seconds,
            )


def copy_objects(
    source: Store,
    dest: S3Store,
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
