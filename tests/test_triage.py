"""Learned triage: training, explanations, safe files, policy checks, evaluation, CLI errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import skops.io as skops_io
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.loading import load_policy
from escalade.policy import PolicyInvalid
from escalade.routing.models import EscalationInput
from escalade.triage import model as model_mod
from escalade.triage.check import check_triage
from escalade.triage.evaluate import report
from escalade.triage.model import (
    TriageClassifier,
    TriageModelError,
    get_classifier,
    load_model,
    save_model,
    train,
)

WHEN = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

PHRASES = {
    "billing": [
        "a refund for my invoice",
        "I was charged twice on my credit card",
        "the invoice amount is wrong",
        "cancel my subscription and refund",
        "a duplicate payment on the receipt",
        "the billing statement shows an extra charge",
    ],
    "engineering": [
        "the app crashes after the update",
        "error 500 when I save the form",
        "the dashboard page does not load",
        "the export has a bug and times out",
        "the api returns a timeout error",
        "the mobile app freezes and crashes",
    ],
    "security": [
        "someone hacked my account",
        "a phishing email asked for my password",
        "suspicious login from another country",
        "my password was stolen",
        "two factor codes I did not request",
        "unknown device logged in to my account",
    ],
}
FRAMES = ["Hello, {}.", "Please help: {}", "{} - urgent"]


def history_rows() -> list[dict[str, Any]]:
    rows = []
    for team, phrases in PHRASES.items():
        for phrase in phrases:
            for i, frame in enumerate(FRAMES):
                rows.append(
                    {
                        "subject": frame.format(phrase),
                        "description": f"ticket {i}",
                        "team": team,
                        "customer": {"tier": "premium" if i else "free"},
                    }
                )
    return rows


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TriageClassifier, Path]:
    rows = history_rows()
    inputs = [
        EscalationInput.model_validate({k: v for k, v in r.items() if k != "team"}) for r in rows
    ]
    clf = train(inputs, [r["team"] for r in rows], field="team", created_at=WHEN, seed=3)
    path = save_model(clf, tmp_path_factory.mktemp("model") / "team.model")
    return clf, path


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in (result.output + (result.stderr or ""))
    return result


# --------------------------------------------------------------------------- training


def test_labels_probabilities_and_explanations(trained: tuple[TriageClassifier, Path]) -> None:
    clf, _ = trained
    assert clf.labels == ["billing", "engineering", "security"]
    preds = clf.predict_many(
        [
            EscalationInput(subject="I want a refund, the invoice is wrong"),
            EscalationInput(description="The app crashes with an error"),
            EscalationInput(subject="My account was hacked, password stolen"),
        ]
    )
    assert [p.label for p in preds] == ["billing", "engineering", "security"]
    for p in preds:
        probs = p.probability + (p.runner_up_probability or 0)
        assert 0.0 < probs <= 1.0 + 1e-9
        assert p.runner_up is not None and p.runner_up != p.label
        assert p.runner_up_probability is not None
        assert p.probability >= p.runner_up_probability
        assert p.probability > 0.5
    assert "refund" in preds[0].top_words or "invoice" in preds[0].top_words
    assert "crashes" in preds[1].top_words or "error" in preds[1].top_words
    assert {"hacked", "password", "stolen"} & set(preds[2].top_words)


def test_probabilities_sum_to_one(trained: tuple[TriageClassifier, Path]) -> None:
    clf, _ = trained
    rows = model_mod.feature_rows([EscalationInput(subject="refund of my invoice")])
    proba = clf.pipeline.predict_proba(rows)[0]
    assert abs(sum(proba) - 1.0) < 1e-6
    pred = clf.predict(EscalationInput(subject="refund of my invoice"))
    assert pred.probability == pytest.approx(max(proba))
    assert pred.runner_up_probability == pytest.approx(sorted(proba)[-2])


def test_single_predict_matches_batch(trained: tuple[TriageClassifier, Path]) -> None:
    clf, _ = trained
    inputs = [EscalationInput(subject="password phishing"), EscalationInput(subject="bug")]
    assert [clf.predict(i) for i in inputs] == clf.predict_many(inputs)
    assert clf.predict_many([]) == []


def test_training_is_deterministic_for_a_seed() -> None:
    rows = history_rows()[::2]
    inputs = [EscalationInput(subject=r["subject"]) for r in rows]
    labels = [r["team"] for r in rows]
    a = train(inputs, labels, field="team", created_at=WHEN, seed=7)
    b = train(inputs, labels, field="team", created_at=WHEN, seed=7)
    probe = [EscalationInput(subject="refund the crash"), EscalationInput(subject="login")]
    assert a.predict_many(probe) == b.predict_many(probe)
    assert a.metadata["data_sha256"] == b.metadata["data_sha256"]


def test_metadata(trained: tuple[TriageClassifier, Path]) -> None:
    _, path = trained
    meta = load_model(path).metadata
    assert meta["labels"] == ["billing", "engineering", "security"]
    assert meta["counts"] == {"billing": 18, "engineering": 18, "security": 18}
    assert meta["created_at"] == "2024-05-01T09:00:00+00:00"
    assert meta["field"] == "team"
    assert len(meta["data_sha256"]) == 64
    assert set(meta["versions"]) >= {"sklearn", "skops", "escalade"}
    assert meta["format_version"] == model_mod.FORMAT_VERSION


def test_saved_model_predicts_the_same(trained: tuple[TriageClassifier, Path]) -> None:
    clf, path = trained
    loaded = load_model(path)
    probe = [EscalationInput(subject="charged twice"), EscalationInput(subject="page error")]
    assert loaded.predict_many(probe) == clf.predict_many(probe)
    assert loaded.name == "team.model"


def test_train_refuses_a_single_label() -> None:
    with pytest.raises(TriageModelError, match="same label"):
        train([EscalationInput(subject="a")] * 3, ["x"] * 3, field="team", created_at=WHEN)


# --------------------------------------------------------------------------- safe files


def _rewrite(
    path: Path,
    out: Path,
    edit_header: Any = None,
    payload: bytes | None = None,
    vocabularies: bytes | None = None,
    drop: str | None = None,
) -> None:
    """Copy a model file with its metadata edited or a member replaced or left out."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    header = json.loads(members["escalade-triage.json"])
    if edit_header:
        edit_header(header)
    members["escalade-triage.json"] = json.dumps(header).encode()
    if payload is not None:
        members["model.skops"] = payload
    if vocabularies is not None:
        members["vocabularies.json"] = vocabularies
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            if name != drop:
                zf.writestr(name, data)
    out.write_bytes(buf.getvalue())


