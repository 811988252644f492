"""Learning from the record: labelled tickets from the escalations in the database.

Every escalation carries the input it arrived with (its package) and, on its timeline,
what people did with it. The label for ``team`` is the team the escalation was routed to,
replaced by every *reassignment* to another team (a person correcting the routing) and by
the team that followed a person's *re-categorisation*; a climb up the escalation path or
the ladder is not a correction and does not count. The
label for ``category`` is the escalation's final category (it differs from the routed one
where someone re-categorised it). Read only through the store interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from escalade.policy.models import Policy
from escalade.routing.models import EscalationInput
from escalade.store.interface import Store, UnitOfWork
from escalade.store.rows import EscalationRow

PAGE = 500
LABELS = ("team", "category")


class RecordError(Exception):
    """The database holds nothing usable for the request; the message says why."""


@dataclass(frozen=True)
class Recorded:
    """One escalation as a labelled ticket."""

    ref: str
    created_at: datetime
    input: EscalationInput
    routed: dict[str, str | None]
    final: dict[str, str | None]
    corrections: list[str] = field(default_factory=list)

    def label(self, name: str) -> str | None:
        return self.final.get(name)


def _rows(uow: UnitOfWork, since: datetime | None) -> Iterator[EscalationRow]:
    offset = 0
    while True:
        page = uow.escalations.find(created_since=since, limit=PAGE, offset=offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _team_ids(uow: UnitOfWork, version_id: int, cache: dict[int, set[str]]) -> set[str]:
    if version_id not in cache:
        row = uow.policies.get(version_id)
        cache[version_id] = (
            {t.id for t in Policy.model_validate_json(row.content).teams} if row else set()
        )
    return cache[version_id]


def recorded(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> list[Recorded]:
    """Every escalation created in [since, until) as a labelled ticket, oldest first."""
    out: list[Recorded] = []
    teams_of: dict[int, set[str]] = {}
    with store.unit_of_work(readonly=True) as uow:
        for row in _rows(uow, since):
            if until is not None and row.created_at >= until:
                continue
            try:
                inp = EscalationInput.model_validate(row.package)
            except ValidationError:
                continue  # an escalation raised without an input package (e.g. an alert)
            routed: dict[str, str | None] = {"team": row.team, "category": row.category}
            team = row.team
            corrections: list[str] = []
            teams = _team_ids(uow, row.policy_version_id, teams_of)
            for entry in uow.timeline.for_escalation(row.id):
                if entry.kind == "escalation.created":
                    routed = {
                        "team": entry.data.get("team") or None,
                        "category": entry.data.get("category"),
                    }
                    team = routed["team"]
                elif entry.kind == "escalation.reassigned":
                    to = entry.data.get("to")
                    if isinstance(to, str) and to in teams and to != team:
                        corrections.append(f"reassigned from team '{team}' to '{to}'")
                        team = to
                elif entry.kind == "escalation.recategorised":
                    # the owning team followed a person's correction of the category
                    to = entry.data.get("to_team")
                    if isinstance(to, str) and to in teams and to != team:
                        corrections.append(
                            f"team '{to}' (not '{team}') with the category a person set"
                        )
                        team = to
            if row.category != routed["category"]:
                corrections.append(
                    f"re-categorised from '{routed['category']}' to '{row.category}'"
                )
            out.append(
                Recorded(
                    ref=row.ref,
                    created_at=row.created_at,
                    input=inp,
                    routed=routed,
                    final={"team": team, "category": row.category},
                    corrections=corrections,
                )
            )
    out.sort(key=lambda r: (r.created_at, r.ref))
    return out


def window(now: datetime, last: timedelta) -> tuple[datetime, datetime]:
    """[now - last, now)."""
    return now - last, now


def week_of(t: datetime) -> str:
    """ISO week, e.g. 2026-W10."""
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


def labelled(records: list[Recorded], name: str) -> list[tuple[Recorded, str]]:
    """The records that have a value for the label, with it."""
    if name not in LABELS:
        raise RecordError(f"--from-db labels are {', '.join(LABELS)}, not '{name}'")
    out = [(r, lab) for r in records if (lab := r.label(name))]
    if not out:
        raise RecordError(f"no escalation in the database has a {name} in that period")
    return out
