"""How hard property tests search: normal in ``make test``, ten times harder in
``make soak`` (``ESCALADE_SOAK=1``)."""

from __future__ import annotations

import os

SCALE = 10 if os.environ.get("ESCALADE_SOAK") else 1


def scaled(examples: int) -> int:
    return examples * SCALE
