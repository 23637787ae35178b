"""Delta sync: while both stores run side by side, copy only what changed at the source since last time.

The source is listed again and compared with the previous inventory (the Parquet of the last full listing,
recorded in the state database). Names are never held in Python dicts: the previous inventory becomes two
sorted numpy arrays of 64-bit hashes -- one of the name, one of the version ``(etag, size,
last_modified)`` -- 16 bytes per object (160 MB for 10 million), and each listed object is looked up by
binary search while the listing streams into the new inventory. New and changed objects go to a small
Parquet that feeds ``copy_objects``, whose per-object HEAD check then decides by the recorded source
version and SHA-256 (an object whose only change is its last-modified time is found already copied and
skipped).

Blobs deleted at the source are found twice over: against the previous inventory ("deleted since the last
listing", written to ``deleted.parquet``) and against the destination (objects hdh-migrate copied --
they record their source version -- whose source no longer exists). The second is what counts: a deletion
reported by an earlier sync and never mirrored is still reported. With the ``mirror`` policy (never the
default) those objects are deleted at the destination and the deletion is recorded in the ledger; objects
at the destination that hdh-migrate did not write are never deleted, only reported.

After copying, the delta is verified: if the previous source state had a passing verification, only the
new and changed objects are re-read (the rest is unchanged by construction: same name, etag and size) and
a new verification check is recorded for the new source fingerprint; otherwise the whole dataset is
verified. Objects left at the destination that no longer exist at the source (deletions reported, not
mirrored) make the check fail: the destination must equal the source before cutover.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hdh_migrate import __version__
from hdh_migrate.audit.state import COPIED, COPYING, StateStore
from hdh_migrate.errors import ConfigError, CopyFailedError
from hdh_migrate.locations import Location
from hdh_migrate.stores.interface import ObjectInfo
from hdh_migrate.stores.s3 import S3Store
from hdh_migrate.transfer.checksums import file_sha256
from hdh_migrate.transfer.copier import META_SOURCE_ETAG, CopyOptions, copy_objects
from hdh_migrate.transfer.fingerprint import Fingerprint
from hdh_migrate.transfer.manifest import (
    INVENTORY_SCHEMA,
    ManifestStats,
    ResultsWriter,
    _row,
    iter_inventory,
    write_inventory,
)
from hdh_migrate.transfer.verify import find_extras, verify_objects

log = logging.getLogger(__name__)

DELETION_POLICIES = ("report", "mirror")
#: destination prefixes hdh-migrate writes itself (routing documents, audit reports): never "extra"
RESERVED_PREFIXES = ("_hdh/", "_hdh-audit/")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

DELETED_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("last_modified", pa.timestamp("us", tz="UTC")),
    ]
)


def name_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def version_hash(etag: str, size: int, last_modified_us: int) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{etag}\0{size}\0{last_modified_us}".encode(), digest_size=8).digest(), "little"
    )


def _micros(dt: datetime) -> int:
    return (dt.astimezone(UTC) - _EPOCH) // _US


@dataclass(frozen=True)
class DeltaPlan:
    """What changed between the previous inventory and a new listing (paths to Parquet files, counts)."""

    base_inventory: str | None
    inventory: ManifestStats
    fingerprint: str
    changes_path: str
    new: int
    new_bytes: int
    changed: int
    changed_bytes: int
    unchanged: int
    deleted_path: str
    deleted: int
    deleted_bytes: int

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"inventory": asdict(self.inventory)}


class _Previous:
    """The previous inventory as sorted hash arrays, plus which entries the new listing saw."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = path
        if path is None:
            self.names = np.zeros(0, dtype=np.uint64)
            self.versions = np.zeros(0, dtype=np.uint64)
        else:
            names: list[np.ndarray] = []
            versions: list[np.ndarray] = []
            pf = pq.ParquetFile(path)
            for b in pf.iter_batches(batch_size=50_000, columns=["name", "etag", "size", "last_modified"]):
                lm = pc.cast(b.column(3), pa.int64()).to_pylist()
                names.append(np.fromiter((name_hash(n) for n in b.column(0).to_pylist()), dtype=np.uint64))
                versions.append(
                    np.fromiter(
                        (
                            version_hash(e, s, m)
                            for e, s, m in zip(b.column(1).to_pylist(), b.column(2).to_pylist(), lm, strict=True)
                        ),
                        dtype=np.uint64,
                    )
                )
            n = np.concatenate(names) if names else np.zeros(0, dtype=np.uint64)
            v = np.concatenate(versions) if versions else np.zeros(0, dtype=np.uint64)
            order = np.argsort(n, kind="stable")
            self.names, self.versions = n[order], v[order]
        self.seen = np.zeros(len(self.names), dtype=bool)

    def classify(self, info: ObjectInfo) -> str:
        """ "new", "changed" or "unchanged"."""
        h = np.uint64(name_hash(info.name))
        i = int(np.searchsorted(self.names, h))
        if i >= len(self.names) or self.names[i] != h:
            return "new"
        self.seen[i] = True
        if self.versions[i] != np.uint64(version_hash(info.etag, info.size, _micros(info.last_modified))):
            return "changed"
        return "unchanged"

    def unseen(self) -> np.ndarray:
        return np.sort(self.names[~self.seen])


