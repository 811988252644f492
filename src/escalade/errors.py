"""The package's errors: every error Escalade raises on purpose is an ``EscaladeError``,
so a caller can tell Escalade's refusals from bugs with one ``except``."""

from __future__ import annotations


class EscaladeError(Exception):
    """Base of every error Escalade raises on purpose (bad input, refusals, storage)."""


class IntegrityViolation(EscaladeError):
    """A database rule refused a write: a taken ref or key, a missing parent or escalation,
    an append-only row changed. Both stores (SQL and memory) raise this one type."""
