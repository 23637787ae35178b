"""A run's world in memory: an Azure-like source, an S3-like destination, a SQLite state database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hdh_migrate.audit.state import StateStore, open_state
from hdh_migrate.locations import parse_location
from hdh_migrate.runs.context import RunContext
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.stores.memory import MemoryServer, MemoryStore


@dataclass
class World:
    azure: MemoryServer
    s3: MemoryServer
    source: MemoryStore
    dest: MemoryStore
    pair: StorePair
    state: StateStore
    tmp: Path

    def ctx(
        self,
        name: str,
        *,
        run_id: str | None = None,
        actor: str = "alice",
        dataset: str | None = "dcir",
        flat: bool = False,
    ) -> RunContext:
        return RunContext(self.tmp / name, run_id or name, actor, dataset, flat)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    azure, s3 = MemoryServer("azure"), MemoryServer("s3", part_checksum="crc32c")
    source, dest = azure.create("snds"), s3.create("sovereign")
    pair = StorePair(parse_location("azure://snds/data"), parse_location("s3://sovereign/migrated"), source, dest)
    state = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    yield World(azure, s3, source, dest, pair, state, tmp_path)
    state.close()


def blob(i: int, size: int = 3000) -> bytes:
    return bytes((i * 7 + j) % 251 for j in range(size))
