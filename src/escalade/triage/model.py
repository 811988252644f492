"""The triage model: training, safe saving and loading, prediction with explanations.

A model is a scikit-learn pipeline: word (1-2 gram) and character (3-4 gram, within word
boundaries) TF-IDF of the subject and description, beside the signals routing reads
(VADER dissatisfaction score, customer tier, monthly value, users affected, amount), into
a linear SVM whose scores are calibrated into probabilities (sigmoid, cross-validated).

The file is a zip holding ``escalade-triage.json`` (metadata), ``model.skops`` (the
pipeline in skops format, never pickle), ``vocabularies.json`` (each TF-IDF block's
n-grams in column order: skops would read a vocabulary as one audited node per n-gram,
≈ 0.4 s of every start-up with a model, where JSON takes milliseconds) and, since format
3, ``runtime.npz`` (the fitted arrays the decision needs, NumPy's format without pickled
objects: ``escalade.triage.runtime`` decides from them with the pipeline's own numbers,
so loading a model imports neither scikit-learn nor skops). The metadata carries the
model-format version, the library versions and a SHA-256 over metadata, payload,
vocabularies and runtime arrays; loading refuses a file from another format or
scikit-learn version, or one altered on disk; the pipeline, read when asked for (formats
1 and 2 and models the runtime does not cover: at load), is refused if it holds any type
not on an explicit list of trusted types. Format 1 and 2 files still load.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import platform
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import escalade
from escalade.errors import EscaladeError
from escalade.routing.models import EscalationInput
from escalade.routing.signals import sentiment
from escalade.triage.runtime import Block, LinearRuntime

if TYPE_CHECKING:  # scikit-learn, SciPy and skops only where a model is trained or read
    import scipy.sparse as sp
    from sklearn.pipeline import Pipeline

FORMAT = "escalade-triage-model"
FORMAT_VERSION = 3
# 1: the vocabularies inside the skops payload; 2: no runtime arrays (read through skops)
READABLE_FORMAT_VERSIONS = (1, 2, 3)
_HEADER = "escalade-triage.json"
_PAYLOAD = "model.skops"
_VOCABULARIES = "vocabularies.json"
_RUNTIME = "runtime.npz"
TOP_WORDS = 5

# Every type a triage model file may hold beyond what skops trusts by default. Loading checks
# the file's untrusted types against this list and refuses anything else.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "builtins.slice",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.utils._bunch.Bunch",
    }
)

TEXT, TIER, SENTIMENT, MONTHLY_VALUE, USERS, AMOUNT = range(6)
FEATURES = ["text", "customer_tier", "sentiment", "monthly_value", "users_affected", "amount"]


class TriageModelError(EscaladeError):
    """A model file or training set that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Prediction:
    """What the model says about one escalation."""

    label: str
    probability: float
    runner_up: str | None
    runner_up_probability: float | None
    top_words: list[str]  # the words/ngrams that weighed most for the label
    probabilities: dict[str, float] | None = None  # every label's probability


# --------------------------------------------------------------------------- features


def _log(x: float | None) -> float:
    return math.log1p(x) if x is not None and x > 0 else 0.0


def feature_rows(inputs: Sequence[EscalationInput]) -> np.ndarray:
    """The model's view of each input: text, tier and numeric signals (one row each)."""
    rows = np.empty((len(inputs), len(FEATURES)), dtype=object)
    for i, inp in enumerate(inputs):
        text = inp.text
        rows[i, TEXT] = text
        rows[i, TIER] = (inp.customer.tier or "").strip().lower()
        rows[i, SENTIMENT] = sentiment(text)
        rows[i, MONTHLY_VALUE] = _log(inp.customer.monthly_value)
        rows[i, USERS] = _log(inp.impact.users_affected)
        rows[i, AMOUNT] = _log(inp.amount)
    return rows


