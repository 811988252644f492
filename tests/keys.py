"""Issuing API keys in tests, as ``escalade keys create`` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from escalade.auth.provision import create_key
from escalade.store import Store

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def issue_key(
    store: Store, *scopes: str, teams: Sequence[str] = (), name: str | None = None
) -> str:
    """A new key's secret."""
    label = name or f"test-{'-'.join(scopes)}-{'-'.join(teams) or 'all'}"
    secret, _ = create_key(
        store, name=label, scopes=scopes, teams=teams, at=T0, actor="tests", actor_kind="cli"
    )
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def cli_key(env: Mapping[str, str], name: str, scope: str = "admin") -> str:
    """A key made as an operator makes one, ``escalade keys create``, against the database
    of ``env``'s ESCALADE_DATABASE_URL (as ``escalade serve`` started with ``env`` uses)."""
    done = subprocess.run(
        [sys.executable, "-m", "escalade.cli.main", "keys", "create", "--name", name,
         "--scope", scope],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
