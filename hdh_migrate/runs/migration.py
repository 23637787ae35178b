"""Whole jobs, as the CLI and the Airflow tasks run them: open both sides, take the inventory, copy or
verify, and leave the evidence (inventory manifest, per-object results, summary JSON) in a work folder."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hdh_migrate import __version__
from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.home import state_home
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.stores import AzureBlobStore, S3Store, open_store
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.settings import AzureSettings, S3Settings, encryption_summary
from hdh_migrate.transfer.allocator import tune_allocator
from hdh_migrate.transfer.copier import CopyOptions, copy_objects, objects_in_flight
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.manifest import Inventory, ManifestStats, ResultsWriter, write_inventory
from hdh_migrate.transfer.progress import Progress
from hdh_migrate.transfer.verify import ObjectFeed, find_extras, verify_objects


def default_work_dir(kind: str, src: Location) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{src.container}-{src.prefix}".strip("/"))[:60]
    return state_home() / "runs" / f"{stamp}-{kind}-{slug}"


def pool_size(workers: int) -> int:
    """HTTP connections per store: object and part threads both talk to it, plus listings and HEADs."""
    return objects_in_flight(workers) + workers + 4


def open_pair(
    src_url: str,
    dst_url: str,
    *,
    azure: AzureSettings | None = None,
    s3: S3Settings | None = None,
    workers: int = 8,
    check: bool = True,
) -> tuple[Location, Location, AzureBlobStore, S3Store]:
    """Parse both locations, open both stores and prove access before any work starts."""
    tune_allocator()  # before any worker thread exists (see memory.py)
    src = parse_location(src_url, expect="azure")
    dst = parse_location(dst_url, expect="s3")
    source = open_store(src, azure=azure, max_connections=pool_size(workers))
    dest = open_store(dst, s3=s3, max_connections=pool_size(workers))
    assert isinstance(source, AzureBlobStore) and isinstance(dest, S3Store)
    if check:
        source.check_access(src.prefix)
        dest.check_access(dst.prefix)
    return src, dst, source, dest


def take_inventory(source: AzureBlobStore, src: Location, path: Path) -> ManifestStats:
    return write_inventory(source.list(src.prefix), path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_summary(work_dir: Path, summary: dict[str, Any]) -> None:
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def run_copy(
    src_url: str,
    dst_url: str,
    options: CopyOptions,
    *,
    work_dir: Path | None = None,
    azure: AzureSettings | None = None,
    s3: S3Settings | None = None,
    progress_stream: TextIO | None = None,
    show_progress: bool = True,
    verify: str | None = None,
) -> dict[str, Any]:
    """Copy, and (verify="quick" | "full" | "both") verify the same inventory in the same process.

    The verification reads the destination afresh, as `hdh-migrate verify` would, but saves a second start
    and a second listing of the source, and checks each object as soon as the copier is done with it, while
    later objects are still being copied (ObjectFeed); destination objects with no source ("extra") are
    looked for after the copy. Its summary goes under "verify", and "ok" needs both to pass."""
    options.validate()
    src, dst, source, dest = open_pair(src_url, dst_url, azure=azure, s3=s3, workers=options.workers)
    work = work_dir or default_work_dir("copy", src)
    work.mkdir(parents=True, exist_ok=True)
    started = _now()
    inv = Inventory.take(source.list(src.prefix), work / "inventory.parquet")
    # one listing of the destination spares a HEAD per object that is not there yet
    dest_index = KeyIndex(o.name for o in dest.list(dst.prefix))
    stream = progress_stream or sys.stderr
    progress = Progress(inv.objects, inv.bytes, label="dry run" if options.dry_run else "copy", stream=stream)
    results = ResultsWriter(work / "results.parquet")
    feed: ObjectFeed | None = None
    verified: dict[str, Any] = {}
    checker: threading.Thread | None = None
    if verify and not options.dry_run:
        feed = ObjectFeed()

        def verify_as_copied() -> None:
            assert feed is not None
            try:
                verified["summary"] = verify_inventory(
                    source,
                    dest,
                    src,
                    dst,
                    inv,
                    work,
                    depth=verify,
                    workers=options.workers,
                    progress_stream=progress_stream,
                    show_progress=False,
                    objects=feed,
                )
            except BaseException as exc:  # reported by the main thread after the copy
                verified["error"] = exc
                feed.abandon()

        checker = threading.Thread(target=verify_as_copied, name="hdh-verify", daemon=True)
        checker.start()
    try:
        with progress if show_progress else contextlib.nullcontext():
            counts = copy_objects(
                source,
                dest,
                src,
                dst,
                inv.rows(),
                options,
                results=results,
                progress=progress,
                dest_index=dest_index,
                on_done=feed.put if feed is not None else None,
            )
    except BaseException:
        if feed is not None:
            feed.abandon()  # the copy failed: no point verifying what it did, its error is the news
        raise
    finally:
        res = results.close()
        if feed is not None and checker is not None:
            feed.close()
            checker.join()
    seconds = progress.elapsed
    summary = {
        "command": "copy",
        "tool": f"hdh-migrate/{__version__}",
        "source": str(src),
        "source_endpoint": source.settings.describe(),
        "destination": str(dst),
        "destination_endpoint": dest.settings.describe(),
        "provider": dest.settings.provider,
        "started": started,
        "finished": _now(),
        "seconds": round(seconds, 3),
        "mib_per_s": round(counts.copied_bytes / 1048576 / seconds, 2) if seconds > 0 else None,
        "options": asdict(options),
        "encryption": encryption_summary(dest.settings),
        "inventory": asdict(inv.stats()),
        "results": {"path": res.path, "rows": res.objects, "sha256": res.sha256},
        "counts": counts.to_dict(),
        "ok": counts.ok,
        "work_dir": str(work),
    }
    if feed is not None:
        if "error" in verified:
            raise verified["error"]
        v = verified["summary"]
        v.pop("inventory", None)  # the copy's own, above
        summary["verify"] = v
        summary["ok"] = counts.ok and v["ok"]
    _write_summary(work, summary)
    return summary


def run_verify(
    src_url: str,
    dst_url: str,
    *,
    depth: str = "full",
    workers: int = 8,
    extras: bool = True,
    work_dir: Path | None = None,
    azure: AzureSettings | None = None,
    s3: S3Settings | None = None,
    progress_stream: TextIO | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    src, dst, source, dest = open_pair(src_url, dst_url, azure=azure, s3=s3, workers=workers)
    work = work_dir or default_work_dir("verify", src)
    work.mkdir(parents=True, exist_ok=True)
    started = _now()
    inv = Inventory.take(source.list(src.prefix), work / "inventory.parquet")
    summary = verify_inventory(
        source,
        dest,
        src,
        dst,
        inv,
        work,
        depth=depth,
        workers=workers,
        extras=extras,
        progress_stream=progress_stream,
        show_progress=show_progress,
    )
    summary["started"] = started
    _write_summary(work, summary)
    return summary


def verify_inventory(
    source: AzureBlobStore,
    dest: S3Store,
    src: Location,
    dst: Location,
    inv: Inventory,
    work: Path,
    *,
    depth: str = "full",
    workers: int = 8,
    extras: bool = True,
    progress_stream: TextIO | None = None,
    show_progress: bool = True,
    objects: Iterable[ObjectInfo] | None = None,
) -> dict[str, Any]:
    """Verify every object of an inventory already taken (by run_verify, or by run_copy as it copies: then
    objects is the copier's feed of the inventory's objects, in the order they were done)."""
    started = _now()
    progress = Progress(
        inv.objects,
        inv.bytes,
        label=f"verify ({depth})",
        stream=progress_stream or sys.stderr,
    )
    results = ResultsWriter(work / "verify.parquet")
    try:
        with progress if show_progress else contextlib.nullcontext():
            counts = verify_objects(
                source,
                dest,
                src,
                dst,
                inv.rows() if objects is None else objects,
                depth=depth,
                workers=workers,
                results=results,
                progress=progress,
            )
        if extras:
            for key in find_extras(dest, dst, src, inv.rows()):
                counts.extra += 1
                if len(counts.problems) < 10_000:
                    counts.problems.append(
                        {"name": "", "key": key, "problem": "extra", "detail": "at the destination, not at the source"}
                    )
                results.add(name="", key=key, status="extra", reason="at the destination, not at the source")
    finally:
        res = results.close()
    return {
        "command": "verify",
        "tool": f"hdh-migrate/{__version__}",
        "source": str(src),
        "destination": str(dst),
        "depth": depth,
        "started": started,
        "finished": _now(),
        "seconds": round(progress.elapsed, 3),
        "inventory": asdict(inv.stats()),
        "results": {"path": res.path, "rows": res.objects, "sha256": res.sha256},
        "counts": counts.to_dict(),
        "ok": counts.ok,
        "work_dir": str(work),
    }


__all__ = ["HdhMigrateError", "open_pair", "run_copy", "run_verify", "take_inventory"]