def _resign(
    header: dict[str, Any], payload: bytes, vocabularies: bytes | None, runtime: bytes | None = None
) -> None:
    """What someone rewriting a file by hand would do: recompute its digests."""
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    if vocabularies is not None:
        header["vocabularies_sha256"] = hashlib.sha256(vocabularies).hexdigest()
    header["sha256"] = model_mod._digest(header, payload, vocabularies, runtime)


def test_vocabularies_are_stored_beside_the_payload(
    trained: tuple[TriageClassifier, Path],
) -> None:
    clf, path = trained
    with zipfile.ZipFile(path) as zf:
        vocabularies = json.loads(zf.read("vocabularies.json"))
    words = clf.pipeline.named_steps["features"].named_transformers_["word"]
    assert set(vocabularies) == {"word", "char"}
    assert vocabularies["word"] == sorted(words.vocabulary_, key=words.vocabulary_.__getitem__)
    assert hasattr(words, "vocabulary_")  # saving left the live model whole


def test_vocabularies_changed_on_disk_are_refused(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    with zipfile.ZipFile(path) as zf:
        vocabularies = json.loads(zf.read("vocabularies.json"))
    vocabularies["word"][0], vocabularies["word"][1] = (
        vocabularies["word"][1],
        vocabularies["word"][0],
    )
    swapped = json.dumps(vocabularies).encode()
    bad = tmp_path / "vocab.model"
    _rewrite(path, bad, vocabularies=swapped)
    with pytest.raises(TriageModelError, match=r"vocab\.model: the model file was altered"):
        load_model(bad)
    missing = tmp_path / "novocab.model"
    _rewrite(path, missing, drop="vocabularies.json")
    with pytest.raises(TriageModelError, match=r"novocab\.model: damaged .*no vocabularies"):
        load_model(missing)
    # rewritten by hand with fresh digests, a vocabulary that does not fit is still refused
    with zipfile.ZipFile(path) as zf:
        payload, runtime = zf.read("model.skops"), zf.read("runtime.npz")
    short = json.dumps({**vocabularies, "word": vocabularies["word"][:-1]}).encode()
    resigned = tmp_path / "resigned.model"
    _rewrite(path, resigned, lambda h: _resign(h, payload, short, runtime), vocabularies=short)
    with pytest.raises(TriageModelError, match=r"resigned\.model: damaged .*vocabularies do not"):
        load_model(resigned)


def test_format_1_models_still_load(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> None:
    # format 1 kept the vocabularies inside the skops payload
    clf, path = trained
    payload = skops_io.dumps(clf.pipeline)

    def as_format_1(h: dict[str, Any]) -> None:
        h["format_version"] = 1
        del h["vocabularies_sha256"]
        del h["runtime_sha256"]
        _resign(h, payload, None)

    old = tmp_path / "format1.model"
    _rewrite(path, old, as_format_1, payload=payload, drop="vocabularies.json")
    probe = [EscalationInput(subject="I was charged twice"), EscalationInput(subject="crash")]
    assert load_model(old).predict_many(probe) == clf.predict_many(probe)


def test_flipped_byte_is_refused(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> None:
    _, path = trained
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.skops")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0x01
    bad = tmp_path / "flipped.model"
    bad.write_bytes(bytes(data))
    with pytest.raises(TriageModelError, match=r"flipped\.model.*(altered|damaged)"):
        load_model(bad)


def test_payload_changed_with_valid_zip_is_refused(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    with zipfile.ZipFile(path) as zf:
        body = bytearray(zf.read("model.skops"))
    body[len(body) // 2] ^= 0xFF
    bad = tmp_path / "swapped.model"
    _rewrite(path, bad, payload=bytes(body))
    with pytest.raises(TriageModelError, match=r"swapped\.model: the model file was altered"):
        load_model(bad)


def test_model_from_another_version_is_refused(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    other = tmp_path / "future.model"
    _rewrite(path, other, lambda h: h.update(format_version=99))
    with pytest.raises(
        TriageModelError,
        match=r"future\.model: made with triage model format 99; .* reads formats 1, 2 and 3",
    ):
        load_model(other)

    def old_sklearn(h: dict[str, Any]) -> None:
        h["versions"]["sklearn"] = "0.24.2"

    old = tmp_path / "old.model"
    _rewrite(path, old, old_sklearn)
    with pytest.raises(TriageModelError, match=r"old\.model: trained with scikit-learn 0\.24\.2"):
        load_model(old)


def test_metadata_edit_is_refused(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> None:
    _, path = trained
    edited = tmp_path / "edited.model"
    _rewrite(path, edited, lambda h: h.update(labels=["billing", "engineering", "legal"]))
    with pytest.raises(TriageModelError, match="altered"):
        load_model(edited)


def test_untrusted_types_are_refused(
    trained: tuple[TriageClassifier, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = trained
    monkeypatch.setattr(model_mod, "TRUSTED_TYPES", frozenset())
    # a format 3 file decides through its runtime arrays: the payload is only read (and
    # its types checked) when the pipeline is asked for
    with pytest.raises(TriageModelError, match="types Escalade does not trust: sklearn"):
        load_model(path).pipeline  # noqa: B018


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(TriageModelError, match=r"nope\.model: no such model file"):
        load_model(tmp_path / "nope.model")
    junk = tmp_path / "junk.model"
    junk.write_text("hello")
    with pytest.raises(TriageModelError, match=r"junk\.model: damaged"):
        load_model(junk)
    other_zip = tmp_path / "other.model"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("x.txt", "x")
    with pytest.raises(TriageModelError, match="not an Escalade triage model"):
        load_model(other_zip)


def test_classifier_cache_follows_the_file(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    copy = tmp_path / "copy.model"
    copy.write_bytes(path.read_bytes())
    first = get_classifier(copy)
    assert get_classifier(str(copy)) is first
    st = copy.stat()  # same bytes, but the file was written again: read it again
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert get_classifier(copy) is not first


# --------------------------------------------------------------------------- policies


POLICY = """\
id: triage-test
teams:
  - {{id: frontline}}
  - {{id: billing}}
  - {{id: engineering}}
  - {{id: {security}}}
priorities:
  - {{id: P2}}
routing:
  default_priority: P2
  triage_queue: frontline
  rules:
    - id: lawyer
      when: {{text: {{phrases: [lawyer]}}}}
      then: {{team: engineering}}
  triage:
    - field: team
      model: {model}
      min_confidence: {min_conf}
{extra}"""


def write_policy(
    folder: Path,
    model: str = "team.model",
    security: str = "security",
    min_conf: float = 0.5,
    extra: str = "",
) -> Path:
    p = folder / "policy.yaml"
    p.write_text(POLICY.format(model=model, security=security, min_conf=min_conf, extra=extra))
    return p


@pytest.fixture
def policy_dir(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> Iterator[Path]:
    _, path = trained
    (tmp_path / "team.model").write_bytes(path.read_bytes())
    yield tmp_path


def test_policy_with_a_good_model_is_valid(policy_dir: Path) -> None:
    policy = load_policy(write_policy(policy_dir))
    assert check_triage(policy, policy_dir) == []


def test_missing_model_file_is_a_policy_problem(policy_dir: Path) -> None:
    path = write_policy(policy_dir, model="models/none.model")
    with pytest.raises(PolicyInvalid) as exc:
        load_policy(path)
    text = str(exc.value)
    assert "routing.triage[0].model" in text
    assert "none.model: no such model file" in text
    assert f"{path}:" in text


def test_model_label_that_names_no_team(policy_dir: Path) -> None:
    path = write_policy(policy_dir, security="trust_and_safety")
    with pytest.raises(PolicyInvalid, match=r"'security'.*names? no team of the policy"):
        load_policy(path)
    fixed = write_policy(
        policy_dir,
        security="trust_and_safety",
        extra="      label_map: {security: trust_and_safety}\n",
    )
    policy = load_policy(fixed)
    assert check_triage(policy, policy_dir) == []


def test_label_map_for_a_label_the_model_never_gives(policy_dir: Path) -> None:
    path = write_policy(policy_dir, extra="      label_map: {legal: security}\n")
    problems = check_triage(_policy_unchecked(path), policy_dir)
    assert [p for p, _ in problems] == [("routing", "triage", 0, "label_map", "legal")]
    assert "never gives" in problems[0][1]


def _policy_unchecked(path: Path) -> Any:
    import yaml

    from escalade.policy.models import Policy

    return Policy.model_validate(yaml.safe_load(path.read_text()))


# --------------------------------------------------------------------------- evaluation


def test_report_matches_a_hand_computed_confusion_matrix() -> None:
    truths = ["a", "a", "a", "b", "b", "c"]
    predicted: list[str | None] = ["a", "b", None, "b", "a", "c"]
    rep = report(truths, predicted, ["t1", "t2", "t3", "t4", "t5", "t6"])
    assert rep["count"] == 6
    assert rep["abstained"] == pytest.approx(1 / 6, abs=1e-4)
    assert rep["confusion"] == {
        "a": {"a": 1, "b": 1, "c": 0},
        "b": {"a": 1, "b": 1, "c": 0},
        "c": {"a": 0, "b": 0, "c": 1},
    }
    assert rep["accuracy"] == pytest.approx(3 / 5, abs=1e-4)
    assert rep["accuracy_overall"] == 0.5
    # a: P=1/2 R=1/2; b: P=1/2 R=1/2; c: P=1 R=1 → macro-F1 = (0.5+0.5+1)/3
    assert rep["macro_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert rep["per_label"]["a"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 3,
        "abstained": 1,
    }
    assert rep["worst_confusions"][0]["count"] == 1
    assert {(w["true"], w["predicted"]) for w in rep["worst_confusions"]} == {
        ("a", "b"),
        ("b", "a"),
    }


def labelled(tmp_path: Path) -> Path:
    rows = [
        {"subject": "please refund the invoice", "team": "billing"},
        {"subject": "the app crashes with an error", "team": "engineering"},
        {"subject": "my password was stolen, account hacked", "team": "security"},
        {"subject": "I was charged twice, refund the payment", "team": "engineering"},
        {"subject": "my lawyer says the invoice is wrong", "team": "engineering"},
    ]
    return write_jsonl(tmp_path / "labelled.jsonl", rows)


def test_evaluate_model_cli_json(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> None:
    _, path = trained
    result = run(
        "triage",
        "evaluate",
        "--model",
        str(path),
        str(labelled(tmp_path)),
        "--label",
        "team",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["count"] == 5
    assert rep["abstained"] == 0
    assert rep["confusion"]["billing"] == {"billing": 1, "engineering": 0, "security": 0}
    assert rep["confusion"]["engineering"] == {"billing": 2, "engineering": 1, "security": 0}
    assert rep["confusion"]["security"] == {"billing": 0, "engineering": 0, "security": 1}
    assert rep["accuracy"] == 0.6
    assert set(rep) >= {"accuracy", "macro_f1", "per_label", "confusion", "abstained", "count"}


def test_evaluate_model_abstains_under_min_confidence(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    result = run(
        "triage",
        "evaluate",
        "--model",
        str(path),
        str(labelled(tmp_path)),
        "--label",
        "team",
        "--format",
        "json",
        "--min-confidence",
        "1",
    )
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["abstained"] == 1.0
    assert rep["decided"] == 0


def test_evaluate_policy_uses_the_router(policy_dir: Path) -> None:
    policy = write_policy(policy_dir)
    result = run(
        "triage",
        "evaluate",
        "--policy",
        str(policy),
        str(labelled(policy_dir)),
        "--label",
        "team",
        "--format",
        "json",
        "--now",
        "2024-05-01T09:00:00+00:00",
    )
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    # the lawyer rule decides the fifth ticket (engineering) before the model is asked
    assert rep["confusion"]["engineering"] == {"billing": 1, "engineering": 2, "security": 0}
    assert rep["count"] == 5


def test_evaluate_policy_abstentions(policy_dir: Path) -> None:
    policy = write_policy(policy_dir, min_conf=1.0)
    result = run(
        "triage",
        "evaluate",
        "--policy",
        str(policy),
        str(labelled(policy_dir)),
        "--label",
        "team",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["abstained_count"] == 4  # all but the ticket the lawyer rule decided


def test_evaluate_table(trained: tuple[TriageClassifier, Path], tmp_path: Path) -> None:
    _, path = trained
    result = run(
        "triage", "evaluate", "--model", str(path), str(labelled(tmp_path)), "--label", "team"
    )
    assert result.exit_code == 0, result.output
    assert "accuracy (decided): 60.0%" in result.stdout
    assert "engineering decided as billing" in result.stdout
    assert "confusion" in result.stdout


def test_evaluate_needs_policy_or_model(tmp_path: Path) -> None:
    result = run("triage", "evaluate", str(labelled(tmp_path)), "--label", "team")
    assert result.exit_code == 1
    assert "exactly one of --policy" in result.stderr


# --------------------------------------------------------------------------- CLI training


def test_cli_train_and_info(tmp_path: Path) -> None:
    hist = write_jsonl(tmp_path / "history.jsonl", history_rows())
    out = tmp_path / "team.model"
    result = run(
        "triage",
        "train",
        str(hist),
        "--label",
        "team",
        "--out",
        str(out),
        "--cv",
        "3",
        "--now",
        "2024-05-01T09:00:00+00:00",
    )
    assert result.exit_code == 0, result.output
    assert "54 tickets, 3 labels" in result.stdout
    assert "cross-validated accuracy (3 folds)" in result.stdout
    info = run("triage", "info", str(out))
    assert info.exit_code == 0
    meta = json.loads(info.stdout)
    assert meta["cv"]["folds"] == 3
    assert meta["created_at"] == "2024-05-01T09:00:00+00:00"
    assert (
        meta["sha256"]
        == hashlib.sha256(
            json.dumps(
                {k: v for k, v in meta.items() if k != "sha256"},
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            + b"\n"
            + zipfile.ZipFile(out).read("model.skops")
            + b"\n"
            + zipfile.ZipFile(out).read("vocabularies.json")
            + b"\n"
            + zipfile.ZipFile(out).read("runtime.npz")
        ).hexdigest()
    )


def test_cli_train_csv(tmp_path: Path) -> None:
    lines = ["body,queue"] + [f'"{r["subject"]}",{r["team"]}' for r in history_rows()]
    hist = tmp_path / "export.csv"
    hist.write_text("\n".join(lines) + "\n")
    out = tmp_path / "m.model"
    result = run(
        "triage",
        "train",
        str(hist),
        "--label",
        "team",
        "--text-column",
        "body",
        "--label-column",
        "queue",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert load_model(out).predict(EscalationInput(subject="refund invoice")).label == "billing"


def _bad(tmp_path: Path, content: bytes, name: str = "h.jsonl", *extra: str) -> Any:
    hist = tmp_path / name
    hist.write_bytes(content)
    result = run(
        "triage", "train", str(hist), "--label", "team", "--out", str(tmp_path / "m.model"), *extra
    )
    assert result.exit_code == 1
    assert not (tmp_path / "m.model").exists()
    return result.stderr


def test_cli_empty_history(tmp_path: Path) -> None:
    assert "h.jsonl: empty history" in _bad(tmp_path, b"\n\n")


def test_cli_missing_label_names_the_line(tmp_path: Path) -> None:
    content = b'{"subject": "a", "team": "x"}\n{"subject": "b"}\n'
    err = _bad(tmp_path, content)
    assert "h.jsonl:2: the label field 'team' is missing" in err


def test_cli_single_label(tmp_path: Path) -> None:
    content = b'{"subject": "a", "team": "x"}\n{"subject": "b", "team": "x"}\n'
    assert "same label ('x')" in _bad(tmp_path, content)


def test_cli_non_utf8_names_the_line(tmp_path: Path) -> None:
    content = (
        b'{"subject": "a", "team": "x"}\n{"subject": "b", "team": "y"}\n{"subject": "caf\xe9"}\n'
    )
    assert "h.jsonl:3: not UTF-8 text" in _bad(tmp_path, content)


def test_cli_invalid_json_names_the_line(tmp_path: Path) -> None:
    content = b'{"subject": "a", "team": "x"}\n{"subject": "b", team: "y"}\n'
    assert "h.jsonl:2: not valid JSON" in _bad(tmp_path, content)


def test_cli_invalid_input_names_the_line(tmp_path: Path) -> None:
    content = b'{"subject": "a", "team": "x"}\n{"subject": "b", "team": "y", "amount": -3}\n'
    assert "h.jsonl:2: invalid escalation input: amount" in _bad(tmp_path, content)


def test_cli_missing_history_file(tmp_path: Path) -> None:
    result = run("triage", "train", str(tmp_path / "none.jsonl"), "--label", "team", "--out", "x")
    assert result.exit_code == 1
    assert "none.jsonl: no such file" in result.stderr


def test_cli_csv_missing_column(tmp_path: Path) -> None:
    err = _bad(tmp_path, b"text,queue\nhello,x\n", "h.csv")
    assert "h.csv:1: no column 'team'" in err


def test_cli_refuses_tampered_and_foreign_models(
    trained: tuple[TriageClassifier, Path], tmp_path: Path
) -> None:
    _, path = trained
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.model"
    bad.write_bytes(bytes(data))
    result = run(
        "triage", "evaluate", "--model", str(bad), str(labelled(tmp_path)), "--label", "team"
    )
    assert result.exit_code == 1
    assert "bad.model" in result.stderr
    old = tmp_path / "old.model"
    _rewrite(path, old, lambda h: h.update(format_version=0))
    result = run("triage", "info", str(old))
    assert result.exit_code == 1
    assert "old.model: made with triage model format 0" in result.stderr
