"""How a copy runs: its options, checked against S3's limits, and the sizes derived from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import GiB, MiB, human_bytes

MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000

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
