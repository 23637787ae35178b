"""The cutover report for auditors: JSON (signed) + HTML (for people) + per-object integrity evidence.

One report per cutover decision (cut over, or refused), built from the state database (dataset, checks,
runs, history, ledger head) and the runs' own evidence files (inventory, copy and verify results):

- ``report.json``: the facts, canonical and signed with HMAC-SHA256. It embeds the SHA-256 of every file
  next to it, so one signature covers the whole set, and the ledger head (seq, hash) at signing time, an
  anchor that detects records later removed from the end of the ledger.
- ``report.html``: the same facts for a non-engineer (Jinja2, no script, no external resource; opens
  offline in any browser).
- ``evidence.parquet`` and ``evidence.csv``: one row per object -- key, size, algorithm, the source hash
  and how it was obtained, the destination hash and how it was obtained, and whether they match.

Nothing in it is data: counts, bytes, object keys (file paths), hashes, expectation names and metric
names. Great Expectations results are reduced to pass/fail, counts and fingerprints; metric values that
could be a row value (min, max, sums of a column) are withheld, only the fact that they differ is kept.

The files are kept locally under the run's work dir and uploaded to ``s3://BUCKET/_hdh-audit/<dataset>/
<UTC stamp>/``, with S3 Object Lock retention when the provider supports it and the bucket has Object
Lock enabled (default COMPLIANCE for 10 years; ``HDH_MIGRATE_AUDIT_LOCK_MODE``,
``HDH_MIGRATE_AUDIT_RETENTION_DAYS``). ``hdh-migrate report verify REPORT.json`` checks the signature and
every file's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hdh_migrate import __version__
from hdh_migrate.audit.ledger import canonical
from hdh_migrate.audit.state import Check, StateStore
from hdh_migrate.errors import ConfigError, PermanentError
from hdh_migrate.sizes import human_bytes
from hdh_migrate.stores.s3 import S3Store
from hdh_migrate.stores.settings import encryption_summary
from hdh_migrate.transfer.checksums import file_sha256

REPORT_SCHEMA = "hdh-migrate/cutover-report/v1"
TEMPLATES = Path(__file__).resolve().parent / "templates"
KEY_ENV = "HDH_MIGRATE_REPORT_KEY"
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


class ReportKeyError(ConfigError):
    code = "report_key"


class ReportInvalidError(PermanentError):
    code = "report_invalid"


# -- keys and signatures ----------------------------------------------------------------------------------
def key_from_env(var: str = KEY_ENV) -> bytes | None:
    value = os.environ.get(var)
    return value.encode("utf-8") if value else None


def key_id(key: bytes) -> str:
    """Names the key in the report without revealing it (so a verifier knows which key to ask for)."""
    return "sha256:" + hashlib.sha256(b"hdh-migrate report key id\0" + key).hexdigest()[:16]


def sign(doc: dict[str, Any], key: bytes) -> dict[str, Any]:
    if not key:
        raise ReportKeyError(
            "the report signing key is empty",
            hint=f"set {KEY_ENV} (CLI) or the password of the report key Connection (Airflow)",
        )
    body = {k: v for k, v in doc.items() if k != "signature"}
    mac = hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()
    return body | {
        "signature": {
            "algorithm": "HMAC-SHA256",
            "key_id": key_id(key),
            "value": mac,
            "covers": "canonical JSON of every other field (sorted keys, no spaces, UTF-8)",
        }
    }


@dataclass
class ReportVerdict:
    ok: bool
    problems: list[str]
    dataset: str | None = None
    outcome: str | None = None
    ledger_anchor: tuple[int, str] | None = None


def verify_report(path: str | Path, key: bytes) -> ReportVerdict:
    """Signature, and the hash of every file the report lists (they must sit next to it)."""
    path = Path(path)
    problems: list[str] = []
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        return ReportVerdict(
            False, [f"{path} is not a readable report ({type(exc).__name__}: {exc}): it was altered or truncated"]
        )
    sig = doc.get("signature") or {}
    if sig.get("algorithm") != "HMAC-SHA256" or not isinstance(sig.get("value"), str):
        problems.append("the report has no HMAC-SHA256 signature")
    else:
        if sig.get("key_id") != key_id(key):
            problems.append(f"the report was signed with key {sig.get('key_id')}, the key given is {key_id(key)}")
        body = {k: v for k, v in doc.items() if k != "signature"}
        expected = hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig["value"]):
            problems.append(
                "the signature does not match the content: the report was altered after signing "
                "(or signed with another key)"
            )
    for label, f in (doc.get("files") or {}).items():
        p = path.parent / str(f.get("name", ""))
        if not p.is_file():
            problems.append(f"{label} file {p.name} is missing next to the report")
        elif file_sha256(str(p)) != f.get("sha256"):
            problems.append(f"{label} file {p.name} does not match the SHA-256 recorded in the report: it was altered")
    ledger = doc.get("ledger") or {}
    anchor = (int(ledger["head_seq"]), str(ledger["head_hash"])) if ledger.get("head_seq") else None
    return ReportVerdict(not problems, problems, doc.get("dataset"), (doc.get("decision") or {}).get("outcome"), anchor)


# -- evidence ---------------------------------------------------------------------------------------------
def _read(paths: list[str], columns: list[str]) -> pa.Table | None:
    tables = []
    for i, p in enumerate(paths):
        if p and Path(p).exists():
            t = pq.read_table(p, columns=columns)
            tables.append(t.append_column("_order", pa.array([i * 10**9 + j for j in range(t.num_rows)], pa.int64())))
    return pa.concat_tables(tables) if tables else None


def _last_per_name(t: pa.Table) -> pa.Table:
    """The latest row of each name (files in order, rows in order): a delta re-verifies what it changed."""
    t = t.sort_by([("name", "ascending"), ("_order", "ascending")])
    names = t.column("name").to_pylist()
    keep = [i for i in range(len(names)) if i == len(names) - 1 or names[i + 1] != names[i]]
    return t.take(pa.array(keep, pa.int64()))


def build_evidence(check: Check | None, out_dir: Path) -> dict[str, Any]:
    """Per-object evidence from the verification's result files, for the objects of its inventory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pq_path, csv_path = out_dir / "evidence.parquet", out_dir / "evidence.csv"
    schema = pa.schema(
        [
            ("key", pa.string()),
            ("name", pa.string()),
            ("size", pa.int64()),
            ("algorithm", pa.string()),
            ("source_sha256", pa.string()),
            ("source_sha256_how", pa.string()),
            ("dest_sha256", pa.string()),
            ("dest_sha256_how", pa.string()),
            ("verify_status", pa.string()),
            ("match", pa.bool_()),
            ("last_copy_status", pa.string()),
            ("copy_attempts", pa.int32()),
        ]
    )
    stats: dict[str, Any] = {
        "objects": 0,
        "matched": 0,
        "mismatched": 0,
        "not_verified": 0,
        "copied": 0,
        "copied_bytes": 0,
        "skipped": 0,
        "failed": 0,
        "retries": 0,
        "errors": {},
        "error_examples": [],
    }
    inv_path = (check.details.get("inventory") if check else None) or ""
    if not check or not Path(inv_path).exists():
        table = schema.empty_table()
    else:
        depth = check.details.get("depth") or "full"
        inv = pq.read_table(inv_path, columns=["name", "size"])
        ver = _read(
            list(check.details.get("evidence") or []),
            ["name", "key", "status", "algorithm", "source_sha256", "dest_sha256"],
        )
        cop = _read(
            list(check.details.get("copy_results") or []),
            ["name", "key", "size", "status", "source_sha256", "attempts", "error_code"],
        )
        table = inv
        if ver is not None:
            v = _last_per_name(ver.filter(pc.not_equal(ver.column("name"), ""))).drop_columns(["_order"])
            table = table.join(v, keys="name", join_type="left outer")
        else:
            for c, typ in (
                ("key", pa.string()),
                ("status", pa.string()),
                ("algorithm", pa.string()),
                ("source_sha256", pa.string()),
                ("dest_sha256", pa.string()),
            ):
                table = table.append_column(c, pa.nulls(table.num_rows, typ))
        cols = {n: table.column(n).to_pylist() for n in table.column_names}
        copy_status: dict[str, tuple[str, int, str | None]] = {}
        if cop is not None:
            rows = cop.to_pydict()
            stats["retries"] = int(sum(max(0, (a or 1) - 1) for a in rows["attempts"]))
            for i, n in enumerate(rows["name"]):
                code = rows["error_code"][i]
                if code and rows["status"][i] in ("failed", "rejected"):
                    stats["errors"][code] = stats["errors"].get(code, 0) + 1
                    if len(stats["error_examples"]) < 20:
                        stats["error_examples"].append(
                            {
                                "key": rows["key"][i] or n,
                                "code": code,
                                "attempts": rows["attempts"][i],
                                "status": rows["status"][i],
                            }
                        )
            last = _last_per_name(cop).to_pydict()
            for i, n in enumerate(last["name"]):
                copy_status[n] = (last["status"][i], last["attempts"][i] or 0, last["source_sha256"][i])
        out: dict[str, list[Any]] = {f.name: [] for f in schema}
        for i, name in enumerate(cols["name"]):
            vs = cols["status"][i]
            src_h, dst_h = cols["source_sha256"][i], cols["dest_sha256"][i]
            cs = copy_status.get(name)
            if cs and cs[0] == "copied" and cs[2]:
                src_how = "computed while copying from the source bytes"
                if src_h and src_h != cs[2]:
                    src_how += f" (the destination records {src_h})"
                src_h = cs[2]
            elif depth == "both" and src_h:
                src_how = "re-read from the source by verify (both)"
            elif src_h:
                src_how = "recorded on the destination object by the copier, computed from the source bytes"
            else:
                src_how = "not available"
            dst_how = (
                f"re-read from the destination by verify ({depth})"
                if dst_h
                else "not re-read (quick verification: recorded hash and ETag checked)"
                if vs == "ok"
                else "not available"
            )
            match = vs == "ok" and (dst_h is None or dst_h == src_h)
            out["key"].append(cols["key"][i] or name)
            out["name"].append(name)
            out["size"].append(cols["size"][i])
            out["algorithm"].append(cols["algorithm"][i] or "sha256")
            out["source_sha256"].append(src_h)
            out["source_sha256_how"].append(src_how)
            out["dest_sha256"].append(dst_h)
            out["dest_sha256_how"].append(dst_how)
            out["verify_status"].append(vs or "not verified")
            out["match"].append(bool(match))
            out["last_copy_status"].append(cs[0] if cs else None)
            out["copy_attempts"].append(int(cs[1]) if cs else None)
            stats["objects"] += 1
            stats["matched" if match else ("not_verified" if vs is None else "mismatched")] += 1
            if cs:
                if cs[0] == "copied":
                    stats["copied"] += 1
                    stats["copied_bytes"] += int(cols["size"][i] or 0)
                elif cs[0] == "skipped":
                    stats["skipped"] += 1
                elif cs[0] in ("failed", "rejected"):
                    stats["failed"] += 1
        table = pa.Table.from_pydict(out, schema=schema).sort_by("key")
    pq.write_table(table, pq_path, compression="zstd")
    pacsv.write_csv(table, csv_path)
    stats["parquet"] = {"name": pq_path.name, "sha256": file_sha256(str(pq_path))}
    stats["csv"] = {"name": csv_path.name, "sha256": file_sha256(str(csv_path))}
    stats["inventory_sha256"] = check.details.get("inventory_sha256") if check else None
    return stats


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


