"""Migration state in a real database: each dataset's state, its history, its checks and its catalog entry.

Why a database rather than files: cutover is a decision several processes race on (Airflow workers, an
operator's CLI), so a transition must be atomic and conditional ("only from these states"), and its
history, the evidence it rests on and the ledger record must commit together or not at all. SQLite is the
embedded default (one file under ``$HDH_MIGRATE_HOME``); PostgreSQL in production
(``HDH_MIGRATE_DB_URL=postgresql+psycopg2://...``). The schema is created and upgraded by Alembic
migrations (``hdh_migrate/audit/migrations``), run by ``open_state()`` itself.

States: ``planned -> copying -> copied -> verified -> validated -> cut_over``, and ``rolled_back``.
A transition is ``UPDATE datasets SET state=:to WHERE name=:n AND state IN (:allowed)``: if no row
changed, the dataset was not in an allowed state (or another process moved it first) and
``TransitionRefusedError`` names the current state and the allowed ones. The transition row and the ledger
record are written in the same transaction.

The catalog (which side is authoritative, since when, by which run, the routing document and report) is
kept on the dataset row, changed only by the cut_over and rolled_back transitions.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from hdh_migrate.audit import ledger as ledger_mod
from hdh_migrate.audit.ledger import LEDGER, LedgerVerdict
from hdh_migrate.audit.lifecycle import (
    ALLOWED,
    CHECK_KINDS,
    COPIED,
    COPYING,
    CUT_OVER,
    PLANNED,
    ROLLED_BACK,
    STATES,
    VALIDATED,
    VERIFIED,
)
from hdh_migrate.errors import ConfigError, PermanentError
from hdh_migrate.home import state_home
from hdh_migrate.locations import parse_location

metadata = sa.MetaData()

DATASETS = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("source_url", sa.Text, nullable=False),
    sa.Column("dest_url", sa.Text, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("validation_required", sa.Boolean, nullable=False),
    # catalog
    sa.Column("authoritative", sa.String(10), nullable=False),
    sa.Column("authoritative_since", sa.DateTime(timezone=True)),
    sa.Column("authoritative_run_id", sa.String(250)),
    sa.Column("routing_url", sa.Text),
    sa.Column("report_url", sa.Text),
    # the last known source listing (what the next delta sync compares against)
    sa.Column("inventory_path", sa.Text),
    sa.Column("inventory_sha256", sa.String(64)),
    sa.Column("source_fingerprint", sa.String(100)),
    sa.Column("inventory_run_id", sa.String(250)),
    sa.Column("inventory_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # set by the cut_over transition, cleared when its signed report is recorded (migration 0002)
    sa.Column("report_pending", sa.Boolean, nullable=False, server_default=sa.false()),
)

#: a routing document about to be written: committed before the write, deleted with the transition's commit
ROUTING_INTENTS = sa.Table(
    "routing_intents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False, index=True),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("routing_url", sa.Text, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("ledger_seq", sa.Integer, nullable=False),
)

TRANSITIONS = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False, index=True),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(250)),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("ledger_seq", sa.Integer, nullable=False),
)

CHECKS = sa.Table(
    "checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("source_fingerprint", sa.String(100), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("ledger_seq", sa.Integer, nullable=False),
)

RUNS = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False, index=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # migrate | delta_sync | cutover | rollback | ...
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("started", sa.DateTime(timezone=True)),
    sa.Column("finished", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("ledger_seq", sa.Integer, nullable=False),
)


class TransitionRefusedError(PermanentError):
    """The dataset is not in a state the requested transition may start from."""

    code = "transition_refused"

    def __init__(
        self, message: str, *, hint: str | None = None, current: str | None = None, allowed: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.current = current
        self.allowed = allowed


class UnknownDatasetError(PermanentError):
    code = "unknown_dataset"


class StateDatabaseError(PermanentError):
    code = "state_database"


class IntentResolvedError(PermanentError):
    """The switch's write-ahead intent was resolved by a recovery pass before the switch could commit."""

    code = "intent_resolved"


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; everything here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    source_url: str
    dest_url: str
    state: str
    validation_required: bool
    authoritative: str
    authoritative_since: datetime | None
    authoritative_run_id: str | None
    routing_url: str | None
    report_url: str | None
    inventory_path: str | None
    inventory_sha256: str | None
    source_fingerprint: str | None
    inventory_run_id: str | None
    inventory_at: datetime | None
    created_at: datetime
    updated_at: datetime
    report_pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RoutingIntent:
    """A routing document a switch or rollback was about to write (see ``StateStore.declare_intent``)."""

    id: int
    dataset: str
    to_state: str
    run_id: str
    actor: str
    at: datetime
    routing_url: str
    document: dict[str, Any]
    ledger_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat()}


