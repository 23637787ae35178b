"""hdh-migrate's own documents at the destination: the routing documents consumers read, and where the
audit files go.

- ``s3://BUCKET/_hdh/routing/<dataset>.json`` says which side is authoritative for a dataset, since when,
  by which run and actor, and where its report is (``routing_document``). Consumers read it
  (``read_routing``); the cutover writes it inside the transaction that switches the catalog.
- ``s3://BUCKET/_hdh-audit/<dataset>/<UTC stamp>/`` holds a decision's signed report and evidence.

Both live under the reserved prefixes (``transfer/keys.py``): never dataset objects, never "extra".
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hdh_migrate.audit.state import DatasetStatus
from hdh_migrate.stores.interface import DocumentWriter, Store, capability
from hdh_migrate.transfer.keys import AUDIT_PREFIX, ROUTING_PREFIX

ROUTING_SCHEMA = "hdh-migrate/routing/v1"


def document_url(dest: Store, key: str) -> str:
    return f"{dest.kind}://{dest.container}/{key}"


def routing_key(dataset: str) -> str:
    return f"{ROUTING_PREFIX}{dataset}.json"


def audit_prefix(dataset: str, at: datetime) -> str:
    return f"{AUDIT_PREFIX}{dataset}/{at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}/"


def put_document(
    dest: Store, key: str, body: bytes, *, content_type: str, retain_until: datetime | None = None, lock_mode: str = ""
) -> dict[str, Any]:
    """Write one small document (Content-MD5, the store's own encryption, a retention lock when given)."""
    writer: DocumentWriter = capability(dest, "documents", DocumentWriter)
    put = writer.put_document(key, body, content_type=content_type, retain_until=retain_until, lock_mode=lock_mode)
    return {
        "key": key,
        "url": document_url(dest, key),
        "version_id": put.version_id,
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


def publish_routing(dest: Store, dataset: str, doc: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(doc, indent=2).encode()
    return put_document(dest, routing_key(dataset), body, content_type="application/json")


def read_routing(dest: Store, dataset: str) -> dict[str, Any] | None:
    """What a consumer does: read the dataset's routing document (None if it was never cut over)."""
    writer: DocumentWriter = capability(dest, "documents", DocumentWriter)
    body = writer.read_document(routing_key(dataset))
    return None if body is None else json.loads(body)


__all__ = [
    "ROUTING_SCHEMA",
    "audit_prefix",
    "document_url",
    "publish_routing",
    "put_document",
    "read_routing",
    "routing_document",
    "routing_key",
]
