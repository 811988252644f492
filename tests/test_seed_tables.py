"""Every table of the five seeds, row by row, against the example policy that encodes it.

Each parametrized case is one row of a table in ../shared/seeds/ (the id says which); the
assertion is what that row says. The policies live in examples/policies/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from escalade.policy import Policy, load_policy
from escalade.policy.authority import may
from escalade.routing import EscalationInput, Router
from escalade.sla.clocks import ClockName, sla_targets

POLICIES = Path(__file__).resolve().parents[1] / "examples" / "policies"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday afternoon


@cache
def policy(name: str) -> Policy:
    return load_policy(POLICIES / name)


@cache
def router(name: str) -> Router:
    return Router(policy(name))


def decide(name: str, **inp: Any):
    return router(name).route(EscalationInput.model_validate(inp), NOW)


def minutes(text: str) -> timedelta:
    from escalade.durations import parse_duration

    return parse_duration(text)


# =========================================================================== seed 000
P000 = "platform-operations.yaml"


@pytest.mark.parametrize(
    ("level", "response"),
    [("L1", "4h"), ("L2", "2h"), ("L3", "1h"), ("L4", "30m"), ("L5", "15m")],
    ids=lambda x: str(x),
)
def test_000_escalation_levels(level: str, response: str) -> None:
    assert policy(P000).get_level(level).response == minutes(response)


@pytest.mark.parametrize(
    ("category", "level", "max_level"),
    [
        ("general_inquiry", "L1", None),
        ("billing_issue", "L1", "L2"),
        ("technical_issue", "L2", None),
        ("account_security", "L3", None),
        ("system_outage", "L3", "L4"),
        ("legal_compliance", "L4", None),
        ("pr_crisis", "L5", None),
    ],
)
def test_000_category_default_level(category: str, level: str, max_level: str | None) -> None:
    d = decide(P000, subject="help", category=category, priority="SEV-4")
    assert d.level == level
    assert policy(P000).get_category(category).max_level == max_level


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I have a question about how exports work", "general_inquiry"),
        ("I was overcharged on my invoice", "billing_issue"),
        ("The export fails with an error", "technical_issue"),
        ("My account was hacked", "account_security"),
        ("The platform is down for everyone", "system_outage"),
        ("We received a subpoena and a GDPR request", "legal_compliance"),
        ("A journalist is about to publish a story about us, press is calling", "pr_crisis"),
    ],
)
def test_000_categories_inferred_from_text(text: str, category: str) -> None:
    assert decide(P000, subject=text).category == category


LADDER_000 = {
    "SEV-1": {
        "15m": ["tech_lead", "eng_manager"],
        "30m": ["eng_director"],
        "1h": ["vp_eng"],
        "2h": ["cto"],
        "4h": ["ceo"],
    },
    "SEV-2": {
        "15m": ["tech_lead"],
        "30m": ["eng_manager"],
        "1h": ["eng_director"],
        "2h": ["vp_eng"],
        "4h": ["cto"],
    },
    "SEV-3": {"15m": ["tech_lead"], "30m": ["eng_manager"]},
}


@pytest.mark.parametrize(
    ("severity", "after", "roles"),
    [(sev, after, roles) for sev, row in LADDER_000.items() for after, roles in row.items()],
)
def test_000_escalation_timeline(severity: str, after: str, roles: list[str]) -> None:
    p = policy(P000)
    ladder = p.get_ladder(p.get_priority(severity).ladder or "")
    steps = [s for s in ladder.steps if s.after == minutes(after)]
    assert len(steps) == 1, f"{severity} has no single step at {after}"
    assert sorted(r.role for r in steps[0].notify if r.role) == sorted(roles)


def test_000_sev1_pages_on_call_at_zero_and_sev4_is_a_queue() -> None:
    p = policy(P000)
    first = p.get_ladder(p.get_priority("SEV-1").ladder or "").steps[0]
    assert first.after == timedelta(0) and first.notify[0].schedule == "platform-primary"
    sev4 = p.get_ladder(p.get_priority("SEV-4").ladder or "")
    assert all(r.queue for s in sev4.steps for r in s.notify)
    assert p.get_priority("SEV-1").postmortem is not None
    assert p.get_priority("SEV-1").postmortem.due == minutes("48h")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("amount", "authority", "timeline"),
    [
        (50, "L1", "Resolve immediately"),
        (99.99, "L1", "Resolve immediately"),
        (100, "L2", "24-48 hours"),
        (499, "L2", "24-48 hours"),
        (500, "finance_manager", "72 hours"),
        (1999, "finance_manager", "72 hours"),
        (2000, "finance_director", "5 days"),
        (10000, "finance_director", "5 days"),
        (10000.01, "cfo", "Case by case"),
        (250000, "cfo", "Case by case"),
    ],
)
def test_000_financial_dispute_authority(amount: float, authority: str, timeline: str) -> None:
    d = decide(P000, subject="I dispute this charge", category="financial_dispute", amount=amount)
    assert d.authority == [authority]
    assert any(timeline in r for r in d.reasons)
    assert may(policy(P000), "financial_dispute", authority, amount=amount).allowed
    other = "cfo" if authority != "cfo" else "L1"
    assert not may(policy(P000), "financial_dispute", other, amount=amount).allowed


@pytest.mark.parametrize(
    ("inp", "trigger"),
    [
        ({"subject": "I will sue you, my lawyer is ready"}, "legal-threat"),
        (
            {
                "subject": "We will cancel our contract and move to a competitor",
                "customer": {"tier": "enterprise"},
            },
            "churn-threat-enterprise",
        ),
        ({"subject": "I want compensation for the outage", "amount": 800}, "compensation-over-500"),
    ],
)
def test_000_management_triggers(inp: dict[str, Any], trigger: str) -> None:
    d = decide(P000, **inp)
    assert trigger in d.triggers
    assert d.level is not None
    assert policy(P000).level_rank(d.level) >= policy(P000).level_rank("L4")


def test_000_compensation_at_500_is_not_management() -> None:
    d = decide(P000, subject="I want compensation for the outage", amount=500)
    assert "compensation-over-500" not in d.triggers


# =========================================================================== seed 001
P001 = "photo-support-triage.yaml"


@pytest.mark.parametrize(
    ("scenario", "inp", "team", "priority", "response"),
    [
        ("Site down", {"subject": "The site is down, nothing loads"}, "engineering", "P0", "0m"),
        (
            "Data loss (single user)",
            {"subject": "My photos disappeared after upload", "impact": {"users_affected": 1}},
            "engineering",
            "P1",
            "1h",
        ),
        (
            "Payment dispute",
            {"subject": "I want to dispute a payment on my card"},
            "billing",
            "P1",
            "2h",
        ),
        (
            "Feature broken",
            {"subject": "The slideshow feature is broken since the update"},
            "engineering",
            "P2",
            "4h",
        ),
        (
            "Complex how-to",
            {"subject": "How do I set up a complex workflow with nested galleries?"},
            "customer_success",
            "P2",
            "4h",
        ),
        (
            "Feature request",
            {"subject": "Feature request: please add dark mode"},
            "product",
            "P3",
            "24h",
        ),
        (
            "Legal request",
            {"subject": "Legal request regarding a court order for account data"},
            "legal",
            "P1",
            "2h",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_001_decision_matrix(
    scenario: str, inp: dict[str, Any], team: str, priority: str, response: str
) -> None:
    d = decide(P001, **inp)
    assert (d.team, d.priority) == (team, priority), d.reasons
    assert minutes(d.response_target or "") == minutes(response)


@pytest.mark.parametrize(
    ("text", "team"),
    [
        ("Bug report: error code ERR_UPLOAD_TIMEOUT when uploading", "engineering"),
        ("Data corruption in my gallery", "engineering"),
        ("The app is extremely slow, performance is terrible", "engineering"),
        ("Feature broken after deployment yesterday", "engineering"),
        ("I found a security vulnerability, an XSS in comments", "engineering"),
        ("Payment dispute about last month", "billing"),
        ("Please process my refund request", "billing"),
        ("I want to change my subscription plan", "billing"),
        ("There is an invoice error, wrong VAT", "billing"),
        ("My card charge failed at checkout", "billing"),
        ("I want to cancel my account", "customer_success"),
        ("Onboarding help: I'm a new user and can't get started", "customer_success"),
        ("Partnership inquiry from our agency", "customer_success"),
        ("GDPR request: delete all my personal data", "legal"),
        ("We received a subpoena for user records", "legal"),
        ("Copyright dispute: someone uploaded my photos", "legal"),
        ("This user is violating your terms of service", "legal"),
    ],
)
def test_001_route_to_team(text: str, team: str) -> None:
    d = decide(P001, subject=text)
    assert d.team == team, d.reasons


@pytest.mark.parametrize(
    ("inp", "priority"),
    [
        ({"subject": "Site completely down"}, "P0"),
        ({"subject": "My photos disappeared", "impact": {"users_affected": 40}}, "P0"),
        ({"subject": "Security breach: someone accessed all accounts"}, "P0"),
        ({"subject": "Payment processing broken for everyone"}, "P0"),
        ({"subject": "My photos disappeared", "impact": {"users_affected": 1}}, "P1"),
        ({"subject": "Account access blocked, I cannot log in"}, "P1"),
        ({"subject": "How do I export an album?", "customer": {"tier": "premium"}}, "P1"),
        (
            {"subject": "Absolutely terrible, worst service ever, I am furious and disgusted"},
            "P1",
        ),
        ({"subject": "Enhancement suggestion: nicer album covers"}, "P3"),
    ],
)
def test_001_priority_levels(inp: dict[str, Any], priority: str) -> None:
    d = decide(P001, **inp)
    assert d.priority == priority, d.reasons


def test_001_monitoring_ladder_and_targets() -> None:
    p = policy(P001)
    ladder = p.get_ladder(p.get_priority("P1").ladder or "")
    first, second = ladder.steps[0], ladder.steps[1]
    assert first.after == minutes("1h") and "responded" in [u.value for u in first.unless]
    assert second.after == minutes("4h") and [u.value for u in second.unless] == ["resolved"]

    def ratio(v: float | None, unit: str) -> float | None:
        return None if v is None else (v / 100 if unit == "percent" else v)

    targets = {m.id: (ratio(m.below, m.unit), ratio(m.above, m.unit)) for m in p.metrics}
    assert targets["escalation_rate"] == (0.15, None)
    assert targets["escalation_accuracy"] == (None, 0.9)


# =========================================================================== seed 002
P002 = "marketplace-matrix.yaml"

ISSUES_002 = [
    # (issue type, initial owner, escalation path, SLA)
    ("login_problems", "tier1", ["tier2", "tier3"], "4h"),
    ("skillpod_issues", "tier2", ["tier3"], "2h"),
    ("performance_issues", "tier2", ["tier3"], "1h"),
    ("bug_reports", "tier1", ["tier2", "tier3"], "24h"),
    ("api_errors", "tier2", ["tier3"], "4h"),
    ("data_sync_issues", "tier2", ["tier3"], "4h"),
    ("payment_failed", "tier1", ["billing", "tier3"], "4h"),
    ("refund_request", "tier1", ["billing"], "24h"),
    ("withdrawal_issues", "billing", ["tier3", "finance"], "48h"),
    ("dispute_resolution", "disputes", ["legal"], "72h"),
    ("invoice_problems", "billing", ["finance"], "24h"),
    ("fee_questions", "tier1", ["billing"], "4h"),
    ("harassment_report", "trust_safety", ["trust_safety:lead", "legal"], "4h"),
    ("fraud_suspicion", "trust_safety", ["trust_safety:lead", "security"], "2h"),
    ("account_compromise", "security", ["tier3", "ciso"], "1h"),
    ("fake_profiles", "trust_safety", ["trust_safety:lead"], "24h"),
    ("terms_violation", "trust_safety", ["legal"], "24h"),
    ("dmca_copyright", "legal", ["external_counsel"], "48h"),
    ("enterprise_inquiry", "sales", ["sales:account_exec"], "24h"),
    ("partnership_request", "bd", ["bd:lead"], "48h"),
    ("press_inquiry", "pr", ["ceo_cmo"], "4h"),
    ("legal_threat", "legal", ["legal:general_counsel", "ceo"], "2h"),
    ("executive_complaint", "tier4", ["ceo"], "4h"),
]


@pytest.mark.parametrize(("category", "owner", "path", "sla"), ISSUES_002)
def test_002_issue_categories_and_routing(
    category: str, owner: str, path: list[str], sla: str
) -> None:
    d = decide(P002, subject="x", category=category, priority="P2")
    assert d.team == owner
    assert d.path == path
    targets = sla_targets(
        policy(P002), category_id=category, team_id=owner, priority_id="P2", channel=None
    )
    assert targets[ClockName.resolution].target == minutes(sla)


@pytest.mark.parametrize(
    ("severity", "target", "maximum"),
    [("P0", "1h", "4h"), ("P1", "4h", "8h"), ("P2", "24h", "48h"), ("P3", "72h", "1w")],
)
def test_002_resolution_by_severity(severity: str, target: str, maximum: str) -> None:
    r = policy(P002).get_priority(severity).resolution
    assert r is not None and (r.target, r.maximum) == (minutes(target), minutes(maximum))


@pytest.mark.parametrize(
    ("channel", "target", "maximum"),
    [("chat", "2m", "5m"), ("email", "2h", "4h"), ("phone", "0", "1m")],
)
def test_002_first_response_by_channel(channel: str, target: str, maximum: str) -> None:
    for priority in ("P0", "P1", "P2", "P3"):
        t = sla_targets(
            policy(P002), category_id=None, team_id="tier1", priority_id=priority, channel=channel
        )[ClockName.response]
        assert (t.target, t.maximum) == (minutes(target), minutes(maximum))


COLUMNS_002 = ["tier1", "tier2", "trust_safety", "billing", "tier3", "tier4"]
AUTHORITY_002 = {
    # action: cells for Tier 1, Tier 2, T&S, Billing, Tier 3, Tier 4
    "password_reset": "✓ ✓ ✓ ✓ ✓ ✓",
    "add_connects": "✓ ✓ - ✓ ✓ ✓",
    "disable_2fa": "- ✓ - - ✓ ✓",
    "unlock_account": "✓ ✓ ✓ - ✓ ✓",
    "suspend_account": "- - ✓ - - ✓",
    "ban_user": "- - Lead - - ✓",
    "release_escrow": "- - - Lead - ✓",
    "modify_database": "- - - - ✓ ✓",
    "deploy_code": "- - - - ✓ ✓",
    "feature_flags": "- - - - ✓ ✓",
}


@pytest.mark.parametrize(
    ("action", "column", "cell"),
    [
        (action, col, cell)
        for action, cells in AUTHORITY_002.items()
        for col, cell in zip(COLUMNS_002, cells.split(), strict=True)
    ],
)
def test_002_authority_matrix(action: str, column: str, cell: str) -> None:
    p = policy(P002)
    member, lead = may(p, action, column), may(p, action, column, lead=True)
    if cell == "✓":
        assert member.allowed and lead.allowed
    elif cell == "Lead":
        assert not member.allowed and lead.allowed
        assert "lead" in member.reason
    else:
        assert not member.allowed and not lead.allowed


@pytest.mark.parametrize(
    ("amount", "cells"),
    [(50, "- ✓ - ✓ - ✓"), (99.99, "- ✓ - ✓ - ✓"), (100.01, "- - - ✓ - ✓"), (5000, "- - - ✓ - ✓")],
)
def test_002_refund_bands(amount: float, cells: str) -> None:
    for col, cell in zip(COLUMNS_002, cells.split(), strict=True):
        assert may(policy(P002), "issue_refund", col, amount=amount).allowed is (cell == "✓")


# =========================================================================== seed 003
P003 = "helpdesk-workflows.yaml"


@pytest.mark.parametrize(
    ("urgency", "response"),
    [("critical", "15m"), ("high", "30m"), ("medium", "2h"), ("low", "24h")],
)
def test_003_urgency_levels(urgency: str, response: str) -> None:
    r = policy(P003).get_priority(urgency).response
    assert r is not None and r.target == minutes(response)


@pytest.mark.parametrize(
    ("text", "team"),
    [
        ("Customer requests a supervisor", "senior_support"),
        ("Refund outside policy requires approval", "senior_support"),
        ("Confirmed bug affecting multiple users", "engineering"),  # with users_affected
        ("API failures on the orders endpoint", "engineering"),
        ("Build failed and the deployment is stuck", "engineering"),
        ("Customer threatens legal action against us", "legal"),
        ("A journalist from the press asked for a comment (media inquiry)", "management"),
        ("We suspect a data breach", "management"),
        ("Fraud detected on this account", "fraud"),
    ],
)
def test_003_when_to_escalate(text: str, team: str) -> None:
    d = decide(P003, subject=text, impact={"users_affected": 12})
    assert d.team == team, d.reasons


@pytest.mark.parametrize(
    ("category", "kinds"),
    [
        ("security_concern", {"no_customer_reply", "approval_before_communication"}),
        ("legal_threat", {"do_not_engage"}),
        ("fraud_detected", {"no_customer_alert"}),
    ],
)
def test_003_special_escalations(category: str, kinds: set[str]) -> None:
    d = decide(P003, subject="x", category=category)
    rules = {h.id: h.kind.value for h in policy(P003).handling}
    assert kinds <= {rules[h] for h in d.handling}


def test_003_follow_ups_and_required_info() -> None:
    p = policy(P003)
    every = {f.what.lower(): f.every for f in p.followups}
    assert minutes("4h") in every.values() and minutes("24h") in every.values()
    d = decide(P003, subject="x", category="api_failure")
    assert {"ticket_id", "customer_email", "steps_taken", "users_affected"} <= set(d.missing)


# =========================================================================== seed 004
P004 = "household-escalations.yaml"


@pytest.mark.parametrize(
    ("category", "severity", "team", "also", "response", "resolution"),
    [
        ("data_integrity", "P0", "engineering", [], "1h", "4h"),
        ("security_vulnerability", "P0", "engineering", ["security"], "30m", None),
        ("abuse_harassment", "P1", "trust_safety", [], "2h", "24h"),
        ("leader_member_dispute", "P2", "csm", [], "4h", "3d"),
        ("urgent_feature_request", "P2", "product", [], "1d", None),
        ("rate_limit", "P2", "engineering", [], "4h", "1d"),
        ("capacity_increase", "P3", "csm", [], "2d", "3d"),
    ],
)
def test_004_escalation_matrix(
    category: str,
    severity: str,
    team: str,
    also: list[str],
    response: str,
    resolution: str | None,
) -> None:
    d = decide(P004, subject="x", category=category)
    assert (d.priority, d.team, d.also) == (severity, team, also)
    assert minutes(d.response_target or "") == minutes(response)
    targets = sla_targets(
        policy(P004), category_id=category, team_id=team, priority_id=severity, channel=None
    )
    if resolution is not None:
        assert targets[ClockName.resolution].target == minutes(resolution)


def test_004_vip_rule() -> None:
    vip = decide(P004, subject="Question about my household", customer={"monthly_value": 120})
    cheap = decide(P004, subject="Question about my household", customer={"monthly_value": 100})
    assert vip.signals is not None and vip.signals.vip
    assert cheap.signals is not None and not cheap.signals.vip


def test_004_legal_never_in_chat_and_single_team() -> None:
    p = policy(P004)
    d = decide(P004, subject="We got a subpoena for household data", category="legal_matter")
    rules = [h for h in p.handling if h.id in d.handling]
    assert any(
        "chat" in {c.value for c in h.forbid_channels} or h.kind.value == "never_in_chat"
        for h in rules
    )
    assert p.allow_multi_team is False


@pytest.mark.parametrize(
    ("activity", "more_than", "days"),
    [("household.created", 10, 2), ("member.removed", 20, 2)],
)
def test_004_trust_and_safety_thresholds(activity: str, more_than: int, days: int) -> None:
    th = [
        t.threshold
        for t in policy(P004).triggers
        if t.threshold and t.threshold.activity == activity
    ]
    assert len(th) == 1 and th[0] is not None
    assert (th[0].more_than, th[0].window, th[0].days) == (more_than, minutes("1d"), days)


def test_000_platform_wide_wording_is_an_outage_at_sev1() -> None:
    # the wording of spec/simulate.md's example escalation, without category or priority
    d = decide(P000, subject="Payments failing for all EU customers")
    assert (d.category, d.priority, d.team) == ("system_outage", "SEV-1", "engineering")
