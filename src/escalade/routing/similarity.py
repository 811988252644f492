"""Routing from the policy's own words: a small similarity model built at load time.

Each category (and team) of a policy may carry ``examples:``, a ``description`` and a
``name``; its ``match.phrases`` are its words too. Every one of these texts is a
*reference*. A ticket is compared with every reference by cosine similarity over two
kinds of features, each weighted by how rare it is among the references (TF-IDF):

- word features: the words' Snowball stems (so "punished" meets "punishment") and pairs of
  neighbouring stems, stop words left out;
- character features: the 3- to 5-letter pieces of each word ("leadership" and "leaders"
  share "lead", "eade", "ader"), which also forgive a typo.

A key (category or team) scores its nearest reference; the best key is taken when its
score reaches the policy's ``routing.similarity.min_similarity``. Everything is computed
from the policy file at load time: nothing is downloaded, nothing is trained elsewhere.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import Stemmer

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def _split(text: str) -> list[str]:
    return text.split()


# Function words that carry no routing meaning (a short list on purpose: "not", "no",
# "down", "out", "off" stay, as they change what a ticket is about).
STOP_WORDS = frozenset(
    _split(
        """a an the and or but if then so of to in on at by for with from as is are was were be
    been being am do does did doing have has had having i me my mine myself we us our ours
    you your yours he him his she her hers it its they them their theirs this that these
    those there here what which who whom whose when where why how can could would should
    will shall may might must just also very too quite really please hi hello thanks thank
    regards dear team support anyone someone something some any all every each about into
    over than get got getting im ive id youre its it's i'm i've i'd don't"""
    )
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of a lower-case English word."""
    return str(_stemmer().stemWord(word))


def words(text: str) -> list[str]:
    """The text's words, lower-cased, apostrophes folded to '."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOP_WORDS]


class Thesaurus:
    """Concepts found in a text: groups of words and phrases that mean one thing."""

    def __init__(self, groups: Mapping[str, Iterable[str]]):
        self._single: dict[str, str] = {}
        self._multi: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for concept, entries in groups.items():
            for entry in entries:
                ws = words(entry)
                if len(ws) == 1:
                    self._single.setdefault(stem(ws[0]), concept)
                elif ws:
                    self._multi.setdefault(ws[0], []).append((tuple(ws), concept))

    def __bool__(self) -> bool:
        return bool(self._single or self._multi)

    def concepts(self, ws: Sequence[str]) -> list[tuple[str, str]]:
        """(concept, the words that stand for it) for each occurrence in the word list."""
        out: list[tuple[str, str]] = []
        for i, w in enumerate(ws):
            concept = self._single.get(stem(w))
            if concept is not None:
                out.append((concept, w))
            for seq, concept in self._multi.get(w, ()):
                if tuple(ws[i : i + len(seq)]) == seq:
                    out.append((concept, " ".join(seq)))
        return out


