"""The two stores of a run, opened one way for every run: the command line (settings from the environment)
and the Airflow tasks (settings from Connections) only differ in the settings they pass."""

from __future__ import annotations

from dataclasses import dataclass

from hdh_migrate.locations import Location, parse_location
from hdh_migrate.stores import Store, open_store
from hdh_migrate.stores.settings import AzureSettings, S3Settings
from hdh_migrate.transfer.allocator import tune_allocator
from hdh_migrate.transfer.copier import objects_in_flight


def pool_size(workers: int) -> int:
    """HTTP connections per store: object and part threads both talk to it, plus listings and HEADs."""
    return objects_in_flight(workers) + workers + 4


@dataclass(frozen=True)
class StorePair:
    """Where a run reads (an azure:// location and its store) and where it writes (s3://)."""

    src: Location
    dst: Location
    source: Store
    dest: Store

    def check_access(self) -> None:
        """Prove access to both sides before any work starts (a typed error names the side and the cause)."""
        self.source.check_access(self.src.prefix)
        self.dest.check_access(self.dst.prefix)


def open_pair(
    src_url: str | Location,
    dst_url: str | Location,
    *,
    azure: AzureSettings | None = None,
    s3: S3Settings | None = None,
    workers: int = 8,
) -> StorePair:
    """Parse both locations and open both stores (settings default to the environment's)."""
    tune_allocator()  # before any worker thread exists (see transfer/allocator.py)
    src = src_url if isinstance(src_url, Location) else parse_location(src_url, expect="azure")
    dst = dst_url if isinstance(dst_url, Location) else parse_location(dst_url, expect="s3")
    conns = pool_size(workers)
    return StorePair(
        src, dst, open_store(src, azure=azure, max_connections=conns), open_store(dst, s3=s3, max_connections=conns)
    )


def open_destination(dst_url: str, *, s3: S3Settings | None = None) -> Store:
    """The destination alone (a rollback rewrites the routing document; it needs no source)."""
    return open_store(parse_location(dst_url, expect="s3"), s3=s3, max_connections=pool_size(1))


__all__ = ["StorePair", "open_destination", "open_pair", "pool_size"]
