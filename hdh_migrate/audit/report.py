"""The cutover report for auditors: JSON (signed) + HTML (for people) + per-object integrity evidence.

One report per cutover decision (cut over, or refused), built from the state database (dataset, checks,
runs, history, ledger head) and the runs' own evidence files (inventory, copy and verify results):

- ``report.json``: the facts, canonical and signed with Ed25519 (``audit/signing.py``). It embeds the
  SHA-256 of the HTML and the evidence files, and the ledger head (seq, hash) at signing time, an anchor
  that detects records later removed from the end of the ledger.
- ``report.html``: the same facts for a non-engineer, with a glossary (Jinja2, no script, no external
  resource; opens offline in any browser).
- ``evidence.parquet`` and ``evidence.csv``: one row per object (``audit/evidence.py``).
- the rest of the bundle (``audit/bundle.py``): the Data Docs of both sides, the public key, VERIFY.txt and
  the signed SHA256SUMS over every file.

Nothing in it is data: counts, bytes, object keys (file paths), hashes, expectation names and metric
names. Great Expectations results are reduced to pass/fail, counts and fingerprints; metric values that
could be a row value (min, max, sums of a column) are withheld, only the fact that they differ is kept.

The bundle is kept locally under the run's work dir and uploaded to ``s3://BUCKET/_hdh-audit/<dataset>/
<UTC stamp>/``, with S3 Object Lock retention when the provider supports it and the bucket has Object
Lock enabled (default COMPLIANCE for 10 years; ``HDH_MIGRATE_AUDIT_LOCK_MODE``,
``HDH_MIGRATE_AUDIT_RETENTION_DAYS``). ``hdh-migrate report verify REPORT.json --public-key KEY.pem``
checks both signatures and every file's hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from hdh_migrate import __version__
from hdh_migrate.audit import bundle
from hdh_migrate.audit.documents import document_url, put_document
from hdh_migrate.audit.evidence import build_evidence
from hdh_migrate.audit.ledger import canonical
from hdh_migrate.audit.signing import ALGORITHM, PUBLIC_KEY_FILE, SUMS, SUMS_SIG, SigningKey, sign
from hdh_migrate.audit.state import Check, DatasetStatus, StateStore
from hdh_migrate.errors import ConfigError
from hdh_migrate.sizes import human_bytes
from hdh_migrate.stores.interface import DocumentWriter, Store, capability
from hdh_migrate.transfer.checksums import file_sha256

REPORT_SCHEMA = "hdh-migrate/cutover-report/v1"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: comparison metrics that are counts (safe to show); anything else (min, max, sum...) may be a data value
COUNT_METRICS = {
    "row_count",
    "file_count",
    "null_count",
    "missing_rows",
    "distinct_count",
    "column",
    "column_order",
    "fingerprint",
    "type",
}
_SECRET_WORDS = ("key", "password", "secret", "token", "sas", "connection_string")


# -- validations (made safe for the report) ---------------------------------------------------------------
def safe_validation(v: dict[str, Any]) -> dict[str, Any]:
    """Counts, pass/fail, expectation names and fingerprints; no value that could come from a row."""
    sides: dict[str, Any] = {}
    for side in ("source", "destination"):
        s = v.get(side) or {}
        m = s.get("metrics") or {}
        exp = s.get("expectations") or {}
        sides[side] = {
            "url": s.get("url"),
            "success": s.get("success"),
            "files": s.get("files"),
            "rows": m.get("row_count"),
            "expectations_evaluated": exp.get("evaluated"),
            "expectations_failed": exp.get("failed"),
            "failed_expectations": [
                {
                    "expectation": f.get("expectation"),
                    "target": f.get("column") or "+".join(f.get("columns") or []) or "table",
                    "unexpected_count": f.get("unexpected_count"),
                }
                for f in (s.get("failed_expectations") or [])
            ],
            "fingerprint": m.get("fingerprint"),
        }
    comp = v.get("comparison") or {}
    diffs = []
    for d in comp.get("differences") or []:
        item = {"metric": d.get("metric"), "column": d.get("column")}
        if d.get("metric") in COUNT_METRICS and not isinstance(d.get("source"), dict | list):
            item |= {"source": d.get("source"), "destination": d.get("destination")}
        else:
            item |= {"source": "(withheld: may be a data value)", "destination": "(withheld: may be a data value)"}
        diffs.append(item)
    return {
        "table": v.get("table"),
        "suite": v.get("suite"),
        "success": bool(v.get("success")),
        "validated_at": v.get("validated_at"),
        "source": sides["source"],
        "destination": sides["destination"],
        "comparison": {"equal": comp.get("equal"), "differences": diffs},
        "data_docs": v.get("data_docs"),
        "data_docs_pages": v.get("data_docs_pages") or {},
    }


# -- retention ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionPolicy:
    mode: str = "COMPLIANCE"
    days: int = 3650

    @classmethod
    def from_env(cls) -> RetentionPolicy:
        mode = os.environ.get("HDH_MIGRATE_AUDIT_LOCK_MODE", "COMPLIANCE").upper()
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ConfigError(f"HDH_MIGRATE_AUDIT_LOCK_MODE={mode!r} is not COMPLIANCE or GOVERNANCE")
        return cls(mode, int(os.environ.get("HDH_MIGRATE_AUDIT_RETENTION_DAYS", "3650")))


def audit_retention(dest: Store, policy: RetentionPolicy | None = None) -> dict[str, Any]:
    """Whether the audit files can be locked here, and until when (decided before signing: it is in the report)."""
    policy = policy or RetentionPolicy.from_env()
    writer: DocumentWriter = capability(dest, "documents", DocumentWriter)
    enabled, reason = writer.object_lock()
    if not enabled:
        return {"object_lock": False, "reason": reason}
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=policy.days)
    return {"object_lock": True, "mode": policy.mode, "days": policy.days, "retain_until": until.isoformat()}


# -- collecting ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """What the report is about: the outcome, its reasons, the source state and the checks it rested on."""

    outcome: str  # cut_over | refused
    reasons: list[str]
    fingerprint: str | None
    verify: Check | None
    validate: Check | None
    freeze: list[dict[str, Any]]
    switch: dict[str, Any] | None = None


def code_version() -> str:
    """The package version and, when run from a git checkout, the commit (with +dirty if modified)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        return f"hdh-migrate/{__version__} (git {sha[:12]}{'+dirty' if dirty else ''})"
    except (OSError, subprocess.SubprocessError):
        return f"hdh-migrate/{__version__}"


