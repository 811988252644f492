"""On-call overrides made over the API (``oncall_overrides``), and which policy version is
active for every process on the database (``policy_activations``: the newest row wins),
issue 19.

Revision ID: 0006_overrides
Revises: 0005_perf
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escalade.store.types import UTCDateTime

revision = "0006_overrides"
down_revision = "0005_perf"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oncall_overrides",
        sa.Column("id", Id),
        sa.Column("schedule", sa.String(80), nullable=False),
        sa.Column("person", sa.String(80), nullable=False),
        sa.Column("replaces", sa.String(80), nullable=True),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oncall_overrides"),
    )
    op.create_index(
        "ix_oncall_overrides_schedule_end_at", "oncall_overrides", ["schedule", "end_at"]
    )
    activations = op.create_table(
        "policy_activations",
        sa.Column("id", Id),
        sa.Column("policy_version_id", Id, nullable=False),
        sa.Column("activated_by", sa.String(320), nullable=False),
        sa.Column("activated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_activations"),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_versions.id"],
            name="fk_policy_activations_policy_version_id_policy_versions",
        ),
    )
    # the version that was active before: the most recently applied one (what a restarted
    # process took up until now)
    versions = sa.table(
        "policy_versions",
        sa.column("id", Id),
        sa.column("applied_by", sa.String),
        sa.column("applied_at", UTCDateTime),
    )
    conn = op.get_bind()
    latest = conn.execute(
        sa.select(versions.c.id, versions.c.applied_by, versions.c.applied_at)
        .order_by(versions.c.id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        op.bulk_insert(
            activations,
            [
                {
                    "policy_version_id": latest.id,
                    "activated_by": latest.applied_by,
                    "activated_at": latest.applied_at,
                }
            ],
        )


def downgrade() -> None:
    op.drop_table("policy_activations")
    op.drop_index("ix_oncall_overrides_schedule_end_at", table_name="oncall_overrides")
    op.drop_table("oncall_overrides")
