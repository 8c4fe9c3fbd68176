"""Processing one Cases event: parse, enrich (snapshot first, GetCase only for what is missing), sinks.

Shared by the Lambda handlers and the local pipeline, which pass their own `Dependencies`.
Invalid events never raise: they are parked with their reason and counted. Transient errors
(`CasesThrottledError`, `CasesUnavailableError`, AWS errors from the stores and sinks) propagate, so
Lambda retries the event and then sends it to the failure destination.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from casewatch.domain.enrichment import IncludedFields, event_kind, merge, plan
from casewatch.errors import CaseNotFoundError, CasesThrottledError, InvalidCaseEventError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.observability import (
    CASE_NOT_FOUND,
    EVENTS_HANDLED,
    EVENTS_INVALID,
    EVENTS_UNHANDLED,
    GETCASE_CALLS,
    GETCASE_THROTTLED,
    logger,
)
from casewatch.topology import FUNCTIONS

if TYPE_CHECKING:
    from casewatch.wiring import Dependencies

OutcomeKind = Literal["handled", "unhandled", "invalid"]


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


def _accepted_event_types(function: str) -> frozenset[str] | None:
    """The eventTypes routed to `function` (None: a caller outside the topology takes every type)."""
    for spec in FUNCTIONS:
        if spec.name == function:
            return frozenset(spec.event_types)
    return None


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


def process_event(raw: object, deps: Dependencies, *, function: str) -> Outcome:
    """Parse, enrich and hand one event to the sinks (`function` names the Lambda it runs in)."""
    try:
        event = parse_case_event(raw)
    except InvalidCaseEventError as exc:
        event_id = _readable_id(raw)
        deps.dead_letters.park(raw, exc.reason, function=function, event_id=event_id)
        deps.metrics.count(EVENTS_INVALID)
        logger.warning("invalid event parked", event_id=event_id, function=function, reason=exc.reason)
        return Outcome("invalid", event_id=event_id, reason=exc.reason)

    accepted = _accepted_event_types(function)
    if not event.handled or (accepted is not None and event.event_type not in accepted):
        deps.metrics.count(EVENTS_UNHANDLED)
        logger.info(
            "event type not handled here",
            event_id=event.id,
            event_type=event.event_type[:128],  # free text for an unknown type: bounded
            case_id=event.case_id,
            function=function,
        )
        return Outcome("unhandled", event_id=event.id, case_id=event.case_id, event_type=event.event_type)

    case, calls = enrich(event, deps)
    for sink in deps.sinks:
        sink.on_case_event(event, case)
    deps.metrics.count(EVENTS_HANDLED)
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
    if deps.settings.log_case_data:
        logger.debug("enriched case values", case_id=case.case_id, values=case.values())
    return Outcome(
        "handled",
        event_id=event.id,
        case_id=case.case_id,
        getcase_calls=calls,
        case=case,
        event_type=event.event_type,
    )


def enrich(event: CaseEvent, deps: Dependencies) -> tuple[EnrichedCase, int]:
    """The enriched view of a handled event and the GetCase requests it took; stores the view."""
    needed = deps.settings.needed_field_ids
    included = IncludedFields.from_settings(deps.settings)
    kind = event_kind(event)
    case_id = _case_id(event)
    snapshot = None
    decided = plan(event, needed, None, included=included)
    if kind != "case" or decided.fetch:  # a case event that carries everything needs no snapshot
        snapshot = deps.snapshots.get(event.domain_id, case_id)
        decided = plan(event, needed, snapshot, included=included)

    fetched: dict[str, FieldValue] = {}
    template_id: str | None = None
    fetched_at: datetime | None = None
    not_found = False
    calls = 0
    if decided.fetch:
        fetched_at = deps.clock.now()  # the values are at least as new as the request
        calls_before, throttled_before = _counters(deps.cases)
        gave_up = False
        try:
            template_id, fetched = deps.cases.get_case_fields(event.domain_id, case_id, decided.fetch)
        except CaseNotFoundError:
            not_found = True
            deps.metrics.count(CASE_NOT_FOUND)
            logger.warning(
                "case not found: processed with what the event carries",
                event_id=event.id,
                case_id=case_id,
                fields=list(decided.fetch),
            )
        except CasesThrottledError:
            logger.warning("GetCase throttled: retry budget spent", event_id=event.id, case_id=case_id)
            gave_up = True
            raise
        finally:
            calls = _calls_since(deps.cases, calls_before, default=1)
            deps.metrics.count(GETCASE_CALLS, calls)
            throttled = _throttled_since(deps.cases, throttled_before)
            if gave_up:  # counted even when the reader cannot see the individual 429s
                throttled = max(throttled, 1)
            if throttled > 0:
                deps.metrics.count(GETCASE_THROTTLED, throttled)
    else:
        deps.metrics.count(GETCASE_CALLS, 0)

    case = merge(
        event,
        decided,
        snapshot,
        fetched=fetched,
        fetched_template_id=template_id,
        fetched_at=fetched_at,
        case_not_found=not_found,
    )
    if kind != "related_item" or (decided.fetch and not not_found):
        deps.snapshots.put(_stored_view(case, needed))  # conditional: never over a newer view
    return case, calls


def _stored_view(case: EnrichedCase, needed: frozenset[str]) -> EnrichedCase:
    """What the snapshot keeps: the needed fields only (all later plans ask for; bounded item size)."""
    if case.fields.keys() <= needed:
        return case
    return case.model_copy(update={"fields": {f: v for f, v in case.fields.items() if f in needed}})


def _case_id(event: CaseEvent) -> str:
    if event.case_id is None:  # parse_case_event guarantees it for every handled event
        raise ValueError("a handled event has a case id")
    return event.case_id


def _field_ids_by_source(case: EnrichedCase) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = {}
    for field_id, source in sorted(case.sources().items()):
        by_source.setdefault(source.value, []).append(field_id)
    return by_source


def _counters(reader: object) -> tuple[int | None, int]:
    calls = getattr(reader, "calls", None)
    throttled = getattr(reader, "throttled", 0)
    return (calls if isinstance(calls, int) else None), (throttled if isinstance(throttled, int) else 0)


def _calls_since(reader: object, before: int | None, *, default: int) -> int:
    now = getattr(reader, "calls", None)
    if before is None or not isinstance(now, int):
        return default
    return now - before


def _throttled_since(reader: object, before: int) -> int:
    now = getattr(reader, "throttled", 0)
    return now - before if isinstance(now, int) else 0


__all__ = ["Outcome", "OutcomeKind", "enrich", "process_event"]