def audit_retention(dest: S3Store, policy: RetentionPolicy | None = None) -> dict[str, Any]:
    """Whether the audit files can be locked here, and until when (decided before signing: it is in the report)."""
    policy = policy or RetentionPolicy.from_env()
    if not dest.settings.supports_object_lock:
        return {
            "object_lock": False,
            "reason": f"the provider profile {dest.settings.provider!r} does not support S3 Object Lock",
        }
    try:
        conf = dest.client.get_object_lock_configuration(Bucket=dest.container)
        enabled = (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
    except Exception as exc:  # any refusal means: no lock configuration we can use
        why = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        return {
            "object_lock": False,
            "reason": f"bucket {dest.container} has no Object Lock configuration ({why}): "
            "create it with Object Lock to make audit files immutable",
        }
    if not enabled:
        return {"object_lock": False, "reason": f"Object Lock is not enabled on bucket {dest.container}"}
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=policy.days)
    return {"object_lock": True, "mode": policy.mode, "days": policy.days, "retain_until": until.isoformat()}


# -- building ----------------------------------------------------------------------------------------------
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
    dest: S3Store,
    *,
    decision: dict[str, Any],
    actor: str,
    run_id: str,
    started: datetime,
    out_dir: Path,
    freeze: list[dict[str, Any]] | None = None,
    preflight: Any = None,
    validations: list[dict[str, Any]] | None = None,
    retention: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the report says, as one JSON-able dict (before files and signature)."""
    ds = state.get(dataset)
    verify = preflight.verify if preflight is not None and preflight.verify else state.latest_check(dataset, "verify")
    validate = (
        preflight.validate if preflight is not None and preflight.validate else state.latest_check(dataset, "validate")
    )
    runs = state.runs(dataset)
    evidence = build_evidence(verify, out_dir)
    if validations is None and validate is not None:
        validations = list(validate.details.get("results") or [])
    migrate_runs = [r for r in runs if r.kind == "migrate"]
    params = _scrub((migrate_runs[-1].summary.get("params") if migrate_runs else None) or {})
    config = {
        "source": ds.source_url,
        "destination": ds.dest_url,
        "provider": dest.settings.provider,
        "destination_endpoint": dest.settings.describe(),
        "encryption": encryption_summary(dest.settings),
        "validation_required": ds.validation_required,
        "params": params,
        "verify_depth": verify.details.get("depth") if verify else None,
    }
    head = state.ledger_head()
    vd = verify.details if verify else {}
    finished = datetime.now(UTC)
    this_run = {
        "run_id": run_id,
        "kind": "cutover",
        "actor": actor,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "ok": decision.get("outcome") == "cut_over",
    }
    return {
        "schema": REPORT_SCHEMA,
        "dataset": dataset,
        "generated_at": finished.isoformat(timespec="seconds"),
        "decision": {
            "outcome": decision.get("outcome"),
            "reasons": decision.get("reasons") or [],
            "by": actor,
            "run_id": run_id,
            "at": finished.isoformat(timespec="seconds"),
            "switch": decision.get("switch"),
        },
        "source": {"url": ds.source_url, "store": "Azure Blob Storage"},
        "destination": {
            "url": ds.dest_url,
            "store": "S3-compatible",
            "provider": dest.settings.provider,
            "endpoint": dest.settings.describe(),
        },
        "catalog": {
            "authoritative": ds.authoritative,
            "since": ds.authoritative_since.isoformat() if ds.authoritative_since else None,
            "routing": ds.routing_url,
            "state": ds.state,
        },
        "runs": [
            {
                "run_id": r.run_id,
                "kind": r.kind,
                "actor": r.actor,
                "started": r.started.isoformat(timespec="seconds") if r.started else None,
                "finished": r.finished.isoformat(timespec="seconds"),
                "ok": r.ok,
            }
            for r in runs
        ]
        + [this_run],
        "history": [
            {
                "from": t.from_state,
                "to": t.to_state,
                "at": t.at.isoformat(timespec="seconds"),
                "actor": t.actor,
                "run_id": t.run_id,
            }
            for t in state.history(dataset)
        ],
        "code_version": code_version(),
        "config_hash": "sha256:" + hashlib.sha256(canonical(config).encode()).hexdigest(),
        "config": config,
        "counts": {
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
        },
        "checks": {
            "freeze": freeze or [],
            "source_fingerprint": preflight.fingerprint if preflight is not None else None,
            "verify": _check_summary(verify),
            "validate": _check_summary(validate, drop=("results",)),
            "validation_required": ds.validation_required,
        },
        "integrity": {
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
        },
        "validation": [safe_validation(v) for v in (validations or [])],
        "encryption": encryption_summary(dest.settings),
        "exceptions": {
            "retries": evidence["retries"],
            "errors_by_code": evidence["errors"],
            "examples": evidence["error_examples"],
            "verification_problems": vd.get("problems", []),
        },
        "retention": retention or {"object_lock": False, "reason": "not uploaded"},
        "ledger": {"head_seq": head[0] if head else None, "head_hash": head[1] if head else None},
        "_evidence_files": {"evidence_parquet": evidence["parquet"], "evidence_csv": evidence["csv"]},
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
    import jinja2

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
    json: Path
    html: Path
    evidence_parquet: Path
    evidence_csv: Path
    sha256: str  # of report.json

    def paths(self) -> list[Path]:
        return [self.json, self.html, self.evidence_parquet, self.evidence_csv]


def write_report(data: dict[str, Any], out_dir: Path, key: bytes) -> ReportFiles:
    """Render the HTML, hash the attached files, sign, write report.json. Returns the four paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    ev = data.pop("_evidence_files")
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
    return ReportFiles(
        out_dir / "report.json",
        out_dir / "report.html",
        out_dir / "evidence.parquet",
        out_dir / "evidence.csv",
        hashlib.sha256(body).hexdigest(),
    )


