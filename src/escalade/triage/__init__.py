"""Learned triage: a text classifier that proposes a category, team or priority.

``escalade triage train`` fits a model on ticket history (``model.train``), saves it
safely with skops and a SHA-256 digest (``model.save_model``), and the router asks it
(``model.get_classifier``) where no explicit rule decides. ``evaluate`` measures a model or
a whole policy on labelled tickets; ``check`` checks the models a policy names.
"""

from escalade.triage.model import (
    Prediction,
    TriageClassifier,
    TriageModelError,
    get_classifier,
    load_model,
    save_model,
    train,
)

__all__ = [
    "Prediction",
    "TriageClassifier",
    "TriageModelError",
    "get_classifier",
    "load_model",
    "save_model",
    "train",
]
