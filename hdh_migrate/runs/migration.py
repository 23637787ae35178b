"""The steps of a migration run, each one function, called the same way by the command line and the DAG.

``hdh_migrate_dataset`` runs them as tasks (one call per task, a shard per mapped task);
``hdh-migrate migrate`` runs the same calls in sequence; ``hdh-migrate copy`` and ``verify`` are the
one-shard case, fed from the listing held in memory (the copy starts while the inventory's Parquet is
being written, and ``copy --verify`` verifies each object as soon as it is copied).

1. ``begin`` + ``take_inventory``: prove access to both sides, list the source into ``inventory.parquet``,
   list the destination once (``dest_index.npy``: a key absent from it needs no HEAD), write the run's
   header (``run.json``), register the dataset and mark it ``copying``.
2. ``plan``: cut the inventory into shards (``transfer/plan.py``).
3. ``copy_shard``: copy a shard's objects (``transfer/copier.py``), the evidence in a results file; objects
   a verification rejected are copied again whatever the destination looks like.
4. ``verify_shard``: read the destination back independently (``transfer/verify.py``); what it rejects is
   written down for the shard's next copy.
5. validate each table (``runs/tables.py``).
6. ``summarize``: look for objects at the destination with no source, write ``summary.json`` (the run
   record, ``runs/record.py``), record the run, its verification and its validations in the state database.

A step that finds the data not right returns its outcome; ``failure()`` turns it into the typed error
the DAG raises (Airflow retries a transient one) and ``migrate`` stops on; ``copy`` and ``verify`` report
every failure in their summary instead, and exit 1.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from hdh_migrate import __version__
from hdh_migrate.errors import CopyFailedError, ExtraObjectsError, HdhMigrateError, VerificationFailedError
from hdh_migrate.runs import recording
from hdh_migrate.runs.context import RunContext, now_iso
from hdh_migrate.runs.pair import StorePair
from hdh_migrate.runs.record import CopySection, FileRef, RunRecord, ValidationRef, VerifySection
from hdh_migrate.stores.interface import DocumentWriter, ObjectInfo, Store
from hdh_migrate.transfer.copier import CopyCounts, CopyOptions, copy_objects
from hdh_migrate.transfer.keyindex import KeyIndex
from hdh_migrate.transfer.manifest import Inventory, ManifestStats, ResultsWriter, iter_inventory
from hdh_migrate.transfer.plan import Shard, plan_shards
from hdh_migrate.transfer.progress import Progress
from hdh_migrate.transfer.verify import ObjectFeed, VerifyCounts, find_extras, verify_objects

if TYPE_CHECKING:  # the database layer is not imported by a run that records nothing (see audit/lifecycle.py)
    from hdh_migrate.audit.state import StateStore

MAX_EXTRA_EXAMPLES = 20


# -- 1. the run's header and inventory ------------------------------------------------------------------
def begin(
    pair: StorePair,
    ctx: RunContext,
    command: str,
    *,
    options: CopyOptions | None = None,
    params: dict[str, Any] | None = None,
) -> RunRecord:
    """The run's header: who runs what, between which stores, with which options."""
    facts = _store_facts(pair.dest)
    return RunRecord(
        command=command,
        tool=f"hdh-migrate/{__version__}",
        source=str(pair.src),
        destination=str(pair.dst),
        started=now_iso(),
        work_dir=str(ctx.work_dir),
        dataset=ctx.dataset,
        run_id=ctx.run_id,
        triggered_by=ctx.actor,
        source_endpoint=pair.source.describe(),
        destination_endpoint=pair.dest.describe(),
        provider=facts.get("provider"),
        encryption=facts.get("encryption") or {},
        params=dict(params or {}),
        options=asdict(options) if options else {},
        dry_run=bool(options and options.dry_run),
    )


def _store_facts(store: Store) -> dict[str, Any]:
    """Provider and encryption, where the destination can say (a store that writes documents reports them)."""
    if store.features.documents and isinstance(store, DocumentWriter):
        return store.report_facts()
    return {}


