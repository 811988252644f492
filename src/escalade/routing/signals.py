"""Signals read from an escalation's text and customer: sentiment, legal and threatening
language, VIP status. Pure: the sentiment lexicon is loaded once and kept."""

from __future__ import annotations

import re
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from escalade.policy.models import Match, Routing
from escalade.routing.models import EscalationInput, Signals

LEGAL_PHRASES = (
    "lawyer",
    "lawyers",
    "attorney",
    "attorneys",
    "solicitor",
    "sue",
    "suing",
    "lawsuit",
    "legal action",
    "legal proceedings",
    "take you to court",
    "court",
    "subpoena",
    "cease and desist",
    "class action",
    "small claims",
    "litigation",
    "my legal team",
    "legal counsel",
    "file a complaint with",
    "regulator",
    "ombudsman",
)
THREAT_PHRASES = (
    "or else",
    "you will regret",
    "you'll regret",
    "i will destroy",
    "i'll destroy",
    "going to report you",
    "report you to",
    "expose you",
    "go to the press",
    "go to the media",
    "tell everyone",
    "kill",
    "hurt you",
    "watch your back",
    "make you pay",
)


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=4096)
def sentiment(text: str) -> float:
    """VADER compound score: -1 (very negative) .. 1 (very positive)."""
    if not text.strip():
        return 0.0
    return float(_analyzer().polarity_scores(text)["compound"])


@lru_cache(maxsize=256)
def _phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(p.strip()) for p in phrases if p.strip())
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE)


def find_phrases(text: str, phrases: tuple[str, ...]) -> list[str]:
    """The phrases (case-insensitive, whole words) present in text, in first-seen order."""
    if not phrases:
        return []
    seen: list[str] = []
    for m in _phrase_regex(phrases).finditer(text):
        hit = m.group(0).lower()
        if hit not in seen:
            seen.append(hit)
    return seen


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def match_text(match: Match, text: str) -> list[str]:
    """What of ``match`` is in the text: phrases found and patterns that matched."""
    hits = find_phrases(text, tuple(match.phrases))
    for pattern in match.patterns:
        m = _compiled(pattern).search(text)
        if m:
            hits.append(f"/{pattern}/")
    return hits


def read_signals(inp: EscalationInput, routing: Routing) -> Signals:
    text = inp.text
    score = sentiment(text)
    legal = find_phrases(text, LEGAL_PHRASES)
    threats = find_phrases(text, THREAT_PHRASES)
    tier = (inp.customer.tier or "").lower()
    vip = bool(tier and tier in {t.lower() for t in routing.vip_tiers}) or (
        routing.vip_monthly_value is not None
        and inp.customer.monthly_value is not None
        and inp.customer.monthly_value > routing.vip_monthly_value
    )
    return Signals(
        sentiment=score,
        dissatisfied=score < routing.dissatisfaction_below,
        legal_language=bool(legal),
        threatening_language=bool(threats),
        vip=vip,
        legal_phrases=legal + threats,
    )
