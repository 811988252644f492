"""Signals read from an escalation's text and customer: sentiment, legal and threatening
language, VIP status. Pure: the sentiment lexicon is loaded once and kept."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from escalade.policy.models import Match, Routing
from escalade.routing.models import EscalationInput, Signals
from escalade.routing.phrases import StemIndex, keep_hit, phrase_stems, present, tokens

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
    "in court",
    "to court",
    "court order",
    "court case",
    "court date",
    "court hearing",
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


@lru_cache(maxsize=1)
def _vader_vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    """The words VADER gives a valence to, and the emoji characters it reads (it looks at
    one character at a time, so longer emoji sequences in its table never match)."""
    analyzer = _analyzer()
    return frozenset(analyzer.lexicon), frozenset(e for e in analyzer.emojis if len(e) == 1)


def _may_carry_sentiment(text: str) -> bool:
    """Whether VADER could score the text anything but 0. VADER gives a word a valence only
    when its lower-cased form (punctuation stripped or not) is in its lexicon, and adds up
    only those valences; emoji become words first. A text with none of either scores
    exactly 0.0 (held to VADER by a property test), and more than half of real tickets are
    such texts, at a tenth of VADER's cost to find out."""
    lexicon, emoji = _vader_vocabulary()
    if not emoji.isdisjoint(text):
        return True
    for token in text.split():
        if token.lower() in lexicon or token.strip(string.punctuation).lower() in lexicon:
            return True
    return False


# Hedges that say the customer is *not* upset or in a hurry. VADER reads "no hurry" and
# "no rush" as negative (-0.3: "no" and "hurry"), and a hedge beside a complaint drags it
# further down; a person reads them as calm, so they are taken out before scoring.
CALM_PHRASES = (
    "no hurry",
    "no rush",
    "not urgent",
    "not in a hurry",
    "no pressure",
    "no worries",
    "no stress",
    "not a big deal",
    "not a huge deal",
    "no big deal",
    "take your time",
    "whenever you can",
    "whenever you get a chance",
    "when you get a chance",
    "when you have time",
    "low priority",
    "not a complaint",
    "not complaining",
    "not angry",
    "not upset",
    "not annoyed",
    "not frustrated",
)


def calm_phrases(text: str) -> list[str]:
    """The hedges of CALM_PHRASES in the text ("no hurry", "not urgent at all", …)."""
    return find_phrases(text, CALM_PHRASES)


def vader(text: str) -> float:
    """VADER's compound score of the text as it is (0.0 without calling VADER where no
    word of it could carry a valence)."""
    if not text.strip() or not _may_carry_sentiment(text):
        return 0.0
    return float(_analyzer().polarity_scores(text)["compound"])


@lru_cache(maxsize=65536)
def sentiment(text: str) -> float:
    """VADER compound score: -1 (very negative) .. 1 (very positive). A customer's hedges
    ("no hurry", "not urgent at all", "not a big deal") only ever soften it: the score is
    the higher of the text's and the text's without them."""
    score = vader(text)
    if score >= 0:
        return score
    hedges = calm_phrases(text)
    if not hedges:
        return score
    return max(score, vader(_phrase_regex(tuple(hedges)).sub(" ", text)))


@lru_cache(maxsize=256)
def _phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(p.strip()) for p in phrases if p.strip())
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE)