@dataclass(frozen=True)
class InventoryStep:
    """The listing of the source, as the later steps need it (small: it travels as an Airflow XCom)."""

    work_dir: str
    inventory: str
    objects: int
    bytes: int
    sha256: str

    def stats(self) -> ManifestStats:
        return ManifestStats(self.inventory, self.objects, self.bytes, self.sha256)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def take_inventory(
    pair: StorePair,
    ctx: RunContext,
    header: RunRecord,
    *,
    state: StateStore | None = None,
    validation_required: bool | None = None,
) -> InventoryStep:
    """Prove access, list both sides, write the header; register the dataset and mark it ``copying``."""
    pair.check_access()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    inv = Inventory.take(pair.source.list(pair.src.prefix), ctx.inventory_path, keep=0)
    index_destination(pair, ctx)
    stats = inv.stats()
    header.finish(inventory=stats).write(ctx.header_path)
    if state is not None and ctx.dataset and not header.dry_run:
        recording.record_started(state, header, validation_required=validation_required)
    return InventoryStep(str(ctx.work_dir), stats.path, stats.objects, stats.bytes, stats.sha256)


def index_destination(pair: StorePair, ctx: RunContext) -> KeyIndex:
    """One listing of the destination: the first copy of a shard skips a HEAD per key it shows absent."""
    index = KeyIndex(o.name for o in pair.dest.list(pair.dst.prefix))
    index.save(str(ctx.dest_index_path))
    return index


# -- 2. plan ------------------------------------------------------------------------------------------
def plan(ctx: RunContext, inv: InventoryStep, *, max_objects: int = 0, max_shards: int = 1000) -> list[Shard]:
    return plan_shards(inv.inventory, ctx.shards_dir, max_shards=max_shards, max_objects=max_objects or None)


class _Counted(Protocol):
    objects: int
    bytes: int


def whole(inv: _Counted, path: str | Path) -> Shard:
    """The one-shard case: the whole inventory (``copy`` and ``verify`` on the command line)."""
    return Shard(1, str(path), inv.objects, inv.bytes)


