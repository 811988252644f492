"""Issuing API keys in tests, as ``escalade keys create`` does."""

from __future__ import annotations

from collections.abc import Sequence
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