def build_pipeline(labels: Sequence[str], seed: int = 0) -> Pipeline:
    """The untrained pipeline; the calibration folds adapt to the rarest label's count."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import LinearSVC

    features = ColumnTransformer(
        [
            (
                "word",
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode"),
                TEXT,
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(3, 4),
                    sublinear_tf=True,
                    min_df=2,
                    strip_accents="unicode",
                ),
                TEXT,
            ),
            ("tier", OneHotEncoder(handle_unknown="ignore"), [TIER]),
            ("signals", StandardScaler(), [SENTIMENT, MONTHLY_VALUE, USERS, AMOUNT]),
        ],
        sparse_threshold=1.0,
    )
    rarest = min(Counter(labels).values())
    clf: Any
    if rarest >= 2:
        clf = CalibratedClassifierCV(
            LinearSVC(C=1.0, random_state=seed, max_iter=10_000),
            method="sigmoid",
            cv=StratifiedKFold(min(3, rarest), shuffle=True, random_state=seed),
            ensemble=False,
        )
    else:  # a label seen once cannot be calibrated by cross-validation
        clf = LogisticRegression(C=20.0, max_iter=5_000, random_state=seed)
    return Pipeline([("features", features), ("clf", clf)])


def data_hash(inputs: Sequence[EscalationInput], labels: Sequence[str]) -> str:
    h = hashlib.sha256()
    for inp, label in zip(inputs, labels, strict=True):
        h.update(inp.model_dump_json(exclude_defaults=True).encode())
        h.update(b"\x1f")
        h.update(label.encode())
        h.update(b"\x1e")
    return h.hexdigest()


def _version(distribution: str) -> str:
    """An installed library's version, without importing it (scikit-learn's import is most
    of a start-up with a model)."""
    from importlib.metadata import version

    return version(distribution)


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --------------------------------------------------------------------------- the classifier


class TriageClassifier:
    """A loaded (or freshly trained) triage model.

    Where the model is a calibrated linear pipeline (every model ``train`` makes from
    labels seen at least twice) it decides through :class:`~escalade.triage.runtime.
    LinearRuntime`, NumPy alone, with the pipeline's own numbers; a model read from a
    format 3 file then never imports scikit-learn or skops unless ``pipeline`` is asked
    for. Other models decide through the scikit-learn pipeline."""

    def __init__(
        self,
        pipeline: Pipeline | None,
        metadata: dict[str, Any],
        name: str,
        *,
        runtime: LinearRuntime | None = None,
        read_pipeline: Callable[[], Pipeline] | None = None,
        use_runtime: bool = True,
    ):
        if pipeline is None and (runtime is None or read_pipeline is None):
            raise ValueError("a triage model needs its pipeline or its runtime and a reader")
        self._pipeline = pipeline
        self._read_pipeline = read_pipeline
        self.metadata = metadata
        self.name = name
        if runtime is None and pipeline is not None and use_runtime:
            runtime = LinearRuntime.of(pipeline)
        elif not use_runtime:  # decide through scikit-learn (to compare the two)
            runtime = None
        self.runtime = runtime
        self._sklearn: _SklearnPath | None = None
        if runtime is not None:
            self.labels: list[str] = list(runtime.labels)
            coef = runtime.explain_coef()
            w, c, t = (runtime.offsets[k] for k in ("word", "char", "tier"))
            assert runtime.word is not None and runtime.char is not None
            self._explain = [
                (coef[:, w:c], runtime.word.terms, 1),
                (coef[:, c:t], runtime.char.terms, 3),
            ]
        else:
            assert pipeline is not None
            self._sklearn = _SklearnPath(pipeline)
            self.labels = [str(c) for c in pipeline.classes_]

    @property
    def pipeline(self) -> Pipeline:
        """The scikit-learn pipeline (read from the file when first asked for)."""
        if self._pipeline is None:
            assert self._read_pipeline is not None
            self._pipeline = self._read_pipeline()
        return self._pipeline

    @property
    def field(self) -> str:
        return str(self.metadata.get("field", ""))

    def predict(self, inp: EscalationInput) -> Prediction:
        return self.predict_many([inp])[0]

    def transform(self, rows: np.ndarray) -> sp.csr_matrix:
        """The pipeline's feature matrix for ``feature_rows`` output: the same numbers as
        its ``ColumnTransformer``, with the character block computed word by word."""
        if self._sklearn is None:
            self._sklearn = _SklearnPath(self.pipeline)
        return self._sklearn.transform(rows)

    def predict_many(self, inputs: Sequence[EscalationInput]) -> list[Prediction]:
        """Predictions for many inputs at once (one vectorised pass)."""
        if not inputs:
            return []
        rows = feature_rows(inputs)
        rt = self.runtime
        if rt is not None:
            texts = [str(t) for t in rows[:, TEXT]]
            word, char = rt.blocks(texts)
            decision = rt.decision(
                word,
                char,
                [str(t) for t in rows[:, TIER]],
                np.asarray(rows[:, [SENTIMENT, MONTHLY_VALUE, USERS, AMOUNT]], dtype=np.float64),
            )
            proba = rt.predict_proba(decision)
            order = np.argsort(-proba, axis=1, kind="stable")
            words = _top_words_blocks(
                [
                    (blk, coef, names, n)
                    for blk, (coef, names, n) in zip((word, char), self._explain, strict=True)
                ],
                order[:, 0],
            )
        else:
            assert self._sklearn is not None
            proba, order, words = self._sklearn.predict(rows)
        out: list[Prediction] = []
        for i in range(proba.shape[0]):
            best = int(order[i, 0])
            second = int(order[i, 1]) if proba.shape[1] > 1 else None
            out.append(
                Prediction(
                    label=self.labels[best],
                    probability=float(proba[i, best]),
                    runner_up=self.labels[second] if second is not None else None,
                    runner_up_probability=(float(proba[i, second]) if second is not None else None),
                    top_words=words[i],
                    probabilities=dict(zip(self.labels, proba[i].tolist(), strict=True)),
                )
            )
        return out


class _SklearnPath:
    """Deciding through the scikit-learn pipeline (models the runtime does not cover)."""

    def __init__(self, pipeline: Pipeline):
        from sklearn.calibration import CalibratedClassifierCV

        from escalade.triage.fastchar import fast_char_transform

        features = pipeline.named_steps["features"]
        self._features = features
        self._clf = pipeline.named_steps["clf"]
        labels = [str(c) for c in pipeline.classes_]
        self._slices: dict[str, slice] = dict(features.output_indices_)
        clf = self._clf
        if isinstance(clf, CalibratedClassifierCV):
            coef = np.mean([c.estimator.coef_ for c in clf.calibrated_classifiers_], axis=0)
        else:
            coef = np.asarray(clf.coef_)
        if coef.shape[0] == 1 and len(labels) == 2:  # binary: one row for the second class
            coef = np.vstack([-coef[0], coef[0]])
        coef = np.asarray(coef, dtype=np.float64)
        self._blocks: list[tuple[np.ndarray, np.ndarray, slice]] = []
        for block in ("word", "char"):
            sl = self._slices[block]
            names = np.asarray(features.named_transformers_[block].get_feature_names_out())
            self._blocks.append((coef[:, sl], names, sl))
        # Each output block's fitted transformer and input columns, in output order; the
        # character block is computed word by word (escalade.triage.fastchar).
        self._steps: list[tuple[str, Any, Any]] = sorted(
            (
                (name, transformer, columns)
                for name, transformer, columns in features.transformers_
                if name in self._slices and self._slices[name].stop > self._slices[name].start
            ),
            key=lambda step: self._slices[step[0]].start,
        )
        self._fast_char = fast_char_transform(features.named_transformers_["char"])

    def transform(self, rows: np.ndarray) -> sp.csr_matrix:
        import scipy.sparse as sp

        if self._fast_char is None:
            return sp.csr_matrix(self._features.transform(rows))
        blocks = []
        for name, transformer, columns in self._steps:
            part = rows[:, columns]
            if name == "char":
                blocks.append(self._fast_char.transform(part))
            else:
                blocks.append(sp.csr_matrix(transformer.transform(part)))
        return sp.csr_matrix(sp.hstack(blocks, format="csr"))

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        x = self.transform(rows)
        proba = np.asarray(self._clf.predict_proba(x))
        order = np.argsort(-proba, axis=1, kind="stable")
        parts = []
        for i, (coef, names, sl) in enumerate(self._blocks):
            sub = x[:, sl].tocsr()
            block = Block(np.asarray(sub.indptr), np.asarray(sub.indices), np.asarray(sub.data))
            parts.append((block, coef, names, 1 if i == 0 else 3))
        return proba, order, _top_words_blocks(parts, order[:, 0])


def _top_words_blocks(
    parts: Sequence[tuple[Block, np.ndarray, Sequence[str] | np.ndarray, int]],
    labels: np.ndarray,
) -> list[list[str]]:
    """For each row, the words (else character n-grams of 3+ letters) that pushed hardest
    to its label: contributions of all rows are computed and ordered in a few array
    operations; only picking the words is a loop. A block is only read for the rows the
    blocks before it left without words (the character block is rarely needed)."""
    n = len(labels)
    found: list[list[str] | None] = [None] * n
    for block, coef, names, min_len in parts:
        wanting = np.flatnonzero([w is None for w in found])
        if not wanting.size:
            break
        block_rows = block.rows()
        if wanting.size < n:
            local = np.full(n, -1, dtype=np.int64)
            local[wanting] = np.arange(wanting.size)
            rows = local[block_rows]
            mine = rows >= 0
            rows, indices, data = rows[mine], block.indices[mine], block.data[mine]
        else:
            rows, indices, data = block_rows, block.indices, block.data
        contrib = data * coef[labels[wanting][rows], indices]
        keep = contrib > 0
        rows, cols, contrib = rows[keep], indices[keep], contrib[keep]
        order = np.lexsort((-contrib, rows))  # by row, then strongest first (stable)
        rows, cols = rows[order], cols[order]
        starts = np.searchsorted(rows, np.arange(wanting.size + 1))
        for k, r in enumerate(wanting.tolist()):
            if starts[k] == starts[k + 1]:
                continue
            words: list[str] = []
            for j in cols[starts[k] : min(starts[k + 1], starts[k] + TOP_WORDS * 2)]:
                w = str(names[j]).strip()
                if len(w) >= min_len and w not in words:
                    words.append(w)
            if words:
                found[r] = words[:TOP_WORDS]
    return [w or [] for w in found]


# --------------------------------------------------------------------------- training


def cross_validate(
    inputs: Sequence[EscalationInput], labels: Sequence[str], folds: int, seed: int = 0
) -> list[float]:
    """Accuracy on each of ``folds`` stratified folds (a model trained on the rest)."""
    counts = Counter(labels)
    label, rarest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if folds < 2:
        raise TriageModelError("--cv needs at least 2 folds")
    if rarest < folds:
        raise TriageModelError(
            f"--cv {folds} needs at least {folds} tickets of every label; '{label}' has {rarest}"
        )
    rows = feature_rows(inputs)
    y = np.asarray(labels, dtype=object)
    scores = []
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for tr, te in splitter.split(rows, y):
        pipe = build_pipeline([str(v) for v in y[tr]], seed).fit(rows[tr], y[tr])
        scores.append(float(np.mean(pipe.predict(rows[te]) == y[te])))
    return scores


def train(
    inputs: Sequence[EscalationInput],
    labels: Sequence[str],
    *,
    field: str,
    created_at: datetime,
    seed: int = 0,
    cv: int | None = None,
    name: str = "<new model>",
    source: str | None = None,
) -> TriageClassifier:
    """Fit a triage model for ``field`` (deterministic for a given ``seed``)."""
    if len(inputs) != len(labels):
        raise TriageModelError("there must be one label per input")
    if not inputs:
        raise TriageModelError("empty history: nothing to train on")
    counts = Counter(labels)
    if len(counts) < 2:
        raise TriageModelError(
            f"every ticket has the same label ('{next(iter(counts))}'); a model needs at "
            "least two labels to choose between"
        )
    if created_at.tzinfo is None:
        raise TriageModelError("created_at must be time-zone aware")
    cv_scores = cross_validate(inputs, labels, cv, seed) if cv else None
    rows = feature_rows(inputs)
    y = np.asarray(labels, dtype=object)
    pipe = build_pipeline(list(labels), seed).fit(rows, y)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "field": field,
        "labels": [str(c) for c in pipe.classes_],
        "counts": {str(k): int(v) for k, v in sorted(counts.items())},
        "examples": len(inputs),
        "data_sha256": data_hash(inputs, labels),
        "source": source,
        "seed": seed,
        "created_at": created_at.isoformat(),
        "classifier": type(pipe.named_steps["clf"]).__name__,
        "features": FEATURES,
        "cv": (
            {"folds": cv, "accuracy": float(np.mean(cv_scores)), "fold_accuracy": cv_scores}
            if cv_scores
            else None
        ),
        "versions": {
            "escalade": escalade.__version__,
            "sklearn": _version("scikit-learn"),
            "skops": _version("skops"),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    return TriageClassifier(pipe, metadata, name)


# --------------------------------------------------------------------------- files


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(
    header: dict[str, Any],
    payload: bytes,
    vocabularies: bytes | None = None,
    runtime: bytes | None = None,
) -> str:
    body = {k: v for k, v in header.items() if k != "sha256"}
    h = hashlib.sha256(_canonical(body) + b"\n" + payload)
    if vocabularies is not None:
        h.update(b"\n" + vocabularies)
    if runtime is not None:
        h.update(b"\n" + runtime)
    return h.hexdigest()


def _vectorizers(pipeline: Pipeline) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    features = pipeline.named_steps["features"]
    return {name: t for name, t, _ in features.transformers_ if isinstance(t, TfidfVectorizer)}


def _split_vocabularies(pipeline: Pipeline) -> tuple[Pipeline, bytes]:
    """A copy of the pipeline without its vocabularies, and the vocabularies as JSON: each
    block's n-grams in column order."""
    stripped = copy.deepcopy(pipeline)
    vocabularies: dict[str, list[str]] = {}
    for name, vectorizer in _vectorizers(stripped).items():
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        terms = [""] * len(vocabulary)
        for term, column in vocabulary.items():
            terms[column] = term
        vocabularies[name] = terms
        del vectorizer.vocabulary_
    return stripped, json.dumps(vocabularies, ensure_ascii=False, sort_keys=True).encode()


