"""Word stems: the Snowball (Porter 2) English stemmer, shared by phrase matching and the
similarity model so both read word forms the same way. Pure."""

from __future__ import annotations

from functools import lru_cache

import Stemmer


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of a lower-case English word."""
    return str(_stemmer().stemWord(word))
