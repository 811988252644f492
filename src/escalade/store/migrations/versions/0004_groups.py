"""Grouping keys of escalations, indexed by key and time, so finding the escalations related
to a new one reads only those (issue 15). Open escalations are filed under every kind of
key a related-issue threshold can use.

Revision ID: 0004_groups
Revises: 0003_auth
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

from escalade.store.types import JSONType, UTCDateTime

revision = "0004_groups"
down_revision = "0003_auth"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = ("open", "acknowledged", "investigating")


def _keys(policy: str, row: Any) -> list[str]:
    """The grouping keys of an escalation, as ``escalade.escalation.triggers`` makes them
    (frozen here: a migration does not follow later code)."""
    customer = row.customer or {}
    fields = (row.package or {}).get("fields", {}) or {}
    values = {
        "category": row.category,
        "customer": str(customer.get("email") or customer.get("id") or "").strip().lower(),
        "alert_key": str(fields.get("alert_key") or "").strip(),
        "text": hashlib.sha1((row.subject or "").lower().encode()).hexdigest()[:12],
    }
    return [f"{policy}:{kind}:{value}" for kind, value in values.items() if value]


def upgrade() -> None:
    groups = op.create_table(
        "escalation_groups",
        sa.Column("key", sa.String(400)),
        sa.Column("escalation_id", Id),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", "escalation_id", name="pk_escalation_groups"),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name="fk_escalation_groups_escalation_id_escalations",
        ),
    )
    op.create_index(
        "ix_escalation_groups_key_created_at", "escalation_groups", ["key", "created_at"]
    )
    escalations = sa.table(
        "escalations",
        sa.column("id", Id),
        sa.column("policy_version_id", Id),
        sa.column("state", sa.String),
        sa.column("category", sa.String),
        sa.column("subject", sa.Text),
        sa.column("customer", JSONType),
        sa.column("package", JSONType),
        sa.column("created_at", UTCDateTime),
    )
    versions = sa.table("policy_versions", sa.column("id", Id), sa.column("name", sa.String))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(escalations, versions.c.name)
        .join(versions, versions.c.id == escalations.c.policy_version_id)
        .where(escalations.c.state.in_(ACTIVE))
    )
    filed = [
        {"key": key, "escalation_id": row.id, "created_at": row.created_at}
        for row in rows
        if not ((row.package or {}).get("fields", {}) or {}).get("incident")
        for key in _keys(row.name, row)
    ]
    if filed:
        bind.execute(groups.insert(), filed)


def downgrade() -> None:
    op.drop_index("ix_escalation_groups_key_created_at", table_name="escalation_groups")
    op.drop_table("escalation_groups")
