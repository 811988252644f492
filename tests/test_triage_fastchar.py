"""The word-cached character block (escalade.triage.fastchar) is the fitted vectorizer's own
transform, number for number, and the classifier's features are its pipeline's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from tests.test_triage import WHEN, history_rows

from escalade.routing.models import EscalationInput
from escalade.triage import fastchar
from escalade.triage.fastchar import WordCachedCharTfidf, fast_char_transform, supports
from escalade.triage.model import build_pipeline, feature_rows, train

CORPUS = [
    "My card was charged twice",
    "why was my payment reverted?",
    "Café crème: I can't top up!!",
    "the ATM ate my card\tagain\n  please help",
    "a",
    "",
    "İstanbul ﬁnance — naïve façade",
    "ÇA\u00a0VA   PAS",
    "top-up top up topup",
]

# Letters with and without accents, ligatures, digits, punctuation and every kind of space
TEXT = st.text(
    alphabet=st.sampled_from(
        list("abcdeéèfghiİıjklmnopqrstuüvwxyzAÉZ0123456789 \t\n\u00a0\u2003-'!?.,ﬁß")
    ),
    max_size=60,
)


def _vectorizer(**overrides: object) -> TfidfVectorizer:
    params: dict[str, object] = dict(
        analyzer="char_wb",
        ngram_range=(3, 4),
        sublinear_tf=True,
        min_df=1,
        strip_accents="unicode",
    )
    params.update(overrides)
    return TfidfVectorizer(**params).fit(CORPUS)  # type: ignore[arg-type]


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


FITTED = _vectorizer()
FAST = WordCachedCharTfidf(FITTED)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=8))
def test_identical_to_the_vectorizer(texts: list[str]) -> None:
    assert _same(FAST.transform(texts), FITTED.transform(texts))


@pytest.mark.parametrize("ngram_range", [(1, 1), (2, 5), (3, 4), (4, 6)])
@pytest.mark.parametrize("sublinear", [True, False])
def test_identical_for_other_ranges(ngram_range: tuple[int, int], sublinear: bool) -> None:
    vec = _vectorizer(ngram_range=ngram_range, sublinear_tf=sublinear)
    texts = [*CORPUS, "unseen words only: zzz qqq", "a b c d"]
    assert _same(WordCachedCharTfidf(vec).transform(texts), vec.transform(texts))


def test_repeated_words_count_as_often_as_they_occur() -> None:
    texts = ["card", "card card card", "card, card; card!"]
    assert _same(FAST.transform(texts), FITTED.transform(texts))
    plain = _vectorizer(sublinear_tf=False)
    assert _same(WordCachedCharTfidf(plain).transform(texts), plain.transform(texts))


@pytest.mark.parametrize(
    "overrides",
    [
        {"analyzer": "char"},
        {"analyzer": "word"},
        {"binary": True},
        {"use_idf": False},
        {"norm": "l1"},
        {"preprocessor": str.upper},
        {"dtype": np.float32},
    ],
)
def test_other_vectorizers_are_not_claimed(overrides: dict[str, object]) -> None:
    vec = _vectorizer(**overrides)
    assert not supports(vec)
    assert fast_char_transform(vec) is None
    with pytest.raises(ValueError):
        WordCachedCharTfidf(vec)


def test_the_word_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = WordCachedCharTfidf(FITTED)
    monkeypatch.setattr(fastchar, "MAX_CACHED_WORDS", 3)
    fast.transform(["one two three four five"])
    assert len(fast._words) == 5
    out = fast.transform(["six card"])  # over the bound: the cache starts again
    assert len(fast._words) == 2
    assert _same(out, FITTED.transform(["six card"]))


def test_classifier_features_are_the_pipelines() -> None:
    rows = history_rows()
    inputs = [
        EscalationInput.model_validate({k: v for k, v in r.items() if k != "team"}) for r in rows
    ]
    clf = train(inputs, [r["team"] for r in rows], field="team", created_at=WHEN)
    assert clf.runtime is not None  # decides through NumPy (tests/test_triage_runtime.py)
    probe = [
        EscalationInput(subject=t, description=d, customer={"tier": tier}, amount=amount)
        for t, d, tier, amount in [
            ("Refund please", "charged twice", "premium", 120.0),
            ("", "İstanbul ﬁnance — naïve façade", "", None),
            ("crash", "error 500 after the update", "gold", 0.0),
        ]
    ]
    x = feature_rows(probe)
    assert _same(clf.transform(x), clf.pipeline.named_steps["features"].transform(x))


def test_untrained_pipeline_uses_the_same_char_settings() -> None:
    char = build_pipeline(["a", "b"]).named_steps["features"].transformers[1][1]
    assert char.analyzer == "char_wb" and char.norm == "l2" and not char.binary
