"""Initial schema: datasets (with the catalog), transitions, checks, runs, and the audit ledger.

History tables (ledger, transitions, checks, runs) refuse UPDATE and DELETE in the database itself
(triggers on SQLite and PostgreSQL, plus TRUNCATE on PostgreSQL): the application only ever appends, and
an accidental or malicious edit through the database has to drop a trigger first -- which the ledger's
hash chain then exposes anyway.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger", "transitions", "checks", "runs")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("source_url", sa.Text, nullable=False),
        sa.Column("dest_url", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("validation_required", sa.Boolean, nullable=False),
        sa.Column("authoritative", sa.String(10), nullable=False),
        sa.Column("authoritative_since", sa.DateTime(timezone=True)),
        sa.Column("authoritative_run_id", sa.String(250)),
        sa.Column("routing_url", sa.Text),
        sa.Column("report_url", sa.Text),
        sa.Column("inventory_path", sa.Text),
        sa.Column("inventory_sha256", sa.String(64)),
        sa.Column("source_fingerprint", sa.String(100)),
        sa.Column("inventory_run_id", sa.String(250)),
        sa.Column("inventory_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('planned','copying','copied','verified','validated','cut_over','rolled_back')",
            name="ck_datasets_state",
        ),
        sa.CheckConstraint("authoritative IN ('azure','s3')", name="ck_datasets_authoritative"),
    )
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(250)),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("ledger_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_transitions_dataset", "transitions", ["dataset", "id"])
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("source_fingerprint", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("ledger_seq", sa.Integer, nullable=False),
        sa.CheckConstraint("kind IN ('verify','validate')", name="ck_checks_kind"),
    )
    op.create_index("ix_checks_dataset_kind", "checks", ["dataset", "kind", "id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True)),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("ledger_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_runs_dataset", "runs", ["dataset", "id"])
    op.create_table(
        "ledger",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("dataset", sa.String(100)),
        sa.Column("actor", sa.String(200)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("""
            CREATE FUNCTION hdh_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'hdh-migrate: % on % refused: this table is append-only (audit history)',
                    TG_OP, TG_TABLE_NAME;
            END $$""")
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION hdh_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION hdh_append_only()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for op_name in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'hdh-migrate: {op_name} on {table} refused: this table is append-only "
                    "(audit history)'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        elif dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hdh_append_only()")
    for table in ("ledger", "runs", "checks", "transitions", "datasets"):
        op.drop_table(table)
