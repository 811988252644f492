"""A triage model's decision path in NumPy alone: start-up without scikit-learn.

Importing scikit-learn (and skops, which reads the pipeline) is most of the start-up of
``escalade route`` with a model: about 2 of its 3 seconds. Yet deciding needs only a few
fitted arrays: each TF-IDF block's vocabulary and IDF weights, the tier categories, the
scaler's means and scales, the linear SVM's coefficients and the sigmoid calibrators'
``a`` and ``b``. :class:`LinearRuntime` holds exactly those (saved beside the pipeline
in the model file, format 3) and computes what the pipeline computes, **the same
numbers, bit for bit**: the same n-grams in the same order, the same TF-IDF arithmetic
(sublinear tf, IDF, L2 norm summed row by row in column order as scikit-learn's loop
does), the decision function added up entry by entry in scikit-learn's sparse-product
order, and the logistic function through ``math.exp`` (the C library's, as SciPy's
``expit`` uses; NumPy's vectorised ``exp`` differs in the last bit for about 2 % of
values). ``tests/test_triage_runtime.py`` holds it to the pipeline's own
``predict_proba`` with exact equality.

It applies to pipelines built as ``model.build_pipeline`` builds them with the calibrated
linear SVM (every label seen at least twice); :meth:`LinearRuntime.of` returns ``None``
for any other (the logistic regression of a tiny training set), and those models are
read and run through scikit-learn as before. Pure: no I/O besides (de)serialising bytes.
"""

from __future__ import annotations

import io
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_CACHED_WORDS = 200_000  # distinct words whose character n-grams are kept
CHUNK = 2048  # rows per decision-function pass (bounds the memory of a large batch)
_EMPTY = np.empty(0, dtype=np.int64)


def strip_accents_unicode(s: str) -> str:
    """scikit-learn's ``strip_accents_unicode``: NFKD, combining characters dropped."""
    try:
        s.encode("ASCII", errors="strict")
        return s
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", s)
        return "".join([c for c in normalized if not unicodedata.combining(c)])


def _preprocess(doc: str) -> str:
    return strip_accents_unicode(doc.lower())


@dataclass
class Block:
    """One TF-IDF block's rows: CSR arrays with the block's own column numbers."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))


def _tfidf(n: int, rows: np.ndarray, cols: np.ndarray, width: int, idf: np.ndarray) -> Block:
    """Counts → sublinear tf × idf → L2 rows, as ``TfidfTransformer`` computes them."""
    keys, counts = np.unique(rows * width + cols, return_counts=True)
    r, c = keys // width, keys % width
    data = counts.astype(np.float64)
    np.log(data, data)
    data += 1.0
    data *= idf[c]
    sums = np.zeros(n, dtype=np.float64)
    np.add.at(sums, r, data * data)  # in column order within each row, as sklearn's loop
    norms = np.sqrt(sums)
    data /= np.where(sums != 0.0, norms, 1.0)[r]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    return Block(indptr, c.astype(np.int64), data)


class _WordBlock:
    """``TfidfVectorizer(ngram_range=(lo, hi), sublinear_tf=True, strip_accents="unicode")``."""

    def __init__(self, terms: Sequence[str], idf: np.ndarray, pattern: str, ngrams: Any):
        self.terms = list(terms)
        self.vocabulary = {t: j for j, t in enumerate(terms)}
        self.width = len(terms)
        self.idf = idf
        self.token = re.compile(pattern)
        self.min_n, self.max_n = int(ngrams[0]), int(ngrams[1])

    def _analyze(self, doc: str) -> list[str]:
        tokens: list[str] = self.token.findall(_preprocess(doc))
        min_n, max_n = self.min_n, self.max_n
        if max_n == 1:
            return tokens
        original = tokens
        if min_n == 1:
            tokens = list(original)
            min_n += 1
        else:
            tokens = []
        for n in range(min_n, min(max_n + 1, len(original) + 1)):
            for i in range(len(original) - n + 1):
                tokens.append(" ".join(original[i : i + n]))
        return tokens

    def transform(self, docs: Sequence[str]) -> Block:
        vocabulary = self.vocabulary
        rows: list[int] = []
        cols: list[int] = []
        for i, doc in enumerate(docs):
            for feature in self._analyze(doc):
                j = vocabulary.get(feature)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        return _tfidf(
            len(docs),
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            self.width,
            self.idf,
        )


def char_wb_ngram_ids(word: str, vocabulary: dict[str, int], min_n: int, max_n: int) -> np.ndarray:
    """The vocabulary ids of one word's ``char_wb`` n-grams, repeats kept, exactly as
    scikit-learn's loop finds them (shared with ``escalade.triage.fastchar``)."""
    ids: list[int] = []
    w = " " + word + " "
    w_len = len(w)
    for n in range(min_n, max_n + 1):
        offset = 0
        j = vocabulary.get(w[offset : offset + n])
        if j is not None:
            ids.append(j)
        while offset + n < w_len:
            offset += 1
            j = vocabulary.get(w[offset : offset + n])
            if j is not None:
                ids.append(j)
        if offset == 0:  # a short word is counted once, as scikit-learn counts it
            break
    return np.asarray(ids, dtype=np.int64) if ids else _EMPTY


