"""A large object copied in parts: one coordinator object holds the lifecycle of one multipart upload.

s3transfer's shape (``upload.py``, ``tasks.py``, ``futures.py``): the upload is started (or an interrupted
one resumed, see resume.py), then one task per part, then completed, then the whole-object hash recorded.
The abort is registered as the failure clean-up the moment the upload exists, and every failure -- a part's
error, a cancel, a KeyboardInterrupt, a failed complete -- goes through the one path that runs it, waits
for the part tasks and gives their budget and buffers back: no code path can leave an orphan upload or
held memory.

A part task reads its range from the source (pinned to the etag the listing saw, so a blob rewritten
mid-copy fails clearly instead of landing half old, half new), straight into a reused buffer where the
source can (budget.PartBuffers); sends it with the integrity header the destination checks
(``features.part_checksum``: Content-MD5, or the CRC32C/SHA-256 checksum of the endpoint's profile),
re-sending it on a damaged transfer; checks the part's ETag where ETags are MD5s; then hands it to the
OrderedHasher, which hashes the parts in order whatever order they finish in. The byte budget is acquired
before a part is read and released once it is sent and hashed, so memory stays bounded by ``max_memory``.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from hdh_migrate.errors import CorruptedTransferError, SourceChangedError
from hdh_migrate.stores.interface import MetadataRewriter, MultipartWriter, ObjectInfo, ReadInto, Store
from hdh_migrate.transfer.budget import ByteBudget, PartBuffers, RateLimiter
from hdh_migrate.transfer.checksums import Digests, OrderedHasher, PartSums, multipart_etag
from hdh_migrate.transfer.outcome import Cancelled
from hdh_migrate.transfer.progress import Progress
from hdh_migrate.transfer.provenance import (
    META_MD5,
    META_MULTIPART_ETAG,
    META_PART_SIZE,
    META_SHA256,
    check_metadata,
    check_source_md5,
    destination_metadata,
)
from hdh_migrate.transfer.resume import Resumable, find_resumable

log = logging.getLogger(__name__)

#: sends of one part before a damaged transfer (the store refused its checksum) fails the object
PART_TRIES = 3


class MultipartDest(Store, MultipartWriter, MetadataRewriter, Protocol):
    """A destination that writes objects in parts and rewrites metadata in place."""


@dataclass(frozen=True)
class PartEngine:
    """What every multipart copy of a run shares: the source and its buffer reads, the part threads, the
    memory budget and the reused buffers, the bandwidth limit, the run's cancel flag, the progress."""

    source: Store
    reader: ReadInto | None  # the source as ReadInto when it declares it: parts read into reused buffers
    pool: ThreadPoolExecutor
    budget: ByteBudget
    buffers: PartBuffers
    limiter: RateLimiter
    cancel: threading.Event
    progress: Progress | None = None

    def where(self, name: str) -> str:
        return f"{self.source.kind}://{self.source.container}/{name}"


@dataclass(frozen=True)
class MultipartResult:
    digests: Digests
    etag: str  # the destination object's ETag once its metadata is recorded
    parts: int
    part_size: int
    resumed_parts: int
    resumed_bytes: int