def _scrub(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (
                "(withheld)"
                if any(w in k.lower() for w in _SECRET_WORDS)
                and not k.endswith("conn_id")
                and k not in ("kms_key_id", "sse_c_key_fingerprint")
                else _scrub(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def collect(
    state: StateStore,
    dataset: str,
    dest: Store,
    decision: Decision,
    *,
    actor: str,
    run_id: str,
    started: datetime,
    out_dir: Path,
    retention: dict[str, Any],
) -> dict[str, Any]:
    """Everything the report says, as one JSON-able dict (before files and signature)."""
    ds = state.get(dataset)
    evidence = build_evidence(decision.verify, out_dir)
    config = _config(state, ds, dest, decision.verify)
    vd = decision.verify.details if decision.verify else {}
    finished = datetime.now(UTC)
    head = state.ledger_head()
    facts = capability(dest, "documents", DocumentWriter).report_facts()
    return {
        "schema": REPORT_SCHEMA,
        "dataset": dataset,
        "generated_at": finished.isoformat(timespec="seconds"),
        "decision": _decision(decision, actor, run_id, finished),
        "source": {"url": ds.source_url, "store": "Azure Blob Storage"},
        "destination": {
            "url": ds.dest_url,
            "store": "S3-compatible",
            "provider": facts["provider"],
            "endpoint": facts["endpoint"],
        },
        "catalog": _catalog(ds),
        "runs": [*_runs(state, dataset), _this_run(run_id, actor, started, finished, decision)],
        "history": _history(state, dataset),
        "code_version": code_version(),
        "config_hash": "sha256:" + hashlib.sha256(canonical(config).encode()).hexdigest(),
        "config": config,
        "counts": _counts(vd, evidence),
        "checks": _checks(decision, ds.validation_required),
        "integrity": _integrity(vd, evidence),
        "validation": [safe_validation(v) for v in _validations(decision.validate)],
        "encryption": facts["encryption"],
        "exceptions": {
            "retries": evidence["retries"],
            "errors_by_code": evidence["errors"],
            "examples": evidence["error_examples"],
            "verification_problems": vd.get("problems", []),
        },
        "retention": retention,
        "ledger": {"head_seq": head[0] if head else None, "head_hash": head[1] if head else None},
        "_evidence_files": {"evidence_parquet": evidence["parquet"], "evidence_csv": evidence["csv"]},
    }


def _decision(decision: Decision, actor: str, run_id: str, at: datetime) -> dict[str, Any]:
    return {
        "outcome": decision.outcome,
        "reasons": decision.reasons,
        "by": actor,
        "run_id": run_id,
        "at": at.isoformat(timespec="seconds"),
        "switch": decision.switch,
    }


def _catalog(ds: DatasetStatus) -> dict[str, Any]:
    return {
        "authoritative": ds.authoritative,
        "since": ds.authoritative_since.isoformat() if ds.authoritative_since else None,
        "routing": ds.routing_url,
        "state": ds.state,
    }


def _checks(decision: Decision, validation_required: bool) -> dict[str, Any]:
    return {
        "freeze": decision.freeze,
        "source_fingerprint": decision.fingerprint,
        "verify": _check_summary(decision.verify),
        "validate": _check_summary(decision.validate, drop=("results",)),
        "validation_required": validation_required,
    }


def _validations(check: Check | None) -> list[dict[str, Any]]:
    """The tables' results the validation check recorded (made safe for the report by safe_validation)."""
    return list(check.details.get("results") or []) if check else []


def _config(state: StateStore, ds: DatasetStatus, dest: Store, verify: Check | None) -> dict[str, Any]:
    """The configuration the decision rests on (its hash is in the report): locations, store, the Params of
    the latest migration run (secrets withheld), the verification depth."""
    migrate_runs = [r for r in state.runs(ds.name) if r.kind == "migrate"]
    facts = capability(dest, "documents", DocumentWriter).report_facts()
    return {
        "source": ds.source_url,
        "destination": ds.dest_url,
        "provider": facts["provider"],
        "destination_endpoint": facts["endpoint"],
        "encryption": facts["encryption"],
        "validation_required": ds.validation_required,
        "params": _scrub((migrate_runs[-1].summary.get("params") if migrate_runs else None) or {}),
        "verify_depth": verify.details.get("depth") if verify else None,
    }


def _runs(state: StateStore, dataset: str) -> list[dict[str, Any]]:
    return [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "actor": r.actor,
            "started": r.started.isoformat(timespec="seconds") if r.started else None,
            "finished": r.finished.isoformat(timespec="seconds"),
            "ok": r.ok,
        }
        for r in state.runs(dataset)
    ]


def _this_run(run_id: str, actor: str, started: datetime, finished: datetime, decision: Decision) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "kind": "cutover",
        "actor": actor,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "ok": decision.outcome == "cut_over",
    }


def _history(state: StateStore, dataset: str) -> list[dict[str, Any]]:
    return [
        {
            "from": t.from_state,
            "to": t.to_state,
            "at": t.at.isoformat(timespec="seconds"),
            "actor": t.actor,
            "run_id": t.run_id,
        }
        for t in state.history(dataset)
    ]


def _counts(vd: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
    return {
        "listed": vd.get("objects"),
        "listed_bytes": vd.get("bytes"),
        "copied": evidence["copied"],
        "copied_bytes": evidence["copied_bytes"],
        "skipped": evidence["skipped"],
        "failed": evidence["failed"],
        "extra": vd.get("extras"),
        "verified_matching": evidence["matched"],
        "mismatched": evidence["mismatched"],
        "not_verified": evidence["not_verified"],
    }


def _integrity(vd: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
    return {
        "algorithm": "sha256",
        "source_hash_how": "computed by the copier from the source bytes while copying (every byte read is "
        "hashed), recorded on the destination object",
        "destination_hash_how": f"re-read from the destination by an independent verification "
        f"(depth {vd.get('depth')})",
        "inventory_sha256": vd.get("inventory_sha256"),
        "evidence_sha256": evidence["parquet"]["sha256"],
        "evidence_csv_sha256": evidence["csv"]["sha256"],
        "objects": evidence["objects"],
        "matched": evidence["matched"],
        "mismatched": evidence["mismatched"],
    }


def _check_summary(c: Check | None, drop: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if c is None:
        return None
    keep = {k: v for k, v in c.details.items() if k not in drop and k not in ("evidence", "copy_results")}
    return {
        "id": c.id,
        "run_id": c.run_id,
        "at": c.at.isoformat(timespec="seconds"),
        "ok": c.ok,
        "actor": c.actor,
        "source_fingerprint": c.source_fingerprint,
        "details": keep,
    }


def render_html(data: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = lambda n: human_bytes(n) if isinstance(n, int | float) else "-"
    env.filters["utc"] = _utc_text
    env.filters["num"] = lambda n: f"{n:,}".replace(",", " ") if isinstance(n, int) else ("-" if n is None else n)
    return env.get_template("report.html.j2").render(r=data)


def _utc_text(value: Any) -> str:
    """ISO timestamps as people read them: 2026-11-24 05:42:45 UTC."""
    if not value:
        return "-"
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return (dt.astimezone(UTC) if dt.tzinfo else dt).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    json: Path
    html: Path
    evidence_parquet: Path
    sha256: str  # of report.json
    all: list[Path]  # every file of the bundle, SHA256SUMS and its signature last

    def paths(self) -> list[Path]:
        return self.all


def write_report(data: dict[str, Any], out_dir: Path, key: SigningKey) -> ReportFiles:
    """The bundle (``audit/bundle.py``): Data Docs copied in, the HTML rendered, report.json signed, then the
    public key, VERIFY.txt and the signed SHA256SUMS over all of it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    ev = data.pop("_evidence_files")
    data["validation"] = bundle.include_data_docs(data.get("validation") or [], out_dir)
    data["signing"] = {
        "algorithm": ALGORITHM,
        "key_id": key.key_id,
        "public_key": PUBLIC_KEY_FILE,
        "bundle": {"sums": SUMS, "signature": SUMS_SIG, "instructions": bundle.VERIFY_FILE},
    }
    html = render_html(data)
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    data["files"] = {
        "html": {"name": "report.html", "sha256": file_sha256(str(out_dir / "report.html"))},
        "evidence_parquet": ev["evidence_parquet"],
        "evidence_csv": ev["evidence_csv"],
    }
    signed = sign(data, key)
    body = json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    (out_dir / "report.json").write_bytes(body)
    decision = data["decision"]
    facts = {
        "dataset": data["dataset"],
        "outcome": decision["outcome"],
        "run_id": decision["run_id"],
        "actor": decision["by"],
        "generated_at": data["generated_at"],
    }
    every = bundle.finish(out_dir, key, facts)
    return ReportFiles(
        out_dir,
        out_dir / "report.json",
        out_dir / "report.html",
        out_dir / "evidence.parquet",
        hashlib.sha256(body).hexdigest(),
        every,
    )


def upload_report(dest: Store, prefix: str, files: ReportFiles, retention: dict[str, Any]) -> dict[str, Any]:
    """Every file of the bundle under the audit prefix (paths kept), locked until the retention date where
    Object Lock is on. Keyed by the path in the bundle."""
    until = datetime.fromisoformat(retention["retain_until"]) if retention.get("object_lock") else None
    mode = retention.get("mode", "") if until else ""
    out = {}
    for p in files.paths():
        name = p.relative_to(files.folder).as_posix()
        out[name] = put_document(
            dest,
            prefix + name,
            p.read_bytes(),
            content_type=bundle.content_type(p),
            retain_until=until,
            lock_mode=mode,
        )
    return out


def produce(
    state: StateStore,
    dataset: str,
    dest: Store,
    decision: Decision,
    *,
    actor: str,
    run_id: str,
    started: datetime,
    work_dir: Path,
    key: SigningKey,
    prefix: str,
) -> dict[str, Any]:
    """Collect, write, sign, upload (with retention), and record the report in the ledger."""
    out = Path(work_dir) / "report"
    bundle.start(out)
    retention = audit_retention(dest)
    data = collect(
        state, dataset, dest, decision, actor=actor, run_id=run_id, started=started, out_dir=out, retention=retention
    )
    files = write_report(data, out, key)
    uploaded = upload_report(dest, prefix, files, retention)
    url = document_url(dest, prefix + "report.json")
    state.record_report(
        dataset=dataset,
        actor=actor,
        run_id=run_id,
        payload={
            "url": url,
            "local": str(files.json),
            "sha256": files.sha256,
            "sums_sha256": file_sha256(str(out / SUMS)),
            "key_id": key.key_id,
            "outcome": decision.outcome,
            "object_lock": retention.get("object_lock"),
            "versions": {k: v.get("version_id") for k, v in uploaded.items() if "/" not in k},
        },
    )
    return {
        "url": url,
        "local": str(files.json),
        "html": str(files.html),
        "evidence": str(files.evidence_parquet),
        "sha256": files.sha256,
        "key_id": key.key_id,
        "bundle": str(out),
        "retention": retention,
        "uploaded": {k: v["url"] for k, v in uploaded.items()},
    }


__all__ = [
    "Decision",
    "RetentionPolicy",
    "audit_retention",
    "collect",
    "produce",
    "render_html",
    "safe_validation",
    "write_report",
]