class _BatchWriter:
    def __init__(self, path: Path, schema: pa.Schema, rows: int = 5_000) -> None:
        self.path, self.schema, self.rows = path, schema, rows
        self._w = pq.ParquetWriter(path, schema, compression="zstd")
        self._batch: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self._batch.append(row)
        if len(self._batch) >= self.rows:
            self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
            self._batch = []

    def close(self) -> None:
        self._w.write_table(pa.Table.from_pylist(self._batch, schema=self.schema))
        self._w.close()


def plan_delta(listing: Iterable[ObjectInfo], previous_inventory: str | Path | None, work_dir: str | Path) -> DeltaPlan:
    """List once: write the new full inventory, the new/changed objects, and the deleted ones."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    prev = _Previous(previous_inventory)
    fp = Fingerprint()
    changes = _BatchWriter(work / "changes.parquet", INVENTORY_SCHEMA)
    tally = {"new": [0, 0], "changed": [0, 0], "unchanged": [0, 0]}

    def tee() -> Iterator[ObjectInfo]:
        for info in listing:
            fp.add_info(info)
            kind = prev.classify(info)
            tally[kind][0] += 1
            tally[kind][1] += info.size
            if kind != "unchanged":
                changes.add(_row(info))
            yield info

    try:
        inv = write_inventory(tee(), work / "inventory.parquet")
    finally:
        changes.close()
    deleted_hashes = prev.unseen()
    deleted = _BatchWriter(work / "deleted.parquet", DELETED_SCHEMA)
    n_del = b_del = 0
    if len(deleted_hashes) and previous_inventory is not None:
        for b in pq.ParquetFile(previous_inventory).iter_batches(
            batch_size=50_000, columns=["name", "size", "etag", "last_modified"]
        ):
            hashes = np.fromiter((name_hash(n) for n in b.column(0).to_pylist()), dtype=np.uint64)
            idx = np.searchsorted(deleted_hashes, hashes)
            idx[idx >= len(deleted_hashes)] = 0
            hit = deleted_hashes[idx] == hashes
            for row in b.filter(pa.array(hit)).to_pylist():
                deleted.add(row)
                n_del += 1
                b_del += int(row["size"] or 0)
    deleted.close()
    return DeltaPlan(
        base_inventory=str(previous_inventory) if previous_inventory else None,
        inventory=inv,
        fingerprint=fp.value,
        changes_path=str(work / "changes.parquet"),
        new=tally["new"][0],
        new_bytes=tally["new"][1],
        changed=tally["changed"][0],
        changed_bytes=tally["changed"][1],
        unchanged=tally["unchanged"][0],
        deleted_path=str(work / "deleted.parquet"),
        deleted=n_del,
        deleted_bytes=b_del,
    )


def extras_outside_reserved(dest: S3Store, dst: Location, src: Location, inventory: str | Path) -> list[str]:
    """Destination objects with no source object, ignoring hdh-migrate's own routing and audit files."""
    return [k for k in find_extras(dest, dst, src, iter_inventory(inventory)) if not k.startswith(RESERVED_PREFIXES)]