@dataclass(frozen=True)
class Transition:
    id: int
    dataset: str
    from_state: str
    to_state: str
    at: datetime
    actor: str
    run_id: str | None
    evidence: dict[str, Any]
    ledger_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat()}


@dataclass(frozen=True)
class Check:
    id: int
    dataset: str
    kind: str
    run_id: str
    at: datetime
    ok: bool
    source_fingerprint: str
    actor: str
    details: dict[str, Any]
    ledger_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat()}


@dataclass(frozen=True)
class Run:
    id: int
    dataset: str
    run_id: str
    kind: str
    actor: str
    started: datetime | None
    finished: datetime
    ok: bool
    summary: dict[str, Any]
    ledger_seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat(),
        }


def _dataset(row: Any) -> DatasetStatus:
    m = dict(row._mapping)
    for k in ("authoritative_since", "inventory_at", "created_at", "updated_at"):
        m[k] = _utc(m[k])
    return DatasetStatus(**m)


def _intent(row: Any) -> RoutingIntent:
    m = dict(row._mapping)
    m["at"] = _utc(m["at"])
    return RoutingIntent(**m)


def _transition(row: Any) -> Transition:
    m = dict(row._mapping)
    m["at"] = _utc(m["at"])
    return Transition(**m)


def _check(row: Any) -> Check:
    m = dict(row._mapping)
    m["at"] = _utc(m["at"])
    return Check(**m)


def _run(row: Any) -> Run:
    m = dict(row._mapping)
    m["started"], m["finished"] = _utc(m["started"]), _utc(m["finished"])
    return Run(**m)


# -- engine and migrations ------------------------------------------------------------------------------
def default_url() -> str:
    if os.environ.get("HDH_MIGRATE_DB_URL"):
        return os.environ["HDH_MIGRATE_DB_URL"]

    return f"sqlite:///{state_home() / 'state.db'}"


def make_engine(url: str) -> Engine:
    """An engine whose transactions serialise writers on SQLite (BEGIN IMMEDIATE) and wait when busy.

    pysqlite's deferred BEGIN lets two transactions read, then both try to write and one fails at once
    with "database is locked"; BEGIN IMMEDIATE takes the write lock at the start, so a concurrent Airflow
    task waits (up to the busy timeout) instead of failing, and a conditional UPDATE sees committed state.
    """
    if url.startswith("sqlite"):
        db = sa.engine.make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_migrate_lock = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (idempotent; serialised across processes)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7254120918)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# -- the repository -------------------------------------------------------------------------------------
