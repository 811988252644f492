"""``escalade users / keys / audit`` as spec/admin.md says: from a script, on an empty
database (migrations applied first); ``keys create`` prints the secret alone on stdout;
``audit verify`` detects a changed, removed or reordered audit entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from escalade.auth.credentials import hash_api_key
from escalade.cli.main import app
from escalade.store.db import SqlStore

ESCALADE = [sys.executable, "-m", "escalade.cli.main"]


def _run(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESCALADE_DATABASE_URL": url}
    return subprocess.run(
        [*ESCALADE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def test_provisioning_from_a_script(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"  # nothing there yet: the commands migrate
    made = _run(url, "keys", "create", "--name", "first", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    secret = made.stdout
    assert secret.count("\n") == 1 and secret.startswith("esk_") and len(secret.strip()) > 40
    store = SqlStore(url)
    with store.unit_of_work() as uow:
        row = uow.api_keys.by_hash(hash_api_key(secret.strip()))
        assert row is not None and row.scopes == ["admin"]
    store.dispose()

    user = _run(
        url,
        "users",
        "create",
        "ana@example.com",
        "--role",
        "lead",
        "--team",
        "billing",
        "--team",
        "tier2",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert user.returncode == 0, user.stderr
    assert user.stdout == ""
    intake = _run(url, "keys", "create", "--name", "am", "--scope", "intake", "--team", "ops")
    assert intake.returncode == 0
    listed = _run(url, "keys", "list")
    assert '"name": "first"' in listed.stdout and '"teams": ["ops"]' in listed.stdout
    assert secret.strip() not in listed.stdout
    assert _run(url, "keys", "revoke", "am").returncode == 0
    assert '"revoked_at": null' not in _run(url, "keys", "list").stdout.splitlines()[1]

    again = _run(url, "keys", "create", "--name", "first", "--scope", "read")
    assert again.returncode == 1 and "already exists" in again.stderr and again.stdout == ""
    bad = _run(url, "keys", "create", "--name", "x", "--scope", "everything")
    assert bad.returncode == 1 and "unknown scope 'everything'" in bad.stderr
    weak = _run(
        url,
        "users",
        "create",
        "b@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    role = _run(url, "users", "create", "c@example.com", "--role", "god")
    assert role.returncode == 1 and "unknown role 'god'" in role.stderr
    gone = _run(url, "keys", "revoke", "nope")
    assert gone.returncode == 1 and "no key named 'nope'" in gone.stderr

    verified = _run(url, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert "intact: 4 entries" in verified.stderr  # 3 creations and a revocation


def _audited_store(sql_store: SqlStore, n: int = 5) -> None:
    from datetime import UTC, datetime, timedelta

    from escalade.store.rows import NewAuditEntry

    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with sql_store.unit_of_work() as uow:
        for i in range(n):
            uow.audit.append(
                NewAuditEntry(
                    at=t0 + timedelta(minutes=i),
                    actor="key:ops",
                    actor_kind="key",
                    action="escalation.acknowledge",
                    target=f"escalation:T-{i}",
                    before={"state": "open"},
                    after={"state": "acknowledged"},
                )
            )
        uow.commit()


def _tamper(sql_store: SqlStore, *statements: str) -> None:
    """What someone with the database's password could do: go around the trigger."""
    with sql_store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_no_update"))
            conn.execute(text("DROP TRIGGER audit_no_delete"))
        for sql in statements:
            conn.execute(text(sql))


TAMPERING = {
    "changed": (
        ["UPDATE audit_log SET actor = 'key:someone-else' WHERE id = 3"],
        ["entry 3: content changed since it was written"],
    ),
    "changed after": (
        ["UPDATE audit_log SET after = before WHERE id = 2"],
        ["entry 2: content changed since it was written"],
    ),
    "removed": (
        ["DELETE FROM audit_log WHERE id = 3"],
        [
            "entry 4: follows entry 2: entries between are missing",
            "entry 4: does not follow the entry before it (chain broken)",
        ],
    ),
    "last removed": (
        ["DELETE FROM audit_log WHERE id = 5"],
        [
            "log: the log holds 4 entries ending at 4, but 5 were written ending at 5: "
            "entries removed or added"
        ],
    ),
    "reordered": (
        [
            "UPDATE audit_log SET id = 100 WHERE id = 2",
            "UPDATE audit_log SET id = 2 WHERE id = 3",
            "UPDATE audit_log SET id = 3 WHERE id = 100",
        ],
        [
            "entry 2: does not follow the entry before it (chain broken)",
            "entry 2: content changed since it was written",
            "entry 3: does not follow the entry before it (chain broken)",
            "entry 3: content changed since it was written",
            "entry 4: does not follow the entry before it (chain broken)",
        ],
    ),
}


def _verify(url: str) -> Result:
    """``escalade audit verify`` in this process (a subprocess per case is slow)."""
    return CliRunner().invoke(app, ["audit", "verify", "--url", url])


@pytest.mark.parametrize("how", list(TAMPERING))
def test_audit_verify_detects_tampering(sql_store: SqlStore, how: str) -> None:
    _audited_store(sql_store)
    url = sql_store.url.render_as_string(hide_password=False)
    intact = _verify(url)
    assert intact.exit_code == 0 and "intact: 5 entries" in intact.stderr
    statements, expected = TAMPERING[how]
    _tamper(sql_store, *statements)
    broken = _verify(url)
    assert broken.exit_code == 1
    assert "NOT intact" in broken.stderr
    for line in expected:
        assert line in broken.stdout.splitlines(), broken.stdout
