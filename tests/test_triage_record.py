"""Learning from the record (issue 17): escalations in the database, with the reassignments
people made, become labelled tickets; ``triage train --from-db`` learns the corrected team,
``triage evaluate --from-db`` backtests with the same keys as ``triage evaluate``, ``triage
drift`` reports accuracy week by week, and a policy can require a minimum backtest
accuracy that ``policy check`` enforces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from escalade.cli.main import app
from escalade.clock import VirtualClock
from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.routing.router import Router
from escalade.service import EscalationService
from escalade.store.db import SqlStore
from escalade.triage.record import recorded

START = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
NOW = START + timedelta(days=15)

# A policy whose one rule routes password trouble to Billing: wrong, and people correct it.
POLICY = """\
escalade: 1
id: record
teams:
  - {id: frontline, contacts: {email: help@example.com}}
  - {id: billing, contacts: {email: billing@example.com}}
  - {id: security, contacts: {email: security@example.com}}
priorities: [{id: P2, response: 4h}]
routing:
  default_priority: P2
  triage_queue: frontline
  similarity: {enabled: false}
  rules:
    - id: money
      when: {text: {phrases: [charged, invoice, password]}}
      then: {team: billing}
"""

BILLING = ["I was charged twice for {}", "The invoice for {} is wrong", "Charged again in {}"]
SECURITY = [
    "Someone stole my password in {}",
    "My password was changed by a stranger in {}",
    "Password reset emails I never asked for since {}",
]
MONTHS = ["March", "April", "May", "June"]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A SQLite database filled through the escalation service: 12 billing tickets routed
    right, 12 password tickets routed to Billing and reassigned to Security by a lead, over
    two weeks."""
    folder = tmp_path_factory.mktemp("record")
    url = f"sqlite:///{folder / 'escalade.db'}"
    (folder / "policy.yaml").write_text(POLICY)
    policy = Policy.model_validate(yaml.safe_load(POLICY))
    store = SqlStore(url)
    store.upgrade()
    clock = VirtualClock(START)
    service = EscalationService(store, clock)
    service.apply_policy(policy, router=Router(policy), by="test")
    n = 0
    for day in range(12):
        clock.set(START + timedelta(days=day))
        for frames, wrong in ((BILLING, False), (SECURITY, True)):
            text = frames[day % 3].format(MONTHS[day % 4])
            n += 1
            esc = service.create(EscalationInput(subject=text), by="test", ref=f"T-{n}")
            assert esc.team == "billing"
            if wrong:
                service.act(esc.ref, "reassign", by="lead", to="security", reason="misrouted")
    store.dispose()
    return url, folder


