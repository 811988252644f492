"""Routing from the policy's own words: a small similarity model built at load time.

Each category (and team) of a policy may carry ``examples:``, a ``description`` and a
``name``; its ``match.phrases`` are its words too. Every one of these texts is a
*reference*. A ticket is compared with every reference by cosine similarity over three
blocks of features (words 0.4, character pieces 0.4, concepts 0.2 of the similarity),
each feature weighted by how rare it is among the references (TF-IDF):

- word features: the words' Snowball stems (so "punished" meets "punishment") and pairs of
  neighbouring stems, stop words left out;
- character features: the 3- and 4-letter pieces of each word ("leadership" and "leaders"
  share "lead", "eade", "ader"), which also forgive a typo;
- concepts: the groups of the support-desk thesaurus (``escalade.routing.thesaurus``) and
  of the policy's ``synonyms`` that occur ("solicitor" and "lawyer" are one concept).

A ticket's negated words ("not a dispute") and words in a context the policy excludes
("press save") are no evidence. A key (category or team) scores its nearest reference;
the router takes the best key when its score reaches ``routing.similarity.min_similarity``
and leads the runner-up by ``margin``. Everything is computed from the policy file at load
time: nothing is downloaded, nothing is trained elsewhere. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from escalade.routing.stems import stem

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

        # the concepts of the last word lists seen: the categories' and the priorities'
        # models of a policy share one thesaurus and ask about the same tickets
        self._recent: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._single or self._multi)

    def concepts(self, ws: Sequence[str]) -> list[tuple[str, str]]:
        """(concept, the words that stand for it) for each occurrence in the word list."""
        key = tuple(ws)
        hit = self._recent.get(key)
        if hit is None:
            if len(self._recent) >= 8192:
                self._recent.clear()
            hit = self._recent[key] = self._concepts(key)
        return hit

    def _concepts(self, ws: Sequence[str]) -> list[tuple[str, str]]:
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
    """A word's stem and its 3- and 4-letter pieces (the word padded with a space each side)."""
    padded = f" {w} "
    grams = ["c " + padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]
    return ("w " + stem(w), *grams)


def _features(text: str, thesaurus: Thesaurus | None = None) -> list[tuple[str, str]]:
    """(feature, the word it comes from) for every feature occurrence of a policy text."""
    out: list[tuple[str, str]] = []
    ws = words(text)
    if thesaurus:
        out.extend(("s " + c, w) for c, w in thesaurus.concepts(ws))
    toks = [w for w in ws if w and w not in STOP_WORDS]
    stems = [stem(w) for w in toks]
    for w in toks:
        out.extend((f, w) for f in _word_features(w))
    for i in range(len(stems) - 1):
        out.append((f"b {stems[i]} {stems[i + 1]}", f"{toks[i]} {toks[i + 1]}"))
    return out


def _block(feature: str) -> int:
    """0: words and word pairs, 1: character pieces, 2: thesaurus concepts."""
    return 1 if feature[0] == "c" else 2 if feature[0] == "s" else 0


@dataclass(frozen=True)
class Reference:
    """One text of the policy that stands for a key."""

    kind: str  # "category" or "team"
    key: str  # the category or team id
    source: str  # "example", "description", "name" or "phrase"
    text: str


@dataclass(frozen=True)
class SimilarityMatch:
    """The nearest key of the policy to a ticket, with what made it near. The words that
    weighed most are worked out when first asked for (most matches are never shown)."""

    kind: str
    key: str
    score: float
    reference: Reference
    runner_up: Reference | None
    runner_up_score: float | None
    weighed: Callable[[], tuple[str, ...]] = field(repr=False, compare=False)

    @property
    def top_words(self) -> tuple[str, ...]:
        """The ticket's words that added most to the similarity (at most four)."""
        cached: tuple[str, ...] | None = self.__dict__.get("_top_words")
        if cached is None:
            cached = self.weighed()
            object.__setattr__(self, "_top_words", cached)
        return cached


