"""Every (case, SLA) a case store holds, for the tools that show or compare them."""

from __future__ import annotations

from dataclasses import dataclass

from casewatch.domain.sla.model import SlaState
from casewatch.ports import CaseStore


@dataclass(frozen=True, slots=True)
class SlaItem:
    """One (case, SLA) as the store holds it."""

    domain_id: str
    case_id: str
    state: SlaState


def sla_items(store: CaseStore) -> list[SlaItem]:
    """Every (case, SLA) of the store (a scan: for local stores and tools), by case and SLA key."""
    items = [
        SlaItem(domain_id, case_id, state)
        for domain_id, case_id in store.case_ids()
        for state in store.load(domain_id, case_id).states().values()
    ]
    return sorted(items, key=lambda i: (i.case_id, i.state.key))


def case_slas(store: CaseStore, domain_id: str, case_id: str) -> list[SlaItem]:
    """One case's SLAs, oldest first."""
    states = store.load(domain_id, case_id).states().values()
    return [SlaItem(domain_id, case_id, s) for s in sorted(states, key=lambda s: (s.started_at, s.key))]


__all__ = ["SlaItem", "case_slas", "sla_items"]
