"""The loader: positions of values, include/merge semantics, duplicate keys, anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalade.policy import PolicyInvalid, Position, load_policy, policy_from_text
from escalade.policy.loader import PolicyFileError, document_from_text, load_document
from escalade.policy.validate import check_document


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


# --------------------------------------------------------------------------- positions

NESTED = """\
id: acme
teams:
  - id: support
    members:
      - alice
      - person: bob
        role: lead
ladders:
  - id: sev1
    steps:
      - after: 15m
        notify: [{role: cto}, {team: support}]
"""


def test_positions_of_nested_values() -> None:
    doc = document_from_text(NESTED, "p.yaml")
    assert doc.where(("id",)) == Position("p.yaml", 1, 5)
    assert doc.where(("teams",)) == Position("p.yaml", 3, 3)
    assert doc.where(("teams", 0)) == Position("p.yaml", 3, 5)
    assert doc.where(("teams", 0, "members", 0)) == Position("p.yaml", 5, 9)
    assert doc.where(("teams", 0, "members", 1, "role")) == Position("p.yaml", 7, 15)
    assert doc.where(("ladders", 0, "steps", 0, "notify", 1, "team")) == Position("p.yaml", 12, 38)
    # a path that is not there falls back to its nearest ancestor
    assert doc.where(("teams", 0, "nope", 3)) == Position("p.yaml", 3, 5)
    assert doc.where(("missing",)) == Position("p.yaml", 1, 1)
    # keys have their own positions (an unknown key is reported at the key)
    assert doc.where_key(("teams", 0, "members")) == Position("p.yaml", 4, 5)


def test_problem_positions_for_nested_values() -> None:
    doc = document_from_text(NESTED, "p.yaml")
    lines = [str(p) for p in check_document(doc)]
    assert lines == [
        "p.yaml:5:9: teams[0].members[0].person: unknown person 'alice'; "
        "the policy defines no people",
        "p.yaml:6:17: teams[0].members[1].person: unknown person 'bob'; "
        "the policy defines no people",
        "p.yaml:12:25: ladders[0].steps[0].notify[0].role: unknown role 'cto'; "
        "known: lead, manager",
    ]


def test_positions_survive_malformed_items_set_aside() -> None:
    """Items with shape errors are set aside; later items keep their own positions."""
    text = """\
id: acme
teams:
  - id: a
    bogus: 1
  - id: b
    calendar: nowhere
  - id: c
    level: [1]
  - id: d
    schedule: nobody
"""
    lines = [str(p) for p in check_document(document_from_text(text, "p.yaml"))]
    assert lines == [
        "p.yaml:4:5: teams[0]: unknown key 'bogus'",
        "p.yaml:6:15: teams[1].calendar: unknown calendar 'nowhere'; "
        "the policy defines no calendars",
        "p.yaml:8:12: teams[2].level: Input should be a valid string",
        "p.yaml:10:15: teams[3].schedule: unknown schedule 'nobody'; "
        "the policy defines no schedules",
    ]


def test_reference_to_malformed_item_is_not_a_second_problem() -> None:
    text = (
        "id: acme\nteams:\n  - id: support\n    level: [1]\n"
        "categories:\n  - id: c\n    owner: support\n"
    )
    lines = [str(p) for p in check_document(document_from_text(text, "p.yaml"))]
    assert lines == ["p.yaml:4:12: teams[0].level: Input should be a valid string"]


# --------------------------------------------------------------------------- YAML details


def test_duplicate_keys_reported_with_other_problems() -> None:
    text = "id: acme\nteams:\n  - id: support\n    name: A\n    name: B\n    level: L9\n"
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text(text, "p.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:5:5: duplicate key 'name' in the same map (first at line 4): keep one",
        "p.yaml:6:12: teams[0].level: unknown level 'L9'; the policy defines no levels",
    ]


def test_duplicate_key_at_top_level() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text("id: a\nname: x\nid: b\n", "p.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:3:1: duplicate key 'id' in the same map (first at line 1): keep one"
    ]


def test_anchors_aliases_and_merge_keys() -> None:
    text = """\
id: acme
calendars:
  - id: office
    timezone: UTC
    weekly:
      mon: &day ["09:00-17:00"]
      fri: *day
teams:
  - &base
    id: support
    calendar: office
    description: front line
  - <<: *base
    id: billing
  - <<: [{description: first wins}, {description: second, name: Second}]
    id: legal
"""
    policy = policy_from_text(text)
    _, billing, legal = policy.teams
    assert billing.calendar == "office" and billing.description == "front line"
    assert billing.id == "billing"  # the map's own key wins over the merged one
    assert legal.description == "first wins" and legal.name == "Second"
    assert policy.calendars[0].weekly["fri"] == policy.calendars[0].weekly["mon"]


def test_merge_key_overridden_is_not_a_duplicate() -> None:
    doc = document_from_text("id: a\nteams:\n  - &t {id: x}\n  - <<: *t\n    id: y\n")
    assert doc.problems == []
    assert [t["id"] for t in doc.data["teams"]] == ["x", "y"]


def test_yaml11_words_stay_keys() -> None:
    """``on:`` is a key of a trigger, not the boolean true."""
    text = """\
id: acme
teams: [{id: t}]
triggers:
  - id: breach
    kind: automatic
    on: sla_breach
    then: {team: t}
