"""Escalade: support-escalation and on-call engine; escalation policy as code."""

__version__ = "0.1.0"
