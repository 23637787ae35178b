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
from typing import TYPE_CHECKING, Any

from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import GiB, human_bytes
from hdh_migrate.transfer.manifest import inventory_schema

if TYPE_CHECKING:
    import pyarrow as pa


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
    # pyarrow (~0.15 s with numpy) on first use, as in manifest.py: the copy verb takes a Shard, never a plan
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

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
    writer = _ShardWriter(Path(out_dir), object_target, max(min_bytes, math.ceil(total_bytes / half)))
    for batch in pf.iter_batches(batch_size=10_000):
        writer.add(batch)
    writer.flush()
    return writer.shards


class _ShardWriter:
    """Rows taken batch by batch; a shard file written each time the rows taken reach a target."""

    def __init__(self, out: Path, object_target: int, byte_target: int) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.object_target, self.byte_target = out, object_target, byte_target
        self.shards: list[Shard] = []
        self._rows: list[pa.RecordBatch] = []
        self._count = self._size = 0

    def add(self, batch: pa.RecordBatch) -> None:
        start = 0
        for i, s in enumerate(batch.column("size").to_pylist()):
            self._count += 1
            self._size += s
            if self._count >= self.object_target or self._size >= self.byte_target:
                self._rows.append(batch.slice(start, i + 1 - start))
                start = i + 1
                self.flush()
        if start < batch.num_rows:
            self._rows.append(batch.slice(start))

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._count:
            return
        index = len(self.shards) + 1
        path = self.out / f"shard-{index:05d}.parquet"
        pq.write_table(pa.Table.from_batches(self._rows, schema=inventory_schema()), path, compression="zstd")
        self.shards.append(Shard(index, str(path), self._count, self._size))
        self._rows, self._count, self._size = [], 0, 0