"""
    assert policy_from_text(text).triggers[0].on == "sla_breach"


def test_alias_bomb_is_refused() -> None:
    lines = ["id: acme", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = "a" if i == 1 else f"a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([f'*{prev}'] * 10)}]")
    with pytest.raises(PolicyFileError) as info:
        document_from_text("\n".join(lines) + "\n", "p.yaml")
    assert "expands to more than" in info.value.problems[0].message


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text("id: a\nx: &x [*x]\n", "p.yaml")
    assert any("nesting is too deep" in p.message for p in info.value.problems)


def test_bad_scalar_reported_at_the_value() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text("id: a\ncalendars:\n  - closed: [2026-02-30]\n", "p.yaml")
    assert str(info.value.problems[0]) == (
        "p.yaml:3:14: '2026-02-30' cannot be read: day is out of range for month"
    )


def test_control_character_is_located() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text("id: a\nname: x\x07y\n", "p.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:2:8: character U+0007 is not allowed in YAML text: remove it"
    ]


def test_line_breaks_in_values_stay_on_one_output_line() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text('id: a\ncalendars:\n  - {id: c, timezone: "Mars\\nBase", hours: 24/7}\n')
    text = str(info.value.problems[0])
    assert len(text.splitlines()) == 1
    assert "Mars\\nBase" in text


# --------------------------------------------------------------------------- includes


def test_include_merges_maps_id_lists_and_replaces_other_lists(tmp_path: Path) -> None:
    write(
        tmp_path,
        "parts/base.yaml",
        """\
roles:
  - id: agent
    name: Agent
  - id: cfo
routing:
  vip_tiers: [gold, platinum]
  dissatisfaction_below: -0.3
sla:
  on_breach: [escalate, notify_manager]
teams:
  - id: support
    name: Support
    description: from the part
""",
    )
    main = write(
        tmp_path,
        "policy.yaml",
        """\
id: acme
include: parts/base.yaml
roles:
  - id: cfo
    name: Chief Financial Officer
  - id: ceo
routing:
  vip_tiers: [diamond]
sla:
  warn_at: 0.5
teams:
  - id: support
    name: Customer Support
""",
    )
    policy = load_policy(main)
    # id-lists merge by id: same id merges keys, new ids are added after
    assert [(r.id, r.name) for r in policy.roles] == [
        ("agent", "Agent"),
        ("cfo", "Chief Financial Officer"),
        ("ceo", None),
    ]
    team = policy.teams[0]
    assert (team.name, team.description) == ("Customer Support", "from the part")
    # maps merge key by key; plain lists replace
    assert policy.routing.vip_tiers == ["diamond"]
    assert policy.routing.dissatisfaction_below == -0.3
    assert policy.sla.warn_at == 0.5
    assert policy.sla.on_breach == ["escalate", "notify_manager"]


def test_later_includes_override_earlier_and_file_overrides_all(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: from a\ndescription: from a\ncurrency: EUR\n")
    write(tmp_path, "b.yaml", "name: from b\ndescription: from b\n")
    main = write(tmp_path, "p.yaml", "id: x\ninclude: [a.yaml, b.yaml]\nname: mine\n")
    policy = load_policy(main)
    assert (policy.name, policy.description, policy.currency) == ("mine", "from b", "EUR")


def test_nested_includes_resolve_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, "parts/deeper/people.yaml", "people:\n  - id: alice\n")
    write(tmp_path, "parts/all.yaml", "include: deeper/people.yaml\nroles:\n  - id: cfo\n")
    main = write(tmp_path, "p.yaml", "id: x\ninclude: parts/all.yaml\n")
    policy = load_policy(main)
    assert [p.id for p in policy.people] == ["alice"]
    assert [r.id for r in policy.roles] == ["cfo"]


def test_problems_in_included_part_point_into_that_file(tmp_path: Path) -> None:
    write(tmp_path, "parts/teams.yaml", "teams:\n  - id: support\n    level: L7\n")
    main = write(tmp_path, "p.yaml", "id: x\ninclude: parts/teams.yaml\n")
    with pytest.raises(PolicyInvalid) as info:
        load_policy(main)
    [problem] = info.value.problems
    assert problem.position == Position(str(tmp_path / "parts" / "teams.yaml"), 3, 12)


def test_duplicate_id_within_including_file_is_still_reported(tmp_path: Path) -> None:
    write(tmp_path, "part.yaml", "roles:\n  - id: agent\n")
    main = write(
        tmp_path, "p.yaml", "id: x\ninclude: part.yaml\nroles:\n  - id: cfo\n  - id: cfo\n"
    )
    with pytest.raises(PolicyInvalid) as info:
        load_policy(main)
    assert [p.message.split(" (")[0] for p in info.value.problems] == [
        "roles[2].id: duplicate id 'cfo'"
    ]
    assert info.value.problems[0].position.line == 5


def test_include_problems(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: b.yaml\n")
    write(tmp_path, "b.yaml", "include: a.yaml\n")
    main = write(tmp_path, "p.yaml", "id: x\ninclude: [a.yaml, gone.yaml, 3]\n")
    with pytest.raises(PolicyFileError) as info:
        load_document(main)
    messages = [p.message for p in info.value.problems]
    assert messages[0].startswith("include loop: ")
    assert messages[0].endswith("a.yaml; a file cannot include itself")
    assert messages[1].startswith("included file not found: gone.yaml")
    assert messages[2] == "an include entry is a file path, e.g. include: [teams.yaml]"


def test_include_needs_a_file() -> None:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_text("id: x\ninclude: a.yaml\n", "p.yaml")
    assert str(info.value.problems[0]) == "p.yaml:2:10: include needs a policy read from a file"
