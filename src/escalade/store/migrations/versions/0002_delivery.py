"""The delivery log: one row per event of each outbox message (queued, sent, failed,
retrying, gave up, undeliverable, cancelled).

Revision ID: 0002_delivery
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalade.store.types import UTCDateTime

revision = "0002_delivery"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", Id),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("escalation_id", Id, nullable=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(300), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("instance", sa.String(80), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("retry_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["message_id"], ["outbox.id"], name="fk_deliveries_message_id_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name="fk_deliveries_escalation_id_escalations"
        ),
    )
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_escalation_id_id", "deliveries", ["escalation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_escalation_id_id", table_name="deliveries")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.drop_table("deliveries")
