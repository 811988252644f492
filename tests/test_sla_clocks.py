"""SLA targets, calendars and deadlines for an escalation: precedence, reasons, pausing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalade.durations import parse_duration
from escalade.policy import Policy, policy_from_text
from escalade.sla import (
    BusinessCalendar,
    ClockName,
    ClockState,
    SlaTarget,
    calendar_choice,
    calendar_for,
    deadline,
    deadlines,
    sla_targets,
)
from soak import scaled

NY = ZoneInfo("America/New_York")
M, H = timedelta(minutes=1), timedelta(hours=1)

POLICY_TEXT = """
escalade: 1
id: sla-test
default_calendar: office
calendars:
  - id: office
    timezone: Europe/London
    hours: mon-fri 09:00-17:00
  - id: eng-hours
    timezone: America/New_York
    hours: mon-fri 09:00-18:00
    holidays: US
  - id: always
    timezone: UTC
    hours: 24/7
  - id: tier1-hours
    timezone: Asia/Tokyo
    hours: mon-sun 06:00-22:00
levels:
  - id: tier1
    name: Tier 1
    response: 4h
    response_by_channel: {phone: 5m}
    calendar: tier1-hours
  - id: tier2
    name: Tier 2
teams:
  - {id: support, level: tier1}
  - {id: engineering, level: tier2, calendar: eng-hours}
  - {id: billing, level: tier2}
priorities:
  - id: P0
    calendar: always
    response: 15m
    acknowledgement: 15m
    resolution: {target: 4h, maximum: 8h}
    updates: {internal: 15m, customer: 30m}
  - id: P1
    response: 1h
    first_response: {chat: 5m, email: {target: 2h, maximum: 4h}}
    resolution: 24h
    updates: {customer: 4h}
  - id: P3
    resolution: 5d
sla:
  warn_at: 0.5
  rows:
    - team: engineering
      priority: P0
      acknowledgement: 10m
      investigation: 1h
    - team: engineering
      priority: P1
      response: 30m
categories:
  - id: payment_failed
    owner: billing
    sla:
      response: 10m
      resolution: {target: 2h, maximum: 6h}
  - id: question
    owner: support
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return policy_from_text(POLICY_TEXT, "sla-test.yaml")


def targets(
    policy: Policy,
    category_id: str | None = None,
    team_id: str | None = None,
    priority_id: str | None = None,
) -> dict[ClockName, SlaTarget]:
    return sla_targets(policy, category_id=category_id, team_id=team_id, priority_id=priority_id)


# clock, (category, team, priority, channel), expected target, maximum, source, field
PRECEDENCE = [
    # the category's sla beats the row and the priority
    (
        "response",
        ("payment_failed", "engineering", "P1", "chat"),
        "10m",
        None,
        "category payment_failed sla",
        "response",
    ),
    (
        "resolution",
        ("payment_failed", "engineering", "P0", None),
        "2h",
        "6h",
        "category payment_failed sla",
        "resolution",
    ),
    # what the category does not set falls through to the row …
    (
        "acknowledgement",
        ("payment_failed", "engineering", "P0", None),
        "10m",
        None,
        "sla row engineering×P0",
        "acknowledgement",
    ),
    (
        "investigation",
        ("payment_failed", "engineering", "P0", None),
        "1h",
        None,
        "sla row engineering×P0",
        "investigation",
    ),
    # … and then to the priority
    (
        "update",
        ("payment_failed", "engineering", "P0", None),
        "15m",
        None,
        "priority P0",
        "updates.internal",
    ),
    (
        "acknowledgement",
        ("question", "billing", "P0", None),
        "15m",
        None,
        "priority P0",
        "acknowledgement",
    ),
    # the row beats the priority, whatever the channel
    (
        "response",
        ("question", "engineering", "P1", "chat"),
        "30m",
        None,
        "sla row engineering×P1",
        "response",
    ),
    # a first response for the channel beats the same layer's generic response
    ("response", (None, "billing", "P1", "chat"), "5m", None, "priority P1", "first_response.chat"),
    (
        "response",
        (None, "billing", "P1", "email"),
        "2h",
        "4h",
        "priority P1",
        "first_response.email",
    ),
    ("response", (None, "billing", "P1", "phone"), "1h", None, "priority P1", "response"),
    ("response", (None, "billing", "P1", None), "1h", None, "priority P1", "response"),
    # with no response anywhere else, the team's level answers (by channel first)
    (
        "response",
        (None, "support", "P3", "phone"),
        "5m",
        None,
        "level Tier 1",
        "response_by_channel.phone",
    ),
    ("response", (None, "support", "P3", "email"), "4h", None, "level Tier 1", "response"),
    ("resolution", (None, "support", "P3", None), "5d", None, "priority P3", "resolution"),
]