def test_reassignments_are_the_labels(filled: tuple[str, Path]) -> None:
    url, _ = filled
    store = SqlStore(url)
    try:
        records = recorded(store)
    finally:
        store.dispose()
    assert len(records) == 24
    password = [r for r in records if "assword" in r.input.subject]
    assert len(password) == 12
    for r in password:
        assert r.routed["team"] == "billing"
        assert r.final["team"] == "security"
        assert r.corrections == ["reassigned from team 'billing' to 'security'"]
    assert all(
        r.final["team"] == "billing" and not r.corrections for r in records if r not in password
    )
    store = SqlStore(url)
    try:
        assert len(recorded(store, since=START + timedelta(days=7))) == 10
    finally:
        store.dispose()


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_train_from_db_learns_the_corrected_team(filled: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = filled
    out = tmp_path / "team.model"
    code, stdout, stderr = _run(
        "triage", "train", "--from-db", "--db-url", url, "--label", "team", "--out", str(out)
    )
    assert code == 0, stderr
    assert "24 escalations from the database; 12 with a team corrected by people" in stderr
    assert "security: 12" in stdout and "billing: 12" in stdout
    from escalade.triage.model import load_model

    clf = load_model(out)
    assert sorted(clf.labels) == ["billing", "security"]
    guess = clf.predict(EscalationInput(subject="Someone stole my password in July"))
    assert guess.label == "security"
    code, _, stderr = _run(
        "triage", "train", "--from-db", "--db-url", url, "--label", "team", "--out", str(out),
        "--since", "2026-03-09",
    )  # fmt: skip
    assert code == 0 and "10 escalations from the database" in stderr


def test_evaluate_from_db_prints_the_same_keys(filled: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = filled
    policy = str(folder / "policy.yaml")
    code, stdout, stderr = _run(
        "triage", "evaluate", "--from-db", "--db-url", url, "--last", "4w", "--now",
        NOW.isoformat(), "--policy", policy, "--label", "team", "--format", "json",
    )  # fmt: skip
    assert code == 0, stderr
    from_db = json.loads(stdout)
    # the same tickets from a file give the same keys
    exported = tmp_path / "recent.jsonl"
    code, _, stderr = _run(
        "triage", "export", "--db-url", url, "--label", "team", "--out", str(exported)
    )
    assert code == 0, stderr
    code, stdout, _ = _run(
        "triage", "evaluate", str(exported), "--policy", policy, "--label", "team",
        "--format", "json",
    )  # fmt: skip
    from_file = json.loads(stdout)
    assert set(from_db) == set(from_file)
    assert from_db["count"] == 24
    # the policy's wrong rule is caught by the record: half right
    assert from_db["accuracy"] == 0.5 and from_file["accuracy"] == 0.5
    code, stdout, _ = _run(
        "triage", "evaluate", "--from-db", "--db-url", url, "--last", "3d", "--now",
        NOW.isoformat(), "--policy", policy, "--label", "team",
    )  # fmt: skip
    assert code == 1  # nothing created in the last three days


def test_drift_by_week(filled: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = filled
    code, stdout, stderr = _run(
        "triage", "drift", "--db-url", url, "--last", "4w", "--now", NOW.isoformat(),
        "--policy", str(folder / "policy.yaml"), "--label", "team", "--format", "json",
    )  # fmt: skip
    assert code == 0, stderr
    weeks = json.loads(stdout)["weeks"]
    assert [w["week"] for w in weeks] == ["2026-W10", "2026-W11"]
    assert [w["count"] for w in weeks] == [14, 10]
    assert all(w["accuracy"] == 0.5 for w in weeks)


def test_policy_requires_a_minimum_backtest_accuracy(
    filled: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = filled
    _run("triage", "train", "--from-db", "--db-url", url, "--label", "team", "--out",
         str(tmp_path / "team.model"))  # fmt: skip
    # a backtest set on which the model is wrong half the time: everything labelled billing
    rows = [{"subject": s.format("July"), "team": "billing"} for s in BILLING + SECURITY]
    (tmp_path / "backtest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    base = POLICY.replace("  similarity: {enabled: false}\n", "")
    triage = (
        "  triage:\n    - {field: team, model: team.model, min_confidence: 0.0, "
        "backtest: backtest.jsonl, min_backtest_accuracy: %s}\n"
    )
    (tmp_path / "strict.yaml").write_text(base + triage % "0.9")
    code, stdout, stderr = _run("policy", "check", str(tmp_path / "strict.yaml"))
    assert code == 1
    stderr += stdout
    assert "reaches 50.0 % team accuracy on the 6 backtest tickets in backtest.jsonl" in stderr
    assert "under the policy's minimum 90.0 %: it is not used" in stderr
    (tmp_path / "lenient.yaml").write_text(base + triage % "0.4")
    code, _, stderr = _run("policy", "check", str(tmp_path / "lenient.yaml"))
    assert code == 0, stderr
    code, _, stderr = _run("route", "--policy", str(tmp_path / "strict.yaml"), "-")
    assert code == 1 and "under the policy's minimum" in stderr


def test_database_options_need_the_database(filled: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = filled
    history = tmp_path / "h.jsonl"
    history.write_text('{"subject": "x", "team": "a"}\n')
    code, _, stderr = _run(
        "triage", "train", str(history), "--label", "team", "--out", str(tmp_path / "m"),
        "--since", "2026-03-01",
    )  # fmt: skip
    assert code == 1 and "--since reads the database: add --from-db" in stderr
    code, _, stderr = _run(
        "triage", "evaluate", str(history), "--label", "team", "--last", "4w",
        "--policy", str(folder / "policy.yaml"),
    )  # fmt: skip
    assert code == 1 and "--last reads the database: add --from-db" in stderr
    code, _, stderr = _run("triage", "train", "--label", "team", "--out", str(tmp_path / "m"))
    assert code == 1 and "give a history file or --from-db" in stderr
    code, _, stderr = _run(
        "triage", "train", "--from-db", "--db-url", url, "--label", "team", "--out",
        str(tmp_path / "m"), "--since", "2026-31-01",
    )  # fmt: skip
    assert code == 1 and "--since '2026-31-01' is not a date" in stderr


# A policy whose rule files password trouble under billing_issue: people re-categorise it.
CATEGORY_POLICY = """\
escalade: 1
id: record-categories
teams:
  - {id: frontline, contacts: {email: help@example.com}}
  - {id: billing, contacts: {email: billing@example.com}}
  - {id: security, contacts: {email: security@example.com}}
priorities: [{id: P1, response: 1h}, {id: P2, response: 4h}]
categories:
  - {id: billing_issue, owner: billing, match: {phrases: [charged, invoice, password]}}
  - {id: account_security, owner: security, priority: P1}
routing:
  default_priority: P2
  triage_queue: frontline
  similarity: {enabled: false}
"""


def _scenario_with_recategorisations(folder: Path) -> Path:
    """12 billing tickets left alone and 12 password tickets a lead re-categorises as
    account_security, one every hour, as a ``simulate`` scenario."""
    (folder / "policy.yaml").write_text(CATEGORY_POLICY)
    events: list[dict[str, object]] = []
    for i in range(12):
        for n, (frames, wrong) in enumerate(((BILLING, False), (SECURITY, True))):
            ref = f"C-{2 * i + n + 1}"
            text = frames[i % 3].format(MONTHS[i % 4])
            events.append({"at": f"{i}h", "create": {"ref": ref, "subject": text}})
            if wrong:
                events.append(
                    {
                        "at": f"{i}h5m",
                        "recategorise": {
                            "ref": ref, "by": "lead", "category": "account_security",
                            "reason": "an account takeover, not a bill",
                        },
                    }
                )  # fmt: skip
    scenario = {
        "policy": "policy.yaml",
        "start": "2026-03-02T09:00:00Z",
        "until": "2026-03-03T09:00:00Z",
        "events": events,
    }
    path = folder / "day.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def test_train_from_a_database_filled_by_simulate_learns_the_corrected_category(
    tmp_path: Path,
) -> None:
    scenario = _scenario_with_recategorisations(tmp_path)
    url = f"sqlite:///{tmp_path / 'simulated.db'}"
    code, stdout, stderr = _run("simulate", str(scenario), "--db-url", url)
    assert code == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    recats = [r for r in rows if r["type"] == "escalation.recategorised"]
    assert len(recats) == 12
    assert recats[0]["from"] == "billing_issue" and recats[0]["to"] == "account_security"
    assert recats[0]["to_team"] == "security" and recats[0]["to_priority"] == "P1"

    store = SqlStore(url)
    try:
        records = recorded(store)
    finally:
        store.dispose()
    password = [r for r in records if "assword" in r.input.subject]
    assert len(records) == 24 and len(password) == 12
    for r in password:
        assert r.routed["category"] == "billing_issue"
        assert r.final == {"team": "security", "category": "account_security"}
        assert r.corrections == [
            "team 'security' (not 'billing') with the category a person set",
            "re-categorised from 'billing_issue' to 'account_security'",
        ]

    out = tmp_path / "category.model"
    code, stdout, stderr = _run(
        "triage", "train", "--from-db", "--db-url", url, "--label", "category", "--out", str(out)
    )
    assert code == 0, stderr
    assert "24 escalations from the database; 12 with a category corrected by people" in stderr
    assert "account_security: 12" in stdout and "billing_issue: 12" in stdout
    from escalade.triage.model import load_model

    clf = load_model(out)
    assert sorted(clf.labels) == ["account_security", "billing_issue"]
    guess = clf.predict(EscalationInput(subject="A stranger changed my password in July"))
    assert guess.label == "account_security"


def test_simulate_db_url_refuses_a_database_that_holds_escalations(tmp_path: Path) -> None:
    scenario = _scenario_with_recategorisations(tmp_path)
    url = f"sqlite:///{tmp_path / 'simulated.db'}"
    assert _run("simulate", str(scenario), "--db-url", url)[0] == 0
    code, _, stderr = _run("simulate", str(scenario), "--db-url", url)
    assert code == 1
    assert "already holds escalations: give a new database" in stderr