@lru_cache(maxsize=256)
def _ascii_phrases(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Any of the phrases lower-cased, as a plain substring search, where all are ASCII
    (else None: no shortcut)."""
    stripped = tuple(p.strip().lower() for p in phrases if p.strip())
    if not all(p.isascii() for p in stripped):
        return None
    # no phrase at all: a pattern that never matches (nothing is found)
    return re.compile("|".join(re.escape(p) for p in stripped) if stripped else "(?!)")


_RUN = re.compile(r"[^\W_]+")


def find_phrases(text: str, phrases: tuple[str, ...]) -> list[str]:
    """The phrases (case-insensitive, whole words) present in text, in first-seen order."""
    if not phrases:
        return []
    # An ASCII text can only match ASCII phrases where their lower-cased letters occur in
    # its own: most texts contain none, and finding that out costs a fraction of the
    # regex's scan (whose case-insensitive Unicode rules apply unchanged otherwise).
    lowered = _ascii_phrases(phrases)
    if lowered is not None and text.isascii() and lowered.search(text.lower()) is None:
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


@lru_cache(maxsize=1024)
def _stem_index(phrases: tuple[str, ...]) -> StemIndex:
    return StemIndex(phrases)


def _new_form(phrase: str, hits: list[str]) -> bool:
    """Whether a phrase found by its word forms is not already among the hits (itself, or
    another phrase of the same stems: "dispute" where "disputed" was found as written)."""
    stems = phrase_stems(phrase)
    return all(h != phrase and phrase_stems(h) != stems for h in hits)


def in_sense(match: Match, text: str, hits: list[str]) -> list[str]:
    """The phrase hits that count: the ``require``d context present, outside ``exclude``d
    contexts, not negated (see ``escalade.routing.phrases``)."""
    if not hits:
        return hits
    tok = tokens(text)
    if match.require and not present(tok, match.require):
        return []
    return [h for h in hits if keep_hit(tok, h, exclude=match.exclude, negatable=match.negatable)]


def match_text(match: Match, text: str) -> list[str]:
    """What of ``match`` is in the text: phrases found (in any word form, in the sense
    meant, not negated) and patterns that matched."""
    hits = find_phrases(text, tuple(match.phrases))
    if match.word_forms and match.phrases:
        for p in _stem_index(tuple(match.phrases)).found(tokens(text)):
            if _new_form(p.strip().lower(), hits):
                hits.append(p.strip().lower())
    hits = in_sense(match, text, hits)
    for pattern in match.patterns:
        m = _compiled(pattern).search(text)
        if m:
            hits.append(f"/{pattern}/")
    return hits


class PhraseIndex:
    """Many keys' phrases and patterns, matched against a text in one pass.

    Routing asks "which categories does this text mention, and with which words?" for
    every escalation; one combined regular expression answers it for all categories at
    once instead of one search per category.
    """

    def __init__(self, entries: list[tuple[str, Match]]):
        self._by_phrase: dict[str, list[str]] = {}
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []
        self._matches = dict(entries)
        self._forms = StemIndex(
            sorted({p.strip().lower() for _, m in entries if m.word_forms for p in m.phrases})
        )
        self._no_forms = {k for k, m in entries if not m.word_forms}
        for key, match in entries:
            for phrase in match.phrases:
                words = phrase.strip().lower()
                if words:
                    self._by_phrase.setdefault(words, []).append(key)
            for pattern in match.patterns:
                self._patterns.append((key, pattern, _compiled(pattern)))
        phrases = sorted(self._by_phrase, key=len, reverse=True)
        self._regex = (
            re.compile(
                r"(?<![\w])(?:" + "|".join(re.escape(ph) for ph in phrases) + r")(?![\w])",
                re.IGNORECASE,
            )
            if phrases
            else None
        )
        self._sub = {ph: _phrase_regex((ph,)) for ph in phrases}
        # the phrases by their first run of letters and digits: an ASCII text can only
        # hold a phrase whose first run is one of its own (see ``_candidates``)
        self._by_run: dict[str, list[str]] = {}
        self._runless: list[str] = []
        for ph in self._by_phrase:
            first = _RUN.search(ph)
            if first is None or not ph.isascii():
                self._runless.append(ph)
            else:
                self._by_run.setdefault(first.group(0), []).append(ph)
        self._order = {ph: i for i, ph in enumerate(self._by_phrase)}

    def _candidates(self, text: str, lowered: str) -> Iterable[str]:
        """The phrases that may occur in the text, in the order of ``_by_phrase``.

        In an ASCII text a phrase found where no word character precedes or follows it
        has its first run of letters and digits (``[^\\W_]+``) standing alone in the text
        too: before it the phrase has a non-word character or nothing (and the text then
        none either), after it the phrase has a character that ends the run or ends (and
        the text then has no word character). So only phrases whose first run is a run of
        the text (and phrases without one) need the substring test."""
        if not text.isascii():
            return self._by_phrase
        runs = set(_RUN.findall(lowered))
        found = [ph for run in runs & self._by_run.keys() for ph in self._by_run[run]]
        found.extend(self._runless)
        found.sort(key=self._order.__getitem__)
        return found

    def hits(self, text: str) -> dict[str, list[str]]:
        """Each key with the phrases (first-seen order) and /patterns/ found in the text."""
        found: dict[str, list[str]] = {}
        if self._regex is not None:
            seen: set[str] = set()
            for m in self._regex.finditer(text):
                hit = m.group(0).lower()
                if hit in seen:
                    continue
                seen.add(hit)
                for key in self._by_phrase.get(hit, ()):
                    found.setdefault(key, []).append(hit)
            # one pass cannot see phrases that overlap a match ("payment" inside
            # "payment dispute"); a quick substring test finds the candidates
            lowered = text.lower()
            for phrase in self._candidates(text, lowered):
                if phrase in seen or phrase not in lowered:
                    continue
                if self._sub[phrase].search(text):
                    seen.add(phrase)
                    for key in self._by_phrase[phrase]:
                        found.setdefault(key, []).append(phrase)
        if self._by_phrase:
            tok = tokens(text)
            for phrase in self._forms.found(tok):
                for key in self._by_phrase.get(phrase, ()):
                    hits = found.setdefault(key, [])
                    if key not in self._no_forms and _new_form(phrase, hits):
                        hits.append(phrase)
            for key in list(found):
                kept = in_sense(self._matches[key], text, found[key])
                if kept:
                    found[key] = kept
                else:
                    del found[key]
        for key, pattern, compiled in self._patterns:
            if compiled.search(text):
                found.setdefault(key, []).append(f"/{pattern}/")
        return found


# Where a legal word is no threat: the customer says what they are, or names a thing.
LEGAL_CONTEXTS_EXCLUDED = (
    "i'm a lawyer",
    "i am a lawyer",
    "as a lawyer",
    "i'm an attorney",
    "i am an attorney",
    "lawyer's office",
    "law firm's",
    "tennis court",
    "basketball court",
    "food court",
    "court reporting",
)


def _meant(text: str, hits: list[str]) -> list[str]:
    """Legal or threatening words that the text does not negate ("I am not going to sue")
    and that are not in a context that makes them no threat ("I'm a lawyer looking for a
    paralegal", "the photo of my lawyer's office")."""
    if not hits:
        return hits
    tok = tokens(text)
    return [h for h in hits if keep_hit(tok, h, exclude=LEGAL_CONTEXTS_EXCLUDED)]


def read_signals(inp: EscalationInput, routing: Routing, *, with_sentiment: bool = True) -> Signals:
    """Signals of an escalation; the sentiment score only when asked (it is the costly one)."""
    text = inp.text
    score = sentiment(text) if with_sentiment else None
    legal = _meant(text, find_phrases(text, LEGAL_PHRASES))
    threats = _meant(text, find_phrases(text, THREAT_PHRASES))
    tier = (inp.customer.tier or "").lower()
    vip = bool(tier and tier in {t.lower() for t in routing.vip_tiers}) or (
        routing.vip_monthly_value is not None
        and inp.customer.monthly_value is not None
        and inp.customer.monthly_value > routing.vip_monthly_value
    )
    return Signals.model_validate(
        dict(
            sentiment=score,
            dissatisfied=(score < routing.dissatisfaction_below) if score is not None else None,
            legal_language=bool(legal),
            threatening_language=bool(threats),
            vip=vip,
            legal_phrases=legal + threats,
        )
    )