class _Origins:
    """The ticket word each feature column comes from (the first that brought it), built
    from the query's columns and their sources when an explanation first asks."""

    __slots__ = ("_cols", "_map", "_sources")

    def __init__(self, cols: list[int], sources: list[tuple[int, str]]):
        self._cols = cols
        self._sources = sources
        self._map: dict[int, str] | None = None

    def words(self, columns: Sequence[int]) -> list[str]:
        """The word of each column, in order."""
        if self._map is None:
            found: dict[int, str] = {}
            at = 0
            for count, word in self._sources:
                for c in self._cols[at : at + count]:
                    found.setdefault(c, word)
                at += count
            self._map = found
        return [self._map[j] for j in columns]


class SimilarityIndex:
    """References vectorised once; tickets compared with all of them at once."""

    def __init__(
        self,
        references: Iterable[Reference],
        *,
        weights: tuple[float, float, float] = (0.5, 0.5, 0.0),
        thesaurus: Thesaurus | None = None,
        incidental: Sequence[str] = (),
    ):
        self.references: list[Reference] = [r for r in references if content_words(r.text)]
        total = sum(weights) or 1.0
        self._weights = tuple(w / total for w in weights)
        self._thesaurus = thesaurus
        # contexts in which words are no evidence ("press save", "tennis court"): the
        # ``exclude`` lists of the policy's matches
        self._incidental = tuple(incidental)
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
        # each feature's postings (the references that have it, with its weight there;
        # each reference's blocks unit length), as flat arrays: a batch of tickets is
        # scored by gathering its features' postings and adding them up per ticket
        self._column: dict[str, int] = {f: j for j, f in enumerate(df)}
        self._idf_arr = np.array([self._idf[f] for f in df], dtype=np.float64)
        self._block = np.array([_block(f) for f in df], dtype=np.intp)
        feats: list[int] = []
        refs: list[int] = []
        vals: list[float] = []
        self._ref_weights: list[dict[int, float]] = []
        for i, counts in enumerate(docs):
            weighted = {self._column[f]: w for f, w in self._weigh(counts, self._idf).items()}
            self._ref_weights.append(weighted)
            for j, w in weighted.items():
                feats.append(j)
                refs.append(i)
                vals.append(w)
        by_feature = np.argsort(np.array(feats, dtype=np.intp), kind="stable")
        self._post_ref = np.array(refs, dtype=np.intp)[by_feature]
        self._post_w = np.array(vals, dtype=np.float64)[by_feature]
        self._post_ptr = np.zeros(len(df) + 1, dtype=np.intp)
        np.cumsum(
            np.bincount(np.array(feats, dtype=np.intp), minlength=len(df)), out=self._post_ptr[1:]
        )
        # references grouped by key, for the best reference of each key at once
        order = sorted(range(n), key=lambda i: (self.references[i].kind, self.references[i].key))
        self._order = np.array(order, dtype=np.intp)
        keys = [(self.references[i].kind, self.references[i].key) for i in order]
        self._starts = np.array(
            [j for j in range(n) if j == 0 or keys[j] != keys[j - 1]], dtype=np.intp
        )
        self._word_cache: dict[str, tuple[tuple[int, ...], int, int]] = {}

    def __len__(self) -> int:
        return len(self.references)

    def _weigh(self, counts: dict[str, float], idf: dict[str, float]) -> dict[str, float]:
        """Sublinear TF-IDF, each block (words, characters) scaled to its share of unit length."""
        raw = {f: (1.0 + math.log(c)) * idf.get(f, self._unseen_idf) for f, c in counts.items()}
        sq = [0.0, 0.0, 0.0]
        for f, v in raw.items():
            sq[_block(f)] += v * v
        scale = [
            math.sqrt(w) / (math.sqrt(q) or 1.0) for w, q in zip(self._weights, sq, strict=True)
        ]
        return {f: v * scale[_block(f)] for f, v in raw.items()}

    def _word(self, w: str) -> tuple[tuple[int, ...], int, int]:
        """A word's known feature columns, and how many of its word and character
        features the references never use."""
        hit = self._word_cache.get(w)
        if hit is None:
            feats = _word_features(w)
            unseen = [f for f in feats if f not in self._column]
            hit = (
                tuple(self._column[f] for f in feats if f in self._column),
                sum(1 for f in unseen if f[0] != "c"),
                sum(1 for f in unseen if f[0] == "c"),
            )
            if len(self._word_cache) < 200_000:
                self._word_cache[w] = hit
        return hit

    def _query(self, text: str) -> tuple[list[int], int, int, int, _Origins]:
        """A ticket's known feature columns (repeated as often as they occur), how many of
        its word, character and concept features no reference has, and the ticket word
        each column comes from (worked out when an explanation asks). Negated words and
        words in an excluded context ("press save") are no evidence and are left out."""
        from escalade.routing.phrases import negated, spans, tokens

        tok = tokens(text)
        ws = (
            ["" if negated(tok, i) else w for i, w in enumerate(tok.words)]
            if tok.has_negation
            else list(tok.words)
        )
        if self._incidental:
            for a, b in spans(tok, self._incidental):
                ws[a:b] = [""] * (b - a)
        cols: list[int] = []
        unseen_words = unseen_chars = unseen_concepts = 0
        sources: list[tuple[int, str]] = []  # (how many of the columns, from which words)
        column = self._column
        if self._thesaurus:
            for c, w in self._thesaurus.concepts(ws):
                j = column.get("s " + c)
                if j is None:
                    unseen_concepts += 1
                else:
                    cols.append(j)
                    sources.append((1, w))
        toks = [w for w in ws if w and w not in STOP_WORDS]
        cache = self._word_cache
        for w in toks:
            hit = cache.get(w)
            known, new_words, new_chars = hit if hit is not None else self._word(w)
            if known:
                cols.extend(known)
                sources.append((len(known), w))
            unseen_words += new_words
            unseen_chars += new_chars
        if len(toks) > 1:
            stems = [stem(w) for w in toks]
            for i in range(len(toks) - 1):
                j = column.get(f"b {stems[i]} {stems[i + 1]}")
                if j is None:
                    unseen_words += 1
                else:
                    cols.append(j)
                    sources.append((1, f"{toks[i]} {toks[i + 1]}"))
        return cols, unseen_words, unseen_chars, unseen_concepts, _Origins(cols, sources)

    def nearest(self, text: str) -> SimilarityMatch | None:
        """The key whose nearest reference is most similar to the text, with the runner-up
        (the best reference of another key); None when nothing is shared at all."""
        return self.nearest_many([text])[0]

    def nearest_many(self, texts: Sequence[str]) -> list[SimilarityMatch | None]:
        """:meth:`nearest` for many texts at once (array operations over the batch)."""
        if not texts or not self.references:
            return [None] * len(texts)
        queries = [self._query(t) for t in texts]
        n, n_refs, n_feats = len(texts), len(self.references), len(self._column)
        lens = [len(q[0]) for q in queries]
        rows = np.repeat(np.arange(n, dtype=np.intp), lens)
        cols = np.fromiter((j for q in queries for j in q[0]), dtype=np.intp, count=len(rows))
        # each (ticket, feature) once, with how often it occurs: sorted by ticket
        keys, counts = np.unique(rows * n_feats + cols, return_counts=True)
        row_of, col_of = keys // max(n_feats, 1), keys % max(n_feats, 1)
        data = (1.0 + np.log(counts)) * self._idf_arr[col_of]
        block = self._block[col_of]
        sq = data * data
        unseen2 = self._unseen_idf**2
        scale = np.zeros((3, n))
        for b in range(3):
            mine = block == b
            # features no reference has count in the ticket's length (each occurrence
            # once: a feature unseen by the policy rarely repeats within one ticket)
            unseen = np.array([qq[1 + b] for qq in queries], dtype=np.float64)
            total: np.ndarray = (
                np.bincount(row_of[mine], weights=sq[mine], minlength=n) + unseen2 * unseen
            )
            scale[b] = math.sqrt(self._weights[b]) / np.sqrt(np.where(total > 0, total, 1.0))
        data = data * scale[block, row_of]
        # gather every feature's postings and add them up per (ticket, reference)
        starts = self._post_ptr[col_of]
        lengths = self._post_ptr[col_of + 1] - starts
        firsts = np.cumsum(lengths) - lengths
        at = np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()), dtype=np.intp)
        scores = np.bincount(
            np.repeat(row_of, lengths) * n_refs + self._post_ref[at],
            weights=self._post_w[at] * np.repeat(data, lengths),
            minlength=n * n_refs,
        ).reshape(n, n_refs)
        bounds = np.searchsorted(row_of, np.arange(n + 1))
        best, runner = self._winners(scores)
        out: list[SimilarityMatch | None] = []
        for i in range(len(texts)):
            b = int(best[i])
            if b < 0:
                out.append(None)
                continue
            lo, hi = bounds[i], bounds[i + 1]
            r = int(runner[i])
            out.append(
                self._match(
                    col_of[lo:hi],
                    data[lo:hi],
                    float(scores[i, b]),
                    b,
                    r if r >= 0 else None,
                    float(scores[i, r]) if r >= 0 else None,
                    queries[i][4],
                )
            )
        return out

    def _winners(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every ticket at once: its best reference (of the best key) and the
        runner-up's (the best reference of the next key), -1 where there is none. A key
        scores its nearest reference; among equal keys the first in key order wins, among
        a key's equal references the first in file order."""
        n, n_keys = scores.shape[0], len(self._starts)
        grouped = scores[:, self._order]
        per_key = np.maximum.reduceat(grouped, self._starts, axis=1)
        # each key's first best reference: the first column of its segment at its maximum
        sizes = np.diff(np.append(self._starts, grouped.shape[1]))
        at_max = grouped == np.repeat(per_key, sizes, axis=1)
        position = np.where(at_max, np.arange(grouped.shape[1]), grouped.shape[1])
        best_ref = self._order[np.minimum.reduceat(position, self._starts, axis=1)]
        rows = np.arange(n)
        first = per_key.argmax(axis=1)
        best = np.where(per_key[rows, first] > 0, best_ref[rows, first], -1)
        runner = np.full(n, -1, dtype=np.intp)
        if n_keys > 1:
            rest = per_key.copy()
            rest[rows, first] = -1.0
            second = rest.argmax(axis=1)
            runner = np.where((best >= 0) & (rest[rows, second] > 0), best_ref[rows, second], -1)
        return best, runner

    def _match(
        self,
        cols: np.ndarray,
        data: np.ndarray,
        score: float,
        best: int,
        runner: int | None,
        runner_score: float | None,
        origin: _Origins,
    ) -> SimilarityMatch:
        ref = self.references[best]
        weights = self._ref_weights[best]

        def weighed() -> tuple[str, ...]:
            features = cols.tolist()
            contributions = np.array([weights.get(j, 0.0) for j in features]) * data
            return _weighed_most(contributions, origin.words(features))

        return SimilarityMatch(
            kind=ref.kind,
            key=ref.key,
            score=score,
            reference=ref,
            runner_up=self.references[runner] if runner is not None else None,
            runner_up_score=runner_score,
            weighed=weighed,
        )


def _weighed_most(contributions: np.ndarray, origin: list[str], k: int = 4) -> tuple[str, ...]:
    """The ticket's words that added most to its similarity with one reference."""
    by_word: dict[str, float] = {}
    for w, v in zip(origin, contributions.tolist(), strict=True):
        if v > 0:
            by_word[w] = by_word.get(w, 0.0) + v
    ranked = sorted(by_word.items(), key=lambda t: -t[1])
    return tuple(w for w, _ in ranked[:k])
