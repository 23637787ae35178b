"""The data shapes the benchmark copies, their seeding into Azurite, and their local tmpfs mirrors.

Seeding Azurite is slow (~27 MiB/s for large blobs, a few hundred small blobs per second), so seeded data is
kept across runs: a marker blob ``_markers/<shape>.json`` is written once a shape is complete, and a re-run
that finds a marker matching the shape's spec seeds nothing. The content of every object is a pure function
of (shape, index) so the tmpfs mirror used for the S3 write limit holds the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

CONTAINER = "hdh-bench"
MIRROR_ROOT = Path(os.environ.get("HDH_BENCH_TMPFS", "/dev/shm/hdh-bench"))
SEED_VERSION = 1


@dataclass(frozen=True)
class Shape:
    name: str  # also the source prefix (azure://hdh-bench/<name>/)
    count: int
    size: int

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    @property
    def total(self) -> int:
        return self.count * self.size

    def blob_name(self, i: int) -> str:
        # spread over a few "folders", as a dataset's partitions would be
        width = len(str(self.count - 1))
        return f"{self.name}/part={i % 10}/obj-{i:0{width}d}.bin"

    def describe(self) -> str:
        return f"{self.count:,} x {human(self.size)}"


def human(n: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{int(n)} B"


SHAPES = {
    "large": Shape("large", 4, 128 * MiB),
    # above rclone's single-PUT cutoff (--s3-upload-cutoff, 200 MiB): rclone copies these with multipart
    # uploads, an MD5 per part, as hdh-migrate copies every object above its part size (bench/README.md)
    "large-multipart": Shape("large-multipart", 4, 256 * MiB),
    "small": Shape("small", 1000, 64 * KiB),
    "scale": Shape("scale", 100_000, 4 * KiB),
    "huge": Shape("huge", 1, 2 * GiB),
    # untimed warm-up of every tool (bytecode cache, server connections)
    "warm": Shape("warm", 20, 16 * KiB),
    # --quick: the same kinds, smaller
    "large-quick": Shape("large-quick", 4, 32 * MiB),
    "small-quick": Shape("small-quick", 300, 64 * KiB),
    "scale-quick": Shape("scale-quick", 5000, 4 * KiB),
}


def content(shape: Shape, i: int, size: int | None = None) -> bytes:
    """Incompressible, deterministic bytes for object i of a shape."""
    seed = int.from_bytes(f"{shape.name}/{i}/{SEED_VERSION}".encode()[:32].ljust(32, b"\0"), "little")
    return np.random.default_rng(seed).bytes(size if size is not None else shape.size)


def _container(conn_str: str):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient.from_connection_string(conn_str, max_single_put_size=64 * MiB, max_block_size=16 * MiB,
                                                   connection_timeout=10, read_timeout=300)
    cc = svc.get_container_client(CONTAINER)
    if not cc.exists():
        cc.create_container()
    return cc


def _marker_name(shape: Shape) -> str:
    return f"_markers/{shape.name}.json"


def _spec(shape: Shape) -> dict[str, object]:
    return asdict(shape) | {"seed_version": SEED_VERSION}


def is_seeded(conn_str: str, shape: Shape) -> bool:
    cc = _container(conn_str)
    bc = cc.get_blob_client(_marker_name(shape))
    if not bc.exists():
        return False
    return json.loads(bc.download_blob().readall()) == _spec(shape)


def seed(conn_str: str, shape: Shape, *, log=print) -> float:  # type: ignore[no-untyped-def]
    """Upload the shape into Azurite unless its marker says it is there; returns the seconds spent."""
    if is_seeded(conn_str, shape):
        return 0.0
    cc = _container(conn_str)
    start = time.monotonic()
    log(f"seeding azure://{CONTAINER}/{shape.prefix} ({shape.describe()}, {human(shape.total)}) -- once")
    if shape.size >= 8 * MiB:
        for i in range(shape.count):
            name = shape.blob_name(i)
            if shape.size > 512 * MiB:
                # stage blocks one by one so the seeder never holds the whole blob
                from azure.storage.blob import BlobBlock

                bc = cc.get_blob_client(name)
                block = 64 * MiB
                ids = []
                with ThreadPoolExecutor(4) as pool:
                    futs = []
                    for n, off in enumerate(range(0, shape.size, block)):
                        bid = f"{n:08d}"
                        ids.append(BlobBlock(block_id=bid))
                        chunk = _slice(shape, i, off, min(block, shape.size - off))
                        futs.append(pool.submit(bc.stage_block, bid, chunk))
                        if len(futs) >= 4:
                            futs.pop(0).result()
                    for f in futs:
                        f.result()
                bc.commit_block_list(ids)
            else:
                cc.upload_blob(name, content(shape, i), overwrite=True, max_concurrency=8)
            log(f"  {i + 1}/{shape.count}")
    else:
        done = 0

        def put(i: int) -> None:
            cc.upload_blob(shape.blob_name(i), content(shape, i), overwrite=True)

        with ThreadPoolExecutor(16) as pool:
            for _ in pool.map(put, range(shape.count)):
                done += 1
                if done % 5000 == 0:
                    log(f"  {done:,}/{shape.count:,}")
    cc.upload_blob(_marker_name(shape), json.dumps(_spec(shape)).encode(), overwrite=True)
    secs = time.monotonic() - start
    log(f"  seeded in {secs:.0f} s")
    return secs


def unseed(conn_str: str, shape: Shape, *, log=print) -> int:  # type: ignore[no-untyped-def]
    """Delete a shape (and its marker) from an Azurite that should not hold it; returns the blobs deleted.

    Used once on a rig seeded before the scale shape moved to an Azurite of its own (bench/scalestore.py).
    """
    cc = _container(conn_str)
    names = [b.name for b in cc.list_blobs(name_starts_with=shape.prefix)]
    marker = cc.get_blob_client(_marker_name(shape))
    has_marker = marker.exists()
    if not names and not has_marker:
        return 0
    log(f"removing {len(names):,} blobs of {shape.name} from {cc.url} (it has an Azurite of its own now)")
    if has_marker:  # first, so that an interrupted removal is never taken for a complete seed
        marker.delete_blob()
    for i in range(0, len(names), 256):  # the Blob Batch API takes at most 256 sub-requests
        cc.delete_blobs(*names[i:i + 256])
    return len(names)


def _slice(shape: Shape, i: int, offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of a huge object, generated block-wise (64 MiB blocks)."""
    block = 64 * MiB
    assert offset % block == 0
    seed = int.from_bytes(f"{shape.name}/{i}/{offset // block}".encode()[:32].ljust(32, b"\0"), "little")
    return np.random.default_rng(seed).bytes(length)


def mirror(shape: Shape) -> Path:
    """The shape as local files on tmpfs (for rclone's S3 write limit); created once per machine boot."""
    root = MIRROR_ROOT / shape.name
    marker = root.parent / f".{shape.name}.json"
    if marker.exists() and json.loads(marker.read_text()) == _spec(shape):
        return root
    shutil.rmtree(root, ignore_errors=True)
    for i in range(shape.count):
        p = root / shape.blob_name(i)[len(shape.prefix):]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content(shape, i))
    marker.write_text(json.dumps(_spec(shape)))
    return root


if __name__ == "__main__":  # pragma: no cover - manual use: python -m bench.shapes large small
    from hdh_migrate.dev import rig

    rig.up(quiet=True)
    for n in sys.argv[1:]:
        seed(rig.env()["AZURE_STORAGE_CONNECTION_STRING"], SHAPES[n])
