"""Settings from the environment, read when ``bootstrap`` is called (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///./escalade.db"
DEFAULT_POLICY = Path("examples/policies/platform-operations.yaml")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    policy_path: Path | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        url = os.environ.get("ESCALADE_DATABASE_URL", DEFAULT_DATABASE_URL)
        policy_env = os.environ.get("ESCALADE_POLICY")
        policy = Path(policy_env) if policy_env else None
        if policy is None and DEFAULT_POLICY.exists():
            policy = DEFAULT_POLICY
        values: dict[str, object] = {"database_url": url, "policy_path": policy}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
