"""Seed rules that routing decides, which no other test or scenario showed: one case per
row of docs/SEED-COVERAGE.md (the row id is the case id). Tickets are in a customer's
words; each asserts what the row claims the engine decides (category, team, priority,
tags), through the real Router on the example policy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from escalade.policy import load_policy
from escalade.routing import EscalationInput, Router
from escalade.routing.models import Decision

POLICIES = Path(__file__).resolve().parents[1] / "examples" / "policies"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@cache
def router(name: str) -> Router:
    return Router(load_policy(POLICIES / name))


def decide(name: str, **inp: Any) -> Decision:
    return router(name).route(EscalationInput.model_validate(inp), NOW)


HOUSEHOLD = "household-escalations.yaml"

# (row, ticket, category, team, priority, tag)
HOUSEHOLD_ROWS = [
    (
        "004-9",
        "Someone got an XSS script to run on our household page",
        "security_vulnerability",
        "engineering",
        "P0",
        "[ENG-ESCALATION]",
    ),
    (
        "004-10",
        "The app says cannot create household every time I try",
        "system_failure",
        "engineering",
        "P0",
        "[ENG-ESCALATION]",
    ),
    (
        "004-11",
        "I approved the join request but my sister never shows up as a member",
        "feature_malfunction",
        "engineering",
        "P1",
        "[ENG-ESCALATION]",
    ),
    (
        "004-12",
        "The member list not loading at all for our big household",
        "performance_issue",
        "engineering",
        "P1",
        "[ENG-ESCALATION]",
    ),
    (
        "004-13",
        "Two families were given the same invite code",
        "engineering_edge_case",
        "engineering",
        "P2",
        "[ENG-ESCALATION]",
    ),
    (
        "004-14",
        "Could you add database indexing so our large shelter loads faster",
        "engineering_enhancement",
        "engineering",
        "P2",
        "[ENG-ESCALATION]",
    ),
    (
        "004-26",
        "The leader kicked everyone out as punishment after an argument",
        "active_abuse",
        "trust_safety",
        "P0",
        "[T&S-ESCALATION]",
    ),
    (
        "004-27",
        "Our household was hacked and the leadership moved to a stranger",
        "account_compromise",
        "trust_safety",
        "P0",
        "[T&S-ESCALATION]",
    ),
    (
        "004-30",
        "A user is selling invite codes on a forum",
        "suspected_abuse_pattern",
        "trust_safety",
        "P1",
        "[T&S-ESCALATION]",
    ),
    (
        "004-31",
        "This household is pure spam advertising dog food",
        "policy_violation",
        "trust_safety",
        "P1",
        "[T&S-ESCALATION]",
    ),
    (
        "004-32",
        "Somebody is scraping member names from public households",
        "tos_violation",
        "trust_safety",
        "P2",
        "[T&S-ESCALATION]",
    ),
    (
        "004-45",
        "I am an influencer with a large audience and want to feature your app",
        "press_or_influencer",
        "csm",
        "P2",
        "[CSM-ESCALATION]",
    ),
    (
        "004-47",
        "Can we get an exception to the policy for our rescue's 30 volunteers",
        "policy_question",
        "csm",
        "P3",
        "[CSM-ESCALATION]",
    ),
    (
        "004-48",
        "We are blocked by a missing feature: no shared vet calendar",
        "feature_gap",
        "csm",
        "P3",
        "[CSM-ESCALATION]",
    ),
    (
        "004-56",
        "Many users asking for a dark mode, the settings page is confusing",
        "product_feedback",
        "product",
        "P3",
        "[PM-FEEDBACK]",
    ),
]


@pytest.mark.parametrize(
    ("row", "text", "category", "team", "priority", "tag"),
    HOUSEHOLD_ROWS,
    ids=[r[0] for r in HOUSEHOLD_ROWS],
)
def test_004_team_sections_route(
    row: str, text: str, category: str, team: str, priority: str, tag: str
) -> None:
    d = decide(HOUSEHOLD, subject=text)
    assert (d.category, d.team, d.priority) == (category, team, priority), d.reasons
    assert tag in d.tags


HELPDESK = "helpdesk-workflows.yaml"


def test_003_account_restoration_goes_to_senior_support() -> None:
    """Row 003-5: "Account restoration needed" → Tier 2 (senior support)."""
    d = decide(HELPDESK, subject="Please recover my account, I closed it by mistake last week")
    assert (d.category, d.team) == ("account_restoration", "senior_support"), d.reasons


def test_003_complex_technical_goes_to_senior_support() -> None:
    """Row 003-4: "Complex technical issue" → Tier 2, one user (no bug for many)."""
    d = decide(
        HELPDESK,
        subject="The export crashes halfway on my machine",
        impact={"users_affected": 1},
    )
    assert (d.category, d.team) == ("complex_technical", "senior_support"), d.reasons


def test_003_major_outage_goes_to_management() -> None:
    """Row 003-13: "Major service outage" → Management."""
    d = decide(HELPDESK, subject="Everything is down, no page of the site opens")
    assert (d.category, d.team) == ("major_outage", "management"), d.reasons


def test_003_high_urgency_goes_to_senior_support_level() -> None:
    """Row 003-33: High "Actions: 1. Escalate to senior support" (rule high-to-senior-support)."""
    d = decide(HELPDESK, subject="Export not working", priority="high")
    assert "high-to-senior-support" in d.rules
    assert d.level == "tier2" or d.team == "senior_support", d.reasons


PHOTO = "photo-support-triage.yaml"


def test_001_premium_feature_request_goes_to_customer_success() -> None:
    """Row 001-18: "Feature requests from premium users" → Customer Success."""
    d = decide(
        PHOTO,
        subject="Would be nice to have albums shared by link",
        customer={"tier": "premium"},
    )
    assert (d.category, d.team) == ("premium_feature_request", "customer_success"), d.reasons


def test_001_threatening_language_goes_to_legal() -> None:
    """Row 001-26: "Threatening language" → Legal/Compliance."""
    d = decide(PHOTO, subject="Give my wedding photos back by Friday or you will regret it")
    assert (d.category, d.team) == ("threatening_language", "legal"), d.reasons


def test_001_time_sensitive_is_tagged() -> None:
    """Row 001-61: "🔥 Time-sensitive issues" (tag time-sensitive)."""
    d = decide(PHOTO, subject="I need the gallery link before my deadline on Friday")
    assert "time-sensitive" in d.tags


PLATFORM = "platform-operations.yaml"


@pytest.mark.parametrize(
    ("revenue", "priority"),
    [(25000, "SEV-1"), (5000, "SEV-2"), (300, "SEV-3")],
)
def test_000_revenue_impact_sets_the_severity(revenue: float, priority: str) -> None:
    """Row 000-39: revenue impact bands (> $10K/hour SEV-1, $1K-$10K SEV-2, < $1K SEV-3)."""
    d = decide(
        PLATFORM,
        subject="Checkout trouble",
        category="technical_issue",
        impact={"revenue_per_hour": revenue},
    )
    assert d.priority == priority, d.reasons


# (row, team, priority, acknowledgement, investigation (target, maximum), resolution
#  (target, maximum), communication cadence): seed 004's three team SLA tables
TEAM_SLAS = [
    ("004-24", "engineering", "P1", "2h", ("4h", None), ("1d", "3d"), "1d"),
    ("004-25", "engineering", "P2", "4h", ("1d", None), ("1w", "2w"), "1w"),
    ("004-39", "trust_safety", "P0", "1h", ("2h", "4h"), ("24h", None), "1d"),
    ("004-40", "trust_safety", "P1", "4h", ("1d", None), ("2d", "3d"), "2d"),
    ("004-41", "trust_safety", "P2", "24h", ("2d", "3d"), ("5d", "7d"), "1w"),
    ("004-54", "csm", "P2", "4h", ("1d", None), ("2d", "3d"), "1d"),
    ("004-55", "csm", "P3", "24h", ("2d", "3d"), ("5d", "7d"), "2d"),
]


@pytest.mark.parametrize(
    ("row", "team", "priority", "ack", "investigation", "resolution", "every"),
    TEAM_SLAS,
    ids=[r[0] for r in TEAM_SLAS],
)
def test_004_team_sla_tables_set_the_clocks(
    row: str,
    team: str,
    priority: str,
    ack: str,
    investigation: tuple[str, str | None],
    resolution: tuple[str, str | None],
    every: str,
) -> None:
    """The clocks an escalation of that team and priority gets (what ``create`` arms)."""
    from escalade.durations import parse_duration
    from escalade.sla.clocks import ClockName, sla_targets

    def span(pair: tuple[str, str | None]) -> tuple[object, object]:
        return parse_duration(pair[0]), parse_duration(pair[1]) if pair[1] else None

    t = sla_targets(
        load_policy(POLICIES / HOUSEHOLD), category_id=None, team_id=team, priority_id=priority
    )
    assert t[ClockName.acknowledgement].target == parse_duration(ack)
    got_inv = t[ClockName.investigation]
    assert (got_inv.target, got_inv.maximum) == span(investigation)
    got_res = t[ClockName.resolution]
    assert (got_res.target, got_res.maximum) == span(resolution)
    assert t[ClockName.update].target == parse_duration(every)
    assert t[ClockName.acknowledgement].source == f"sla row {team}×{priority}"


def _targets(policy: str, clock: str, **kw: Any) -> tuple[object, object, str]:
    from escalade.sla.clocks import ClockName, sla_targets

    t = sla_targets(load_policy(POLICIES / policy), category_id=None, **kw)[ClockName(clock)]
    return t.target, t.maximum, t.source


@pytest.mark.parametrize(
    ("row", "team", "response", "level"),
    [
        ("000-1", "frontline", "4h", "Frontline"),
        ("000-2", "specialists", "2h", "Specialist"),
        ("000-3", "engineering", "1h", "Engineering"),
        ("000-4", "management", "30m", "Management"),
        ("000-5", "executive", "15m", "Executive"),
    ],
)
def test_000_a_level_response_is_the_response_clock_of_its_team(
    row: str, team: str, response: str, level: str
) -> None:
    """Seed 000's severities set no response time, so an escalation's response clock is its
    team's level ("L1 Front-line support: 4 hours" …), from creation on."""
    from escalade.durations import parse_duration

    target, _, source = _targets(PLATFORM, "response", team_id=team, priority_id="SEV-4")
    assert (target, source) == (parse_duration(response), f"level {level}")


@pytest.mark.parametrize(
    ("row", "urgency", "response"),
    [("003-26", "critical", "15m"), ("003-32", "high", "30m"), ("003-37", "low", "24h")],
)
def test_003_urgency_is_the_response_clock(row: str, urgency: str, response: str) -> None:
    from escalade.durations import parse_duration

    target, _, source = _targets(
        HELPDESK, "response", team_id="senior_support", priority_id=urgency
    )
    assert (target, source) == (parse_duration(response), f"priority {urgency}")


@pytest.mark.parametrize(
    ("row", "severity", "target", "maximum"),
    [("002-90", "P1", "4h", "8h"), ("002-91", "P2", "24h", "48h"), ("002-92", "P3", "72h", "1w")],
)
def test_002_severity_is_the_resolution_clock(
    row: str, severity: str, target: str, maximum: str
) -> None:
    """Without a category SLA (e.g. a ticket no issue type matched), the resolution clock
    is the severity's target and maximum."""
    from escalade.durations import parse_duration

    got = _targets("marketplace-matrix.yaml", "resolution", team_id="tier1", priority_id=severity)
    assert got == (parse_duration(target), parse_duration(maximum), f"priority {severity}")