def _parse_vocabularies(p: Path, data: bytes) -> dict[str, Any]:
    try:
        vocabularies = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TriageModelError(_damaged(p)) from None
    if not isinstance(vocabularies, dict):
        raise TriageModelError(_damaged(p))
    for terms in vocabularies.values():
        if (
            not isinstance(terms, list)
            or not all(isinstance(t, str) for t in terms)
            or len(set(terms)) != len(terms)
        ):
            raise TriageModelError(_damaged(p))
    return vocabularies


def _damaged(p: Path) -> str:
    return f"{p}: damaged model file (its vocabularies do not fit the model)"


def _restore_vocabularies(p: Path, pipeline: Pipeline, data: bytes) -> None:
    vocabularies = _parse_vocabularies(p, data)
    vectorizers = _vectorizers(pipeline)
    if set(vocabularies) != set(vectorizers):
        raise TriageModelError(_damaged(p))
    for name, vectorizer in vectorizers.items():
        terms = vocabularies[name]
        idf = getattr(vectorizer, "idf_", None)
        if idf is None or len(idf) != len(terms) or hasattr(vectorizer, "vocabulary_"):
            raise TriageModelError(_damaged(p))
        vectorizer.vocabulary_ = {term: column for column, term in enumerate(terms)}


def save_model(clf: TriageClassifier, path: str | Path) -> Path:
    """Write the model (skops payload, vocabularies, the runtime's arrays where the model
    has them, metadata and SHA-256) to ``path``."""
    import skops.io as sio

    p = Path(path)
    stripped, vocabularies = _split_vocabularies(clf.pipeline)
    payload = sio.dumps(stripped, compression=zipfile.ZIP_DEFLATED)
    runtime = clf.runtime.to_bytes() if clf.runtime is not None else None
    header = dict(clf.metadata)
    header["format_version"] = FORMAT_VERSION
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    header["vocabularies_sha256"] = hashlib.sha256(vocabularies).hexdigest()
    header.pop("runtime_sha256", None)
    if runtime is not None:
        header["runtime_sha256"] = hashlib.sha256(runtime).hexdigest()
    header["sha256"] = _digest(header, payload, vocabularies, runtime)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_HEADER, json.dumps(header, indent=2, sort_keys=True))
        zf.writestr(_PAYLOAD, payload)
        zf.writestr(_VOCABULARIES, vocabularies, compress_type=zipfile.ZIP_DEFLATED)
        if runtime is not None:
            zf.writestr(_RUNTIME, runtime)  # an .npz, compressed already
    if p.parent and not p.parent.exists():
        raise TriageModelError(f"{p}: the folder {p.parent} does not exist")
    try:
        p.write_bytes(buf.getvalue())
    except OSError as exc:
        raise TriageModelError(f"{p}: cannot write the model: {exc.strerror or exc}") from None
    clf.metadata = {k: v for k, v in header.items()}
    clf.name = p.name
    return p


