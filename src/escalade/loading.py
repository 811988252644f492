"""The edge where policy files meet the model files they name: a policy read from disk
with its learned triage models checked, and the :class:`Router` built with them.

The pure core reads no model files and imports no scikit-learn: ``policy`` validates the
policy text (``policy.loader`` is the one core module that reads files, the policy and its
includes), ``routing`` routes with whatever predictors it is given, and this module, above
both and ``triage``, joins them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from escalade.errors import EscaladeError
from escalade.policy import Policy, Problem
from escalade.policy import check_files as _check_files
from escalade.policy import load_policy as _load_policy
from escalade.policy.validate import PolicyCheck
from escalade.routing.router import Predictor, Router


class ModelLoadError(EscaladeError):
    """A triage model named in the policy cannot be used."""


def _check_models(policy: Policy, policy_dir: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with the triage models a policy names (none named: nothing imported)."""
    if not policy.routing.triage:
        return []
    from escalade.triage.check import check_triage  # scikit-learn only when a model is named

    return check_triage(policy, policy_dir)


CHECKS: tuple[PolicyCheck, ...] = (_check_models,)
"""The checks a policy file gets beyond its own text."""


def load_policy(path: str | Path, *, allow_includes_outside: bool = False) -> Policy:
    """A valid policy from a file, its triage models checked too (PolicyInvalid with
    every problem otherwise). Includes outside the policy's folder only when allowed."""
    return _load_policy(path, CHECKS, allow_includes_outside=allow_includes_outside)


def check_files(
    paths: Iterable[str | Path], *, allow_includes_outside: bool = False
) -> Iterator[Problem]:
    """Problems of each policy file in turn, models included (``escalade policy check``)."""
    return _check_files(paths, CHECKS, allow_includes_outside=allow_includes_outside)


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


def load_router(policy_path: Path, *, allow_includes_outside: bool = False) -> Router:
    """Read, check and prepare a policy file (raises PolicyInvalid with every problem)."""
    policy = load_policy(policy_path, allow_includes_outside=allow_includes_outside)
    return router_for(policy, policy_path)