class StateStore:
    """Every read and write of migration state. Thread-safe (one engine, short transactions)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StateDatabaseError(
                f"the state database {self.url} is unavailable: {type(exc.orig).__name__}: {str(exc.orig)[:200]}",
                hint="check HDH_MIGRATE_DB_URL and that the database is up; nothing was changed",
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # datasets -------------------------------------------------------------------------------------
    def ensure_dataset(
        self,
        name: str,
        source_url: str,
        dest_url: str,
        *,
        actor: str,
        validation_required: bool | None = None,
        run_id: str | None = None,
    ) -> DatasetStatus:
        """Register a dataset (state ``planned``, Azure authoritative), or return it if it exists.

        Its locations are fixed once registered: moving a dataset elsewhere is a new dataset, so the
        history never describes two different copies. ``validation_required`` (default True: HDH datasets
        are tabular) says whether cutover needs a passing Great Expectations check; changing it is recorded.
        """
        parse_location(source_url, expect="azure")
        parse_location(dest_url, expect="s3")
        by = _Who(actor, run_id)
        with self.begin() as conn:
            row = conn.execute(sa.select(DATASETS).where(DATASETS.c.name == name)).first()
            if row is None:
                required = True if validation_required is None else validation_required
                _register(conn, name, source_url, dest_url, required, by)
            else:
                _check_registration(conn, _dataset(row), source_url, dest_url, validation_required, by)
        return self.get(name)

    def get(self, name: str) -> DatasetStatus:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(DATASETS).where(DATASETS.c.name == name)).first()
        if row is None:
            raise _unknown(name, self.url)
        return _dataset(row)

    def find(self, name: str) -> DatasetStatus | None:
        try:
            return self.get(name)
        except UnknownDatasetError:
            return None

    def status(self, name: str | None = None) -> list[DatasetStatus]:
        if name is not None:
            return [self.get(name)]
        with self.engine.connect() as conn:
            return [_dataset(r) for r in conn.execute(sa.select(DATASETS).order_by(DATASETS.c.name))]

    # transitions ----------------------------------------------------------------------------------
    def transition(
        self,
        name: str,
        to: str,
        *,
        actor: str,
        run_id: str | None = None,
        evidence: dict[str, Any] | None = None,
        catalog: dict[str, Any] | None = None,
        before_commit: Callable[[], None] | None = None,
        intent: int | None = None,
    ) -> Transition:
        """Move the dataset to ``to`` if, and only if, it is in one of ``ALLOWED[to]``; atomically.

        ``catalog`` updates the dataset's catalog columns in the same UPDATE. ``before_commit`` runs after
        the conditional UPDATE succeeded and before the commit: the cutover writes the routing document
        there, so a refused transition never publishes one and a failed write leaves the state unchanged.
        ``intent`` (from ``declare_intent``) is deleted in the same transaction: if the process dies after
        the document was written and before the commit, the intent survives and the recovery pass finds it.
        """
        if to not in ALLOWED:
            raise ConfigError(f"{to!r} is not a state a dataset can be moved to", hint=f"one of {', '.join(ALLOWED)}")
        evidence = evidence or {}
        with self.begin() as conn:
            current = _locked_state(conn, name, self.url)
            t = now()
            values: dict[str, Any] = {"state": to, "updated_at": t, **(catalog or {})}
            res = conn.execute(
                DATASETS.update().where(DATASETS.c.name == name, DATASETS.c.state.in_(ALLOWED[to])).values(**values)
            )
            if res.rowcount != 1:  # (defensive: the row lock above already made the state current)
                raise _refused(name, current, to)
            ledger_evidence = {"evidence": evidence, "catalog": catalog or {}}
            tid, rec = _write_transition(conn, name, current, to, t, _Who(actor, run_id), ledger_evidence, evidence)
            if intent is not None:
                _clear_intent(conn, name, intent)
            if before_commit is not None:
                before_commit()
        return Transition(tid, name, current, to, t, actor, run_id, _jsonable(evidence), rec.seq)

    def check_allowed(self, name: str, to: str) -> None:
        """Raise the refusal ``transition`` would raise, without changing anything (a step that prepares a
        transition, e.g. a write-ahead intent, refuses before preparing)."""
        current = self.get(name).state
        if current not in ALLOWED[to]:
            raise _refused(name, current, to)

    def history(self, name: str) -> list[Transition]:
        self.get(name)
        with self.engine.connect() as conn:
            return [
                _transition(r)
                for r in conn.execute(
                    sa.select(TRANSITIONS).where(TRANSITIONS.c.dataset == name).order_by(TRANSITIONS.c.id)
                )
            ]

    # checks ---------------------------------------------------------------------------------------
    def record_check(
        self,
        name: str,
        kind: str,
        *,
        run_id: str,
        ok: bool,
        source_fingerprint: str,
        details: dict[str, Any],
        actor: str,
    ) -> Check:
        """Record a verification or validation result, with the source state it was taken on.

        A passing check also advances the dataset (copied -> verified, verified -> validated) in the same
        transaction; a failing one changes no state (cutover reads the latest check of each kind).
        """
        if kind not in CHECK_KINDS:
            raise ConfigError(f"check kind {kind!r} is not one of {CHECK_KINDS}")
        by = _Who(actor, run_id)
        with self.begin() as conn:
            current = _locked_state(conn, name, self.url)
            t = now()
            details = _jsonable(details)
            payload = {"ok": ok, "source_fingerprint": source_fingerprint, "details": details}
            rec = ledger_mod.append(
                conn, kind=f"check_{kind}", dataset=name, actor=actor, run_id=run_id, payload=payload
            )
            res = conn.execute(
                CHECKS.insert().values(
                    dataset=name,
                    kind=kind,
                    run_id=run_id,
                    at=t,
                    ok=ok,
                    source_fingerprint=source_fingerprint,
                    actor=actor,
                    details=details,
                    ledger_seq=rec.seq,
                )
            )
            cid = int(res.inserted_primary_key[0])
            if ok:
                _advance(conn, name, current, kind, {"check_id": cid, "kind": kind}, source_fingerprint, t, by)
        return Check(cid, name, kind, run_id, t, ok, source_fingerprint, actor, details, rec.seq)

    def check(self, check_id: int) -> Check:
        """One check by its id (a cutover's report cites the checks its switch rested on)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(CHECKS).where(CHECKS.c.id == check_id)).first()
        if row is None:
            raise StateDatabaseError(f"no check {check_id} in the state database {self.url}")
        return _check(row)

    def latest_check(self, name: str, kind: str) -> Check | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(CHECKS)
                .where(CHECKS.c.dataset == name, CHECKS.c.kind == kind)
                .order_by(CHECKS.c.id.desc())
                .limit(1)
            ).first()
        return _check(row) if row else None

    def checks(self, name: str) -> list[Check]:
        with self.engine.connect() as conn:
            return [
                _check(r) for r in conn.execute(sa.select(CHECKS).where(CHECKS.c.dataset == name).order_by(CHECKS.c.id))
            ]

    # runs and inventories -------------------------------------------------------------------------
    def record_run(
        self,
        name: str,
        run_id: str,
        kind: str,
        *,
        actor: str,
        ok: bool,
        summary: dict[str, Any],
        started: datetime | None = None,
        finished: datetime | None = None,
    ) -> Run:
        """Record one finished run (migration, delta sync, cutover, rollback) in the runs table and ledger."""
        fin = finished or now()
        summary = _jsonable(summary)
        with self.begin() as conn:
            rec = ledger_mod.append(
                conn,
                kind=f"run_{kind}",
                dataset=name,
                actor=actor,
                run_id=run_id,
                payload={
                    "ok": ok,
                    "started": started.isoformat() if started else None,
                    "finished": fin.isoformat(),
                    "summary": summary,
                },
            )
            res = conn.execute(
                RUNS.insert().values(
                    dataset=name,
                    run_id=run_id,
                    kind=kind,
                    actor=actor,
                    started=started,
                    finished=fin,
                    ok=ok,
                    summary=summary,
                    ledger_seq=rec.seq,
                )
            )
            rid = int(res.inserted_primary_key[0])
        return Run(rid, name, run_id, kind, actor, started, fin, ok, summary, rec.seq)

    def runs(self, name: str) -> list[Run]:
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(sa.select(RUNS).where(RUNS.c.dataset == name).order_by(RUNS.c.id))]

    def set_inventory(self, name: str, *, path: str, sha256: str, fingerprint: str, run_id: str, actor: str) -> None:
        """Remember the newest full listing of the source: the base of the next delta sync."""
        with self.begin() as conn:
            ledger_mod.append(
                conn,
                kind="inventory",
                dataset=name,
                actor=actor,
                run_id=run_id,
                payload={"path": path, "sha256": sha256, "source_fingerprint": fingerprint},
            )
            res = conn.execute(
                DATASETS.update()
                .where(DATASETS.c.name == name)
                .values(
                    inventory_path=path,
                    inventory_sha256=sha256,
                    source_fingerprint=fingerprint,
                    inventory_run_id=run_id,
                    inventory_at=now(),
                )
            )
            if res.rowcount != 1:
                raise _unknown(name, self.url)

    def append_ledger(
        self, *, kind: str, dataset: str | None, actor: str, run_id: str | None, payload: dict[str, Any]
    ) -> ledger_mod.LedgerRecord:
        """A ledger record that is not a state change (a refused cutover, a mirrored deletion, a report)."""
        with self.begin() as conn:
            return ledger_mod.append(
                conn, kind=kind, dataset=dataset, actor=actor, run_id=run_id, payload=_jsonable(payload)
            )

    def record_report(
        self, *, dataset: str, actor: str, run_id: str | None, payload: dict[str, Any]
    ) -> ledger_mod.LedgerRecord:
        """A signed report recorded in the ledger; a cutover's report also makes the cutover final (it clears
        ``report_pending`` on the dataset whose catalog points at this report), in the same transaction."""
        with self.begin() as conn:
            rec = ledger_mod.append(
                conn, kind="report", dataset=dataset, actor=actor, run_id=run_id, payload=_jsonable(payload)
            )
            if payload.get("outcome") == CUT_OVER:
                conn.execute(
                    DATASETS.update()
                    .where(DATASETS.c.name == dataset, DATASETS.c.report_url == payload.get("url"))
                    .values(report_pending=False)
                )
            return rec

    # routing intents ------------------------------------------------------------------------------
    def declare_intent(
        self, name: str, *, to: str, actor: str, run_id: str, routing_url: str, document: dict[str, Any]
    ) -> RoutingIntent:
        """Commit, before the routing document is written, what it is about to say (write-ahead).

        The transition that follows deletes the row in its own transaction (``transition(intent=...)``); a
        row left behind is a switch or rollback that died between the document and the commit."""
        doc = _jsonable(document)
        with self.begin() as conn:
            _locked_state(conn, name, self.url)
            payload = {"to": to, "routing": routing_url, "authoritative": doc.get("authoritative")}
            rec = ledger_mod.append(
                conn, kind="routing_intent", dataset=name, actor=actor, run_id=run_id, payload=payload
            )
            t = now()
            res = conn.execute(
                ROUTING_INTENTS.insert().values(
                    dataset=name,
                    to_state=to,
                    run_id=run_id,
                    actor=actor,
                    at=t,
                    routing_url=routing_url,
                    document=doc,
                    ledger_seq=rec.seq,
                )
            )
            iid = int(res.inserted_primary_key[0])
        return RoutingIntent(iid, name, to, run_id, actor, t, routing_url, doc, rec.seq)

    def pending_intents(self, name: str | None = None) -> list[RoutingIntent]:
        q = sa.select(ROUTING_INTENTS).order_by(ROUTING_INTENTS.c.id)
        if name is not None:
            q = q.where(ROUTING_INTENTS.c.dataset == name)
        with self.engine.connect() as conn:
            return [_intent(r) for r in conn.execute(q)]

    def resolve_intent(
        self,
        intent: RoutingIntent,
        *,
        actor: str,
        run_id: str,
        restore: Callable[[DatasetStatus], dict[str, Any]],
    ) -> dict[str, Any] | None:
        """Resolve an intent left behind: with the dataset's row locked (so no switch is in flight on it),
        ``restore(catalog)`` rewrites the routing document from the catalog, then the intent is deleted and
        the recovery recorded, in one transaction. None if another process resolved it first."""
        with self.begin() as conn:
            _locked_state(conn, intent.dataset, self.url)
            gone = conn.execute(sa.select(ROUTING_INTENTS.c.id).where(ROUTING_INTENTS.c.id == intent.id)).first()
            if gone is None:
                return None
            row = conn.execute(sa.select(DATASETS).where(DATASETS.c.name == intent.dataset)).first()
            written = restore(_dataset(row))
            conn.execute(ROUTING_INTENTS.delete().where(ROUTING_INTENTS.c.id == intent.id))
            payload = {
                "intent": intent.id,
                "intent_seq": intent.ledger_seq,
                "intended": intent.to_state,
                "intended_by_run": intent.run_id,
                "routing": intent.routing_url,
                "restored_authoritative": written.get("authoritative"),
                "resolution": "the transition never committed: the routing document was rewritten from the catalog",
            }
            ledger_mod.append(
                conn,
                kind="routing_intent_recovered",
                dataset=intent.dataset,
                actor=actor,
                run_id=run_id,
                payload=payload,
            )
        return payload

    # ledger ---------------------------------------------------------------------------------------
    def verify_ledger(self, *, anchors: list[tuple[int, str] | ledger_mod.Anchor] | None = None) -> LedgerVerdict:
        with self.engine.connect() as conn:
            return ledger_mod.verify_ledger(conn, anchors=anchors or ())

    def ledger_head(self) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            return ledger_mod.head(conn)

    def ledger_genesis(self) -> str | None:
        """The hash of record 1: names this chain in its anchors (a rebuilt chain has another)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(LEDGER.c.hash).where(LEDGER.c.seq == 1)).first()
        return str(row.hash) if row else None

    def ledger(self, dataset: str | None = None) -> list[ledger_mod.LedgerRecord]:
        with self.engine.connect() as conn:
            return ledger_mod.records(conn, dataset=dataset)


def _unknown(name: str, url: str) -> UnknownDatasetError:
    return UnknownDatasetError(
        f"no dataset named {name!r} in the state database {url}",
        hint="run hdh_migrate_dataset for it first (it registers the dataset), or check the name with "
        "`hdh-migrate status`",
    )


@dataclass(frozen=True)
class _Who:
    """Who makes a change, and in which run: every ledger record and history row carries both."""

    actor: str
    run_id: str | None


def _locked_state(conn: Connection, name: str, url: str) -> str:
    """The dataset's state, its row locked until the transaction ends.

    SELECT ... FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): a racing transaction
    waits for the winner's commit and then reads, and reports, the state it left."""
    row = conn.execute(sa.select(DATASETS.c.state).where(DATASETS.c.name == name).with_for_update()).first()
    if row is None:
        raise _unknown(name, url)
    return str(row.state)


