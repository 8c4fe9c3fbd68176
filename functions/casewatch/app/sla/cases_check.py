"""Asking Cases what it knows about a case's SLAs: Cases SLA items, the fields policies complete on,
and the related items that complete a policy. Used by reconciliation and before declaring a breach."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind
from casewatch.domain.sla.model import PolicySpec, SlaOrigin
from casewatch.domain.sla.observations import observe_case_read, reconcile_fields, tracked_fields
from casewatch.domain.sla.records import StoredSla
from casewatch.errors import CaseNotFoundError
from casewatch.ports import CasesReader, CasesSlaSource


@dataclass
class CaseCheck:
    """What Cases said about one case, as observations, and the Cases requests it took."""

    observations: list[Observation] = field(default_factory=list)
    calls: int = 0

    def observe(self, _log: CaseSlaLog) -> list[Observation]:
        return self.observations


class CasesCheck:
    def __init__(
        self,
        *,
        policies: Sequence[PolicySpec],
        cases_slas: CasesSlaSource | None = None,
        cases_reader: CasesReader | None = None,
    ) -> None:
        self.policies = tuple(policies)
        self.cases_slas = cases_slas
        self.cases_reader = cases_reader

    @property
    def enabled(self) -> bool:
        return self.cases_slas is not None or self.cases_reader is not None

    def check(self, domain_id: str, case_id: str, slas: Sequence[StoredSla], now: datetime) -> CaseCheck:
        """The truth of `slas` as Cases has it now: SearchRelatedItems for Cases SLAs, one GetCase of the
        tracked fields for policies completed by a field, SearchRelatedItems of the completing type for
        policies completed by a related item. A deleted case is a DELETED observation."""
        result = CaseCheck()
        origins = {s.state.origin for s in slas}
        try:
            if SlaOrigin.CASES in origins and self.cases_slas is not None:
                result.calls += 1
                for report in self.cases_slas.case_slas(domain_id, case_id):
                    result.observations += report.observations()
            by_key = {p.key: p for p in self.policies}
            due_policies = [by_key[s.state.key] for s in slas if s.state.key in by_key]
            if any(p.complete_field for p in due_policies) and self.cases_reader is not None:
                tracked = tracked_fields(self.policies)
                read = self.cases_reader.get_case_fields(domain_id, case_id, reconcile_fields(tracked))
                result.calls += read.requests
                result.observations += observe_case_read(read.values, tracked, now)
            item_types = sorted({p.complete_item for p in due_policies if p.complete_item})
            if item_types and self.cases_slas is not None:
                for item_type in item_types:
                    result.calls += 1
                    for item_id, created in self.cases_slas.related_items(domain_id, case_id, item_type):
                        result.observations.append(
                            Observation(created, ObsKind.ITEM, item_type=item_type, ref=item_id)
                        )
        except CaseNotFoundError:
            result.observations = [Observation(now, ObsKind.DELETED, source="reconcile")]
        return result


__all__ = ["CaseCheck", "CasesCheck"]
