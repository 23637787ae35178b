"""Cutover and rollback: the moment a dataset switches from Azure to the sovereign store, and the proof.

The steps (the ``hdh_cutover`` DAG runs them as tasks, ``hdh-migrate cutover`` in one process):

1. **Freeze check**: list the source again and fingerprint it (``fingerprint.py``). If it differs from
   the fingerprint the last verification was taken on, run a delta sync (which copies and re-verifies),
   then list again: the switch only happens on a source state that was verified.
2. **Preflight**: every check must be present, passing and taken on the current source state: the latest
   verification, and -- when the dataset is tabular (``validation_required``, the default) -- the latest
   Great Expectations validation. Otherwise the cutover is refused with one human-readable reason per
   problem ("verification failed on run X ...", "validation missing ...", "source changed since
   verification on <date> ...").
3. **Switch**: one conditional transition to ``cut_over`` that also sets the catalog (authoritative
   ``s3``, since, run, routing document, report), and, before it commits, writes the routing document
   ``s3://BUCKET/_hdh/routing/<dataset>.json`` that consumers read. A refused transition publishes
   nothing; a failed write leaves the state unchanged.
4. **Report**: the signed audit report (``report.py``), uploaded under ``_hdh-audit/`` with Object Lock.

Rollback points the catalog and the routing document back at Azure, recorded in the history; nothing is
deleted on either side.

Whether validation is required is a per-dataset flag set when the dataset is registered (default True,
since HDH datasets are tables; a dataset of documents is registered with ``validation_required=False``,
and that choice is itself in the ledger). It is deliberately not inferred from the presence of a
validation check: a missing check must block, not silently relax the rule.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdh_migrate.audit.state import (
    ALLOWED,
    COPIED,
    COPYING,
    CUT_OVER,
    ROLLED_BACK,
    Check,
    DatasetStatus,
    StateStore,
    TransitionRefusedError,
)
from hdh_migrate.errors import PermanentError
from hdh_migrate.locations import Location, parse_location
from hdh_migrate.transfer.fingerprint import Fingerprint, fingerprint_count, fingerprint_inventory

if TYPE_CHECKING:  # types only: `hdh-migrate status` must not pay for importing both storage SDKs
    from hdh_migrate.stores.interface import ObjectInfo
    from hdh_migrate.stores.s3 import S3Store

log = logging.getLogger(__name__)

ROUTING_PREFIX = "_hdh/routing/"
AUDIT_PREFIX = "_hdh-audit/"
ROUTING_SCHEMA = "hdh-migrate/routing/v1"


class CutoverRefusedError(PermanentError):
    """A cutover was refused: ``reasons`` lists every check that is failed, stale or missing."""

    code = "cutover_refused"

    def __init__(self, dataset: str, reasons: list[str], *, report: str | None = None) -> None:
        lines = "\n".join(f"  - {r}" for r in reasons)
        super().__init__(
            f"cutover of {dataset!r} refused:\n{lines}",
            hint="fix each reason (docs/AUDIT.md, section 5, says what each check means), then "
            "trigger the cutover again; nothing was switched",
        )
        self.dataset = dataset
        self.reasons = reasons
        self.report = report


def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- recording what the migration DAG / CLI did (called by the tasks that own those steps) ---------------
def record_migration_started(
    state: StateStore,
    dataset: str,
    source_url: str,
    dest_url: str,
    *,
    actor: str,
    run_id: str,
    validation_required: bool | None = None,
) -> DatasetStatus:
    """Register the dataset if new and mark it ``copying`` (refused while it is cut over)."""
    state.ensure_dataset(
        dataset, source_url, dest_url, actor=actor, run_id=run_id, validation_required=validation_required
    )
    state.transition(dataset, COPYING, actor=actor, run_id=run_id, evidence={"reason": "migration run"})
    return state.get(dataset)


def record_migration_finished(
    state: StateStore, dataset: str, summary: dict[str, Any], *, actor: str, run_id: str
) -> Check | None:
    """From a migration's ``summary.json`` (Airflow ``summary()`` or ``jobs.run_verify``): copied ->
    verification check (fingerprint of the inventory verified) -> run record -> base for delta syncs.

    A dry run records nothing but the run. Returns the verification check recorded, if any.
    """
    inv = summary.get("inventory") or {}
    inv_path = inv.get("inventory") or inv.get("path")
    ok = bool(summary.get("ok"))
    check = None
    if not summary.get("dry_run") and inv_path:
        fp = fingerprint_inventory(inv_path)
        current = state.get(dataset).state
        if current == COPYING:
            state.transition(
                dataset,
                COPIED,
                actor=actor,
                run_id=run_id,
                evidence={
                    "copied": summary.get("copied"),
                    "skipped": summary.get("skipped"),
                    "copy_results": summary.get("copy_results", []),
                },
            )
        verify_results = summary.get("verify_results") or (
            [summary["results"]["path"]] if summary.get("command") == "verify" else []
        )
        counts = summary.get("counts") or {}
        extras = summary.get("extra_objects", counts.get("extra", 0)) or 0
        details = {
            "incremental": False,
            "depth": summary.get("verify_depth") or summary.get("depth"),
            "objects_verified": summary.get("verified", counts.get("checked")),
            "matched": summary.get("verified", counts.get("matched")),
            "extras": extras,
            "extra_examples": summary.get("extra_examples", [])[:20],
            "inventory": inv_path,
            "inventory_sha256": inv.get("sha256"),
            "objects": inv.get("objects"),
            "bytes": inv.get("bytes"),
            "evidence": verify_results,
            "copy_results": summary.get("copy_results", []),
            "work_dir": summary.get("work_dir"),
            "source": summary.get("source"),
            "destination": summary.get("destination"),
        }
        if not ok:
            problems = [
                f"{p.get('key') or p.get('name')}: {p.get('problem')} ({p.get('detail')})"
                for p in (counts.get("problems") or [])[:3]
            ]
            if extras:
                details["reason"] = (
                    f"{extras} object(s) at the destination have no source (e.g. "
                    + ", ".join((summary.get("extra_examples") or [])[:3])
                    + ")"
                )
            elif problems:
                n = sum(int(counts.get(k) or 0) for k in ("missing", "differs", "errors"))
                details["reason"] = f"{n} object(s) missing or different at the destination: " + "; ".join(problems)
            else:
                details["reason"] = (
                    f"{details['matched']} of {inv.get('objects')} objects verified as matching the source"
                )
            details["problems"] = problems
        check = state.record_check(
            dataset, "verify", run_id=run_id, ok=ok, source_fingerprint=fp, details=details, actor=actor
        )
        state.set_inventory(
            dataset, path=inv_path, sha256=inv.get("sha256") or "", fingerprint=fp, run_id=run_id, actor=actor
        )
    started = _parse_time(summary.get("started"))
    state.record_run(
        dataset,
        run_id,
        "migrate",
        actor=actor,
        ok=ok,
        started=started,
        summary={
            k: summary.get(k)
            for k in (
                "copied",
                "copied_bytes",
                "skipped",
                "retried",
                "verified",
                "extra_objects",
                "dry_run",
                "work_dir",
                "source",
                "destination",
                "provider",
                "encryption",
                "params",
                "tool",
                "counts",
            )
        },
    )
    return check


def record_validation(
    state: StateStore,
    dataset: str,
    results: list[dict[str, Any]],
    *,
    actor: str,
    run_id: str,
    source_fingerprint: str | None = None,
) -> Check:
    """Record Great Expectations results (one dict per table, from ``validate.validate_table``).

    The fingerprint defaults to the dataset's current source fingerprint (the inventory the run listed):
    validation reads the source as it is, so it vouches for that state.
    """
    fp = source_fingerprint or state.get(dataset).source_fingerprint
    if not fp:
        raise PermanentError(
            f"no source inventory is recorded for {dataset!r}: cannot tie the validation to a source state",
            hint="record the migration run (its inventory) first",
        )
    ok = bool(results) and all(bool(r.get("success")) for r in results)
    failed = [r.get("table") for r in results if not r.get("success")]
    details: dict[str, Any] = {"tables": [r.get("table") for r in results], "failed_tables": failed, "results": results}
    if not results:
        details["reason"] = "no table was validated"
    elif failed:
        details["reason"] = f"tables {', '.join(map(str, failed))} failed"
    return state.record_check(
        dataset, "validate", run_id=run_id, ok=ok, source_fingerprint=fp, details=details, actor=actor
    )


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- freeze check -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FreezeCheck:
    """The source listed again, compared with the state the last verification was taken on."""

    fingerprint: str
    objects: int
    bytes: int
    inventory: str | None
    verified_fingerprint: str | None
    verified_run_id: str | None
    verified_at: str | None

    @property
    def changed(self) -> bool:
        return self.fingerprint != self.verified_fingerprint

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed}


def freeze_check(
    state: StateStore, dataset: str, source: Any, src: Location, *, inventory_path: str | Path | None = None
) -> FreezeCheck:
    """List the source (into ``inventory_path`` when given) and compare with the last verification."""
    fp = Fingerprint()
    total = [0]

    def tee() -> Any:
        for info in source.list(src.prefix):
            fp.add_info(info)
            total[0] += info.size
            yield info

    if inventory_path is not None:
        from hdh_migrate.transfer.manifest import write_inventory

        write_inventory(tee(), inventory_path)
    else:
        for _ in tee():
            pass
    last = state.latest_check(dataset, "verify")
    return FreezeCheck(
        fp.value,
        fp.count,
        total[0],
        str(inventory_path) if inventory_path else None,
        last.source_fingerprint if last else None,
        last.run_id if last else None,
        last.at.isoformat() if last else None,
    )


def fingerprint_objects(objects: list[ObjectInfo]) -> str:
    fp = Fingerprint()
    for o in objects:
        fp.add_info(o)
    return fp.value


# -- preflight ------------------------------------------------------------------------------------------
@dataclass
class Preflight:
    dataset: str
    fingerprint: str
    reasons: list[str] = field(default_factory=list)
    verify: Check | None = None
    validate: Check | None = None
    validation_required: bool = True

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "fingerprint": self.fingerprint,
            "reasons": self.reasons,
            "validation_required": self.validation_required,
            "verify": self.verify.to_dict() if self.verify else None,
            "validate": self.validate.to_dict() if self.validate else None,
        }


def _check_reason(check: Check | None, kind: str, fingerprint: str, hint_missing: str) -> str | None:
    label = {"verify": "verification", "validate": "validation"}[kind]
    if check is None:
        return f"{label} missing: no {label} has been recorded for this dataset ({hint_missing})"
    if not check.ok:
        why = check.details.get("reason") or "see the check's details"
        return f"{label} failed on run {check.run_id} ({_when(check.at)}): {why}"
    if check.source_fingerprint != fingerprint:
        then, now_ = fingerprint_count(check.source_fingerprint), fingerprint_count(fingerprint)
        counts = f" ({then} objects then, {now_} now)" if then is not None and now_ is not None else ""
        fix = (
            "run hdh_delta_sync (or let hdh_cutover sync) to copy and verify the changes"
            if kind == "verify"
            else "run the Great Expectations validation again on the current source"
        )
        return (
            f"{label} is stale: the source changed since the {label} on {_when(check.at)} (run "
            f"{check.run_id}){counts}; {fix}"
        )
    return None


def preflight(state: StateStore, dataset: str, current_fingerprint: str) -> Preflight:
    """Every reason the dataset cannot be cut over now (empty: it can)."""
    ds = state.get(dataset)
    pf = Preflight(dataset, current_fingerprint, validation_required=ds.validation_required)
    if ds.state == CUT_OVER:
        since = _when(ds.authoritative_since) if ds.authoritative_since else "an unknown date"
        pf.reasons.append(f"already cut over on {since} (run {ds.authoritative_run_id})")
    elif ds.state not in ALLOWED[CUT_OVER]:
        pf.reasons.append(
            f"the dataset is {ds.state!r}: cutover needs it verified"
            + (" and validated" if ds.validation_required else "")
            + " (a copy may be running, or failed before verification)"
        )
    pf.verify = state.latest_check(dataset, "verify")
    r = _check_reason(pf.verify, "verify", current_fingerprint, "run hdh_migrate_dataset, which verifies")
    if r:
        pf.reasons.append(r)
    pf.validate = state.latest_check(dataset, "validate")
    if ds.validation_required:
        r = _check_reason(
            pf.validate, "validate", current_fingerprint, "run the Great Expectations validation of its tables"
        )
        if r:
            pf.reasons.append(r)
    return pf


# -- routing documents ----------------------------------------------------------------------------------
def routing_key(dataset: str) -> str:
    return f"{ROUTING_PREFIX}{dataset}.json"


def _sse_headers(dest: S3Store) -> dict[str, str]:
    """Store-side encryption for hdh-migrate's own documents; never SSE-C, so consumers and auditors can
    read them without the customer key."""
    s = dest.settings
    if s.sse == "aws:kms":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": s.kms_key_id or ""}
    if s.sse == "AES256":
        return {"ServerSideEncryption": "AES256"}
    return {}


def put_document(
    dest: S3Store, key: str, body: bytes, *, content_type: str, lock: dict[str, Any] | None = None
) -> dict[str, Any]:
    """PUT one small document with Content-MD5 (and Object Lock retention when ``lock`` is given)."""
    extra: dict[str, Any] = {}
    if lock:
        extra = {"ObjectLockMode": lock["mode"], "ObjectLockRetainUntilDate": lock["retain_until_dt"]}
    with dest._errors("write", key):
        r = dest.client.put_object(
            Bucket=dest.container,
            Key=key,
            Body=body,
            ContentType=content_type,
            ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
            **extra,
            **_sse_headers(dest),
        )
    return {
        "key": key,
        "url": f"s3://{dest.container}/{key}",
        "version_id": r.get("VersionId"),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


def routing_document(
    ds: DatasetStatus, *, authoritative: str, since: datetime, run_id: str, actor: str, report: str | None
) -> dict[str, Any]:
    return {
        "schema": ROUTING_SCHEMA,
        "dataset": ds.name,
        "authoritative": authoritative,
        "locations": {"azure": ds.source_url, "s3": ds.dest_url},
        "url": ds.dest_url if authoritative == "s3" else ds.source_url,
        "since": since.isoformat(timespec="seconds"),
        "run_id": run_id,
        "actor": actor,
        "report": report,
    }


def read_routing(dest: S3Store, dataset: str) -> dict[str, Any] | None:
    """What a consumer does: read the dataset's routing document (None if it was never cut over)."""
    key = routing_key(dataset)
    if dest.head(key) is None:
        return None
    with dest._errors("read", key):
        body = dest.client.get_object(Bucket=dest.container, Key=key)["Body"].read()
    return json.loads(body)


