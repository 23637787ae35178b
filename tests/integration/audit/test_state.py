"""The migration state database: schema by migrations, atomic transitions, history, checks.

Runs on SQLite (the embedded default) and on PostgreSQL when a server answers on 127.0.0.1:5432 (each test
gets its own schema in the database ``hdh_migrate_test``); the PostgreSQL cases skip with the reason
otherwise (the ``state_url`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from hdh_migrate.audit import state as state_mod
from hdh_migrate.audit.state import (
    StateDatabaseError,
    StateStore,
    TransitionRefusedError,
    UnknownDatasetError,
    open_state,
    schema_revision,
)
from hdh_migrate.errors import ConfigError
from tests.helpers import close_state

SRC, DST = "azure://snds/dcir", "s3://hdh-sovereign/dcir"


def _to_verified(st: StateStore, name: str = "dcir") -> None:
    st.ensure_dataset(name, SRC, DST, actor="alice", run_id="migrate-1")
    st.transition(name, "copying", actor="alice", run_id="migrate-1")
    st.transition(name, "copied", actor="alice", run_id="migrate-1", evidence={"copied": 12})
    st.record_check(
        name, "verify", run_id="migrate-1", ok=True, source_fingerprint="v1:12:aa", details={}, actor="alice"
    )


def test_schema_is_created_by_the_migrations(state_url: str) -> None:
    st = open_state(state_url)
    assert schema_revision(st.engine) == "0002"
    tables = set(sa.inspect(st.engine).get_table_names())
    assert {"datasets", "transitions", "checks", "runs", "ledger", "routing_intents", "alembic_version"} <= tables
    # opening again (another process, a new release) is an idempotent upgrade
    state_mod.upgrade(st.engine)
    assert schema_revision(st.engine) == "0002"


def test_a_database_of_the_first_release_is_upgraded_in_place(state_url: str) -> None:
    """0001 -> 0002 (routing intents, report_pending) keeps every dataset, which owes no report."""
    from alembic import command
    from alembic.config import Config

    engine = state_mod.make_engine(state_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(state_mod.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO datasets (name, source_url, dest_url, state, validation_required, authoritative, "
                "created_at, updated_at) VALUES ('old', :s, :d, 'cut_over', true, 's3', :t, :t)"
            ),
            {"s": SRC, "d": DST, "t": datetime.now(UTC)},
        )
    engine.dispose()
    st = open_state(state_url)
    assert schema_revision(st.engine) == "0002"
    assert st.get("old").state == "cut_over" and st.get("old").report_pending is False
    assert st.pending_intents() == []


def test_lifecycle_records_who_when_which_run_and_evidence(state_url: str) -> None:
    st = open_state(state_url)
    _to_verified(st)
    assert st.get("dcir").state == "verified"  # a passing verification advances copied -> verified
    st.record_check(
        "dcir",
        "validate",
        run_id="gx-1",
        ok=True,
        source_fingerprint="v1:12:aa",
        details={"tables": ["er_prs_f"]},
        actor="bob",
    )
    assert st.get("dcir").state == "validated"
    st.transition(
        "dcir",
        "cut_over",
        actor="carol",
        run_id="cutover-1",
        evidence={"report": "s3://x/r.json"},
        catalog={"authoritative": "s3", "authoritative_run_id": "cutover-1"},
    )
    ds = st.get("dcir")
    assert (ds.state, ds.authoritative, ds.authoritative_run_id) == ("cut_over", "s3", "cutover-1")
    st.transition(
        "dcir",
        "rolled_back",
        actor="dave",
        run_id="rollback-1",
        evidence={"reason": "consumer bug"},
        catalog={"authoritative": "azure"},
    )
    hist = st.history("dcir")
    assert [(t.from_state, t.to_state, t.actor, t.run_id) for t in hist] == [
        ("", "planned", "alice", "migrate-1"),
        ("planned", "copying", "alice", "migrate-1"),
        ("copying", "copied", "alice", "migrate-1"),
        ("copied", "verified", "alice", "migrate-1"),
        ("verified", "validated", "bob", "gx-1"),
        ("validated", "cut_over", "carol", "cutover-1"),
        ("cut_over", "rolled_back", "dave", "rollback-1"),
    ]
    assert hist[2].evidence == {"copied": 12}
    assert hist[5].evidence == {"report": "s3://x/r.json"}
    assert all(t.at.tzinfo is not None and t.at.utcoffset().total_seconds() == 0 for t in hist)
    assert st.get("dcir").authoritative == "azure"
    # every state change is in the ledger, chained
    kinds = [r.kind for r in st.ledger("dcir")]
    assert kinds.count("transition") == 6 and "check_verify" in kinds and "check_validate" in kinds
    assert st.verify_ledger().ok


def test_transitions_only_from_allowed_states_with_the_reason(state_url: str) -> None:
    st = open_state(state_url)
    st.ensure_dataset("dcir", SRC, DST, actor="alice")
    with pytest.raises(TransitionRefusedError) as exc:
        st.transition("dcir", "cut_over", actor="mallory")
    assert exc.value.current == "planned" and "verified" in exc.value.allowed
    assert "it is 'planned'" in str(exc.value)
    assert "only allowed from verified, validated, rolled_back" in str(exc.value)
    assert st.get("dcir").state == "planned"
    assert len(st.history("dcir")) == 1  # a refused transition leaves no history row
    _to_verified(st, "pmsi")
    st.transition("pmsi", "cut_over", actor="carol")
    with pytest.raises(TransitionRefusedError, match="roll it back before syncing"):
        st.transition("pmsi", "copying", actor="cron")
    with pytest.raises(UnknownDatasetError, match="no dataset named 'nope'"):
        st.transition("nope", "copying", actor="x")
    with pytest.raises(ConfigError):
        st.transition("pmsi", "deleted", actor="x")


def test_a_failed_check_does_not_advance_the_state(state_url: str) -> None:
    st = open_state(state_url)
    st.ensure_dataset("dcir", SRC, DST, actor="alice")
    st.transition("dcir", "copying", actor="alice")
    st.transition("dcir", "copied", actor="alice")
    st.record_check(
        "dcir",
        "verify",
        run_id="v1",
        ok=False,
        source_fingerprint="v1:3:ab",
        details={"reason": "2 missing"},
        actor="alice",
    )
    assert st.get("dcir").state == "copied"
    last = st.latest_check("dcir", "verify")
    assert last is not None and not last.ok and last.details == {"reason": "2 missing"} and last.run_id == "v1"


def test_concurrent_cutovers_exactly_one_wins(state_url: str) -> None:
    """Eight workers race to cut the same dataset over: the conditional UPDATE lets exactly one through."""
    st = open_state(state_url)
    _to_verified(st)
    wins: list[str] = []
    refusals: list[TransitionRefusedError] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            st.transition("dcir", "cut_over", actor=f"worker-{i}", run_id=f"run-{i}")
            wins.append(f"worker-{i}")
        except TransitionRefusedError as exc:
            refusals.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 1 and len(refusals) == 7
    assert all(r.current == "cut_over" for r in refusals)
    assert [t.to_state for t in st.history("dcir")].count("cut_over") == 1
    verdict = st.verify_ledger()
    assert verdict.ok, verdict.reason


def test_a_dataset_keeps_its_locations(sqlite_url: str) -> None:
    st = open_state(sqlite_url)
    st.ensure_dataset("dcir", SRC, DST, actor="alice")
    assert st.ensure_dataset("dcir", SRC + "/", DST, actor="alice").state == "planned"  # same place
    with pytest.raises(ConfigError, match="keeps its locations"):
        st.ensure_dataset("dcir", SRC, "s3://elsewhere/dcir", actor="alice")
    st.ensure_dataset("dcir", SRC, DST, actor="alice", validation_required=False)
    assert st.get("dcir").validation_required is False
    assert [r.kind for r in st.ledger("dcir")][-1] == "validation_requirement_changed"


def test_default_database_is_sqlite_under_hdh_migrate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HDH_MIGRATE_DB_URL", raising=False)
    monkeypatch.setenv("HDH_MIGRATE_HOME", str(tmp_path / "home"))
    assert state_mod.default_url() == f"sqlite:///{tmp_path / 'home' / 'state.db'}"
    st = open_state()
    try:
        assert (tmp_path / "home" / "state.db").exists() and st.status() == []
    finally:
        close_state(state_mod.default_url())


def test_unreachable_database_fails_with_what_to_do() -> None:
    with pytest.raises(StateDatabaseError) as exc:
        open_state("postgresql+psycopg2://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
    assert "HDH_MIGRATE_DB_URL" in str(exc.value)