def _read_container(p: Path) -> tuple[dict[str, Any], bytes, bytes | None, bytes | None]:
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TriageModelError(f"{p}: no such model file") from None
    except OSError as exc:
        raise TriageModelError(f"{p}: cannot read the model file: {exc.strerror or exc}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if _HEADER not in names or _PAYLOAD not in names:
                raise TriageModelError(
                    f"{p}: not an Escalade triage model (make one with 'escalade triage train')"
                )
            header_bytes = zf.read(_HEADER)
            payload = zf.read(_PAYLOAD)
            vocabularies = zf.read(_VOCABULARIES) if _VOCABULARIES in names else None
            runtime = zf.read(_RUNTIME) if _RUNTIME in names else None
    except TriageModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise TriageModelError(
            f"{p}: damaged or altered model file ({exc}); retrain it with 'escalade triage "
            "train' or restore it from a copy"
        ) from None
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TriageModelError(
            f"{p}: damaged or altered model file (unreadable metadata)"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TriageModelError(
            f"{p}: not an Escalade triage model (make one with 'escalade triage train')"
        )
    return header, payload, vocabularies, runtime


def _read_pipeline(
    p: Path, header: dict[str, Any], payload: bytes, vocabularies: bytes | None
) -> Pipeline:
    """The scikit-learn pipeline of a checked file (skops, trusted types only)."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from skops.io.exceptions import UntrustedTypesFoundException

    # One pass: skops refuses any type outside the list while it reads (asking for the
    # file's types first would parse it twice, ≈ 0.4 s of every start-up).
    try:
        pipeline = sio.loads(payload, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(data=payload)) - TRUSTED_TYPES)
        raise TriageModelError(
            f"{p}: the model holds types Escalade does not trust: {', '.join(refused)}"
        ) from None
    except Exception as exc:  # skops raises many kinds on a malformed payload
        raise TriageModelError(f"{p}: damaged model payload ({exc})") from None
    if not isinstance(pipeline, Pipeline) or [str(c) for c in pipeline.classes_] != header.get(
        "labels"
    ):
        raise TriageModelError(f"{p}: the model does not match its metadata (labels differ)")
    if vocabularies is not None:
        _restore_vocabularies(p, pipeline, vocabularies)
    return pipeline


def _read_runtime(
    p: Path, header: dict[str, Any], runtime: bytes, vocabularies: bytes
) -> LinearRuntime:
    """The runtime of a checked format 3 file, its vocabularies attached."""
    try:
        rt = LinearRuntime.from_bytes(runtime)
    except (ValueError, KeyError, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TriageModelError(f"{p}: damaged model file (runtime arrays: {exc})") from None
    if rt.labels != header.get("labels"):
        raise TriageModelError(f"{p}: the model does not match its metadata (labels differ)")
    vocab = _parse_vocabularies(p, vocabularies)
    if set(vocab) != {"word", "char"}:
        raise TriageModelError(_damaged(p))
    try:
        rt.attach(vocab["word"], vocab["char"])
    except ValueError:
        raise TriageModelError(_damaged(p)) from None
    return rt


def load_model(path: str | Path) -> TriageClassifier:
    """A model from a file, refusing one that is missing, foreign, altered or unsafe. A
    format 3 file decides through its runtime arrays: the scikit-learn pipeline is read
    (through skops, trusted types only) only if someone asks for ``pipeline``."""
    p = Path(path)
    header, payload, vocabularies, runtime = _read_container(p)
    version = header.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        *first, last = (str(v) for v in READABLE_FORMAT_VERSIONS)
        readable = f"{', '.join(first)} and {last}"
        raise TriageModelError(
            f"{p}: made with triage model format {version!r}; this Escalade "
            f"({escalade.__version__}) reads formats {readable}: retrain it with "
            "'escalade triage train'"
        )
    if version == 1:
        vocabularies = None  # inside the payload
    elif vocabularies is None:
        raise TriageModelError(
            f"{p}: damaged model file (no {_VOCABULARIES}); retrain it with 'escalade triage "
            "train' or restore it from a copy"
        )
    if version != 3:
        runtime = None  # formats 1 and 2 have none
    versions = header.get("versions")
    if not isinstance(versions, dict):
        versions = {}
    made_with = str(versions.get("sklearn", "?"))
    installed = _version("scikit-learn")
    if _major_minor(made_with) != _major_minor(installed):
        raise TriageModelError(
            f"{p}: trained with scikit-learn {made_with}, but {installed} is "
            "installed; models only load under the same major.minor version: retrain it with "
            "'escalade triage train'"
        )
    if (
        header.get("sha256") != _digest(header, payload, vocabularies, runtime)
        or header.get("payload_sha256") != hashlib.sha256(payload).hexdigest()
        or (
            vocabularies is not None
            and header.get("vocabularies_sha256") != hashlib.sha256(vocabularies).hexdigest()
        )
        or (
            runtime is not None
            and header.get("runtime_sha256") != hashlib.sha256(runtime).hexdigest()
        )
        or (version == 3 and runtime is None and "runtime_sha256" in header)
    ):
        raise TriageModelError(
            f"{p}: the model file was altered after it was saved (SHA-256 does not match); "
            "retrain it with 'escalade triage train' or restore it from a copy"
        )
    try:
        if runtime is not None and vocabularies is not None:
            rt = _read_runtime(p, header, runtime, vocabularies)
            return TriageClassifier(
                None,
                header,
                p.name,
                runtime=rt,
                read_pipeline=lambda: _read_pipeline(p, header, payload, vocabularies),
            )
        pipeline = _read_pipeline(p, header, payload, vocabularies)
        return TriageClassifier(pipeline, header, p.name)
    except (KeyError, AttributeError, ValueError, IndexError) as exc:
        raise TriageModelError(f"{p}: not a triage pipeline Escalade can use ({exc})") from None


@lru_cache(maxsize=32)
def _cached(resolved: str, mtime_ns: int, size: int) -> TriageClassifier:
    del mtime_ns, size  # part of the cache key: a rewritten file is read again
    return load_model(resolved)


def get_classifier(path: str | Path) -> TriageClassifier:
    """A loaded model by path, cached by resolved path, modification time and size."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TriageModelError(f"{path}: no such model file") from None
    except OSError as exc:
        raise TriageModelError(
            f"{path}: cannot read the model file: {exc.strerror or exc}"
        ) from None
    return _cached(str(p), st.st_mtime_ns, st.st_size)