# -- switch and rollback --------------------------------------------------------------------------------
def audit_prefix(dataset: str, at: datetime) -> str:
    return f"{AUDIT_PREFIX}{dataset}/{at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}/"


def switch(
    state: StateStore, dataset: str, dest: S3Store, *, actor: str, run_id: str, pf: Preflight, report_url: str | None
) -> dict[str, Any]:
    """The cutover itself: conditional transition + catalog + routing document, atomically."""
    if not pf.ok:
        raise CutoverRefusedError(dataset, pf.reasons)
    ds = state.get(dataset)
    at = datetime.now(UTC)
    doc = routing_document(ds, authoritative="s3", since=at, run_id=run_id, actor=actor, report=report_url)
    key = routing_key(dataset)
    routing_url = f"s3://{dest.container}/{key}"
    written: dict[str, Any] = {}

    def publish() -> None:
        written.update(put_document(dest, key, json.dumps(doc, indent=2).encode(), content_type="application/json"))

    evidence = {
        "source_fingerprint": pf.fingerprint,
        "verify_check": pf.verify.id if pf.verify else None,
        "verify_run_id": pf.verify.run_id if pf.verify else None,
        "validate_check": pf.validate.id if pf.validate else None,
        "validate_run_id": pf.validate.run_id if pf.validate else None,
        "validation_required": pf.validation_required,
        "routing": routing_url,
        "report": report_url,
    }
    t = state.transition(
        dataset,
        CUT_OVER,
        actor=actor,
        run_id=run_id,
        evidence=evidence,
        before_commit=publish,
        catalog={
            "authoritative": "s3",
            "authoritative_since": at,
            "authoritative_run_id": run_id,
            "routing_url": routing_url,
            "report_url": report_url,
        },
    )
    log.info("%s cut over to %s by %s (run %s); routing document %s", dataset, ds.dest_url, actor, run_id, routing_url)
    return {
        "dataset": dataset,
        "authoritative": "s3",
        "url": ds.dest_url,
        "since": at.isoformat(),
        "routing": routing_url,
        "routing_version": written.get("version_id"),
        "transition_id": t.id,
        "ledger_seq": t.ledger_seq,
        "report": report_url,
    }


