"""Progress on a terminal (objects, bytes, MiB/s, ETA), and periodic log lines when not a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from hdh_migrate.sizes import MiB, human_bytes


class Progress:
    def __init__(
        self,
        total_objects: int,
        total_bytes: int,
        *,
        label: str = "copy",
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.total_objects = total_objects
        self.total_bytes = total_bytes
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 30.0)
        self.objects = 0
        self.bytes = 0  # bytes moved (read from the source and sent), skipped objects excluded
        self.done_bytes = 0  # bytes accounted for, skipped included (for the ETA)
        self.failed = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.done_bytes += n

    def object_done(self, *, skipped_bytes: int = 0, failed: bool = False) -> None:
        with self._lock:
            self.objects += 1
            self.done_bytes += skipped_bytes
            self.failed += int(failed)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = self.bytes / elapsed
        remaining = max(self.total_bytes - self.done_bytes, 0)
        eta = "--:--" if rate <= 0 else _clock(remaining / rate)
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.label}: {self.objects:,}/{self.total_objects:,} objects, "
            f"{human_bytes(self.done_bytes)}/{human_bytes(self.total_bytes)}, {rate / MiB:.1f} MiB/s, "
            f"ETA {eta}{failed}"
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit()

    def _emit(self, end: str = "") -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line() + end)
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.tty:
            self._emit(end="\n")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
