"""Initial schema: policies, escalations, timeline, timers, outbox, activity, alert keys,
and the exactly-once ledger.

Revision ID: 0001
Revises:
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalade.store.types import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("state = 'pending'")
LEASED = sa.text("state = 'pending' AND lease_until IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("id", Id, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_versions"),
        sa.UniqueConstraint("content_hash", name="uq_policy_versions_content_hash"),
    )
    op.create_table(
        "escalations",
        sa.Column("id", Id),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("policy_version_id", Id, nullable=False),
        sa.Column("parent_id", Id, nullable=True),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("category", sa.String(80), nullable=True),
        sa.Column("team", sa.String(80), nullable=True),
        sa.Column("level", sa.String(80), nullable=True),
        sa.Column("priority", sa.String(80), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("snapshot", JSONType, nullable=False),
        sa.Column("customer", JSONType, nullable=False),
        sa.Column("package", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
        sa.UniqueConstraint("ref", name="uq_escalations_ref"),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_versions.id"],
            name="fk_escalations_policy_version_id_policy_versions",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["escalations.id"], name="fk_escalations_parent_id_escalations"
        ),
    )
    op.create_index("ix_escalations_parent_id", "escalations", ["parent_id"])
    op.create_index("ix_escalations_state_team", "escalations", ["state", "team"])
    op.create_index("ix_escalations_created_at", "escalations", ["created_at"])

    op.create_table(
        "timeline",
        sa.Column("id", Id),
        sa.Column("escalation_id", Id, nullable=True),  # None: not about one escalation
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name="fk_timeline_escalation_id_escalations"
        ),
    )
    op.create_index("ix_timeline_escalation_id_id", "timeline", ["escalation_id", "id"])
    op.create_index("ix_timeline_at", "timeline", ["at"])

    op.create_table(
        "timers",
        sa.Column("id", Id),
        sa.Column("escalation_id", Id, nullable=True),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("created_at", UTCDateTime, nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("fired_at", UTCDateTime, nullable=True),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        sa.UniqueConstraint("idempotency_key", name="uq_timers_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name="fk_timers_escalation_id_escalations"
        ),
    )
    op.create_index("ix_timers_escalation_id", "timers", ["escalation_id"])
    op.create_index(
        "ix_timers_pending_due",
        "timers",
        ["due_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_timers_pending_lease",
        "timers",
        ["lease_until"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )

    op.create_table(
        "outbox",
        sa.Column("id", Id),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("escalation_id", Id, nullable=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(300), nullable=False),
        sa.Column("audience", sa.String(40), nullable=False),
        sa.Column("template", sa.String(80), nullable=True),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("available_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name="fk_outbox_escalation_id_escalations"
        ),
    )
    op.create_index("ix_outbox_escalation_id", "outbox", ["escalation_id"])
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )

    op.create_table(
        "activity",
        sa.Column("id", Id),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(120), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id", name="pk_activity"),
    )
    op.create_index("ix_activity_actor_action_at", "activity", ["actor", "action", "at"])
    op.create_index("ix_activity_action_at", "activity", ["action", "at"])

    op.create_table(
        "alert_keys",
        sa.Column("key", sa.String(300)),
        sa.Column("escalation_id", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_alert_keys"),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name="fk_alert_keys_escalation_id_escalations"
        ),
    )

    op.create_table(
        "actions_done",
        sa.Column("idempotency_key", sa.String(300)),
        sa.Column("done_at", UTCDateTime, nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_actions_done"),
    )

    _timeline_append_only()


def _timeline_append_only() -> None:
    """The database itself refuses to rewrite history."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION escalade_timeline_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the timeline is append-only: % refused', TG_OP
                    USING ERRCODE = 'restrict_violation';
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER timeline_append_only BEFORE UPDATE OR DELETE ON timeline "
            "FOR EACH ROW EXECUTE FUNCTION escalade_timeline_append_only()"
        )
        op.execute(
            "CREATE TRIGGER timeline_no_truncate BEFORE TRUNCATE ON timeline "
            "FOR EACH STATEMENT EXECUTE FUNCTION escalade_timeline_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER timeline_no_{verb.lower()} BEFORE {verb} ON timeline "
                f"BEGIN SELECT RAISE(ABORT, 'the timeline is append-only: {verb} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS timeline_no_truncate ON timeline")
        op.execute("DROP TRIGGER IF EXISTS timeline_append_only ON timeline")
        op.execute("DROP FUNCTION IF EXISTS escalade_timeline_append_only()")
    for table in (
        "actions_done",
        "alert_keys",
        "activity",
        "outbox",
        "timers",
        "timeline",
        "escalations",
        "policy_versions",
    ):
        op.drop_table(table)
