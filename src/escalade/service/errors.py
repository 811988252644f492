"""What a use case refuses."""

from __future__ import annotations

from escalade.errors import EscaladeError


class NotFound(EscaladeError, LookupError):
    """No such escalation (or policy version)."""


class ActionRefused(EscaladeError, ValueError):
    """An action refused with the reason (invalid transition, bad target …)."""
