"""The ledger's head, kept outside the database: anchor documents at the destination.

Why: the hash chain (``audit/ledger.py``) proves that no record was edited, removed or reordered *inside*
it, but a database administrator can drop the last records (a shorter chain is still a valid chain) or
rebuild the whole chain with valid hashes. A copy of the head written elsewhere, where that administrator
cannot rewrite it, exposes both. After each run that appended records (migration, delta sync, cutover,
refusal, rollback, recovery), the runs layer writes the head as a small JSON document::

    s3://BUCKET/_hdh-audit/_ledger/<database id>/<seq, 12 digits>.json
    {"schema": "hdh-migrate/ledger-anchor/v1", "seq": 42, "hash": "...", "at": "...",
     "database": "postgresql+psycopg2://hdh@db/hdh", "database_id": "...", "genesis": "..."}

with S3 Object Lock retention where the bucket has it (the same policy as the reports: ``report.
audit_retention``), so that a locked anchor outlives any change to the database. ``database_id`` (a hash of
the database URL, password hidden) keeps the anchors of two databases that share a bucket apart;
``genesis`` (the hash of record 1) names the chain. ``hdh-migrate audit verify`` reads the anchors of every
destination the database knows and checks each is still in the ledger at its seq with its hash.

An anchor belongs to this ledger when its database id *or* its genesis matches: a chain rebuilt from
record 1 keeps the database's URL (its anchors are still read, and the rebuild is caught); a database moved
to another URL keeps its genesis. Anchors of neither are counted apart, never silently ignored.

A failed anchor write does not fail the run: the records it would have anchored are already committed (the
run's outcome stands), and the next anchor covers them (an anchor is the head, so it vouches for every
record before it). It is logged as a warning with its error code and returned in the step's result;
``audit verify`` says how many records lie after the newest anchor.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hdh_migrate.audit.documents import document_url, put_document
from hdh_migrate.audit.ledger import Anchor, utc_iso
from hdh_migrate.audit.report import audit_retention
from hdh_migrate.audit.state import StateStore
from hdh_migrate.errors import HdhMigrateError
from hdh_migrate.locations import parse_location
from hdh_migrate.stores.interface import DocumentWriter, Store, capability
from hdh_migrate.transfer.keys import AUDIT_PREFIX

log = logging.getLogger(__name__)

ANCHOR_SCHEMA = "hdh-migrate/ledger-anchor/v1"
ANCHOR_PREFIX = f"{AUDIT_PREFIX}_ledger/"


def database_id(state: StateStore) -> str:
    """A stable, non-secret name for the database (its URL, password hidden, hashed)."""
    return hashlib.sha256(state.url.encode("utf-8")).hexdigest()[:16]


def anchor_key(db_id: str, seq: int) -> str:
    return f"{ANCHOR_PREFIX}{db_id}/{seq:012d}.json"


def write_anchor(state: StateStore, dest: Store) -> dict[str, Any] | None:
    """Write the current ledger head to ``dest`` (locked where it can be); None for an empty ledger."""
    head = state.ledger_head()
    if head is None:
        return None
    seq, hash_ = head
    doc = {
        "schema": ANCHOR_SCHEMA,
        "seq": seq,
        "hash": hash_,
        "at": utc_iso(),
        "database": state.url,
        "database_id": database_id(state),
        "genesis": state.ledger_genesis(),
    }
    retention = audit_retention(dest)
    until = datetime.fromisoformat(retention["retain_until"]) if retention.get("object_lock") else None
    body = json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")
    put = put_document(
        dest,
        anchor_key(doc["database_id"], seq),
        body,
        content_type="application/json",
        retain_until=until,
        lock_mode=retention.get("mode", "") if until else "",
    )
    return {"seq": seq, "hash": hash_, "url": put["url"], "object_lock": bool(until)}


def anchor_ledger(state: StateStore, dest: Store, *, after: str) -> dict[str, Any]:
    """``write_anchor`` for the runs layer: never raises; a failure is a warning and ``{"ok": False, ...}``.

    ``after`` names the step, for the log ("cutover of dcir").
    """
    try:
        written = write_anchor(state, dest)
    except HdhMigrateError as exc:
        log.warning(
            "[ledger_anchor_failed] the ledger head could not be anchored at %s after the %s: %s "
            "(the run's outcome stands; the next anchor covers these records; `hdh-migrate audit verify` "
            "shows how many records are not anchored yet)",
            dest.describe(),
            after,
            exc,
        )
        return {"ok": False, "error": exc.code, "message": str(exc)[:300]}
    if written is None:
        return {"ok": True, "seq": None}
    log.info("ledger head %s anchored at %s", written["seq"], written["url"])
    return {"ok": True} | written


# -- reading them back ----------------------------------------------------------------------------------------
@dataclass
class AnchorSet:
    """The anchors found in some stores: this ledger's, the others' (counted), the unreadable (named)."""

    mine: list[Anchor] = field(default_factory=list)
    others: int = 0
    unreadable: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Anchor | None:
        return max(self.mine, key=lambda a: a.seq, default=None)

    def to_dict(self) -> dict[str, Any]:
        newest = self.newest
        return {
            "checked": len(self.mine),
            "newest_seq": newest.seq if newest else None,
            "newest_at": newest.at if newest else None,
            "other_ledgers": self.others,
            "unreadable": self.unreadable,
            "stores": self.stores,
        }


def destination_buckets(state: StateStore) -> list[str]:
    """``s3://BUCKET/`` of every dataset's destination: where this database's anchors were written."""
    return sorted({f"s3://{parse_location(d.dest_url, expect='s3').container}/" for d in state.status()})


def read_anchors(state: StateStore, stores: list[Store]) -> AnchorSet:
    """Every anchor document in ``stores``, sorted into this ledger's and the others'."""
    found = AnchorSet(stores=[document_url(s, "") for s in stores])
    mine, genesis = database_id(state), state.ledger_genesis()
    for store in stores:
        reader: DocumentWriter = capability(store, "documents", DocumentWriter)
        for info in store.list(ANCHOR_PREFIX):
            doc = _parse(reader.read_document(info.name))
            if doc is None:
                found.unreadable.append(document_url(store, info.name))
            elif doc.get("database_id") == mine or (genesis is not None and doc.get("genesis") == genesis):
                found.mine.append(Anchor(int(doc["seq"]), str(doc["hash"]), document_url(store, info.name), doc["at"]))
            else:
                found.others += 1
    return found


def _parse(body: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(body or b"")
        if doc.get("schema") == ANCHOR_SCHEMA and int(doc["seq"]) > 0 and len(str(doc["hash"])) == 64:
            return dict(doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


__all__ = [
    "ANCHOR_PREFIX",
    "ANCHOR_SCHEMA",
    "AnchorSet",
    "anchor_key",
    "anchor_ledger",
    "database_id",
    "destination_buckets",
    "read_anchors",
    "write_anchor",
]
