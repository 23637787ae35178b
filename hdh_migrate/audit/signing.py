"""The report's signature: HMAC-SHA256 over the canonical JSON of every other field.

``report.json`` embeds the SHA-256 of every file next to it (the HTML, the evidence), so one signature
covers the whole set; ``verify_report`` checks the signature and every file. The key names itself in the
report by a hash (``key_id``), never by its value, so that a verifier knows which key to ask for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdh_migrate.audit.ledger import canonical
from hdh_migrate.errors import ConfigError, PermanentError
from hdh_migrate.transfer.checksums import file_sha256

KEY_ENV = "HDH_MIGRATE_REPORT_KEY"
ALGORITHM = "HMAC-SHA256"


class ReportKeyError(ConfigError):
    code = "report_key"


class ReportInvalidError(PermanentError):
    code = "report_invalid"


def key_from_env(var: str = KEY_ENV) -> bytes | None:
    value = os.environ.get(var)
    return value.encode("utf-8") if value else None


def key_id(key: bytes) -> str:
    """Names the key in the report without revealing it (so a verifier knows which key to ask for)."""
    return "sha256:" + hashlib.sha256(b"hdh-migrate report key id\0" + key).hexdigest()[:16]


def _mac(body: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()


def sign(doc: dict[str, Any], key: bytes) -> dict[str, Any]:
    if not key:
        raise ReportKeyError(
            "the report signing key is empty",
            hint=f"set {KEY_ENV} (CLI) or the password of the report key Connection (Airflow)",
        )
    body = {k: v for k, v in doc.items() if k != "signature"}
    return body | {
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": key_id(key),
            "value": _mac(body, key),
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
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        why = f"{path} is not a readable report ({type(exc).__name__}: {exc}): it was altered or truncated"
        return ReportVerdict(False, [why])
    problems = _signature_problems(doc, key) + _file_problems(doc, path.parent)
    ledger = doc.get("ledger") or {}
    anchor = (int(ledger["head_seq"]), str(ledger["head_hash"])) if ledger.get("head_seq") else None
    return ReportVerdict(not problems, problems, doc.get("dataset"), (doc.get("decision") or {}).get("outcome"), anchor)


def _signature_problems(doc: dict[str, Any], key: bytes) -> list[str]:
    sig = doc.get("signature") or {}
    if sig.get("algorithm") != ALGORITHM or not isinstance(sig.get("value"), str):
        return [f"the report has no {ALGORITHM} signature"]
    problems = []
    if sig.get("key_id") != key_id(key):
        problems.append(f"the report was signed with key {sig.get('key_id')}, the key given is {key_id(key)}")
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not hmac.compare_digest(_mac(body, key), sig["value"]):
        problems.append(
            "the signature does not match the content: the report was altered after signing (or signed with "
            "another key)"
        )
    return problems


def _file_problems(doc: dict[str, Any], folder: Path) -> list[str]:
    problems = []
    for label, f in (doc.get("files") or {}).items():
        p = folder / str(f.get("name", ""))
        if not p.is_file():
            problems.append(f"{label} file {p.name} is missing next to the report")
        elif file_sha256(str(p)) != f.get("sha256"):
            problems.append(f"{label} file {p.name} does not match the SHA-256 recorded in the report: it was altered")
    return problems


__all__ = [
    "KEY_ENV",
    "ReportInvalidError",
    "ReportKeyError",
    "ReportVerdict",
    "key_from_env",
    "key_id",
    "sign",
    "verify_report",
]
