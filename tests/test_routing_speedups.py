"""The faster routing paths (issue 17 leftovers) decide exactly as the plain ones: the
phrase index tests only the phrases a text can hold, the similarity model picks every
ticket's nearest key and runner-up in one array pass, and the "any phrase at all?"
shortcut is one regular expression. Each is compared with the plain computation."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from escalade.loading import load_policy
from escalade.routing.signals import PhraseIndex, find_phrases
from escalade.routing.similarity import Reference, SimilarityIndex

REPO = Path(__file__).resolve().parents[1]
POLICIES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
TRICKY = [
    "I don't know why it's broken",
    "err_42 and _err on the e-mail page",
    "PAYMENT DISPUTE!!! payment-dispute (payment) dispute",
    "a+b c++ #hashtag $100 50% off",
    "tennis court, food-court; court order",
    "Café naïve résumé",  # not ASCII: the full loop
    "",
]


class _AllPhrases(PhraseIndex):
    """The index as it was: every phrase gets the substring test."""

    def _candidates(self, text: str, lowered: str) -> dict[str, list[str]]:
        return self._by_phrase


def _texts(policy_path: Path) -> list[str]:
    tickets = REPO / "benchmarks" / "zero_history" / f"{policy_path.stem}.tsv"
    texts = [
        line.split("\t")[-1]
        for line in tickets.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    policy = load_policy(policy_path)
    phrases = [p for c in policy.categories if c.match for p in c.match.phrases]
    rng = random.Random(17)
    glue = [" ", "-", "_", "'", ".", ", ", "", "s ", "ing "]
    for _ in range(300):  # phrases run together, cut and glued in odd ways
        parts = rng.sample(phrases, k=min(3, len(phrases)))
        texts.append("".join(p[: rng.randint(1, len(p))] + rng.choice(glue) for p in parts))
        texts.append(rng.choice(glue).join(parts).upper())
    return texts + TRICKY


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_the_phrase_index_finds_what_testing_every_phrase_finds(path: Path) -> None:
    policy = load_policy(path)
    entries = [(c.id, c.match) for c in policy.categories if c.match]
    fast, plain = PhraseIndex(entries), _AllPhrases(entries)
    for text in _texts(path):
        assert fast.hits(text) == plain.hits(text), text


def test_the_any_phrase_shortcut_changes_nothing() -> None:
    phrases = ("legal action", "sue", "don't", "e-mail", "  ", "C++")
    for text in [*TRICKY, "I will sue", "SUE them", "issue", "legal  action", "c++ rocks"]:
        regex = re.compile(
            r"(?<![\w])(?:" + "|".join(re.escape(p.strip()) for p in phrases if p.strip())
            + r")(?![\w])",
            re.IGNORECASE,
        )  # fmt: skip
        plain: list[str] = []
        for m in regex.finditer(text):
            if m.group(0).lower() not in plain:
                plain.append(m.group(0).lower())
        assert find_phrases(text, phrases) == plain, text
    assert find_phrases("anything at all", ("", "  ")) == []


def _winners_one_by_one(index: SimilarityIndex, scores: np.ndarray) -> list[tuple[int, int]]:
    """The rule per ticket, as it was computed ticket by ticket."""
    order, starts = index._order, index._starts
    out = []
    for row in scores:
        per_key = np.maximum.reduceat(row[order], starts)
        if per_key.max() <= 0:
            out.append((-1, -1))
            continue

        def best_of(k: int, row: np.ndarray = row) -> int:
            hi = starts[k + 1] if k + 1 < len(starts) else len(order)
            refs = order[starts[k] : hi]
            return int(refs[int(np.argmax(row[refs]))])

        first = int(np.argmax(per_key))
        rest = per_key.copy()
        rest[first] = -1.0
        second = int(np.argmax(rest))
        out.append((best_of(first), best_of(second) if rest[second] > 0 else -1))
    return out


def test_nearest_and_runner_up_for_a_whole_batch_are_the_per_ticket_ones() -> None:
    keys = ["billing", "legal", "media", "billing", "security", "legal", "media", "media"]
    refs = [
        Reference("category", k, "example", f"{k} example number {i} about things")
        for i, k in enumerate(keys)
    ]
    index = SimilarityIndex(refs)
    rng = np.random.default_rng(0)
    # ties on purpose: few distinct values, zeros, negative-free like cosine scores
    scores = rng.choice([0.0, 0.0, 0.1, 0.25, 0.25, 0.5, 0.9], size=(400, len(refs)))
    best, runner = index._winners(scores)
    assert list(zip(best.tolist(), runner.tolist(), strict=True)) == _winners_one_by_one(
        index, scores
    )


def test_the_phrase_index_on_phrases_with_odd_edges() -> None:
    from escalade.policy.models import Match

    odd = ["don", "t", "err_", "_err", "e-mail", "mail", "payment", "payment dispute",
           "dispute", "court", "c++", "50%", "$100", "#hashtag", "s", "it's"]  # fmt: skip
    entries = [(f"k{i}", Match(phrases=[p])) for i, p in enumerate(odd)]
    entries.append(("all", Match(phrases=odd, word_forms=False)))
    fast, plain = PhraseIndex(entries), _AllPhrases(entries)
    rng = random.Random(5)
    texts = list(TRICKY)
    for _ in range(500):
        words = rng.choices([*odd, "x", "the", "-", "_", "'", ",", "(", ")"], k=rng.randint(1, 7))
        texts.append(rng.choice(["", " "]).join(words))
        texts.append(" ".join(words).title())
    for text in texts:
        assert fast.hits(text) == plain.hits(text), text
