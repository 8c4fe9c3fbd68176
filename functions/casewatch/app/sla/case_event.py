"""SLA tracking of a case event: the `CaseSink` the event-routed functions feed."""

from __future__ import annotations

from casewatch.app.sla.apply import SlaApplier
from casewatch.domain.sla.log import CaseSlaLog, Observation
from casewatch.domain.sla.model import SlaOutcome
from casewatch.domain.sla.observations import needs_sla_lookup, observe_event, tracked_fields
from casewatch.errors import CaseNotFoundError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.observability import logger
from casewatch.ports import CasesSlaSource


class SlaCaseEvents:
    def __init__(self, *, applier: SlaApplier, cases_slas: CasesSlaSource | None = None) -> None:
        self.applier = applier
        self.cases_slas = cases_slas

    def on_case_event(self, event: CaseEvent, case: EnrichedCase | None) -> None:
        self.apply_event(event, case)

    def apply_event(self, event: CaseEvent, case: EnrichedCase | None) -> SlaOutcome:
        case_id = event.case_id
        if not event.handled or case_id is None:
            return SlaOutcome(case_id or "")
        extra: list[Observation] = []
        if needs_sla_lookup(event) and self.cases_slas is not None:
            # An Sla item whose event came without its definition (includeContent off): ask Cases.
            try:
                reports = self.cases_slas.case_slas(event.domain_id, case_id)
            except CaseNotFoundError:
                reports = []
            for report in reports:
                if report.related_item_id == event.related_item_id:
                    extra += report.observations()
        policies = self.applier.policies

        def observe(log: CaseSlaLog) -> list[Observation]:
            return observe_event(event, case, tracked_fields(policies, log.cases_sla_fields())) + extra

        outcome = self.applier.apply(event.domain_id, case_id, observe, case=case)
        if outcome.transitions:
            logger.info(
                "sla transitions",
                event_id=event.id,
                case_id=case_id,
                transitions=[f"{t.sla_key}:{t.status.value}" for t in outcome.transitions],
            )
        return outcome


__all__ = ["SlaCaseEvents"]