def _write_transition(
    conn: Connection,
    name: str,
    current: str,
    to: str,
    at: datetime,
    by: _Who,
    ledger_evidence: dict[str, Any],
    evidence: dict[str, Any],
) -> tuple[int, ledger_mod.LedgerRecord]:
    """The history row of a transition and its ledger record (``{from, to, evidence, catalog}``)."""
    payload = {"from": current, "to": to, **ledger_evidence}
    rec = ledger_mod.append(conn, kind="transition", dataset=name, actor=by.actor, run_id=by.run_id, payload=payload)
    res = conn.execute(
        TRANSITIONS.insert().values(
            dataset=name,
            from_state=current,
            to_state=to,
            at=at,
            actor=by.actor,
            run_id=by.run_id,
            evidence=_jsonable(evidence),
            ledger_seq=rec.seq,
        )
    )
    return int(res.inserted_primary_key[0]), rec


def _clear_intent(conn: Connection, name: str, intent: int) -> None:
    """Delete the transition's intent with it; gone already means a recovery pass resolved it (and rewrote
    the routing document from the catalog): this transition must not commit behind its back."""
    res = conn.execute(
        ROUTING_INTENTS.delete().where(ROUTING_INTENTS.c.id == intent, ROUTING_INTENTS.c.dataset == name)
    )
    if res.rowcount != 1:
        raise IntentResolvedError(
            f"the routing intent {intent} of {name!r} was resolved by a recovery pass before this transition "
            "could commit; nothing was switched",
            hint="run the step again (the routing document and the catalog agree)",
        )