def run_delta_sync(
    state: StateStore,
    dataset: str,
    source: Any,
    dest: S3Store,
    src: Location,
    dst: Location,
    *,
    options: CopyOptions | None = None,
    deletions: str = "report",
    depth: str = "full",
    actor: str,
    run_id: str,
    work_dir: str | Path,
) -> dict[str, Any]:
    """One delta sync of one dataset: list, copy new/changed, handle deletions, verify, record.

    Returns the run summary (also written to ``work_dir/summary.json``). Raises ``CopyFailedError`` when
    objects could not be copied (transient if all failures were), after recording the failed run.
    """
    if deletions not in DELETION_POLICIES:
        raise ConfigError(
            f"deletion policy {deletions!r} is not one of {DELETION_POLICIES}",
            hint="'report' (default) lists blobs deleted at the source; 'mirror' deletes them at the destination too",
        )
    options = options or CopyOptions()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    ds = state.get(dataset)
    base = ds.inventory_path if ds.inventory_path and Path(ds.inventory_path).exists() else None
    if ds.inventory_path and base is None:
        log.warning(
            "%s: previous inventory %s is not readable here; comparing the whole listing with the destination instead",
            dataset,
            ds.inventory_path,
        )
    source.check_access(src.prefix)
    dest.check_access(dst.prefix)
    plan = plan_delta(source.list(src.prefix), base, work)
    log.info(
        "%s: %d new, %d changed, %d deleted at the source, %d unchanged",
        dataset,
        plan.new,
        plan.changed,
        plan.deleted,
        plan.unchanged,
    )
    summary: dict[str, Any] = {
        "command": "delta_sync",
        "tool": f"hdh-migrate/{__version__}",
        "dataset": dataset,
        "run_id": run_id,
        "triggered_by": actor,
        "source": str(src),
        "destination": str(dst),
        "provider": dest.settings.provider,
        "started": started.isoformat(timespec="seconds"),
        "deletions_policy": deletions,
        "depth": depth,
        "previous_fingerprint": ds.source_fingerprint,
        "fingerprint": plan.fingerprint,
        "delta": plan.to_dict(),
        "work_dir": str(work),
    }
    to_copy = plan.new + plan.changed
    counts: dict[str, Any] = {}
    copy_results: str | None = None
    if to_copy:
        state.transition(
            dataset,
            COPYING,
            actor=actor,
            run_id=run_id,
            evidence={
                "reason": "delta sync",
                "new": plan.new,
                "changed": plan.changed,
                "fingerprint": plan.fingerprint,
            },
        )
        copy_results = str(work / "results" / "copy-delta.parquet")
        with ResultsWriter(copy_results) as results:
            c = copy_objects(source, dest, src, dst, iter_inventory(plan.changes_path), options, results=results)
        counts = c.to_dict()
        summary["copy"] = {
            k: counts[k] for k in ("copied", "copied_bytes", "skipped", "failed", "rejected", "retried", "ok")
        }
        summary["copy_results"] = [copy_results]
        if not c.ok:
            summary["ok"] = False
            summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            _write(work, summary)
            state.record_run(
                dataset, run_id, "delta_sync", actor=actor, ok=False, summary=_brief(summary), started=started
            )
            lines = "; ".join(f"{e['name']}: [{e['code']}] {e['message']}" for e in c.errors[:5])
            raise CopyFailedError(
                f"{dataset}: {c.failed + c.rejected} new or changed objects could not be copied: {lines}",
                transient=all(e["transient"] == "true" for e in c.errors),
                hint=f"details in {copy_results}; re-run the delta sync once the cause is fixed",
            )
        state.transition(
            dataset,
            COPIED,
            actor=actor,
            run_id=run_id,
            evidence={
                "copied": c.copied,
                "copied_bytes": c.copied_bytes,
                "skipped": c.skipped,
                "results": copy_results,
                "results_sha256": file_sha256(copy_results),
            },
        )
    # Deletions are decided against the destination, not only against the previous listing: an object
    # still at the destination with no source is a deletion not yet mirrored, even if an earlier sync (in
    # 'report' mode) already saw it go. Only objects hdh-migrate copied (they record their source version)
    # are ever mirrored; anything else is reported as a foreign extra and left alone.
    extras = extras_outside_reserved(dest, dst, src, plan.inventory.path)
    from_source, foreign = [], []
    for key in extras:
        head = dest.head(key)
        if head is not None and META_SOURCE_ETAG in head.metadata:
            from_source.append(key)
        elif head is not None:
            foreign.append(key)
    mirrored: list[str] = []
    if from_source and deletions == "mirror":
        for key in from_source:
            dest.delete(key)
            mirrored.append(key)
        state.append_ledger(
            kind="deletions_mirrored",
            dataset=dataset,
            actor=actor,
            run_id=run_id,
            payload={
                "count": len(mirrored),
                "keys_sha256": hashlib.sha256("\n".join(sorted(mirrored)).encode()).hexdigest(),
                "examples": sorted(mirrored)[:20],
                "deleted_since_last_listing": plan.deleted_path,
            },
        )
    remaining = sorted(set(from_source) - set(mirrored))
    summary["deleted"] = {
        "count": len(from_source),
        "since_last_listing": plan.deleted,
        "since_last_listing_bytes": plan.deleted_bytes,
        "policy": deletions,
        "mirrored": len(mirrored),
        "still_at_destination": remaining[:20],
        "examples": sorted(from_source)[:20],
        "list": plan.deleted_path,
    }
    summary["foreign_extras"] = {"count": len(foreign), "examples": foreign[:20]}
    summary["ok"] = True
    last = state.latest_check(dataset, "verify")
    stale = last is None or not last.ok or last.source_fingerprint != plan.fingerprint
    if plan.has_changes or mirrored or remaining or foreign or stale:
        summary["verification"] = _verify_delta(
            state,
            dataset,
            source,
            dest,
            src,
            dst,
            plan,
            ds.source_fingerprint,
            depth=depth,
            workers=options.workers,
            actor=actor,
            run_id=run_id,
            work=work,
            copy_results=copy_results,
            extras=remaining + foreign,
        )
        summary["ok"] = summary["verification"]["ok"]
        if ds.validation_required and plan.has_changes:
            summary["validation_stale"] = (
                "the source changed: the Great Expectations validation must be run again before cutover"
            )
    state.set_inventory(
        dataset,
        path=plan.inventory.path,
        sha256=plan.inventory.sha256,
        fingerprint=plan.fingerprint,
        run_id=run_id,
        actor=actor,
    )
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write(work, summary)
    state.record_run(
        dataset, run_id, "delta_sync", actor=actor, ok=summary["ok"], summary=_brief(summary), started=started
    )
    return summary


