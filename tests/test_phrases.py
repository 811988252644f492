"""Legal and threatening language (and policy phrases) are found as the case-insensitive,
whole-word regex finds them: the shortcut for ASCII texts that contain none of an ASCII
phrase list's letters never changes what is found."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from escalade.routing.signals import (
    LEGAL_PHRASES,
    THREAT_PHRASES,
    _phrase_regex,
    find_phrases,
)

POLICY_PHRASES = ("charged twice", "refund", "Kelvin K", "straße")  # two not ASCII
LONG_S = ("ſue",)  # written with a long s, which the regex matches to an ASCII s


def by_regex(text: str, phrases: tuple[str, ...]) -> list[str]:
    seen: list[str] = []
    for m in _phrase_regex(phrases).finditer(text):
        if m.group(0).lower() not in seen:
            seen.append(m.group(0).lower())
    return seen


FRAGMENTS = [
    *[w for p in LEGAL_PHRASES + THREAT_PHRASES for w in p.split()],
    *["issue", "ISSUE", "Sue", "SUE", "lawyers!", "court.", "(sue)", "my", "card", "x"],
    *["charged", "twice", "REFUND", "refunds", "kelvin", "k", "K", "strasse", "ſue", "İ"],
]
TEXT = st.lists(st.sampled_from(FRAGMENTS), max_size=10).map(" ".join)


@settings(max_examples=800, deadline=None)
@given(st.one_of(TEXT, st.text(max_size=30), st.tuples(TEXT, st.text(max_size=10)).map("".join)))
def test_found_as_the_regex_finds_them(text: str) -> None:
    for phrases in (LEGAL_PHRASES, THREAT_PHRASES, POLICY_PHRASES, LONG_S):
        assert find_phrases(text, phrases) == by_regex(text, phrases)


def test_examples() -> None:
    assert find_phrases("I will SUE you, my lawyer says", LEGAL_PHRASES) == ["sue", "lawyer"]
    assert find_phrases("there is an issue with my card", LEGAL_PHRASES) == []
    # not ASCII: the Unicode case rules of the regex still apply (Kelvin sign, long s)
    assert find_phrases("I will ſue", LEGAL_PHRASES) == ["ſue"]
    assert find_phrases("kelvin k", POLICY_PHRASES) == ["kelvin k"]
    assert find_phrases("I will sue", LONG_S) == ["sue"]  # a phrase not ASCII: no shortcut