def upload_report(dest: S3Store, prefix: str, files: ReportFiles, retention: dict[str, Any]) -> dict[str, Any]:
    from hdh_migrate.runs.cutover import put_document

    lock = None
    if retention.get("object_lock"):
        lock = {"mode": retention["mode"], "retain_until_dt": datetime.fromisoformat(retention["retain_until"])}
    types = {
        ".json": "application/json",
        ".html": "text/html; charset=utf-8",
        ".parquet": "application/vnd.apache.parquet",
        ".csv": "text/csv; charset=utf-8",
    }
    uploaded = {}
    for p in files.paths():
        uploaded[p.name] = put_document(dest, prefix + p.name, p.read_bytes(), content_type=types[p.suffix], lock=lock)
    return uploaded


def produce(
    state: StateStore,
    dataset: str,
    dest: S3Store,
    *,
    decision: dict[str, Any],
    actor: str,
    run_id: str,
    started: datetime,
    work_dir: Path,
    key: bytes,
    prefix: str,
    freeze: list[dict[str, Any]] | None = None,
    preflight: Any = None,
    validations: list[dict[str, Any]] | None = None,
    retention: dict[str, Any] | RetentionPolicy | None = None,
    upload: bool = True,
) -> dict[str, Any]:
    """Collect, write, sign, upload (with retention), and record the report in the ledger."""
    out = Path(work_dir) / "report"
    ret = retention if isinstance(retention, dict) else audit_retention(dest, retention)
    data = collect(
        state,
        dataset,
        dest,
        decision=decision,
        actor=actor,
        run_id=run_id,
        started=started,
        out_dir=out,
        freeze=freeze,
        preflight=preflight,
        validations=validations,
        retention=ret,
    )
    files = write_report(data, out, key)
    uploaded = upload_report(dest, prefix, files, ret) if upload else {}
    url = f"s3://{dest.container}/{prefix}report.json"
    state.append_ledger(
        kind="report",
        dataset=dataset,
        actor=actor,
        run_id=run_id,
        payload={
            "url": url if upload else None,
            "local": str(files.json),
            "sha256": files.sha256,
            "outcome": decision.get("outcome"),
            "object_lock": ret.get("object_lock"),
            "versions": {k: v.get("version_id") for k, v in uploaded.items()},
        },
    )
    return {
        "url": url if upload else None,
        "local": str(files.json),
        "html": str(files.html),
        "evidence": str(files.evidence_parquet),
        "sha256": files.sha256,
        "retention": ret,
        "uploaded": {k: v["url"] for k, v in uploaded.items()},
    }


__all__ = [
    "KEY_ENV",
    "ReportVerdict",
    "RetentionPolicy",
    "audit_retention",
    "build_evidence",
    "collect",
    "key_from_env",
    "key_id",
    "produce",
    "render_html",
    "safe_validation",
    "sign",
    "verify_report",
    "write_report",
]
