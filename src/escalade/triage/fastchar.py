"""Character n-gram TF-IDF of many tickets at once, one distinct word at a time.

A ``char_wb`` vectorizer only ever looks inside word boundaries, so a ticket's character
n-grams are the sum of its words' n-grams. Tickets repeat the same few thousand words, so
:class:`WordCachedCharTfidf` finds each distinct word's n-gram ids once (scikit-learn's
loop, copied exactly, over the fitted vocabulary), keeps them, and builds the whole batch's
count matrix with a few array operations; the TF-IDF weighting is scikit-learn's, in the
same order. The result is identical to the fitted vectorizer's own ``transform`` (a
property test holds it to that) at a fraction of the cost: this block was the largest cost
of a routing decision with a model.

It applies only to vectorizers configured as Escalade's pipeline configures them;
:func:`fast_char_transform` returns ``None`` for any other, and the caller then uses the
vectorizer itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from escalade.triage.runtime import char_wb_ngram_ids

MAX_CACHED_WORDS = 200_000  # distinct words kept; past this the cache starts again

_EMPTY = np.empty(0, dtype=np.int64)


def supports(vectorizer: TfidfVectorizer) -> bool:
    """Whether the vectorizer is one this module reproduces exactly."""
    return (
        vectorizer.analyzer == "char_wb"
        and vectorizer.input == "content"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and not vectorizer.binary
        and vectorizer.use_idf
        and vectorizer.norm == "l2"
        and np.dtype(vectorizer.dtype) == np.float64
        and hasattr(vectorizer, "vocabulary_")
        and hasattr(vectorizer, "idf_")
    )


class WordCachedCharTfidf:
    """``vectorizer.transform`` for a fitted ``char_wb`` TF-IDF vectorizer, word-cached."""

    def __init__(self, vectorizer: TfidfVectorizer):
        if not supports(vectorizer):
            raise ValueError("not a char_wb TF-IDF vectorizer configured as Escalade's")
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._width = len(self._vocabulary)
        self._preprocess: Callable[[str], str] = vectorizer.build_preprocessor()
        self._min_n, self._max_n = vectorizer.ngram_range
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._words: dict[str, np.ndarray] = {}

    def _ngram_ids(self, word: str) -> np.ndarray:
        """The vocabulary ids of one word's n-grams, repeats kept (scikit-learn's loop)."""
        return char_wb_ngram_ids(word, self._vocabulary, self._min_n, self._max_n)

    def transform(self, documents: Sequence[str] | np.ndarray) -> sp.csr_matrix:
        words = self._words
        if len(words) > MAX_CACHED_WORDS:
            words.clear()
        pieces: list[np.ndarray] = []
        lengths = np.zeros(len(documents), dtype=np.int64)
        for i, document in enumerate(documents):
            total = 0
            # scikit-learn first folds runs of white space into one; split() ignores them
            for word in self._preprocess(document).split():
                ids = words.get(word)
                if ids is None:
                    ids = words[word] = self._ngram_ids(word)
                if ids.size:
                    pieces.append(ids)
                    total += ids.size
            lengths[i] = total
        cols = np.concatenate(pieces) if pieces else _EMPTY
        rows = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        counts = sp.csr_matrix(
            (np.ones(cols.size, dtype=np.float64), (rows, cols)),
            shape=(len(documents), self._width),
        )
        counts.sum_duplicates()  # counts per n-gram, indices sorted as scikit-learn sorts them
        if self._sublinear:
            np.log(counts.data, counts.data)
            counts.data += 1.0
        counts.data *= self._idf[counts.indices]
        return sp.csr_matrix(normalize(counts, norm="l2", copy=False))


def fast_char_transform(vectorizer: TfidfVectorizer) -> WordCachedCharTfidf | None:
    """A word-cached transform for the vectorizer, or ``None`` where it does not apply."""
    return WordCachedCharTfidf(vectorizer) if supports(vectorizer) else None