class _CharBlock:
    """``TfidfVectorizer(analyzer="char_wb", …)``, each distinct word's n-grams found once
    (``escalade.triage.fastchar`` does the same over a fitted vectorizer)."""

    def __init__(self, terms: Sequence[str], idf: np.ndarray, ngrams: Any):
        self.terms = list(terms)
        self.vocabulary = {t: j for j, t in enumerate(terms)}
        self.width = len(terms)
        self.idf = idf
        self.min_n, self.max_n = int(ngrams[0]), int(ngrams[1])
        self._words: dict[str, np.ndarray] = {}

    def _ngram_ids(self, word: str) -> np.ndarray:
        return char_wb_ngram_ids(word, self.vocabulary, self.min_n, self.max_n)

    def transform(self, docs: Sequence[str]) -> Block:
        words = self._words
        if len(words) > MAX_CACHED_WORDS:
            words.clear()
        pieces: list[np.ndarray] = []
        lengths = np.zeros(len(docs), dtype=np.int64)
        for i, doc in enumerate(docs):
            total = 0
            for word in _preprocess(doc).split():
                ids = words.get(word)
                if ids is None:
                    ids = words[word] = self._ngram_ids(word)
                if ids.size:
                    pieces.append(ids)
                    total += ids.size
            lengths[i] = total
        cols = np.concatenate(pieces) if pieces else _EMPTY
        rows = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        return _tfidf(len(docs), rows, cols, self.width, self.idf)


