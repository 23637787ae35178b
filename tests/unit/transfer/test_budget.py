"""The memory budget and the reused part buffers."""

from __future__ import annotations

import threading

from hdh_migrate.locations import parse_location
from hdh_migrate.sizes import MiB
from hdh_migrate.stores.memory import MemoryServer
from hdh_migrate.transfer.budget import ByteBudget, PartBuffers
from hdh_migrate.transfer.copier import Copier, CopyOptions


def test_byte_budget_never_exceeds_capacity_under_contention() -> None:
    budget = ByteBudget(10)

    def worker() -> None:
        for _ in range(200):
            budget.acquire(3)
            assert budget.used <= 10
            budget.release(3)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak <= 10 and budget.used == 0


def test_part_buffers_are_reused_within_their_keep_and_reserved_out_of_the_budget() -> None:
    assert PartBuffers.keep_for(512 * MiB, 8 * MiB, 8) == 8  # one per worker
    assert PartBuffers.keep_for(64 * MiB, 8 * MiB, 8) == 2  # a quarter of a small budget
    assert PartBuffers.keep_for(3 * 8 * MiB, 8 * MiB, 8) == 0  # a tiny budget: nothing kept idle
    pool = PartBuffers(1024, keep=2)
    a, b, c = pool.take(1024), pool.take(10), pool.take(1024)
    assert len(a) == len(b) == len(c) == 1024  # a short last part still gets a whole reusable buffer
    for buf in (a, b, c):
        pool.give(buf)
    again = [pool.take(1024), pool.take(1024), pool.take(1024)]
    assert sum(any(x is y for y in (a, b, c)) for x in again) == 2  # only two were kept
    pool.give(bytearray(2048))  # an odd size (a part size grown for a huge object) is never kept
    assert all(len(pool.take(1024)) == 1024 for _ in range(3))
    assert len(PartBuffers(1024, keep=0).take(10)) == 10  # no reuse: no whole-part allocation either


def test_idle_part_buffers_count_against_max_memory() -> None:
    azure, s3 = MemoryServer("azure"), MemoryServer("s3")
    where = parse_location("azure://src/"), parse_location("s3://dst/")
    copier = Copier(azure.create("src"), s3.create("dst"), *where, CopyOptions())
    try:
        assert copier.budget.capacity + 8 * 8 * MiB == 512 * MiB  # 8 idle buffers of 8 MiB kept for reuse
    finally:
        copier.close()
