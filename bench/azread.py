"""The Azure read limit: parallel ranged GETs of every blob under a prefix into a sink (bytes discarded).

Run as its own process by the benchmark: ``python -m bench.azread SAS_URL PREFIX [--threads N] [--chunk BYTES]``.
Plain urllib3 on a pooled connection per thread, ``readinto`` a reused buffer: as little client work as Python
allows, so the figure is the store's (Azurite on this machine), not the client's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
import urllib.parse

import urllib3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sas_url", help="container SAS URL")
    p.add_argument("prefix")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--chunk", type=int, default=8 * 1024 * 1024)
    a = p.parse_args()

    from azure.storage.blob import ContainerClient

    t0 = time.monotonic()
    cc = ContainerClient.from_container_url(a.sas_url)
    blobs = [(b.name, int(b.size)) for b in cc.list_blobs(name_starts_with=a.prefix)]
    listed = time.monotonic()
    base, _, sas = a.sas_url.partition("?")
    tasks: queue.SimpleQueue[tuple[str, int, int] | None] = queue.SimpleQueue()
    for name, size in blobs:
        for off in range(0, max(size, 1), a.chunk):
            tasks.put((name, off, min(a.chunk, size - off)))
    for _ in range(a.threads):
        tasks.put(None)
    pool = urllib3.PoolManager(maxsize=a.threads, retries=False)
    total = [0]
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        buf = bytearray(1024 * 1024)
        view = memoryview(buf)
        got = 0
        while (t := tasks.get()) is not None:
            name, off, length = t
            url = f"{base}/{urllib.parse.quote(name)}?{sas}"
            headers = {"x-ms-version": "2021-08-06"}
            if length:
                headers["x-ms-range"] = f"bytes={off}-{off + length - 1}"
            r = pool.request("GET", url, headers=headers, preload_content=False)
            if r.status not in (200, 206):
                errors.append(f"{name}: HTTP {r.status}")
            while n := r.readinto(view):
                got += n
            r.release_conn()
        with lock:
            total[0] += got

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic()
    print(json.dumps({
        "objects": len(blobs), "bytes": total[0], "list_s": round(listed - t0, 3), "read_s": round(end - start, 3),
        "seconds": round(end - t0, 3), "errors": errors[:5],
    }))


if __name__ == "__main__":
    main()
