"""Back-pressure: a byte budget for data in flight, and a bandwidth limit.

The copier acquires a part's size before reading it and releases it once the part is both uploaded and
hashed, so peak memory is bounded by ``--max-memory`` whatever the object sizes or counts (the shape of
s3transfer's bounded executors).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._used = 0
        self._peak = 0
        self._cond = threading.Condition()

    def acquire(self, n: int, should_abort: Callable[[], bool] | None = None) -> bool:
        """Block until n bytes fit; False if should_abort() turned true while waiting.

        A single request larger than the whole budget runs alone. The abort check matters: when a part
        fails, the parts behind it wait in the hasher holding their bytes, so a coordinator waiting for
        budget must notice the failure instead of waiting for bytes that will never come back.
        """
        with self._cond:
            while self._used > 0 and self._used + n > self.capacity:
                if should_abort is not None and should_abort():
                    return False
                self._cond.wait(0.2 if should_abort is not None else None)
            self._used += n
            self._peak = max(self._peak, self._used)
            return True

    def release(self, n: int) -> None:
        with self._cond:
            self._used -= n
            self._cond.notify_all()

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        return self._peak


class RateLimiter:
    """Token bucket shared by all threads; ``None`` rate means unlimited."""

    def __init__(self, bytes_per_second: int | None, burst_seconds: float = 0.25) -> None:
        self.rate = bytes_per_second
        self._burst = (bytes_per_second or 0) * burst_seconds
        self._tokens = self._burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def consume(self, n: int) -> None:
        if not self.rate or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


class PartBuffers:
    """Part buffers for reuse: a multipart copy reads each part into a buffer a finished part gave back.

    Why: a fresh 8 MiB buffer per part is a fresh mapping whose every page faults on first touch (and is
    zeroed by the kernel): ~12 % of a large copy's CPU in ``perf``, which on a machine shared with the
    stores is throughput. At most ``keep`` idle buffers are kept; the copier reserves their bytes out of
    its memory budget, so the budget still bounds everything held.
    """

    def __init__(self, size: int, keep: int) -> None:
        self.size = size
        self.keep = keep
        self._idle: list[bytearray] = []
        self._lock = threading.Lock()

    @staticmethod
    def keep_for(max_memory: int, part_size: int, workers: int) -> int:
        """How many idle buffers to keep: one per worker, within a quarter of the budget (none if tiny)."""
        return max(0, min(workers, max_memory // part_size // 4))

    def take(self, size: int) -> bytearray:
        """A buffer of at least size bytes (its content is garbage: the caller overwrites what it uses)."""
        if self.keep and size <= self.size:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
            return bytearray(self.size)
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        """Give a buffer back once nothing reads it any more (sent and hashed)."""
        if len(buf) == self.size:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(buf)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()