def rollback(
    state: StateStore, dataset: str, dest: S3Store, *, actor: str, run_id: str, reason: str = ""
) -> dict[str, Any]:
    """Point the catalog and the routing document back at Azure; delete nothing."""
    ds = state.get(dataset)
    at = datetime.now(UTC)
    doc = routing_document(ds, authoritative="azure", since=at, run_id=run_id, actor=actor, report=ds.report_url)
    doc["rolled_back_from"] = {
        "since": ds.authoritative_since.isoformat() if ds.authoritative_since else None,
        "run_id": ds.authoritative_run_id,
    }
    key = routing_key(dataset)

    def publish() -> None:
        put_document(dest, key, json.dumps(doc, indent=2).encode(), content_type="application/json")

    t = state.transition(
        dataset,
        ROLLED_BACK,
        actor=actor,
        run_id=run_id,
        before_commit=publish,
        evidence={
            "reason": reason or "(none given)",
            "previous_cutover_run": ds.authoritative_run_id,
            "deleted": "nothing (both copies kept)",
        },
        catalog={"authoritative": "azure", "authoritative_since": at, "authoritative_run_id": run_id},
    )
    state.record_run(
        dataset,
        run_id,
        "rollback",
        actor=actor,
        ok=True,
        started=at,
        summary={"reason": reason, "routing": f"s3://{dest.container}/{key}"},
    )
    return {
        "dataset": dataset,
        "authoritative": "azure",
        "url": ds.source_url,
        "since": at.isoformat(),
        "routing": f"s3://{dest.container}/{key}",
        "transition_id": t.id,
        "ledger_seq": t.ledger_seq,
    }


