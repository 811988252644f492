"""Writing and checking the audit log.

``record`` appends one entry in the caller's unit of work (so a change and its entry
commit together); ``refusal`` writes a refused attempt in a unit of work of its own (the
attempt changed nothing else). ``verify`` reads the whole log in id order and returns
every problem (``escalade audit verify``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from escalade.auth.scopes import Principal
from escalade.store import Store, UnitOfWork
from escalade.store.auditchain import ChainProblem
from escalade.store.auditchain import verify as verify_chain
from escalade.store.rows import AuditRow, NewAuditEntry

PAGE = 1000


def record(
    uow: UnitOfWork,
    *,
    at: datetime,
    actor: str,
    actor_kind: str,
    action: str,
    target: str = "",
    outcome: str = "ok",
    address: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: str | None = None,
) -> AuditRow:
    return uow.audit.append(
        NewAuditEntry(
            at=at,
            actor=actor,
            actor_kind=actor_kind,
            action=action,
            target=target,
            outcome=outcome,
            address=address,
            before=before,
            after=after,
            detail=detail,
        )
    )


def by(who: Principal | None) -> tuple[str, str]:
    """``(actor, actor_kind)`` for the audit log."""
    if who is None:
        return "anonymous", "anonymous"
    return who.actor, who.kind


def refusal(
    store: Store,
    *,
    at: datetime,
    who: Principal | None,
    action: str,
    target: str,
    address: str | None,
    detail: str,
    outcome: str = "refused",
) -> None:
    actor, kind = by(who)
    with store.unit_of_work() as uow:
        record(
            uow,
            at=at,
            actor=actor,
            actor_kind=kind,
            action=action,
            target=target,
            outcome=outcome,
            address=address,
            detail=detail,
        )
        uow.commit()


def policy_started(
    store: Store,
    *,
    at: datetime,
    policy_id: str,
    before: int | None,
    after: int,
    source: str,
) -> None:
    """``escalade serve`` made a policy version active that was not the active one (it
    becomes active in every process on the database)."""
    with store.unit_of_work() as uow:
        record(
            uow,
            at=at,
            actor="cli:serve",
            actor_kind="cli",
            action="policy.apply",
            target=f"policy:{policy_id}",
            before={"version": before},
            after={"version": after},
            detail=f"from {source}",
        )
        uow.commit()


def verify(store: Store) -> tuple[int, list[ChainProblem]]:
    """How many entries the log holds, and every problem with it. Reads the log a page at
    a time in one read-only transaction (a consistent snapshot), so memory stays flat."""
    count = 0
    with store.unit_of_work(readonly=True) as uow:

        def pages() -> Iterator[AuditRow]:
            nonlocal count
            after = 0
            while True:
                page = uow.audit.entries(after_id=after, limit=PAGE)
                count += len(page)
                yield from page
                if len(page) < PAGE:
                    return
                after = page[-1].id

        head = uow.audit.head()
        problems = verify_chain(pages(), head)
    return count, problems
