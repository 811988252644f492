"""Related-issue grouping (issue 15): a missing or empty key never groups anything,
relations stay within one policy, and related escalations are found by their grouping key
(an index), never by reading every open escalation. On SQLite, PostgreSQL and the memory
store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from escalation_harness import Harness, policy

from escalade.routing.models import EscalationInput
from escalade.store import Store
from escalade.store.memory import MemoryEscalationRepository, MemoryStore

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)

CUSTOMER = """
id: {id}
teams: [{{id: support, contacts: {{email: support@example.com}}}}]
priorities: [{{id: P0}}, {{id: P2}}]
categories: [{{id: general, owner: support}}]
routing: {{default_category: general, default_priority: P2}}
triggers:
  - id: same-customer
    kind: threshold
    threshold: {{related: customer, more_than: 2, window: 1h}}
    then: {{priority: P0}}
"""


def _incidents(h: Harness) -> list[str]:
    with h.store.unit_of_work(readonly=True) as uow:
        return [
            e.ref
            for e in uow.escalations.find(limit=1000)
            if e.package.get("fields", {}).get("incident")
        ]


@pytest.mark.parametrize("customer", [{}, {"email": ""}, {"email": "  "}, {"tier": "vip"}])
def test_escalations_without_the_key_are_never_related(
    store: Store, customer: dict[str, str]
) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(CUSTOMER.format(id="support")))
    for i in range(5):
        h.create(f"N{i}", subject=f"Unrelated question {i}", customer=customer)
    assert _incidents(h) == []


def test_the_same_customer_three_times_is_one_incident(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(CUSTOMER.format(id="support")))
    for i, email in enumerate(["ana@example.com", "Ana@Example.com ", "ana@example.com"]):
        h.create(f"A{i}", subject=f"Problem {i}", customer={"email": email})
    [incident] = _incidents(h)
    assert h.get(incident).priority == "P0"
    assert {h.get(f"A{i}").parent_id for i in range(3)} == {h.get(incident).id}


def test_relations_stay_within_one_policy(store: Store) -> None:
    h = Harness.start(store, T0)
    h.apply(policy(CUSTOMER.format(id="support")))
    for i in range(2):
        h.create(f"S{i}", subject=f"Support ticket {i}", customer={"email": "ana@example.com"})
    h.apply(policy(CUSTOMER.format(id="billing")))  # another policy is now the active one
    for i in range(2):
        h.create(f"B{i}", subject=f"Billing ticket {i}", customer={"email": "ana@example.com"})
    assert _incidents(h) == []  # two and two, never four
    h.create("B2", subject="Billing ticket 2", customer={"email": "ana@example.com"})
    [incident] = _incidents(h)
    assert [e.data["refs"] for e in h.timeline(incident, "trigger.fired")] == [["B0", "B1", "B2"]]


def test_creating_reads_no_list_of_open_escalations(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness.start(MemoryStore(), T0)
    h.apply(policy(CUSTOMER.format(id="support")))
    for i in range(50):
        h.create(f"O{i}", subject=f"Open {i}", customer={"email": f"c{i}@example.com"})
    listed: list[int] = []
    real_find = MemoryEscalationRepository.find

    def find(self: MemoryEscalationRepository, **kw: object) -> object:
        listed.append(1)
        return real_find(self, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(MemoryEscalationRepository, "find", find)
    h.service.create(
        EscalationInput(subject="One more", customer={"email": "c1@example.com"}), ref="NEW"
    )
    assert listed == []
    assert h.get("NEW").parent_id is None  # c1 has two escalations: not more than two