# -- the whole cutover, in one process (the CLI; the DAG runs the same functions as tasks) --------------
@dataclass
class CutoverResult:
    dataset: str
    ok: bool
    reasons: list[str]
    freeze: list[dict[str, Any]]
    synced: list[dict[str, Any]]
    switch: dict[str, Any] | None
    report: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_cutover(
    state: StateStore,
    dataset: str,
    source: Any,
    dest: S3Store,
    *,
    actor: str,
    run_id: str,
    work_dir: str | Path,
    report_key: bytes | None,
    sync: bool = True,
    deletions: str = "report",
    depth: str = "full",
    options: Any = None,
    validations: list[dict[str, Any]] | None = None,
    retention: Any = None,
    delta: Callable[..., dict[str, Any]] | None = None,
) -> CutoverResult:
    """Freeze check (sync and re-verify if the source changed), preflight, switch, signed report.

    Refusal raises ``CutoverRefusedError`` after recording it in the ledger and writing a signed refusal
    report, so "why was this not cut over?" has the same evidence as a cutover.
    """
    from hdh_migrate.audit import report as report_mod
    from hdh_migrate.runs.delta_sync import run_delta_sync

    ds = state.get(dataset)
    src = parse_location(ds.source_url, expect="azure")
    dst = parse_location(ds.dest_url, expect="s3")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    if report_key is None:
        raise CutoverRefusedError(
            dataset,
            [
                "no report signing key: set HDH_MIGRATE_REPORT_KEY (CLI) or the "
                "report key Connection (Airflow); a cutover without its signed report "
                "is not allowed"
            ],
        )
    freezes: list[dict[str, Any]] = []
    synced: list[dict[str, Any]] = []
    fz = freeze_check(state, dataset, source, src, inventory_path=work / "freeze-inventory.parquet")
    freezes.append(fz.to_dict())
    if fz.changed and sync and ds.state != CUT_OVER:
        try:
            synced.append(
                (delta or run_delta_sync)(
                    state,
                    dataset,
                    source,
                    dest,
                    src,
                    dst,
                    options=options,
                    deletions=deletions,
                    depth=depth,
                    actor=actor,
                    run_id=run_id,
                    work_dir=work / "delta-sync",
                )
            )
        except TransitionRefusedError:
            raise
        fz = freeze_check(state, dataset, source, src, inventory_path=work / "freeze-inventory-2.parquet")
        freezes.append(fz.to_dict())
    pf = preflight(state, dataset, fz.fingerprint)
    if fz.changed and sync and len(freezes) > 1 and pf.verify and pf.verify.ok:
        pf.reasons.append(
            "the source kept changing during the cutover (it changed again after the delta sync): "
            "freeze writes at the source, then trigger the cutover again"
        )
    at = datetime.now(UTC)
    prefix = audit_prefix(dataset, at)
    report_url = f"s3://{dest.container}/{prefix}report.json"
    if not pf.ok:
        state.append_ledger(
            kind="cutover_refused",
            dataset=dataset,
            actor=actor,
            run_id=run_id,
            payload={"reasons": pf.reasons, "fingerprint": fz.fingerprint},
        )
        rep = report_mod.produce(
            state,
            dataset,
            dest,
            decision={"outcome": "refused", "reasons": pf.reasons},
            actor=actor,
            run_id=run_id,
            started=started,
            work_dir=work,
            key=report_key,
            prefix=prefix,
            freeze=freezes,
            preflight=pf,
            validations=validations,
            retention=retention,
        )
        state.record_run(
            dataset,
            run_id,
            "cutover",
            actor=actor,
            ok=False,
            started=started,
            summary={"outcome": "refused", "reasons": pf.reasons, "report": rep["url"]},
        )
        raise CutoverRefusedError(dataset, pf.reasons, report=rep["url"])
    sw = switch(state, dataset, dest, actor=actor, run_id=run_id, pf=pf, report_url=report_url)
    rep = report_mod.produce(
        state,
        dataset,
        dest,
        decision={"outcome": "cut_over", "reasons": [], "switch": sw},
        actor=actor,
        run_id=run_id,
        started=started,
        work_dir=work,
        key=report_key,
        prefix=prefix,
        freeze=freezes,
        preflight=pf,
        validations=validations,
        retention=retention,
    )
    state.record_run(
        dataset,
        run_id,
        "cutover",
        actor=actor,
        ok=True,
        started=started,
        summary={"outcome": "cut_over", "routing": sw["routing"], "report": rep["url"]},
    )
    return CutoverResult(dataset, True, [], freezes, [_brief_sync(s) for s in synced], sw, rep)


def _brief_sync(s: dict[str, Any]) -> dict[str, Any]:
    d = s.get("delta", {})
    return {
        "new": d.get("new"),
        "changed": d.get("changed"),
        "deleted": s.get("deleted", {}).get("count"),
        "ok": s.get("ok"),
        "work_dir": s.get("work_dir"),
    }


__all__ = [
    "AUDIT_PREFIX",
    "ROUTING_PREFIX",
    "CutoverRefusedError",
    "CutoverResult",
    "FreezeCheck",
    "Preflight",
    "freeze_check",
    "preflight",
    "read_routing",
    "record_migration_finished",
    "record_migration_started",
    "record_validation",
    "rollback",
    "run_cutover",
    "switch",
]
