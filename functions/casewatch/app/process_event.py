"""Processing one Cases event: parse, check it is ours, enrich, hand it to the sinks.

Invalid events never raise: they are parked with their reason and counted. Transient errors
(`CasesThrottledError`, `CasesUnavailableError`, AWS errors from the stores and sinks) propagate, so
Lambda retries the event and then sends it to the failure destination.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from casewatch.app.case_update import CaseUpdater, Trigger
from casewatch.app.enrich import Enricher
from casewatch.domain.case_record import CaseRecord
from casewatch.domain.sla.log import Observation
from casewatch.domain.sla.observations import needs_sla_lookup, observe_event, tracked_fields
from casewatch.errors import CaseNotFoundError, InvalidCaseEventError, PermanentDeliveryError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.observability import (
    EVENTS_HANDLED,
    EVENTS_INVALID,
    EVENTS_PARKED,
    EVENTS_UNHANDLED,
    UNKNOWN_FIELD_TYPES,
    logger,
)
from casewatch.ports import CasesSlaSource, DeadLetters, MetricsRecorder
from casewatch.settings import Settings

OutcomeKind = Literal["handled", "unhandled", "invalid", "parked"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one event. `case` (with field values) is for callers, never for responses."""

    kind: OutcomeKind
    event_id: str | None = None
    case_id: str | None = None
    reason: str | None = None
    getcase_calls: int = 0
    case: EnrichedCase | None = None
    event_type: str | None = None

    def response(self) -> dict[str, Any]:
        """The handler's return value: ids and counts only."""
        body: dict[str, Any] = {
            "outcome": self.kind,
            "eventId": self.event_id,
            "caseId": self.case_id,
            "getcaseCalls": self.getcase_calls,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


class EventProcessor:
    """The use case of the event-routed functions: one Cases event, start to end.

    `event_types`: the eventTypes routed to this function; any other (a future type, a mis-routed
    event) is `unhandled`.
    """

    def __init__(
        self,
        *,
        function: str,
        event_types: Sequence[str],
        settings: Settings,
        enricher: Enricher,
        updater: CaseUpdater,
        dead_letters: DeadLetters,
        metrics: MetricsRecorder,
        cases_slas: CasesSlaSource | None = None,
    ) -> None:
        self.function = function
        self.event_types = frozenset(event_types)
        self.settings = settings
        self.enricher = enricher
        self.updater = updater
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.cases_slas = cases_slas  # an Sla item's definition when its event came without content

    def process(self, raw: object, *, remaining_ms: int | None = None) -> Outcome:
        """One event; `remaining_ms`: the invocation's remaining time (the lease of the event's claim)."""
        try:
            event = parse_case_event(raw)
        except InvalidCaseEventError as exc:
            return self._park(raw, exc.reason)
        if event.domain_id != self.settings.domain_id:
            # An account may hold several Cases domains: the rules only route this one, but a replay, a
            # redrive or a hand-made invocation may not.
            return self._unhandled(event, "event of another Cases domain than the configured domain_id")
        if not event.handled or event.event_type not in self.event_types or event.case_id is None:
            return self._unhandled(event, "event type not handled here")
        opaque = {fid: value.opaque_member for fid, value in event.fields.items() if value.opaque_member}
        if opaque:  # a field type newer than this casewatch: processed, its value compares to nothing
            self.metrics.count(UNKNOWN_FIELD_TYPES, len(opaque))
            logger.warning("field values of an unknown type kept opaque", event_id=event.id, members=opaque)
        case_id = event.case_id
        enriched: list[tuple[EnrichedCase, int]] = []

        def decide(record: CaseRecord) -> Trigger:
            case, stored, calls = self.enricher.enrich(event, case_id, record.snapshot)
            enriched.append((case, calls))
            fold = record.fold
            tracked = tracked_fields(self.updater.policies, fold.cases_sla_fields() if fold else ())
            observations = observe_event(event, case, tracked) + self._sla_definition(event, case_id)
            return Trigger(event=event, view=case, snapshot=stored, observations=tuple(observations))

        try:
            deadline = self.updater.deadline(remaining_ms)
            update = self.updater.apply(event.domain_id, case_id, claim_key(event), decide, deadline=deadline)
        except PermanentDeliveryError as exc:  # retrying cannot help: park it for a redrive once fixed
            self.dead_letters.park(raw, exc.reason, function=self.function, event_id=event.id)
            self.metrics.count(EVENTS_PARKED)
            logger.error("event parked: a delivery failed for good", event_id=event.id, reason=exc.reason)
            return Outcome("parked", event_id=event.id, case_id=case_id, reason=exc.reason)
        if update.kind == "duplicate":
            logger.info("event already applied: nothing sent again", event_id=event.id, case_id=case_id)
            return Outcome("handled", event_id=event.id, case_id=case_id, event_type=event.event_type)
        case, calls = enriched[-1]
        if update.transitions:
            logger.info(
                "sla transitions",
                event_id=event.id,
                case_id=case_id,
                transitions=[f"{t.sla_key}:{t.status.value}" for t in update.transitions],
            )
        self.metrics.count(EVENTS_HANDLED)
        logger.info(
            "event handled",
            event_id=event.id,
            event_type=event.event_type,
            case_id=case.case_id,
            replay=event.is_replay,
            sources=_field_ids_by_source(case),
            missing=list(case.missing),
            flags=list(case.flags),
            getcase_calls=calls,
        )
        if self.settings.log_case_data:
            logger.debug("enriched case values", case_id=case.case_id, values=case.values())
        return Outcome(
            "handled",
            event_id=event.id,
            case_id=case.case_id,
            getcase_calls=calls,
            case=case,
            event_type=event.event_type,
        )

    def _sla_definition(self, event: CaseEvent, case_id: str) -> list[Observation]:
        """An Sla related item whose event lacks its definition (includeContent off): ask Cases."""
        if self.cases_slas is None or not needs_sla_lookup(event):
            return []
        try:
            reports = self.cases_slas.case_slas(event.domain_id, case_id)
        except CaseNotFoundError:
            return []
        ours = [r for r in reports if r.related_item_id == event.related_item_id]
        return [obs for report in ours for obs in report.observations()]

    def _park(self, raw: object, reason: str) -> Outcome:
        event_id = _readable_id(raw)
        self.dead_letters.park(raw, reason, function=self.function, event_id=event_id)
        self.metrics.count(EVENTS_INVALID)
        logger.warning("invalid event parked", event_id=event_id, function=self.function, reason=reason)
        return Outcome("invalid", event_id=event_id, reason=reason)

    def _unhandled(self, event: CaseEvent, reason: str) -> Outcome:
        self.metrics.count(EVENTS_UNHANDLED)
        logger.info(
            reason,
            event_id=event.id,
            event_type=event.event_type[:128],  # free text for an unknown type: bounded
            case_id=event.case_id,
            function=self.function,
        )
        return Outcome(
            "unhandled", event_id=event.id, case_id=event.case_id, reason=reason, event_type=event.event_type
        )


def claim_key(event: CaseEvent) -> str:
    """An event is applied once per id; a replay of it (`replay-name`) is another trigger."""
    key = f"event:{event.id}"
    return key if event.replay_name is None else f"{key}:replay:{event.replay_name}"


def _readable_id(raw: object) -> str | None:
    """The envelope `id` of an event that failed to parse, if there is one to read."""
    data: object = raw
    if isinstance(raw, bytes | bytearray | str):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return None
    event_id = data.get("id") if isinstance(data, dict) else None
    return event_id[:256] if isinstance(event_id, str) and event_id else None


def _field_ids_by_source(case: EnrichedCase) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = {}
    for field_id, source in sorted(case.sources().items()):
        by_source.setdefault(source.value, []).append(field_id)
    return by_source


__all__ = ["EventProcessor", "Outcome", "OutcomeKind", "claim_key"]