@pytest.mark.parametrize(("clock", "where", "target", "maximum", "source", "field"), PRECEDENCE)
def test_target_precedence(
    policy: Policy,
    clock: str,
    where: tuple[str | None, str | None, str | None, str | None],
    target: str,
    maximum: str | None,
    source: str,
    field: str,
) -> None:
    category, team, priority, channel = where
    found = sla_targets(
        policy, category_id=category, team_id=team, priority_id=priority, channel=channel
    )[ClockName(clock)]
    assert found.target == parse_duration(target)
    assert found.maximum == (parse_duration(maximum) if maximum else None)
    assert (found.source, found.field) == (source, field)


def test_clocks_nobody_sets_are_absent(policy: Policy) -> None:
    found = targets(policy, team_id="billing", priority_id="P3")
    assert set(found) == {ClockName.resolution}
    assert targets(policy) == {}
    level_only = targets(policy, team_id="support")
    assert set(level_only) == {ClockName.response}


def test_target_describes_itself(policy: Policy) -> None:
    found = targets(policy, category_id="payment_failed", priority_id="P1")
    assert found[ClockName.resolution].describe() == (
        "2h (maximum 6h) from category payment_failed sla (resolution)"
    )
    assert found[ClockName.resolution].limit() == 6 * H


@pytest.mark.parametrize(
    ("team", "priority", "calendar", "why"),
    [
        ("engineering", "P0", "always", "priority P0 calendar"),
        ("engineering", "P1", "eng-hours", "team engineering calendar"),
        ("support", "P1", "tier1-hours", "level Tier 1 calendar"),
        ("billing", "P1", "office", "policy default calendar"),
        (None, None, "office", "policy default calendar"),
    ],
)
def test_calendar_precedence(
    policy: Policy, team: str | None, priority: str | None, calendar: str, why: str
) -> None:
    assert calendar_for(policy, team, priority).id == calendar
    assert calendar_choice(policy, team, priority)[1] == why


def test_no_calendar_anywhere_means_24_7_utc() -> None:
    bare = policy_from_text("escalade: 1\nid: bare\n")
    cal = calendar_for(bare, None, None)
    assert cal.always and cal.timezone == "UTC"


def test_deadlines_run_on_business_time(policy: Policy) -> None:
    # seed 003: Engineering 9 AM - 6 PM ET; P1 row response 30m, resolution 24h
    opened = datetime(2026, 3, 6, 17, 30, tzinfo=NY)  # a Friday
    got = deadlines(
        policy, started=opened, category_id=None, team_id="engineering", priority_id="P1"
    )
    response = got[ClockName.response]
    assert response.warn_at == datetime(2026, 3, 6, 17, 45, tzinfo=NY)  # warn_at 0.5
    assert response.due == datetime(2026, 3, 6, 18, 0, tzinfo=NY)
    assert response.maximum_due is None and response.breach_at() == response.due
    assert response.source == "sla row engineering×P1"
    # 24h of 9h days: 30m Fri, 9h Mon, 9h Tue, 5h30m Wed → Wed 14:30 EDT
    assert got[ClockName.resolution].due == datetime(2026, 3, 11, 14, 30, tzinfo=NY)
    assert all(d.due.tzinfo is UTC for d in got.values())


def test_p0_runs_24_7_with_a_maximum(policy: Policy) -> None:
    opened = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # Saturday night
    got = deadlines(
        policy, started=opened, category_id=None, team_id="engineering", priority_id="P0"
    )
    resolution = got[ClockName.resolution]
    assert (resolution.warn_at, resolution.due, resolution.maximum_due) == (
        opened + 2 * H,
        opened + 4 * H,
        opened + 8 * H,
    )
    assert resolution.breach_at() == opened + 8 * H


def test_deadline_rejects_bad_fraction_and_naive_start() -> None:
    cal = BusinessCalendar.twenty_four_seven()
    target = SlaTarget(H, None, "priority P1", "response")
    with pytest.raises(ValueError, match="fraction"):
        deadline(ClockName.response, target, datetime(2026, 1, 1, tzinfo=UTC), cal, 1.5)
    with pytest.raises(ValueError, match="no time zone"):
        deadline(ClockName.response, target, datetime(2026, 1, 1), cal)


# --------------------------------------------------------------------------- pausing

