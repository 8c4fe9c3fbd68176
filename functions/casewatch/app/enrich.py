"""Enriching one event: the stored view of the case first, GetCase only for the needed fields nobody knows.

The plan (which field comes from where) is the domain's (`casewatch.domain.enrichment`); this step makes
the one GetCase call the plan asks for and merges; the case's record keeps the view (`stored_view`).
"""

from __future__ import annotations

from datetime import datetime

from casewatch.domain.enrichment import IncludedFields, event_kind, merge, plan
from casewatch.errors import CaseNotFoundError, CasesThrottledError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.observability import CASE_NOT_FOUND, GETCASE_CALLS, GETCASE_THROTTLED, logger
from casewatch.ports import CasesReader, Clock, MetricsRecorder
from casewatch.settings import Settings


class Enricher:
    def __init__(
        self, *, settings: Settings, cases: CasesReader, clock: Clock, metrics: MetricsRecorder
    ) -> None:
        self.settings = settings
        self.cases = cases
        self.clock = clock
        self.metrics = metrics
        self._included = IncludedFields.from_settings(settings)

    def enrich(
        self, event: CaseEvent, case_id: str, snapshot: EnrichedCase | None
    ) -> tuple[EnrichedCase, EnrichedCase | None, int]:
        """(the enriched view of a handled event, the view to store or None, the GetCase requests it
        took), given the stored view `snapshot`."""
        needed = self.settings.needed_field_ids
        kind = event_kind(event)
        decided = plan(event, needed, snapshot, included=self._included)

        fetched: dict[str, FieldValue] = {}
        template_id: str | None = None
        fetched_at: datetime | None = None
        not_found = False
        requests = 0
        if decided.fetch:
            fetched_at = self.clock.now()  # the values are at least as new as the request
            try:
                read = self.cases.get_case_fields(event.domain_id, case_id, decided.fetch)
            except CaseNotFoundError:
                not_found, requests = True, 1
                self.metrics.count(CASE_NOT_FOUND)
                logger.warning(
                    "case not found: processed with what the event carries",
                    event_id=event.id,
                    case_id=case_id,
                    fields=list(decided.fetch),
                )
            except CasesThrottledError as exc:
                self.metrics.count(GETCASE_CALLS, exc.requests)
                self.metrics.count(GETCASE_THROTTLED, max(exc.throttled, 1))
                logger.warning("GetCase throttled: retry budget spent", event_id=event.id, case_id=case_id)
                raise
            else:
                template_id, fetched, requests = read.template_id, read.values, read.requests
                if read.throttled:
                    self.metrics.count(GETCASE_THROTTLED, read.throttled)
        self.metrics.count(GETCASE_CALLS, requests)

        case = merge(
            event,
            decided,
            snapshot,
            fetched=fetched,
            fetched_template_id=template_id,
            fetched_at=fetched_at,
            case_not_found=not_found,
        )
        store = kind != "related_item" or (decided.fetch and not not_found)
        return case, _stored_view(case, needed) if store else None, requests


def _stored_view(case: EnrichedCase, needed: frozenset[str]) -> EnrichedCase:
    """What the snapshot keeps: the needed fields only (all later plans ask for; bounded item size)."""
    if case.fields.keys() <= needed:
        return case
    return case.model_copy(update={"fields": {f: v for f, v in case.fields.items() if f in needed}})


__all__ = ["Enricher"]
