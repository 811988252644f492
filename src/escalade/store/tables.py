"""The tables, as SQLAlchemy Core. The migrations in ``migrations/versions`` create them;
``tests/store/test_migrations.py`` checks that the two agree.

Times are ``UTCDateTime`` (aware UTC); documents are ``JSONType``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from escalade.store.types import JSONType, UTCDateTime

# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid (autoincrement).
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("applied_by", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ref", String(64), nullable=False, unique=True),
    Column("policy_version_id", Id, ForeignKey("policy_versions.id"), nullable=False),
    Column("parent_id", Id, ForeignKey("escalations.id"), nullable=True, index=True),
    Column("subject", Text, nullable=False, server_default=""),
    Column("state", String(32), nullable=False),
    Column("category", String(80), nullable=True),
    Column("team", String(80), nullable=True),
    Column("level", String(80), nullable=True),
    Column("priority", String(80), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("snapshot", JSONType, nullable=False),
    Column("customer", JSONType, nullable=False),
    Column("package", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Index(None, "state", "team"),
    Index(None, "created_at"),
    # keyset pages (newest first, ``id < cursor``) of every filter the API offers: a rare
    # state, team, category or priority is read through its index, never by a table scan
    Index(None, "state", "id"),
    Index(None, "team", "id"),
    Index(None, "category", "id"),
    Index(None, "priority", "id"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Id, primary_key=True),
    # None for what concerns no single escalation (an on-call hand-off)
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(80), nullable=False),
    Column("reason", Text, nullable=True),
    Column("data", JSONType, nullable=False),
    Index(None, "escalation_id", "id"),
    Index(None, "at"),
)

timers = Table(
    "timers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=True, index=True),
    Column("kind", String(80), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("payload", JSONType, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("created_at", UTCDateTime, nullable=True),
    Column("claimed_by", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("fired_at", UTCDateTime, nullable=True),
    Column("late", Boolean, nullable=False, server_default=text("false")),
    Column("last_error", Text, nullable=True),
    # The claim scans only pending timers, in due order.
    Index(
        "ix_timers_pending_due",
        "due_at",
        "id",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    # Claimed or backing-off timers: when does the next lease run out?
    Index(
        "ix_timers_pending_lease",
        "lease_until",
        postgresql_where=text("state = 'pending' AND lease_until IS NOT NULL"),
        sqlite_where=text("state = 'pending' AND lease_until IS NOT NULL"),
    ),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=True, index=True),
    Column("channel", String(40), nullable=False),
    Column("recipient", String(300), nullable=False),
    Column("audience", String(40), nullable=False),
    Column("template", String(80), nullable=True),
    Column("payload", JSONType, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(
        "ix_outbox_pending",
        "available_at",
        "id",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    # Messages being delivered or backing off: when does the next lease run out?
    Index(
        "ix_outbox_pending_lease",
        "lease_until",
        postgresql_where=text("state = 'pending' AND lease_until IS NOT NULL"),
        sqlite_where=text("state = 'pending' AND lease_until IS NOT NULL"),
    ),
)

activity = Table(
    "activity",
    metadata,
    Column("id", Id, primary_key=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(120), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False, server_default=text("1")),
    Index(None, "actor", "action", "at"),
    Index(None, "action", "at"),
)

alert_keys = Table(
    "alert_keys",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

escalation_groups = Table(
    "escalation_groups",
    metadata,
    # "<policy id>:<related kind>:<value>": relations stay within one policy
    Column("key", String(400), primary_key=True),
    Column("escalation_id", Id, ForeignKey("escalations.id"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "key", "created_at"),
)

actions_done = Table(
    "actions_done",
    metadata,
    Column("idempotency_key", String(300), primary_key=True),
    Column("done_at", UTCDateTime, nullable=False),
    Column("worker", String(200), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", Id, ForeignKey("outbox.id"), nullable=False, index=True),
    Column("idempotency_key", String(300), nullable=False),
    Column("escalation_id", Id, ForeignKey("escalations.id"), nullable=True),
    Column("channel", String(40), nullable=False),
    Column("recipient", String(300), nullable=False),
    Column("event", String(20), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("instance", String(80), nullable=True),
    Column("error", Text, nullable=True),
    Column("retry_at", UTCDateTime, nullable=True),
    Index(None, "escalation_id", "id"),
)

# --------------------------------------------------------------------------- people, keys, audit
# (migration 0003_auth)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("role", String(40), nullable=False),
    Column("teams", JSONType, nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("person", String(80), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSONType, nullable=False),
    Column("teams", JSONType, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("action", String(120), nullable=False),
    Column("target", String(300), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("address", String(80), nullable=True),
    Column("before", JSONType, nullable=True),
    Column("after", JSONType, nullable=True),
    Column("detail", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "at"),
)

# One row (id 1): how many audit entries were written and the last hash. Appending locks
# it, so concurrent writers take turns and the chain never forks; and removing the last
# entries is detected.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# --------------------------------------------------------------------------- on call, activations
# (migration 0006_overrides)

# On-call overrides made over the API: ``person`` is on call in ``schedule`` from ``start_at``
# to ``end_at`` (half-open, UTC) in place of ``replaces`` (or of the highest layer's person).
oncall_overrides = Table(
    "oncall_overrides",
    metadata,
    Column("id", Id, primary_key=True),
    Column("schedule", String(80), nullable=False),
    Column("person", String(80), nullable=False),
    Column("replaces", String(80), nullable=True),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "schedule", "end_at"),
)

# Which policy version is active, for every process on the database: the newest row wins.
# Each process compares its own active version with it (a one-row read) and swaps.
policy_activations = Table(
    "policy_activations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("policy_version_id", Id, ForeignKey("policy_versions.id"), nullable=False),
    Column("activated_by", String(320), nullable=False),
    Column("activated_at", UTCDateTime, nullable=False),
)
