"""The audit ledger: append-only in the database, and a hash chain that exposes any edit, removal or reordering.

Tampering is simulated the way an insider with database rights would do it: drop or disable the
append-only triggers, then change the rows. ``hdh-migrate audit verify`` must then fail and name the record.
"""

from __future__ import annotations

import itertools
import json

import pytest
import sqlalchemy as sa

from hdh_migrate.audit.state import StateStore, open_state
from tests.helpers import run_cli

SRC, DST = "azure://snds/dcir", "s3://hdh-sovereign/dcir"


def _filled(url: str) -> StateStore:
    """Nine records: registration, transitions, a check, a run."""
    st = open_state(url)
    st.ensure_dataset("dcir", SRC, DST, actor="alice", run_id="m1")
    st.transition("dcir", "copying", actor="alice", run_id="m1")
    st.transition("dcir", "copied", actor="alice", run_id="m1", evidence={"copied": 3})
    st.record_check(
        "dcir", "verify", run_id="m1", ok=True, source_fingerprint="v1:3:ab", details={"matched": 3}, actor="alice"
    )  # + the copied -> verified transition
    st.record_run("dcir", "m1", "migrate", actor="alice", ok=True, summary={"copied": 3})
    st.append_ledger(kind="note", dataset="dcir", actor="bob", run_id=None, payload={"text": "dual run starts"})
    st.transition("dcir", "cut_over", actor="carol", run_id="c1")
    st.transition("dcir", "rolled_back", actor="dave", run_id="r1")
    assert st.ledger_head()[0] == 9
    return st


def _tamper(st: StateStore, *statements: str) -> None:
    """As a database administrator: switch the append-only triggers off, change rows, switch them back on."""
    with st.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ledger DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER ledger_no_update")
            conn.exec_driver_sql("DROP TRIGGER ledger_no_delete")
        for s in statements:
            conn.exec_driver_sql(s)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE ledger ENABLE TRIGGER USER")


def test_chain_is_intact_and_each_record_links_to_the_previous(state_url: str) -> None:
    st = _filled(state_url)
    recs = st.ledger()
    assert [r.seq for r in recs] == list(range(1, 10))
    assert recs[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(recs))
    assert recs[2].payload["evidence"] == {"copied": 3} and recs[2].actor == "alice" and recs[2].run_id == "m1"
    v = st.verify_ledger()
    assert v.ok and v.records == 9 and v.head_seq == 9 and v.head_hash == recs[-1].hash
    r = run_cli("audit", "verify", "--db", state_url)
    assert r.returncode == 0, r.stderr
    assert "audit ledger OK: 9 records" in r.stdout


def test_the_database_refuses_to_change_or_delete_history(state_url: str) -> None:
    st = _filled(state_url)
    for stmt in (
        "UPDATE ledger SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM ledger WHERE seq = 9",
        "UPDATE transitions SET actor = 'mallory'",
        "DELETE FROM checks",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), st.engine.begin() as conn:
            conn.exec_driver_sql(stmt)
    assert st.verify_ledger().ok


def test_editing_one_record_is_detected(state_url: str) -> None:
    st = _filled(state_url)
    rec = st.ledger()[4]
    forged = rec.payload | {"ok": False}
    payload = json.dumps(forged, sort_keys=True, separators=(",", ":")).replace("'", "''")
    _tamper(st, f"UPDATE ledger SET payload = '{payload}' WHERE seq = 5")
    v = st.verify_ledger()
    assert not v.ok and v.broken_seq == 5 and "edited" in v.reason
    r = run_cli("audit", "verify", "--db", state_url)
    assert r.returncode == 1
    assert "audit ledger BROKEN at record 5: record 5 was edited" in r.stderr


def test_editing_only_the_actor_is_detected(state_url: str) -> None:
    st = _filled(state_url)
    _tamper(st, "UPDATE ledger SET actor = 'someone-else' WHERE seq = 7")
    v = st.verify_ledger()
    assert not v.ok and v.broken_seq == 7 and "edited" in v.reason


def test_removing_one_record_is_detected(state_url: str) -> None:
    st = _filled(state_url)
    _tamper(st, "DELETE FROM ledger WHERE seq = 4")
    v = st.verify_ledger()
    assert not v.ok and v.broken_seq == 4 and "missing" in v.reason and "removed" in v.reason


def test_removing_a_record_and_renumbering_is_detected(state_url: str) -> None:
    st = _filled(state_url)
    _tamper(
        st,
        "DELETE FROM ledger WHERE seq = 4",
        *(f"UPDATE ledger SET seq = {s - 1} WHERE seq = {s}" for s in range(5, 10)),
    )
    v = st.verify_ledger()
    assert not v.ok and v.broken_seq == 4 and "removed or replaced" in v.reason


def test_reordering_records_is_detected(state_url: str) -> None:
    st = _filled(state_url)
    _tamper(
        st,
        "UPDATE ledger SET seq = -1 WHERE seq = 6",
        "UPDATE ledger SET seq = 6 WHERE seq = 7",
        "UPDATE ledger SET seq = 7 WHERE seq = -1",
    )
    v = st.verify_ledger()
    assert not v.ok and v.broken_seq == 6 and "reordered" in v.reason
    r = run_cli("audit", "verify", "--db", state_url, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["broken_seq"] == 6


def test_removing_the_last_records_is_caught_by_a_report_anchor(state_url: str) -> None:
    """A shorter chain is still a valid chain; the ledger head signed into a report proves it was longer."""
    st = _filled(state_url)
    head = st.ledger_head()
    _tamper(st, "DELETE FROM ledger WHERE seq >= 8")
    assert st.verify_ledger().ok  # the chain alone cannot see it...
    v = st.verify_ledger(anchors=[head])
    assert not v.ok and v.broken_seq == 9 and "removed from its end" in v.reason  # ...the anchor does