def _verify_delta(
    state: StateStore,
    dataset: str,
    source: Any,
    dest: S3Store,
    src: Location,
    dst: Location,
    plan: DeltaPlan,
    previous_fingerprint: str | None,
    *,
    depth: str,
    workers: int,
    actor: str,
    run_id: str,
    work: Path,
    copy_results: str | None,
    extras: list[str],
) -> dict[str, Any]:
    base = state.latest_check(dataset, "verify")
    incremental = bool(
        base
        and base.ok
        and previous_fingerprint
        and base.source_fingerprint == previous_fingerprint
        and plan.base_inventory
    )
    objects = plan.changes_path if incremental else plan.inventory.path
    results_path = str(work / "results" / "verify-delta.parquet")
    with ResultsWriter(results_path) as results:
        vc = verify_objects(
            source, dest, src, dst, iter_inventory(objects), depth=depth, workers=workers, results=results
        )
    evidence = (list(base.details.get("evidence", [])) if incremental and base else []) + [results_path]
    copies = (list(base.details.get("copy_results", [])) if incremental and base else []) + (
        [copy_results] if copy_results else []
    )
    problems = [f"{p['key'] or p['name']}: {p['problem']}" for p in vc.problems[:20]]
    ok = vc.ok and not extras
    details = {
        "incremental": incremental,
        "base_check_id": base.id if incremental and base else None,
        "base_run_id": base.run_id if incremental and base else None,
        "depth": depth,
        "objects_verified": vc.checked,
        "matched": vc.matched,
        "missing": vc.missing,
        "differs": vc.differs,
        "errors": vc.errors,
        "bytes_read": vc.bytes_read,
        "extras": len(extras),
        "extra_examples": extras[:20],
        "problems": problems,
        "inventory": plan.inventory.path,
        "inventory_sha256": plan.inventory.sha256,
        "objects": plan.inventory.objects,
        "bytes": plan.inventory.bytes,
        "evidence": evidence,
        "copy_results": copies,
        "work_dir": str(work),
        "source": str(src),
        "destination": str(dst),
    }
    if extras:
        details["reason"] = (
            f"{len(extras)} object(s) at the destination do not exist at the source (e.g. "
            f"{extras[0]}); blobs deleted at the source are left there under the deletions policy "
            "'report': re-run the delta sync with deletions=mirror, or remove them, before cutover"
        )
    elif not vc.ok:
        details["reason"] = f"{vc.missing} missing, {vc.differs} differing, {vc.errors} unreadable: " + "; ".join(
            problems[:5]
        )
    check = state.record_check(
        dataset, "verify", run_id=run_id, ok=ok, source_fingerprint=plan.fingerprint, details=details, actor=actor
    )
    return {
        "ok": ok,
        "check_id": check.id,
        "incremental": incremental,
        "objects_verified": vc.checked,
        "extras": len(extras),
        "results": results_path,
        **({"reason": details["reason"]} if not ok else {}),
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    """What the runs table and ledger keep of a summary (paths and counts; the file has the rest)."""
    d = summary.get("delta", {})
    return {
        "new": d.get("new"),
        "changed": d.get("changed"),
        "deleted": summary.get("deleted", {}).get("count"),
        "mirrored": summary.get("deleted", {}).get("mirrored"),
        "foreign_extras": summary.get("foreign_extras", {}).get("count"),
        "copy": summary.get("copy"),
        "fingerprint": summary.get("fingerprint"),
        "verification": summary.get("verification"),
        "work_dir": summary.get("work_dir"),
        "ok": summary.get("ok"),
    }


def _write(work: Path, summary: dict[str, Any]) -> None:
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


__all__ = ["DELETION_POLICIES", "RESERVED_PREFIXES", "DeltaPlan", "plan_delta", "run_delta_sync"]