class MultipartCopy:
    """One object copied in parts. ``run()`` once; thread-safe inside (the part tasks run on engine.pool)."""

    def __init__(self, engine: PartEngine, dest: MultipartDest, info: ObjectInfo, key: str, part_size: int) -> None:
        self.engine, self.dest, self.info, self.key, self.part_size = engine, dest, info, key, part_size
        self.count = math.ceil(info.size / part_size)
        self.meta = destination_metadata(info) | {META_PART_SIZE: str(part_size)}
        # the whole-object MD5 is only computed when the source has one to check it against
        self.hasher = OrderedHasher(md5=info.content_md5 is not None)
        self.algorithm = dest.features.part_checksum
        # parts read into reused buffers (a source that can read into one, at the configured part size)
        self.pooled = engine.reader is not None and engine.buffers.keep > 0 and part_size == engine.buffers.size
        self.upload_id = ""
        self.resumable = Resumable()
        self.parts: list[dict[str, Any] | None] = [None] * self.count
        self.part_md5s: list[bytes | None] = [None] * self.count
        self.futures: list[Future[None]] = []
        self.failed = threading.Event()
        self.resumed_parts = self.resumed_bytes = 0
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # part number -> bytes of budget it holds
        self._buffers: dict[int, bytearray] = {}  # part number -> its reusable buffer, until sent and hashed
        self._cleanups: list[Callable[[], None]] = []

    @property
    def where(self) -> str:
        return f"{self.dest.kind}://{self.dest.container}/{self.key}"

    # -- the lifecycle ------------------------------------------------------------------------------
    def run(self) -> MultipartResult:
        check_metadata(
            self.meta | {META_SHA256: "0" * 64, META_MD5: "0" * 32, META_MULTIPART_ETAG: "0" * 40}, self.info.name
        )
        try:
            self._start()
            self._submit_parts()
            self._wait_parts()
            digests = self._digests()
            completed = self.dest.complete_multipart(self.key, self.upload_id, self._sent_parts())
        except BaseException:
            self._fail()
            raise
        finally:
            self._give_back()
        self._check_multipart_etag(completed.etag)
        return self._record_hash(digests, completed.etag)

    def _start(self) -> None:
        """Resume the unfinished upload of this key with the most reusable parts, or start one; either way
        its abort becomes the failure clean-up."""
        etag_is_md5 = self.dest.features.etag_is_md5
        self.resumable = find_resumable(self.dest, self.key, self.info.size, self.part_size, etag_is_md5=etag_is_md5)
        if self.resumable.upload_id is None:
            self.upload_id = self.dest.start_multipart(
                self.key, content_type=self.info.content_type, metadata=self.meta
            )
        else:
            self.upload_id = self.resumable.upload_id
            stored = len(self.resumable.stored)
            log.info("resuming the multipart upload of %s: %d parts already stored", self.key, stored)
        self._cleanups.append(functools.partial(self.dest.abort_multipart, self.key, self.upload_id))

    def _submit_parts(self) -> None:
        """One task per part, each submitted once the budget holds its bytes. A failed part or a cancel stops
        the submitting: the parts behind a failed one wait in the hasher holding their bytes, so waiting for
        budget must notice the failure instead of waiting for bytes that will never come back."""
        for number in range(1, self.count + 1):
            offset = (number - 1) * self.part_size
            length = min(self.part_size, self.info.size - offset)
            need = self.part_size if self.pooled else length  # a reused buffer holds a whole part
            if self._stopping() or not self.engine.budget.acquire(need, self._stopping):
                return
            with self._lock:
                self._held[number] = need
            future = self.engine.pool.submit(self._part, number, offset, length)
            future.add_done_callback(self._on_part_done)
            self.futures.append(future)

    def _wait_parts(self) -> None:
        """Every part task done; the most telling error raised (a source change explains any other failure)."""
        wait(self.futures)
        errors = [e for f in self.futures if (e := f.exception()) is not None]
        if errors:
            changed = [e for e in errors if isinstance(e, SourceChangedError)]
            raise (changed or errors)[0]
        if self.engine.cancel.is_set() or any(p is None for p in self.parts):
            raise Cancelled("copy cancelled")

    def _digests(self) -> Digests:
        d = self.hasher.digests()
        if d.size != self.info.size:
            raise SourceChangedError(f"{self.info.name}: read {d.size} bytes, expected {self.info.size}")
        check_source_md5(self.engine.where(self.info.name), self.info, d.md5)
        return d

    def _sent_parts(self) -> list[dict[str, Any]]:
        return [p for p in self.parts if p is not None]

    def _fail(self) -> None:
        """The failure path, whatever failed: stop the part tasks, wait for them, run the clean-ups."""
        self.failed.set()
        wait(self.futures)
        for cleanup in self._cleanups:
            try:
                cleanup()
            except Exception as exc:  # the error that failed the copy is the one to raise
                log.warning("could not abort the multipart upload of %s (%s); the next copy of it will", self.key, exc)

    def _give_back(self) -> None:
        """Budget and buffers still held (parts that failed or never ran) go back; every task is done."""
        with self._lock:
            for number in list(self._held):
                self._release_part(number)

    def _check_multipart_etag(self, etag: str) -> None:
        known = [m for m in self.part_md5s if m is not None]
        if not self.dest.features.etag_is_md5 or len(known) != self.count:  # every part MD5 is needed for it
            return
        expected = multipart_etag(known)
        if etag != expected:
            raise CorruptedTransferError(
                f"{self.where}: the store's multipart ETag {etag} is not {expected}",
                hint="the store assembled other parts than the ones sent; the object is re-sent",
            )

    def _record_hash(self, d: Digests, etag: str) -> MultipartResult:
        """The whole-object hash is known only now: recorded in the object's metadata, in place."""
        final = self.meta | {META_SHA256: d.sha256, META_MULTIPART_ETAG: etag}
        if d.md5 is not None:
            final[META_MD5] = d.md5
        self.dest.replace_metadata(self.key, size=self.info.size, content_type=self.info.content_type, metadata=final)
        head = self.dest.head(self.key)
        etag = head.etag if head else etag
        return MultipartResult(d, etag, self.count, self.part_size, self.resumed_parts, self.resumed_bytes)

    # -- one part -----------------------------------------------------------------------------------
    def _part(self, number: int, offset: int, length: int) -> None:
        if self._stopping():
            return
        data = self._read(number, offset, length)
        sums = PartSums.of(data, self.algorithm, md5=self.resumable.md5_of(number) is not None)
        part = self._reuse(number, sums, length) or self._upload(number, data, sums)
        etag = str(part["ETag"]).strip('"')
        if sums.md5 is not None and self.dest.features.etag_is_md5 and etag != sums.md5.hex():
            raise CorruptedTransferError(f"{self.where}: part {number} stored with MD5 {etag}")
        self.parts[number - 1], self.part_md5s[number - 1] = part, sums.md5
        if self.engine.progress:
            self.engine.progress.add_bytes(length)
        hashed = self.hasher.add(number, data)
        with self._lock:
            for n in hashed:
                self._release_part(n)

    def _read(self, number: int, offset: int, length: int) -> bytes | memoryview:
        data: bytes | memoryview
        reader = self.engine.reader
        if reader is not None:
            # straight from the socket into a reused buffer: no allocation, no page faults
            buf = self.engine.buffers.take(length)
            with self._lock:
                self._buffers[number] = buf  # given back once hashed, or by _give_back if the read fails
            data = memoryview(buf)[:length]
            reader.read_range_into(self.info.name, offset, data, etag=self.info.etag)
        else:
            data = self.engine.source.read_range(self.info.name, offset, length, etag=self.info.etag)
        self.engine.limiter.consume(len(data))
        if len(data) != length:
            raise SourceChangedError(f"{self.info.name}: short read of part {number}")
        return data

    def _reuse(self, number: int, sums: PartSums, length: int) -> dict[str, Any] | None:
        """The part an interrupted upload stored, if it holds these very bytes (same MD5)."""
        if sums.md5 is None or self.resumable.md5_of(number) != sums.md5.hex():
            return None
        part: dict[str, Any] = {"PartNumber": number, "ETag": f'"{sums.md5.hex()}"'}
        if sums.sha256 is not None:
            part["ChecksumSHA256"] = base64.b64encode(sums.sha256).decode("ascii")
        if sums.crc32c is not None:
            part["ChecksumCRC32C"] = base64.b64encode(sums.crc32c).decode("ascii")
        with self._lock:
            self.resumed_parts += 1
            self.resumed_bytes += length
        return part

    def _upload(self, number: int, data: bytes | memoryview, sums: PartSums) -> dict[str, Any]:
        """Send the part; a transfer the store refused as damaged (its checksum) is sent again."""
        for _ in range(PART_TRIES - 1):
            try:
                return self._send(number, data, sums)
            except CorruptedTransferError:
                log.warning("part %d of %s was damaged on its way; sending it again", number, self.key)
        return self._send(number, data, sums)

    def _send(self, number: int, data: bytes | memoryview, sums: PartSums) -> dict[str, Any]:
        md5 = sums.md5 if self.algorithm == "md5" else None  # the MD5 of a resumed part is not a header
        return self.dest.upload_part(
            self.key, self.upload_id, number, data, md5=md5, sha256=sums.sha256, crc32c=sums.crc32c
        )

    # -- bookkeeping --------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        return self.failed.is_set() or self.engine.cancel.is_set()

    def _on_part_done(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self.failed.set()

    def _release_part(self, number: int) -> None:
        """Give back a part's budget and buffer (the caller holds self._lock)."""
        self.engine.budget.release(self._held.pop(number))
        buf = self._buffers.pop(number, None)
        if buf is not None:  # sent and hashed: nothing reads it any more
            self.engine.buffers.give(buf)
