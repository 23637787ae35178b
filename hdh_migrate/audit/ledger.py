"""The audit ledger: an append-only, hash-chained record of every state change and every run.

Why a chain: the database's own history tables can be edited by anyone with write access to the
database; auditors need to detect that. Each record holds the hash of the previous one, and its own hash
covers its content and that link, so editing a record breaks its hash, removing one breaks the link (and
the sequence), and moving one breaks the links around it. The database also refuses UPDATE, DELETE and
TRUNCATE on the table (triggers, see the migrations), but the chain is the proof: it survives a database
administrator who drops the triggers.

Record hash: ``sha256(prev_hash + canonical(body))`` where ``body`` is ``{at, kind, dataset, actor,
run_id, payload, prev_hash}`` and ``canonical`` is JSON with sorted keys and no spaces; ``payload`` is
stored as its canonical JSON text and hashed as that text, so any byte change is detected. The first
record links to 64 zeros. ``seq`` is not hashed: order is proven by the links, and seq gaps are checked
separately (a removed record shows as a missing number even if the chain were rebuilt after it).

Removing the *last* records leaves a valid shorter chain, and an administrator can rebuild the whole chain
with valid hashes; to detect both, the ledger head is also kept outside the database: every cutover report
records (and signs) it, and every run writes it as an anchor document at the destination
(``audit/anchors.py``, Object Lock where the store has it). ``verify_ledger(..., anchors=...)`` checks each
anchored head is still in the ledger, at its seq, with the same hash (``hdh-migrate audit verify``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

GENESIS = "0" * 64

LEDGER = sa.Table(
    "ledger",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),  # ISO 8601 UTC, as text: hashed byte for byte
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("dataset", sa.String(100)),
    sa.Column("actor", sa.String(200)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
)


def canonical(obj: Any) -> str:
    """The one JSON spelling that is hashed and signed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def utc_iso(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def record_hash(
    *, at: str, kind: str, dataset: str | None, actor: str | None, run_id: str | None, payload: str, prev_hash: str
) -> str:
    body = {
        "at": at,
        "kind": kind,
        "dataset": dataset,
        "actor": actor,
        "run_id": run_id,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256((prev_hash + canonical(body)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LedgerRecord:
    seq: int
    at: str
    kind: str
    dataset: str | None
    actor: str | None
    run_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "dataset": self.dataset,
            "actor": self.actor,
            "run_id": self.run_id,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def lock_for_append(conn: Connection) -> None:
    """Serialise appenders so two transactions never take the same seq/prev_hash.

    PostgreSQL: a transaction-scoped advisory lock (released at commit/rollback). SQLite: the engine
    opens every transaction with BEGIN IMMEDIATE (see state.make_engine), which already serialises writers.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7254120917)")


def head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the last record, or None for an empty ledger."""
    row = conn.execute(sa.select(LEDGER.c.seq, LEDGER.c.hash).order_by(LEDGER.c.seq.desc()).limit(1)).first()
    return (int(row.seq), str(row.hash)) if row else None


def append(
    conn: Connection,
    *,
    kind: str,
    dataset: str | None,
    actor: str | None,
    run_id: str | None,
    payload: dict[str, Any],
    at: datetime | None = None,
) -> LedgerRecord:
    """Append one record inside the caller's transaction (so it commits or rolls back with the change)."""
    lock_for_append(conn)
    last = head(conn)
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at_s = utc_iso(at)
    text = canonical(payload)
    h = record_hash(at=at_s, kind=kind, dataset=dataset, actor=actor, run_id=run_id, payload=text, prev_hash=prev)
    conn.execute(
        LEDGER.insert().values(
            seq=seq,
            at=at_s,
            kind=kind,
            dataset=dataset,
            actor=actor,
            run_id=run_id,
            payload=text,
            prev_hash=prev,
            hash=h,
        )
    )
    return LedgerRecord(seq, at_s, kind, dataset, actor, run_id, json.loads(text), prev, h)


def records(conn: Connection, *, dataset: str | None = None, limit: int | None = None) -> list[LedgerRecord]:
    q = sa.select(LEDGER).order_by(LEDGER.c.seq)
    if dataset is not None:
        q = q.where(LEDGER.c.dataset == dataset)
    if limit is not None:
        q = q.limit(limit)
    out = []
    for r in conn.execute(q):
        try:
            payload = json.loads(r.payload)
        except ValueError:
            payload = {"unreadable": r.payload}
        out.append(LedgerRecord(r.seq, r.at, r.kind, r.dataset, r.actor, r.run_id, payload, r.prev_hash, r.hash))
    return out


@dataclass(frozen=True)
class Anchor:
    """A ledger head kept outside the database: (seq, hash), where it was found, and when it was written."""

    seq: int
    hash: str
    source: str = "a signed report"
    at: str | None = None


@dataclass(frozen=True)
class LedgerVerdict:
    ok: bool
    records: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


def verify_ledger(conn: Connection, *, anchors: Iterable[tuple[int, str] | Anchor] = ()) -> LedgerVerdict:
    """Walk the chain in seq order; the first broken record and why (edited, removed, reordered).

    ``anchors`` are heads recorded outside the database (signed reports, anchor documents): each must still
    be in the ledger at its seq with that hash, which detects records removed from the end of the chain and
    a chain rebuilt with valid hashes. They are checked oldest first, so the first divergence is named.
    """
    rows = list(conn.execute(sa.select(LEDGER).order_by(LEDGER.c.seq)))
    # hash -> seq of every record seen: tells "reordered" (the link points at a record that exists
    # elsewhere) from "removed" (it points at nothing). 64 bytes per record: fine for a ledger of state
    # changes and runs (thousands to a few million records).
    position = {str(r.hash): int(r.seq) for r in rows}
    prev, last_seq = GENESIS, None
    for count, r in enumerate(rows, start=1):
        why = _link_problem(r, count, prev, position)
        if why is not None:
            seq, reason = why
            return _broken(count, last_seq, prev, seq, reason)
        prev, last_seq = str(r.hash), int(r.seq)
    head = prev if last_seq else None
    by_seq = {s: h for h, s in position.items()}
    for a in sorted((_as_anchor(a) for a in anchors), key=lambda a: a.seq):
        why = _anchor_problem(a, by_seq, position, last_seq or 0)
        if why is not None:
            return LedgerVerdict(False, len(rows), last_seq, head, a.seq, why)
    return LedgerVerdict(True, len(rows), last_seq, head)


def _as_anchor(a: tuple[int, str] | Anchor) -> Anchor:
    return a if isinstance(a, Anchor) else Anchor(int(a[0]), str(a[1]))


def _link_problem(r: Any, expected_seq: int, prev: str, position: dict[str, int]) -> tuple[int, str] | None:
    """(the seq at fault, why) when a record is not the one the chain expects next, else None."""
    seq = int(r.seq)
    computed = record_hash(
        at=r.at,
        kind=r.kind,
        dataset=r.dataset,
        actor=r.actor,
        run_id=r.run_id,
        payload=r.payload,
        prev_hash=r.prev_hash,
    )
    if computed != r.hash:
        return seq, (
            f"record {seq} was edited: its content no longer matches its hash "
            f"(recorded {r.hash[:16]}..., computed {computed[:16]}...)"
        )
    if seq != expected_seq:
        missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq} to {seq - 1}"
        return expected_seq, f"record(s) {missing} are missing: removed from the ledger (next present is {seq})"
    if r.prev_hash == prev:
        return None
    linked = position.get(str(r.prev_hash))
    if linked is not None:
        return seq, f"record {seq} links to record {linked}, not to the record before it: records were reordered"
    return seq, (
        f"record {seq} links to a record that is not in the ledger: the record before it was removed or replaced"
    )


def _anchor_problem(a: Anchor, by_seq: dict[int, str], position: dict[str, int], head_seq: int) -> str | None:
    """Why an anchored head is not in the ledger as anchored, or None when it is."""
    if by_seq.get(a.seq) == a.hash:
        return None
    where = f"{a.source}" + (f", written {a.at}" if a.at else "")
    at = position.get(a.hash)
    if at is not None:
        return f"the record with the anchored hash is at seq {at}, not {a.seq} ({where})"
    if a.seq > head_seq:
        return (
            f"record {a.seq} (hash {a.hash[:16]}..., recorded in {where}) is not in the ledger: records were "
            f"removed from its end (the ledger now ends at record {head_seq or 'none'})"
        )
    return (
        f"record {a.seq} is not the record {where} anchored: the ledger was rebuilt (its hash is now "
        f"{by_seq.get(a.seq, '(none)')[:16]}..., the anchor says {a.hash[:16]}...)"
    )


def _broken(count: int, last_seq: int | None, prev: str, seq: int, reason: str) -> LedgerVerdict:
    return LedgerVerdict(False, count, last_seq, prev if last_seq else None, seq, reason)
