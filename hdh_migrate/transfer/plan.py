"""Cut an inventory into shards balanced by bytes and object count, for parallel copy tasks.

A shard is hundreds to thousands of objects, never one task per object: the number of shards is capped
(``max_shards``, default 1,000, under Airflow's ``max_map_length`` of 1,024), so a dataset of a million
objects makes 1,000 shards of ~1,000 objects, and ten million make 1,000 of ~10,000. Each shard is its
own small Parquet manifest, so a task's XCom holds only a path and counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import GiB, human_bytes
from hdh_migrate.transfer.manifest import INVENTORY_SCHEMA


@dataclass(frozen=True)
class Shard:
    index: int
    path: str
    objects: int
    bytes: int

    @property
    def label(self) -> str:
        return f"shard {self.index}: {self.objects:,} objects, {human_bytes(self.bytes)}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"label": self.label}


def plan_shards(
    inventory: str | Path,
    out_dir: str | Path,
    *,
    max_shards: int = 1000,
    min_objects: int = 200,
    min_bytes: int = 1 * GiB,
    max_objects: int | None = None,
) -> list[Shard]:
    """Stream the inventory and cut a shard whenever it reaches its object or byte target.

    Targets are chosen so that the two cutting rules together stay under ``max_shards``: each rule alone
    produces at most ``max_shards / 2`` cuts.
    """
    if max_shards < 2:
        raise ConfigError("max_shards must be at least 2")
    pf = pq.ParquetFile(inventory)
    total_objects = pf.metadata.num_rows
    total_bytes = int(pc.sum(pf.read(columns=["size"]).column("size")).as_py() or 0)
    half = max_shards // 2
    object_target = max(min_objects, math.ceil(total_objects / half))
    if max_objects:
        # an operator's cap, still bounded so the shard count stays under max_shards
        object_target = max(max_objects, math.ceil(total_objects / half))
    byte_target = max(min_bytes, math.ceil(total_bytes / half))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[Shard] = []
    rows: list[pa.RecordBatch] = []
    count = size = 0

    def flush() -> None:
        nonlocal rows, count, size
        if not count:
            return
        index = len(shards) + 1
        path = out / f"shard-{index:05d}.parquet"
        pq.write_table(pa.Table.from_batches(rows, schema=INVENTORY_SCHEMA), path, compression="zstd")
        shards.append(Shard(index, str(path), count, size))
        rows, count, size = [], 0, 0

    for batch in pf.iter_batches(batch_size=10_000):
        sizes = batch.column("size").to_pylist()
        start = 0
        for i, s in enumerate(sizes):
            count += 1
            size += s
            if count >= object_target or size >= byte_target:
                rows.append(batch.slice(start, i + 1 - start))
                start = i + 1
                flush()
        if start < batch.num_rows:
            rows.append(batch.slice(start))
    flush()
    return shards
