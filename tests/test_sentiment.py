"""The dissatisfaction score is VADER's compound score, number for number: the shortcut for
texts VADER cannot score (no lexicon word, no emoji) never changes a score."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from escalade.routing import signals
from escalade.routing.signals import _analyzer, _may_carry_sentiment, sentiment
from escalade.routing.signals import vader as signals_vader

REFERENCE = SentimentIntensityAnalyzer()  # VADER itself, none of Escalade's shortcuts

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"

# Everything VADER's rules look at: lexicon words in every case and wrapped in punctuation,
# words it does not score, "no" in its three roles, negations with and without "n't",
# boosters and dampeners, "kind of", "least", "never so", "without doubt", its special
# idioms, "but", emoticons, emoji and the punctuation it amplifies with
WORDS = [
    *["good", "GOOD", "bad", "Bad!", "terrible...", "(love)", "hate,", "great", "happy"],
    *["card", "payment", "refund", "arrive", "my", "the", "a", "is", "it", "I", "ok", "OK"],
    *["no", "No", "or", "nor", "not", "never", "isn't", "wasn't", "cannot", "without"],
    *["doubt", "so", "this", "very", "VERY", "extremely", "barely", "kind", "of", "sort"],
    *["least", "at", "but", "BUT", "shit", "bomb", "bad ass", "yeah right", "kiss", "death"],
    *["to", "die", "for", "bus", "stop", ":)", ":(", ":-D", "<3", "lol", "fraud", "stolen"],
    *["!!!", "!", "???", "?", "-", "''", "k", "😀", "😢", "❤", "👍🏽", "❤️"],
]
TEXT = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)
NOISE = st.text(max_size=40)


def vader(text: str) -> float:
    return float(REFERENCE.polarity_scores(text)["compound"]) if text.strip() else 0.0


@settings(max_examples=1000, deadline=None)
@given(st.one_of(TEXT, NOISE, st.tuples(TEXT, NOISE).map(" ".join)))
def test_the_shortcut_never_changes_a_score(text: str) -> None:
    assert signals_vader(text) == vader(text)
    if not _may_carry_sentiment(text):
        assert vader(text) == 0.0


@pytest.mark.parametrize("text", ["card 😀", "😢", "my card ❤ arrived", "where is it 🙂?"])
def test_emoji_alone_carry_sentiment(text: str) -> None:
    # no word of these is in VADER's lexicon: only the emoji's description scores
    assert _may_carry_sentiment(text)
    assert signals_vader(text) == vader(text) != 0.0


def test_texts_with_sentiment_are_still_scored() -> None:
    assert sentiment("This is a terrible, awful experience") < -0.5
    assert sentiment("I love it :)") > 0.5
    assert sentiment("thanks 😀") > 0  # an emoji alone reads as its description
    assert sentiment("where is my card") == 0.0


def test_the_shortcut_skips_vader(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = _analyzer()

    class Counting:
        lexicon = real.lexicon
        emojis = real.emojis

        def polarity_scores(self, text: str) -> dict[str, float]:
            calls.append(text)
            return real.polarity_scores(text)

    monkeypatch.setattr(signals, "_analyzer", lambda: Counting())
    assert sentiment.__wrapped__("when will my card arrive") == 0.0
    assert sentiment.__wrapped__("my card is terrible") < 0
    assert calls == ["my card is terrible"]


@pytest.mark.skipif(not (DATA / "train.csv").exists(), reason=f"BANKING77 NOT FOUND at {DATA}")
def test_real_messages_score_as_vader_scores_them() -> None:
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f)][:3000]
    assert [sentiment.__wrapped__(t) for t in texts] == [vader(t) for t in texts]
    assert sum(not _may_carry_sentiment(t) for t in texts) > len(texts) // 3


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("No hurry, no rush at all", 0.0),
        ("Not urgent at all, where do I change my email?", 0.0),
    ],
)
def test_hedges_do_not_read_as_unhappy(text: str, at_least: float) -> None:
    assert vader(text) < 0  # VADER alone reads "no hurry", "no rush" as negative
    assert sentiment.__wrapped__(text) >= at_least


def test_hedges_never_make_a_complaint_angrier() -> None:
    text = "Not a big deal but the slideshow is broken"
    assert sentiment.__wrapped__(text) == max(
        vader(text), signals_vader(" but the slideshow is broken")
    )
    assert sentiment.__wrapped__(text) >= vader(text)
    assert sentiment.__wrapped__("This is terrible, I am furious") == vader(
        "This is terrible, I am furious"
    )
