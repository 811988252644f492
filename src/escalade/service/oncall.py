"""The on-call overrides in force for one unit of work: those made over the API (stored in
``oncall_overrides``, read in the unit of work itself, so a page follows an override the
moment it commits, in every process) and those given in process (``simulate``'s scenario
overrides). A schedule's stored overrides are read once per unit of work, and only when
someone on that schedule is looked up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from escalade.oncall.schedule import Override
from escalade.store import UnitOfWork
from escalade.store.rows import OverrideRow

LOOKBACK = timedelta(days=1)
"""Overrides that ended longer ago than this before now are not read: a timer firing that
late does not ask who was on call then."""


def override_of(row: OverrideRow) -> Override:
    return Override(person=row.person, start=row.start_at, end=row.end_at, replaces=row.replaces)


class OverridesInForce(Mapping[str, Sequence[Override]]):
    """Schedule id → its overrides, stored ones first (in the order they were made), then
    the in-process ones; a later override wins where two overlap. An unknown schedule has
    none."""

    def __init__(
        self, uow: UnitOfWork, in_process: Mapping[str, Sequence[Override]], now: datetime
    ) -> None:
        self._uow = uow
        self._in_process = in_process
        self._since = now - LOOKBACK
        self._read: dict[str, list[Override]] = {}

    def __getitem__(self, schedule: str) -> Sequence[Override]:
        if schedule not in self._read:
            rows = self._uow.overrides.for_schedule(schedule, ending_after=self._since)
            self._read[schedule] = [
                *(override_of(r) for r in rows),
                *self._in_process.get(schedule, ()),
            ]
        return self._read[schedule]

    def __iter__(self) -> Iterator[str]:
        """The schedules looked up so far and those with in-process overrides."""
        return iter(dict.fromkeys([*self._read, *self._in_process]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._read, *self._in_process]))

    def __bool__(self) -> bool:
        """Always true: which schedules have overrides is known only once asked (so that
        ``overrides or {}`` keeps this mapping)."""
        return True
