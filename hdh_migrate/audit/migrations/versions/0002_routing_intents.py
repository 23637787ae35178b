"""Write-ahead intents for the routing document, and the report a cutover still owes.

- ``routing_intents``: one row per switch or rollback in flight, committed *before* the routing document is
  written and deleted in the transaction that commits the transition. A row left behind means the document
  may say something the catalog does not; the recovery pass (``runs/recovery.py``) makes them agree.
- ``datasets.report_pending``: set by the cut_over transition, cleared when its signed report is recorded;
  a cutover is not final while it is set (``hdh-migrate status`` shows it, the recovery pass writes it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("report_pending", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "routing_intents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routing_url", sa.Text, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("ledger_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_routing_intents_dataset", "routing_intents", ["dataset", "id"])


def downgrade() -> None:
    op.drop_index("ix_routing_intents_dataset", "routing_intents")
    op.drop_table("routing_intents")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("report_pending")