def _advance(
    conn: Connection,
    name: str,
    current: str,
    kind: str,
    evidence: dict[str, Any],
    fingerprint: str,
    at: datetime,
    by: _Who,
) -> None:
    """A passing check moves the dataset one state on (copied -> verified, verified -> validated)."""
    before, after = {"verify": (COPIED, VERIFIED), "validate": (VERIFIED, VALIDATED)}[kind]
    if current != before:
        return
    upd = conn.execute(
        DATASETS.update().where(DATASETS.c.name == name, DATASETS.c.state == before).values(state=after, updated_at=at)
    )
    if upd.rowcount == 1:
        ledger_evidence = {"evidence": evidence, "catalog": {}}
        _write_transition(
            conn, name, before, after, at, by, ledger_evidence, evidence | {"source_fingerprint": fingerprint}
        )


def _register(conn: Connection, name: str, source_url: str, dest_url: str, required: bool, by: _Who) -> None:
    """A new dataset: planned, Azure authoritative; its registration is the first ledger record about it."""
    t = now()
    payload = {"source_url": source_url, "dest_url": dest_url, "validation_required": required}
    rec = ledger_mod.append(
        conn, kind="dataset_registered", dataset=name, actor=by.actor, run_id=by.run_id, payload=payload
    )
    conn.execute(
        DATASETS.insert().values(
            name=name,
            source_url=source_url,
            dest_url=dest_url,
            state=PLANNED,
            validation_required=required,
            authoritative="azure",
            created_at=t,
            updated_at=t,
        )
    )
    conn.execute(
        TRANSITIONS.insert().values(
            dataset=name,
            from_state="",
            to_state=PLANNED,
            at=t,
            actor=by.actor,
            run_id=by.run_id,
            evidence={"registered": True},
            ledger_seq=rec.seq,
        )
    )


