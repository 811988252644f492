"""Phrases with sense: word forms, context and negation.

A policy phrase is found in a ticket

- in any of its word forms: words are compared by their Snowball stems, so "punishment"
  finds "punished" and "harassment" finds "harassed";
- only in the sense the policy means: a match's ``exclude`` lists contexts in which a hit
  does not count ("tennis court" for "court", "press save" for "press"), and its
  ``require`` lists words of which at least one must also be present ("court" counts for
  Legal only with "lawyer", "sue", "judge", …);
- not when the ticket says it is absent: "not urgent", "no hurry", "not a dispute",
  "I do not want a refund". A negation ("no", "not", "never", "without", "nobody",
  "nothing", "none", "don't", …) counts when it stands right before the phrase or is
  joined to it only by small words ("not *a*", "not *being*", "don't *want a*"); a comma,
  a full stop or "but" ends it. Phrases that are negations themselves ("not working",
  "no leader") are never negated away. "Can't" and "won't" are not negations here: "can't
  log in" is the problem, not its absence.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from escalade.routing.stems import stem


def _split(text: str) -> list[str]:
    return text.split()


_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.,;:!?()\n]")

NEGATORS = frozenset(
    _split(
        "no not never without nobody nothing none neither nor don't doesn't didn't isn't "
        "aren't wasn't weren't dont doesnt didnt isnt arent"
    )
)
# small words that may stand between a negation and what it negates
BRIDGE = frozenset(
    _split(
        "a an any the being really at all so very too that this real big huge particularly "
        "exactly actually even much in any way want need asking looking for expecting like "
        "is are was were be it sure some kind of going to gonna planning trying"
    )
)
_CLAUSE_BREAK = frozenset({"but", "however", "though", "although", "yet"})


@dataclass(frozen=True)
class Tokens:
    """A text's words, their stems, and where a clause breaks before a word."""

    words: tuple[str, ...]
    stems: tuple[str, ...]
    breaks: tuple[bool, ...]  # punctuation or "but" right before word i
    has_negation: bool = False  # any negation word at all (most texts have none)
    stem_set: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def tokens(text: str) -> Tokens:
    ws: list[str] = []
    breaks: list[bool] = []
    pending = False
    for t in _TOKEN.findall(text.lower()):
        if len(t) == 1 and not t.isalnum():
            pending = True
            continue
        w = t.replace("’", "'")
        ws.append(w)
        breaks.append(pending or w in _CLAUSE_BREAK)
        pending = False
    stems = tuple(stem(w) for w in ws)
    return Tokens(
        tuple(ws),
        stems,
        tuple(breaks),
        has_negation=not NEGATORS.isdisjoint(ws),
        stem_set=frozenset(stems),
    )


@lru_cache(maxsize=8192)
def phrase_stems(phrase: str) -> tuple[str, ...]:
    return tokens(phrase).stems


def occurrences(tok: Tokens, stems: tuple[str, ...]) -> list[int]:
    """Start positions of a stem sequence in the text."""
    n = len(stems)
    if not n or stems[0] not in tok.stem_set:
        return []
    first = stems[0]
    return [i for i, s in enumerate(tok.stems) if s == first and tok.stems[i : i + n] == stems]


def negated(tok: Tokens, start: int) -> bool:
    """Whether a negation governs the word at ``start`` (see the module docstring)."""
    if not tok.has_negation:
        return False
    j = start - 1
    steps = 0
    while j >= 0 and steps < 4:
        if tok.breaks[j + 1]:
            return False
        w = tok.words[j]
        if w in NEGATORS:
            return True
        if w not in BRIDGE:
            return False
        j -= 1
        steps += 1
    return False


def spans(tok: Tokens, phrases: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) word positions of every occurrence of the phrases (any word form)."""
    out: list[tuple[int, int]] = []
    for p in phrases:
        st = phrase_stems(p)
        out.extend((i, i + len(st)) for i in occurrences(tok, st))
    return out


def keep_hit(
    tok: Tokens,
    phrase: str,
    *,
    exclude: Sequence[str] = (),
    negatable: bool = True,
) -> bool:
    """Whether a phrase found in the text counts: at least one of its occurrences is
    outside every excluded context and not negated. A phrase that is not made of words
    (a pattern-like "err_" or "429" still is) counts as found."""
    st = phrase_stems(phrase)
    starts = occurrences(tok, st)
    if not starts:
        return True
    can_negate = negatable and bool(tok.words) and tokens(phrase).words[0] not in NEGATORS
    excluded = spans(tok, exclude) if exclude else []
    for i in starts:
        if any(a <= i and i + len(st) <= b for a, b in excluded):
            continue
        if can_negate and negated(tok, i):
            continue
        return True
    return False


def present(tok: Tokens, phrases: Sequence[str]) -> bool:
    """Whether any of the phrases occurs (in any word form)."""
    return any(occurrences(tok, phrase_stems(p)) for p in phrases)


class StemIndex:
    """Phrases by their first stem, to find every phrase's word forms in one pass."""

    def __init__(self, phrases: Sequence[str]):
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for p in phrases:
            st = phrase_stems(p)
            if st:
                self._by_first.setdefault(st[0], []).append((st, p))

    def found(self, tok: Tokens) -> list[str]:
        firsts = tok.stem_set & self._by_first.keys()
        if not firsts:  # most texts: none of the phrases' first stems
            return []
        out: list[str] = []
        for i, s in enumerate(tok.stems):
            if s not in firsts:
                continue
            for st, p in self._by_first[s]:
                if (
                    p not in out
                    and tok.stems[i : i + len(st)] == st
                    and all(
                        same_sense(a, b)
                        for a, b in zip(tok.words[i : i + len(st)], tokens(p).words, strict=True)
                    )
                ):
                    out.append(p)
        return out


_AGENT = ("er", "ers", "or", "ors")


def same_sense(a: str, b: str) -> bool:
    """Two words of one stem that still mean the same kind of thing: a person who does
    something is not the thing done ("reporter" is not "report", "manager" not "manage")."""
    return a == b or a.endswith(_AGENT) == b.endswith(_AGENT)
