"""Indexes for issue 20: keyset pages of every list filter the API offers (state, team,
category, priority, newest first) read through an index instead of scanning the table, and
the outbox's next lease to run out is found without reading every pending message.

Revision ID: 0005_perf
Revises: 0004_groups
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_perf"
down_revision = "0004_groups"
branch_labels = None
depends_on = None

LIST_FILTERS = ("state", "team", "category", "priority")
LEASED = "state = 'pending' AND lease_until IS NOT NULL"


def upgrade() -> None:
    for column in LIST_FILTERS:
        op.create_index(f"ix_escalations_{column}_id", "escalations", [column, "id"])
    op.create_index(
        "ix_outbox_pending_lease",
        "outbox",
        ["lease_until"],
        postgresql_where=sa.text(LEASED),
        sqlite_where=sa.text(LEASED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_lease", table_name="outbox")
    for column in reversed(LIST_FILTERS):
        op.drop_index(f"ix_escalations_{column}_id", table_name="escalations")