def _check_registration(
    conn: Connection, ds: DatasetStatus, source_url: str, dest_url: str, required: bool | None, by: _Who
) -> None:
    """An existing dataset keeps its locations; a changed validation requirement is recorded."""
    if (ds.source_url.rstrip("/"), ds.dest_url.rstrip("/")) != (source_url.rstrip("/"), dest_url.rstrip("/")):
        raise ConfigError(
            f"dataset {ds.name!r} is registered with {ds.source_url} -> {ds.dest_url}, not {source_url} -> {dest_url}",
            hint="a dataset keeps its locations for its whole history; use another dataset name",
        )
    if required is None or required == ds.validation_required:
        return
    payload = {"validation_required": required, "was": ds.validation_required}
    ledger_mod.append(
        conn,
        kind="validation_requirement_changed",
        dataset=ds.name,
        actor=by.actor,
        run_id=by.run_id,
        payload=payload,
    )
    conn.execute(
        DATASETS.update().where(DATASETS.c.name == ds.name).values(validation_required=required, updated_at=now())
    )


def _refused(name: str, current: str, to: str) -> TransitionRefusedError:
    allowed = ALLOWED[to]
    return TransitionRefusedError(
        f"dataset {name!r} cannot go to {to!r}: it is {current!r}, and {to!r} is only allowed from "
        f"{', '.join(allowed)}",
        hint=_refusal_hint(current, to),
        current=current,
        allowed=allowed,
    )