@lru_cache(maxsize=65536)
def _word_features(w: str) -> tuple[str, ...]:
    """A word's stem and its 3- to 5-letter pieces (the word padded with a space each side)."""
    padded = f" {w} "
    grams = ["c " + padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
    return ("w " + stem(w), *grams)


def _features(
    text: str, thesaurus: Thesaurus | None = None, *, drop_negated: bool = False
) -> list[tuple[str, str]]:
    """(feature, the ticket word it comes from) for every feature occurrence; a ticket's
    negated words ("not a dispute", "no hurry") are left out when ``drop_negated``."""
    out: list[tuple[str, str]] = []
    ws = words(text)
    if drop_negated:
        from escalade.routing.phrases import negated, tokens

        tok = tokens(text)
        ws = ["" if negated(tok, i) else w for i, w in enumerate(tok.words)]
    if thesaurus:
        out.extend(("s " + c, w) for c, w in thesaurus.concepts(ws))
    toks = [w for w in ws if w and w not in STOP_WORDS]
    stems = [stem(w) for w in toks]
    for w in toks:
        out.extend((f, w) for f in _word_features(w))
    for i in range(len(stems) - 1):
        out.append((f"b {stems[i]} {stems[i + 1]}", f"{toks[i]} {toks[i + 1]}"))
    return out


@dataclass(frozen=True)
class Reference:
    """One text of the policy that stands for a key."""

    kind: str  # "category" or "team"
    key: str  # the category or team id
    source: str  # "example", "description", "name" or "phrase"
    text: str


@dataclass(frozen=True)
class SimilarityMatch:
    """The nearest key of the policy to a ticket, with what made it near."""

    kind: str
    key: str
    score: float
    reference: Reference
    top_words: tuple[str, ...]
    runner_up: Reference | None
    runner_up_score: float | None


class SimilarityIndex:
    """References vectorised once; tickets compared with all of them at once."""

    def __init__(
        self,
        references: Iterable[Reference],
        *,
        word_weight: float = 0.5,
        thesaurus: Thesaurus | None = None,
    ):
        self.references: list[Reference] = [r for r in references if content_words(r.text)]
        self._word_weight = word_weight
        self._thesaurus = thesaurus
        df: dict[str, int] = {}
        docs: list[dict[str, float]] = []
        for ref in self.references:
            counts: dict[str, float] = {}
            for f, _ in _features(ref.text, self._thesaurus):
                counts[f] = counts.get(f, 0.0) + 1.0
            docs.append(counts)
            for f in counts:
                df[f] = df.get(f, 0) + 1
        n = len(docs)
        self._idf = {f: math.log((1 + n) / (1 + d)) + 1.0 for f, d in df.items()}
        self._unseen_idf = math.log(1 + n) + 1.0
        # one row per feature, one column per reference (each reference's blocks unit
        # length): a ticket's scores are the rows of its features, weighted and added
        self._column: dict[str, int] = {f: j for j, f in enumerate(df)}
        self._matrix = np.zeros((max(len(df), 1), max(n, 1)), dtype=np.float64)
        for i, counts in enumerate(docs):
            for f, w in self._weigh(counts, self._idf).items():
                self._matrix[self._column[f], i] = w
        self._ref_key = [(r.kind, r.key) for r in self.references]

    def __len__(self) -> int:
        return len(self.references)

    def _weigh(self, counts: dict[str, float], idf: dict[str, float]) -> dict[str, float]:
        """Sublinear TF-IDF, each block (words, characters) scaled to its share of unit length."""
        raw = {f: (1.0 + math.log(c)) * idf.get(f, self._unseen_idf) for f, c in counts.items()}
        word_norm = math.sqrt(sum(v * v for f, v in raw.items() if f[0] != "c")) or 1.0
        char_norm = math.sqrt(sum(v * v for f, v in raw.items() if f[0] == "c")) or 1.0
        a = math.sqrt(self._word_weight)
        b = math.sqrt(1.0 - self._word_weight)
        return {f: v * (b / char_norm if f[0] == "c" else a / word_norm) for f, v in raw.items()}

    def nearest(
        self, text: str, kinds: Sequence[str] = ("category", "team")
    ) -> SimilarityMatch | None:
        """The key whose nearest reference is most similar to the text, with the runner-up
        (the best reference of another key); None when nothing is shared at all."""
        feats = _features(text, self._thesaurus, drop_negated=True)
        if not feats or not self.references:
            return None
        counts: dict[str, float] = {}
        origin: dict[str, str] = {}
        for f, w in feats:
            counts[f] = counts.get(f, 0.0) + 1.0
            origin.setdefault(f, w)
        query = self._weigh(counts, self._idf)
        known = [(self._column[f], qw, origin[f]) for f, qw in query.items() if f in self._column]
        if not known:
            return None
        rows = np.fromiter((c for c, _, _ in known), dtype=np.intp, count=len(known))
        weights = np.fromiter((qw for _, qw, _ in known), dtype=np.float64, count=len(known))
        block = self._matrix[rows]
        all_scores = weights @ block
        scores = {int(i): float(all_scores[i]) for i in np.flatnonzero(all_scores > 0)}
        best_by_key: dict[tuple[str, str], tuple[float, int]] = {}
        for i, s in scores.items():
            ref = self.references[i]
            if ref.kind not in kinds:
                continue
            k = (ref.kind, ref.key)
            if k not in best_by_key or s > best_by_key[k][0]:
                best_by_key[k] = (s, i)
        if not best_by_key:
            return None
        ranked = sorted(best_by_key.values(), key=lambda t: (-t[0], t[1]))
        score, idx = ranked[0]
        ref = self.references[idx]
        runner = ranked[1] if len(ranked) > 1 else None
        return SimilarityMatch(
            kind=ref.kind,
            key=ref.key,
            score=score,
            reference=ref,
            top_words=_weighed_most(block[:, idx] * weights, [w for _, _, w in known]),
            runner_up=self.references[runner[1]] if runner else None,
            runner_up_score=runner[0] if runner else None,
        )


def _weighed_most(contributions: np.ndarray, origin: list[str], k: int = 4) -> tuple[str, ...]:
    """The ticket's words that added most to its similarity with one reference."""
    by_word: dict[str, float] = {}
    for w, v in zip(origin, contributions.tolist(), strict=True):
        if v > 0:
            by_word[w] = by_word.get(w, 0.0) + v
    ranked = sorted(by_word.items(), key=lambda t: -t[1])
    return tuple(w for w, _ in ranked[:k])
