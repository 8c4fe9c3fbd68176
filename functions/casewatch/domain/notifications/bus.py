"""The enriched events casewatch puts on its own bus (source `casewatch`), one per event or SLA signal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from casewatch.constants import CASE_DELETED
from casewatch.domain.notifications.documents import (
    PAYLOAD_VERSION,
    case_document,
    event_document,
    related_item_document,
    signal_document,
    stable_id,
)
from casewatch.domain.notifications.view import case_view, signal_view
from casewatch.domain.values import cases_iso as iso
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.settings import Settings

# Detail-types of the enriched-event bus.
CASE_ENRICHED: Final = "Case Enriched"
RELATED_ITEM_ENRICHED: Final = "Related Item Enriched"
CASE_DELETED_DETAIL: Final = "Case Deleted"
SLA_DETAIL_TYPES: Final[Mapping[SlaSignalKind, str]] = {
    SlaSignalKind.AT_RISK: "Sla At Risk",
    SlaSignalKind.BREACHED: "Sla Breached",
    SlaSignalKind.MET: "Sla Met",
    SlaSignalKind.NOT_MET: "Sla Not Met",
}


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One entry for the enriched-event bus (PutEvents), without the bus name."""

    event_key: str  # stable id: the idempotency key and `detail.id`
    detail_type: str
    detail: dict[str, Any]
    time: datetime
    resources: tuple[str, ...] = field(default_factory=tuple)


def case_bus_event(event: CaseEvent, case: EnrichedCase | None, settings: Settings) -> BusEvent | None:
    """The enriched event for casewatch's bus; None for an eventType casewatch does not handle."""
    if not event.handled or event.case_id is None:
        return None
    view = case_view(event, case)
    item = event.related_item
    if item is not None:
        detail_type = RELATED_ITEM_ENRICHED
    elif event.event_type == CASE_DELETED:
        detail_type = CASE_DELETED_DETAIL
    else:
        detail_type = CASE_ENRICHED
    key = stable_id("bus", event.id, *([event.replay_name] if event.replay_name else []))
    detail = {
        "version": PAYLOAD_VERSION,
        "id": key,
        "asOf": iso(view.as_of),
        "event": event_document(event),
        "case": case_document(view, settings),
        "relatedItem": related_item_document(item, settings) if item is not None else None,
    }
    return BusEvent(key, detail_type, detail, event.change_time, tuple(event.resources))


def sla_bus_event(signal: SlaSignal, case: EnrichedCase | None, settings: Settings) -> BusEvent:
    view = signal_view(signal, case)
    key = stable_id("bus", signal.signal_id)
    detail = {
        "version": PAYLOAD_VERSION,
        "id": key,
        "asOf": iso(signal.at),
        "signal": signal_document(signal),
        "case": case_document(view, settings),
    }
    return BusEvent(key, SLA_DETAIL_TYPES[signal.kind], detail, signal.at)
