"""Building a :class:`Router` for a policy file: the policy plus its learned triage models.

This is the edge where model files are read; the router itself stays pure.
"""

from __future__ import annotations

from pathlib import Path

from escalade.policy import Policy, load_policy
from escalade.routing.router import Predictor, Router


class ModelLoadError(Exception):
    """A triage model named in the policy cannot be used."""


def load_classifiers(policy: Policy, policy_dir: Path) -> dict[str, Predictor]:
    """The learned models a policy names, keyed by the field they decide."""
    if not policy.routing.triage:
        return {}
    from escalade.triage.model import get_classifier

    out: dict[str, Predictor] = {}
    for spec in policy.routing.triage:
        path = Path(spec.model)
        if not path.is_absolute():
            path = policy_dir / path
        try:
            out[spec.field] = get_classifier(path)
        except Exception as exc:  # any failure to load a model is the policy's problem
            raise ModelLoadError(f"{path}: triage model for '{spec.field}': {exc}") from exc
    return out


def router_for(policy: Policy, policy_path: Path | None) -> Router:
    base = policy_path.parent if policy_path is not None else Path.cwd()
    return Router(policy, load_classifiers(policy, base))


def load_router(policy_path: Path, *, allow_includes_outside: bool = False) -> Router:
    """Read, check and prepare a policy file (raises PolicyInvalid with every problem)."""
    policy = load_policy(policy_path, allow_includes_outside=allow_includes_outside)
    return router_for(policy, policy_path)