def _jsonable(obj: Any) -> Any:
    """JSON-safe copy (datetimes as ISO text): what is stored is exactly what was hashed in the ledger."""
    return json.loads(ledger_mod.canonical(obj))


def _refusal_hint(current: str, to: str) -> str:
    if current == CUT_OVER and to == COPYING:
        return "the dataset is cut over (the sovereign store is authoritative): roll it back before syncing again"
    if to == CUT_OVER:
        return "cutover needs a verified (and, for tabular datasets, validated) dataset; see `hdh-migrate status`"
    if to == ROLLED_BACK:
        return "only a cut-over dataset can be rolled back"
    return "see `hdh-migrate status DATASET` for its state and history"


_stores: dict[str, StateStore] = {}


def open_state(url: str | None = None) -> StateStore:
    """The state store for ``url`` (default ``HDH_MIGRATE_DB_URL`` or SQLite under ``$HDH_MIGRATE_HOME``),
    with its schema migrated to the newest revision. One engine per URL per process."""
    url = url or default_url()
    with _migrate_lock:
        store = _stores.get(url)
        if store is None:
            try:
                engine = make_engine(url)
                upgrade(engine)
            except sa.exc.OperationalError as exc:
                raise StateDatabaseError(
                    f"cannot open the state database {sa.engine.make_url(url).render_as_string(hide_password=True)}:"
                    f" {str(exc.orig)[:200]}",
                    hint="check HDH_MIGRATE_DB_URL (or that $HDH_MIGRATE_HOME is writable) and that the server is up",
                ) from None
            except sa.exc.ArgumentError as exc:
                raise ConfigError(
                    f"HDH_MIGRATE_DB_URL is not a database URL: {exc}",
                    hint="e.g. postgresql+psycopg2://user@host/db or sqlite:////path/state.db",
                ) from None
            store = StateStore(engine)
            _stores[url] = store
        return store


__all__ = [
    "ALLOWED",
    "CHECKS",
    "DATASETS",
    "LEDGER",
    "ROUTING_INTENTS",
    "RUNS",
    "STATES",
    "TRANSITIONS",
    "Check",
    "DatasetStatus",
    "IntentResolvedError",
    "RoutingIntent",
    "Run",
    "StateDatabaseError",
    "StateStore",
    "Transition",
    "TransitionRefusedError",
    "UnknownDatasetError",
    "default_url",
    "open_state",
]