# -- 3. copy a shard --------------------------------------------------------------------------------------
@dataclass
class ShardCopy:
    shard: Shard
    counts: CopyCounts
    results: FileRef
    dry_run: bool = False

    def failure(self) -> HdhMigrateError | None:
        """The error the shard's task raises: transient (Airflow retries the shard, which resumes) when every
        failure was, else permanent with the first failure's code (the runbook's entry)."""
        c = self.counts
        if c.ok:
            return None
        lines = "; ".join(f"{e['name']}: [{e['code']}] {e['message']}" for e in c.errors[:5])
        more = f" (and {len(c.errors) - 5} more in {self.results.path})" if len(c.errors) > 5 else ""
        if all(e["transient"] == "true" for e in c.errors):
            return CopyFailedError(
                f"{self.shard.label}: {c.failed} objects failed transiently: {lines}{more}",
                transient=True,
                code="shard_transient_failures",
            )
        return CopyFailedError(
            f"{self.shard.label}: {c.failed + c.rejected} objects could not be copied: {lines}{more}",
            hint="fix the cause, then clear this task: it resumes and re-copies only these",
            code=c.errors[0]["code"] or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The shard's XCom: its shard, then the counts the summary adds up (never object lists)."""
        c = self.counts
        return self.shard.to_dict() | {
            "copied": c.copied,
            "copied_bytes": c.copied_bytes,
            "skipped": c.skipped,
            "retried": c.retried,
            "counts": _without_lists(c.to_dict()),
            "results": self.results.path,
            "results_file": asdict(self.results),
            "dry_run": self.dry_run,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardCopy:
        return cls(_shard(d), _counts(CopyCounts, d["counts"]), FileRef(**d["results_file"]), d["dry_run"])


def copy_shard(
    pair: StorePair,
    ctx: RunContext,
    shard: Shard,
    options: CopyOptions,
    *,
    try_number: int = 1,
    objects: Iterable[ObjectInfo] | None = None,
    dest_index: KeyIndex | None = None,
    progress: Progress | None = None,
    on_done: Any = None,
) -> ShardCopy:
    """Copy a shard's objects; objects its last verification rejected are copied again."""
    rejected = ctx.rejected_by_verify(shard.index)
    force = json.loads(rejected.read_text()) if rejected.exists() else []
    if dest_index is None and try_number == 1 and ctx.dest_index_path.exists():
        # only a first try may trust the listing taken at inventory time: a retry or a cleared task must
        # look at what its earlier tries wrote
        dest_index = KeyIndex.load(str(ctx.dest_index_path))
    counts, results = copy_into(
        pair,
        objects if objects is not None else iter_inventory(shard.path),
        options,
        ctx.copy_results(shard.index, try_number),
        force=force,
        dest_index=dest_index,
        progress=progress,
        on_done=on_done,
    )
    if counts.ok and force:
        rejected.replace(rejected.with_suffix(".recopied.json"))
    return ShardCopy(shard, counts, results, options.dry_run)


def copy_into(
    pair: StorePair, objects: Iterable[ObjectInfo], options: CopyOptions, results_path: Path, **kw: Any
) -> tuple[CopyCounts, FileRef]:
    """Copy objects, their evidence into results_path: what every step that copies calls."""
    with ResultsWriter(results_path) as results:
        counts = copy_objects(pair.source, pair.dest, pair.src, pair.dst, objects, options, results=results, **kw)
    return counts, FileRef.of(results.close())


# -- 4. verify a shard ------------------------------------------------------------------------------------
@dataclass
class ShardVerify:
    shard: Shard
    depth: str
    counts: VerifyCounts
    results: FileRef
    seconds: float | None = None

    def failure(self) -> HdhMigrateError | None:
        c = self.counts
        if c.ok:
            return None
        lines = "; ".join(f"{p['key'] or p['name']}: {p['problem']} ({p['detail']})" for p in c.problems[:5])
        return VerificationFailedError(
            f"{self.shard.label}: {c.missing} missing, {c.differs} differing, {c.errors} unreadable: {lines}",
            hint="clear the copy task of this shard (with downstream) to re-copy exactly these objects; details "
            f"in {self.results.path}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.shard.index,
            "shard": self.shard.to_dict(),
            "matched": self.counts.matched,
            "bytes_read": self.counts.bytes_read,
            "depth": self.depth,
            "counts": _without_lists(self.counts.to_dict()),
            "results": self.results.path,
            "results_file": asdict(self.results),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardVerify:
        return cls(
            _shard(d["shard"]),
            d["depth"],
            _counts(VerifyCounts, d["counts"]),
            FileRef(**d["results_file"]),
            d["seconds"],
        )


def verify_shard(
    pair: StorePair,
    ctx: RunContext,
    shard: Shard,
    depth: str,
    *,
    workers: int = 8,
    objects: Iterable[ObjectInfo] | None = None,
    progress: Progress | None = None,
) -> ShardVerify:
    """Read the shard's objects back from the destination; what is rejected goes to the shard's next copy."""
    counts, results, seconds = verify_into(
        pair,
        objects if objects is not None else iter_inventory(shard.path),
        depth,
        ctx.verify_results(shard.index),
        workers=workers,
        progress=progress,
    )
    if not counts.ok:
        names = sorted({p["name"] for p in counts.problems if p["name"]})
        ctx.rejected_by_verify(shard.index).parent.mkdir(parents=True, exist_ok=True)
        ctx.rejected_by_verify(shard.index).write_text(json.dumps(names))
    return ShardVerify(shard, depth, counts, results, seconds)


def verify_into(
    pair: StorePair,
    objects: Iterable[ObjectInfo],
    depth: str,
    results_path: Path,
    *,
    workers: int = 8,
    progress: Progress | None = None,
) -> tuple[VerifyCounts, FileRef, float]:
    """Verify objects, their evidence into results_path: what every step that verifies calls."""
    started = time.monotonic()
    with ResultsWriter(results_path) as results:
        counts = verify_objects(
            pair.source,
            pair.dest,
            pair.src,
            pair.dst,
            objects,
            depth=depth,
            workers=workers,
            results=results,
            progress=progress,
        )
    return counts, FileRef.of(results.close()), round(time.monotonic() - started, 3)


# -- 6. summarize ---------------------------------------------------------------------------------------
def look_for_extras(pair: StorePair, inventory: str | Path) -> list[str]:
    """Destination keys under the prefix that no source object maps to (hdh-migrate's own documents aside)."""
    return list(find_extras(pair.dest, pair.dst, pair.src, iter_inventory(inventory)))


def summarize(
    pair: StorePair,
    ctx: RunContext,
    copies: list[ShardCopy],
    verifies: list[ShardVerify],
    validations: list[ValidationRef] | None = None,
    *,
    header: RunRecord | None = None,
    depth: str | None = None,
    extras: bool = True,
    state: StateStore | None = None,
    validation_results: list[dict[str, Any]] | None = None,
) -> RunRecord:
    """Look for extra objects, write summary.json, record the run in the state database; the record."""
    header = header or RunRecord.load(ctx.header_path)
    assert header.inventory is not None
    copy = CopySection(_sum(CopyCounts, [c.counts for c in copies]), [c.results for c in copies]) if copies else None
    verification = None
    if depth and not header.dry_run:
        counts = _sum(VerifyCounts, [v.counts for v in verifies], depth=depth)
        found = look_for_extras(pair, header.inventory.path) if extras else []
        _add_extras(counts, found)
        verification = VerifySection(
            depth,
            counts,
            [v.results for v in verifies],
            found[:MAX_EXTRA_EXAMPLES],
            seconds=sum(v.seconds or 0 for v in verifies) or None,
        )
    record = header.finish(
        shards=len(copies) or len(verifies),
        copy=copy,
        verification=verification,
        validations=list(validations or []),
        finished=now_iso(),
        seconds=_seconds(header.started),
    )
    if state is not None and record.dataset and not record.dry_run:
        record = recording.record_finished(state, record, validations=validation_results)
    record.write(ctx.summary_path)
    if state is not None and record.dataset and not record.dry_run:
        # lazy: the anchor module brings SQLAlchemy and Jinja2 (~0.3 s), kept out of a plain copy
        from hdh_migrate.audit.anchors import anchor_ledger

        anchor_ledger(state, pair.dest, after=f"run {record.run_id} of {record.dataset}")
    return record


def extras_failure(record: RunRecord) -> HdhMigrateError | None:
    v = record.verification
    if v is None or not v.counts.extra:
        return None
    return ExtraObjectsError(
        f"{v.counts.extra} objects under {record.destination} have no source (e.g. {v.extra_examples[:3]})",
        hint="the destination prefix is shared or holds leftovers; clean it or choose another dest_prefix "
        "before cutover",
    )


def _add_extras(counts: VerifyCounts, found: list[str]) -> None:
    for key in found:
        counts.extra += 1
        if len(counts.problems) < 10_000:
            counts.problems.append(
                {"name": "", "key": key, "problem": "extra", "detail": "at the destination, not at the source"}
            )


# -- the command line's sequences ------------------------------------------------------------------------
def run_copy(
    pair: StorePair,
    ctx: RunContext,
    options: CopyOptions,
    *,
    verify: str | None = None,
    progress_stream: TextIO | None = None,
    show_progress: bool = True,
) -> RunRecord:
    """``hdh-migrate copy``: the whole listing as one shard; with verify, each object verified once copied."""
    options.validate()
    header = begin(pair, ctx, "copy", options=options)
    pair.check_access()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    inv = Inventory.take(pair.source.list(pair.src.prefix), ctx.inventory_path)
    dest_index = KeyIndex(o.name for o in pair.dest.list(pair.dst.prefix))
    shard = whole(inv, ctx.inventory_path)
    label = "dry run" if options.dry_run else "copy"
    progress = Progress(inv.objects, inv.bytes, label=label, stream=progress_stream or sys.stderr)
    checker = _Checker(pair, ctx, shard, verify, options.workers) if verify and not options.dry_run else None
    try:
        with progress if show_progress else contextlib.nullcontext():
            copied = copy_shard(
                pair,
                ctx,
                shard,
                options,
                objects=inv.rows(),
                dest_index=dest_index,
                progress=progress,
                on_done=checker.feed.put if checker else None,
            )
    except BaseException:
        if checker is not None:
            checker.abandon()  # the copy failed: its error is the news, not the verification's
        raise
    verified = checker.result() if checker is not None else None
    header = header.finish(inventory=inv.stats())
    return summarize(
        pair, ctx, [copied], [verified] if verified else [], header=header, depth=verify if checker else None
    )


class _Checker:
    """``copy --verify``: a thread verifying each object as soon as the copier is done with it (ObjectFeed)."""

    def __init__(self, pair: StorePair, ctx: RunContext, shard: Shard, depth: str, workers: int) -> None:
        self.feed = ObjectFeed()
        self._out: dict[str, Any] = {}

        def run() -> None:
            try:
                self._out["result"] = verify_shard(pair, ctx, shard, depth, workers=workers, objects=self.feed)
            except BaseException as exc:  # raised by the main thread after the copy
                self._out["error"] = exc
                self.feed.abandon()

        self._thread = threading.Thread(target=run, name="hdh-verify", daemon=True)
        self._thread.start()

    def abandon(self) -> None:
        self.feed.abandon()
        self._thread.join()

    def result(self) -> ShardVerify:
        self.feed.close()
        self._thread.join()
        if "error" in self._out:
            raise self._out["error"]
        return self._out["result"]


def run_verify(
    pair: StorePair,
    ctx: RunContext,
    *,
    depth: str = "full",
    workers: int = 8,
    extras: bool = True,
    progress_stream: TextIO | None = None,
    show_progress: bool = True,
) -> RunRecord:
    """``hdh-migrate verify``: the whole listing as one shard, read back from the destination."""
    header = begin(pair, ctx, "verify")
    pair.check_access()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    inv = Inventory.take(pair.source.list(pair.src.prefix), ctx.inventory_path)
    progress = Progress(inv.objects, inv.bytes, label=f"verify ({depth})", stream=progress_stream or sys.stderr)
    with progress if show_progress else contextlib.nullcontext():
        verified = verify_shard(
            pair, ctx, whole(inv, ctx.inventory_path), depth, workers=workers, objects=inv.rows(), progress=progress
        )
    header = header.finish(inventory=inv.stats())
    return summarize(pair, ctx, [], [verified], header=header, depth=depth, extras=extras)


# -- helpers --------------------------------------------------------------------------------------------
def _seconds(started: str) -> float:
    return round((datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds(), 3)


def _shard(d: dict[str, Any]) -> Shard:
    return Shard(int(d["index"]), str(d["path"]), int(d["objects"]), int(d["bytes"]))


def _without_lists(d: dict[str, Any]) -> dict[str, Any]:
    """Counts for an XCom: the lists of failures stay in the results file (a failed shard raises anyway)."""
    return {k: v for k, v in d.items() if not isinstance(v, list)}


def _counts(cls: type[Any], d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _sum(cls: type[Any], items: list[Any], **fixed: Any) -> Any:
    """Counts of several shards added up: numbers summed, lists of examples joined (capped)."""
    total = cls(**fixed)
    for item in items:
        for f in fields(cls):
            if f.name in fixed:
                continue
            mine, theirs = getattr(total, f.name), getattr(item, f.name)
            if isinstance(mine, list):
                mine.extend(theirs[: max(0, 10_000 - len(mine))])
            elif isinstance(mine, int | float) and not isinstance(mine, bool):
                setattr(total, f.name, mine + theirs)
    return total


__all__ = [
    "InventoryStep",
    "ShardCopy",
    "ShardVerify",
    "begin",
    "copy_into",
    "copy_shard",
    "extras_failure",
    "look_for_extras",
    "plan",
    "run_copy",
    "run_verify",
    "summarize",
    "take_inventory",
    "verify_into",
    "verify_shard",
    "whole",
]
