"""The 100,000-blob shape's own Azurite (127.0.0.1:10100), started by the bench only while it needs it.

Azurite keeps every blob's metadata in one in-memory LokiJS database. Seeded into the rig's Azurite, the
scale shape made that database an 87 MB JSON file and ~320 MiB of heap, and the same 512 MiB read then cost
Azurite spikes of 2.3-3.4 CPU-s where a second Azurite holding only the large shape never exceeded 1.5
(bench/README.md, "The fourth day"). Those spikes landed on whichever contender was reading: the large and
small comparisons measured Azurite's garbage collector as much as the copiers. So the scale shape lives in
an Azurite of its own, running only during its seeding and its measurement; the comparisons read from the
rig's Azurite, which holds nothing but their own shapes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from hdh_migrate.dev import rig

PORT = 10100
NAME = "azurite-scale"


def running_pid() -> int | None:
    """The scale Azurite's pid while it runs (the bench samples its CPU as it does the rig's servers)."""
    return rig.recorded(NAME)


@contextlib.contextmanager
def running(log=print) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Start the scale Azurite, yield its connection string, stop it (its whole process group) on exit.

    It is recorded in the rig's state while it runs, so `hdh-migrate rig down` stops it too, and a bench
    killed mid-run leaves nothing that the next run (or `rig down`) does not stop."""
    stale = rig.recorded(NAME)
    if stale is not None:
        rig.kill_group(stale)
    rig.record(NAME, None)
    if rig.port_open(PORT):
        raise SystemExit(f"bench: {rig.HOST}:{PORT} is taken by another process; the scale shape's Azurite needs it")
    root = rig.rig_dir()
    root.mkdir(parents=True, exist_ok=True)
    svc = rig.azurite_service(PORT, root / NAME, name=NAME)
    spawned: list[int] = []

    def on_spawn(pid: int) -> None:
        spawned.append(pid)
        rig.record(NAME, pid)

    try:
        proc = rig.start(svc, root, on_spawn=on_spawn)
        log(f"{NAME} up on {rig.HOST}:{PORT} (pid {proc.pid}, data {svc.data})")
        yield rig.azure_connection_string(PORT)
    finally:
        for pid in spawned:
            rig.kill_group(pid)
        rig.record(NAME, None)
        if spawned:
            log(f"{NAME} stopped")


if __name__ == "__main__":  # pragma: no cover - manual use: python -m bench.scalestore (Ctrl-C stops it)
    import time

    with running(log=lambda m: print(m, file=sys.stderr)) as conn:
        print(conn)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(10**9)