def _expit_neg(z: np.ndarray) -> np.ndarray:
    """``scipy.special.expit(-z)`` bit for bit: ``1 / (1 + exp(z))`` with the C library's
    ``exp`` (``math.exp``), element by element."""
    exp = math.exp
    flat = [1.0 / (1.0 + exp(v)) for v in z.ravel().tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(z.shape)


class LinearRuntime:
    """The fitted numbers of a calibrated linear triage pipeline, and its decision path."""

    def __init__(self, arrays: dict[str, np.ndarray], params: dict[str, Any]):
        self.params = params
        self.labels: list[str] = [str(x) for x in params["labels"]]
        self.offsets: dict[str, int] = {k: int(v) for k, v in params["offsets"].items()}
        self.width = int(params["width"])
        self.coef = np.ascontiguousarray(arrays["coef"], dtype=np.float64)  # (k, width)
        self.coef_t = np.ascontiguousarray(self.coef.T)
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        self.a = [float(v) for v in arrays["a"]]
        self.b = [float(v) for v in arrays["b"]]
        self.a_arr = np.asarray(arrays["a"], dtype=np.float64)
        self.b_arr = np.asarray(arrays["b"], dtype=np.float64)
        self.positions = [int(v) for v in arrays["positions"]]
        self.tiers = {str(t): j for j, t in enumerate(arrays["tiers"].tolist())}
        self.mean = np.asarray(arrays["mean"], dtype=np.float64)
        self.scale = np.asarray(arrays["scale"], dtype=np.float64)
        self.word: _WordBlock | None = None
        self.char: _CharBlock | None = None
        self._word_idf = np.asarray(arrays["word_idf"], dtype=np.float64)
        self._char_idf = np.asarray(arrays["char_idf"], dtype=np.float64)

    # ------------------------------------------------------------------ building

    @classmethod
    def of(cls, pipeline: Any) -> LinearRuntime | None:
        """The runtime of a fitted pipeline, or None when it is not one this reproduces."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
        from sklearn.svm import LinearSVC

        try:
            features = pipeline.named_steps["features"]
            clf = pipeline.named_steps["clf"]
            named = features.named_transformers_
            word, char, tier, signals = (named[k] for k in ("word", "char", "tier", "signals"))
            slices = dict(features.output_indices_)
        except (AttributeError, KeyError):
            return None
        if not (
            isinstance(clf, CalibratedClassifierCV)
            and clf.method == "sigmoid"
            and len(clf.calibrated_classifiers_) == 1
            and isinstance(clf.calibrated_classifiers_[0].estimator, LinearSVC)
            and isinstance(word, TfidfVectorizer)
            and isinstance(char, TfidfVectorizer)
            and isinstance(tier, OneHotEncoder)
            and isinstance(signals, StandardScaler)
            and _plain_tfidf(word, "word")
            and _plain_tfidf(char, "char_wb")
            and tier.handle_unknown == "ignore"
            and tier.drop is None
            and len(tier.categories_) == 1
            and signals.with_mean
            and signals.with_std
            and [name for name, _, _ in features.transformers_][:4]
            == ["word", "char", "tier", "signals"]
            and slices["word"].start == 0
            and slices["char"].start == slices["word"].stop
            and slices["tier"].start == slices["char"].stop
            and slices["signals"].start == slices["tier"].stop
            and _empty(slices.get("remainder", slice(0, 0)))
        ):
            return None
        calibrated = clf.calibrated_classifiers_[0]
        estimator = calibrated.estimator
        labels = [str(c) for c in clf.classes_]
        if [str(c) for c in estimator.classes_] != labels:
            return None
        positions = [labels.index(str(c)) for c in estimator.classes_]
        if len(labels) == 2:
            positions = [1]
        calibrators = list(calibrated.calibrators)
        if len(calibrators) != np.asarray(estimator.coef_).shape[0]:
            return None

        def terms(vectorizer: Any) -> list[str]:
            out = [""] * len(vectorizer.vocabulary_)
            for term, column in vectorizer.vocabulary_.items():
                out[column] = term
            return out

        arrays = {
            "coef": np.asarray(estimator.coef_, dtype=np.float64),
            "intercept": np.asarray(estimator.intercept_, dtype=np.float64),
            "a": np.asarray([float(c.a_) for c in calibrators], dtype=np.float64),
            "b": np.asarray([float(c.b_) for c in calibrators], dtype=np.float64),
            "positions": np.asarray(positions, dtype=np.int64),
            "tiers": np.asarray([str(t) for t in tier.categories_[0]], dtype=np.str_),
            "mean": np.asarray(signals.mean_, dtype=np.float64),
            "scale": np.asarray(signals.scale_, dtype=np.float64),
            "word_idf": np.asarray(word.idf_, dtype=np.float64),
            "char_idf": np.asarray(char.idf_, dtype=np.float64),
        }
        if [str(t) for t in tier.categories_[0]] != arrays["tiers"].tolist():
            return None
        params = {
            "labels": labels,
            "offsets": {k: slices[k].start for k in ("word", "char", "tier", "signals")},
            "width": slices["signals"].stop,
            "word": {"pattern": word.token_pattern, "ngram_range": list(word.ngram_range)},
            "char": {"ngram_range": list(char.ngram_range)},
        }
        rt = cls(arrays, params)
        rt.attach(terms(word), terms(char))
        return rt

    def attach(self, word_terms: Sequence[str], char_terms: Sequence[str]) -> None:
        """Give the runtime its vocabularies (kept once in the model file, beside it)."""
        if len(word_terms) != len(self._word_idf) or len(char_terms) != len(self._char_idf):
            raise ValueError("the vocabularies do not fit the model")
        p = self.params
        self.word = _WordBlock(
            word_terms, self._word_idf, p["word"]["pattern"], p["word"]["ngram_range"]
        )
        self.char = _CharBlock(char_terms, self._char_idf, p["char"]["ngram_range"])
        if self.offsets["char"] != len(word_terms) or self.offsets["tier"] != self.offsets[
            "char"
        ] + len(char_terms):
            raise ValueError("the vocabularies do not fit the model's columns")

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """The arrays (an ``.npz``, no pickled objects) and the parameters (JSON)."""
        buf = io.BytesIO()
        arrays = {
            "coef": self.coef,
            "intercept": self.intercept,
            "a": self.a_arr,
            "b": self.b_arr,
            "positions": np.asarray(self.positions, dtype=np.int64),
            "tiers": np.asarray(list(self.tiers), dtype=np.str_),
            "mean": self.mean,
            "scale": self.scale,
            "word_idf": self._word_idf,
            "char_idf": self._char_idf,
            "params": np.frombuffer(json.dumps(self.params).encode(), dtype=np.uint8),
        }
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearRuntime:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        params = json.loads(arrays.pop("params").tobytes().decode("utf-8"))
        rt = cls(arrays, params)
        if rt.coef.shape != (len(rt.a), rt.width) or len(rt.mean) != 4:
            raise ValueError("the runtime arrays do not fit together")
        return rt

    # ------------------------------------------------------------------ deciding

    def blocks(self, texts: Sequence[str]) -> tuple[Block, Block]:
        assert self.word is not None and self.char is not None, "vocabularies not attached"
        return self.word.transform(texts), self.char.transform(texts)

    def decision(
        self, word: Block, char: Block, tiers: Sequence[str], signals: np.ndarray
    ) -> np.ndarray:
        """``X @ coef.T + intercept`` with X's entries added in row order (word, char,
        tier, signals columns ascending), each row from 0.0 as SciPy's product does."""
        n = len(tiers)
        tier_cols = [self.tiers.get(t, -1) for t in tiers]
        scaled = (np.asarray(signals, dtype=np.float64).reshape(n, 4) - self.mean) / self.scale
        # every entry of X, block by block, each block row by row in column order
        parts_r: list[np.ndarray] = [word.rows(), char.rows()]
        parts_c: list[np.ndarray] = [word.indices, char.indices + self.offsets["char"]]
        parts_v: list[np.ndarray] = [word.data, char.data]
        has_tier = np.asarray([j >= 0 for j in tier_cols], dtype=bool)
        parts_r.append(np.flatnonzero(has_tier))
        parts_c.append(np.asarray([j for j in tier_cols if j >= 0], dtype=np.int64))
        parts_c[-1] = parts_c[-1] + self.offsets["tier"]
        parts_v.append(np.ones(int(has_tier.sum()), dtype=np.float64))
        nz_r, nz_k = np.nonzero(scaled)  # zeros are not stored in the sparse X
        parts_r.append(nz_r)
        parts_c.append(nz_k + self.offsets["signals"])
        parts_v.append(scaled[nz_r, nz_k])
        rows = np.concatenate(parts_r).astype(np.int64)
        cols = np.concatenate(parts_c).astype(np.int64)
        vals = np.concatenate(parts_v)
        # bincount adds its weights in array order, and the blocks come one after the
        # other: each (row, label) sum runs over the row's entries in column order, from
        # 0.0, as SciPy's CSR product does
        k = self.coef_t.shape[1]
        products = vals[:, None] * self.coef_t[cols]
        slots = (rows[:, None] * k + np.arange(k, dtype=np.int64)).ravel()
        sums: np.ndarray = np.bincount(slots, weights=products.ravel(), minlength=n * k)
        out: np.ndarray = sums.reshape(n, k) + self.intercept
        return out

    def predict_proba(self, decision: np.ndarray) -> np.ndarray:
        """The calibrated probabilities, as ``CalibratedClassifierCV.predict_proba``."""
        n, k = decision.shape[0], len(self.labels)
        proba = np.zeros((n, k), dtype=np.float64)
        for column, (position, a, b) in enumerate(
            zip(self.positions, self.a_arr, self.b_arr, strict=True)
        ):
            t = decision[:, column]
            proba[:, position] = _expit_neg(a * t + b)
        if k == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            denominator = np.sum(proba, axis=1)[:, np.newaxis]
            uniform = np.full_like(proba, 1 / k)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        mean = np.zeros((n, k), dtype=np.float64)
        mean += proba
        mean /= 1
        return mean

    def explain_coef(self) -> np.ndarray:
        """The coefficients the explanation reads (one row per label)."""
        coef = np.mean([self.coef], axis=0)
        if coef.shape[0] == 1 and len(self.labels) == 2:
            coef = np.vstack([-coef[0], coef[0]])
        return np.asarray(coef, dtype=np.float64)


def _empty(sl: slice) -> bool:
    return bool(sl.stop == sl.start)


def _plain_tfidf(v: Any, analyzer: str) -> bool:
    return bool(
        v.analyzer == analyzer
        and v.input == "content"
        and v.preprocessor is None
        and v.tokenizer is None
        and v.stop_words is None
        and v.lowercase
        and v.strip_accents == "unicode"
        and not v.binary
        and v.use_idf
        and v.sublinear_tf
        and v.norm == "l2"
        and np.dtype(v.dtype) == np.float64
        and (analyzer != "word" or v.token_pattern is not None)
        and hasattr(v, "vocabulary_")
        and hasattr(v, "idf_")
    )
