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

from casewatch.app.enrich import Enricher
from casewatch.errors import InvalidCaseEventError, PermanentDeliveryError
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
from casewatch.ports import CaseSink, DeadLetters, MetricsRecorder
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
        sinks: Sequence[CaseSink],
        dead_letters: DeadLetters,
        metrics: MetricsRecorder,
    ) -> None:
        self.function = function
        self.event_types = frozenset(event_types)
        self.settings = settings
        self.enricher = enricher
        self.sinks = tuple(sinks)
        self.dead_letters = dead_letters
        self.metrics = metrics

    def process(self, raw: object) -> Outcome:
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
        case, calls = self.enricher.enrich(event, event.case_id)
        try:
            for sink in self.sinks:
                sink.on_case_event(event, case)
        except PermanentDeliveryError as exc:  # retrying cannot help: park it for a redrive once fixed
            self.dead_letters.park(raw, exc.reason, function=self.function, event_id=event.id)
            self.metrics.count(EVENTS_PARKED)
            logger.error("event parked: a delivery failed for good", event_id=event.id, reason=exc.reason)
            return Outcome("parked", event_id=event.id, case_id=event.case_id, reason=exc.reason)
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


__all__ = ["EventProcessor", "Outcome", "OutcomeKind"]
