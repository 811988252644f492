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
            clf = get_classifier(path)
            if spec.min_backtest_accuracy is not None:
                from escalade.triage.check import backtest

                backtest(spec, clf, policy_dir)
            out[spec.field] = clf
        except Exception as exc:  # any failure to load a model is the policy's problem
            raise ModelLoadError(f"{path}: triage model for '{spec.field}': {exc}") from exc
    return out


def router_for(policy: Policy, policy_path: Path | None) -> Router:
    base = policy_path.parent if policy_path is not None else Path.cwd()
    return Router(policy, load_classifiers(policy, base))


def load_router(policy_path: Path) -> Router:
    """Read, check and prepare a policy file (raises PolicyInvalid with every problem)."""
    return router_for(load_policy(policy_path), policy_path)