WEEKDAY_CAL = BusinessCalendar(policy_from_text(POLICY_TEXT).get_calendar("eng-hours"))
TWO_HOURS = SlaTarget(2 * H, 4 * H, "priority P1", "resolution")


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def test_paused_time_does_not_count() -> None:
    clock = ClockState(ClockName.resolution, TWO_HOURS).start(ny(2026, 1, 5, 9))
    running = clock.due(WEEKDAY_CAL)
    assert running is not None and running.due == ny(2026, 1, 5, 11)
    paused = clock.pause(ny(2026, 1, 5, 10))  # waiting on the customer
    assert paused.status == "paused" and paused.due(WEEKDAY_CAL) is None
    resumed = paused.resume(ny(2026, 1, 5, 17, 30))
    got = resumed.due(WEEKDAY_CAL, warn_fraction=0.75)
    assert got is not None
    # 1h used before the pause; 30m Monday evening, 30m Tuesday morning
    assert got.due == ny(2026, 1, 6, 9, 30)
    assert got.warn_at == ny(2026, 1, 5, 18, 0)  # 1h30m: 1h before the pause + 30m after
    assert got.maximum_due == ny(2026, 1, 6, 11, 30)
    assert got.started == ny(2026, 1, 5, 9)
    assert resumed.used(WEEKDAY_CAL, ny(2026, 1, 6, 9, 0)) == 90 * M


def test_a_deadline_passed_before_a_pause_stays_passed() -> None:
    clock = ClockState(ClockName.resolution, TWO_HOURS).start(ny(2026, 1, 5, 9))
    late = clock.pause(ny(2026, 1, 5, 12)).resume(ny(2026, 1, 5, 15))
    got = late.due(WEEKDAY_CAL)
    assert got is not None and got.due == ny(2026, 1, 5, 11)
    assert got.maximum_due == ny(2026, 1, 5, 16)  # 3h before the pause, 1h after


def test_stopping_records_whether_the_target_was_met() -> None:
    clock = ClockState(ClockName.resolution, TWO_HOURS).start(ny(2026, 1, 9, 17))
    assert clock.met(WEEKDAY_CAL) is None
    on_time = clock.stop(ny(2026, 1, 12, 9, 59))
    assert on_time.status == "stopped" and on_time.met(WEEKDAY_CAL) is True
    assert on_time.used(WEEKDAY_CAL, ny(2026, 2, 1)) == 119 * M
    late = clock.pause(ny(2026, 1, 12, 9, 30)).stop(ny(2026, 1, 12, 12))
    assert late.paused_spans == ((ny(2026, 1, 12, 9, 30), ny(2026, 1, 12, 12)),)
    assert late.met(WEEKDAY_CAL) is True  # 1h30m ran; the rest was paused
    assert clock.stop(ny(2026, 1, 12, 10, 1)).met(WEEKDAY_CAL) is False


def test_clock_transitions_are_checked() -> None:
    clock = ClockState(ClockName.acknowledgement, TWO_HOURS)
    assert clock.status == "pending" and clock.due(WEEKDAY_CAL) is None
    assert clock.used(WEEKDAY_CAL, ny(2026, 1, 5, 12)) == timedelta(0)
    with pytest.raises(ValueError, match="cannot pause the acknowledgement clock: it is pending"):
        clock.pause(ny(2026, 1, 5, 9))
    started = clock.start(ny(2026, 1, 5, 9))
    with pytest.raises(ValueError, match="it is running"):
        started.resume(ny(2026, 1, 5, 10))
    with pytest.raises(ValueError, match="before its last change"):
        started.pause(ny(2026, 1, 5, 8))
    with pytest.raises(ValueError, match="no time zone"):
        started.pause(datetime(2026, 1, 5, 10))
    stopped = started.stop(ny(2026, 1, 5, 10))
    with pytest.raises(ValueError, match="it is stopped"):
        stopped.start(ny(2026, 1, 5, 11))
    assert clock.status == "pending"  # states are values: nothing changed in place


@settings(max_examples=scaled(100), deadline=None)
@given(
    st.lists(st.integers(0, 3 * 24 * 60), min_size=0, max_size=6),
    st.integers(1, 40 * 60),
)
def test_a_paused_clock_is_due_when_its_running_time_reaches_the_target(
    changes: list[int], target_minutes: int
) -> None:
    # across a weekend and a DST change; offsets are real minutes (UTC arithmetic: adding
    # to a New York wall time would step back an hour at the spring-forward gap)
    start = ny(2026, 3, 6, 8).astimezone(UTC)
    target = SlaTarget(target_minutes * M, None, "priority P1", "resolution")
    clock = ClockState(ClockName.resolution, target).start(start)
    for offset in sorted(changes):
        at = start + offset * M
        clock = clock.pause(at) if clock.status == "running" else clock.resume(at)
    if clock.status == "paused":
        assert clock.due(WEEKDAY_CAL) is None
        return
    got = clock.due(WEEKDAY_CAL)
    assert got is not None
    assert clock.used(WEEKDAY_CAL, got.due) == target.target
    assert clock.used(WEEKDAY_CAL, got.due - M) < target.target
    assert got.warn_at <= got.due
