"""Enrichment: which case fields come from the event, the stored snapshot, or GetCase (pure, no I/O).

GetCase is limited to 4 requests/s per account, so the plan asks it only for what no cheaper
source knows, all in one call:

- a field the event carries is never fetched. A field the domain's event configuration includes
  (`includedData`) but the event omits is known to be empty: Cases puts only non-null fields in
  events. That inference needs an event that carries fields at all (metadata-only events prove
  nothing);
- case events (CREATED/UPDATED) may take a snapshot field only if it is not older than the event
  (`as_of >= approximateChangeTime`): the event may have changed it;
- related-item events carry no case fields and cannot change them, so they take every field the
  snapshot has and fetch only what it lacks;
- CASE.DELETED, and any event on a case the snapshot knows is deleted, fetch nothing (GetCase
  would answer 404).

A view's `fields` holds every field whose value is known, empty ones as `emptyValue`; `missing`
lists the needed fields nobody could supply (404, deleted case).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from casewatch.constants import CASE_CREATED, CASE_DELETED, CASE_UPDATED, RELATED_ITEM_CREATED
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent
from casewatch.models.fields import EmptyValue, FieldValue
from casewatch.settings import SYSTEM_FIELD_IDS, Settings

EventKind = Literal["case", "deleted", "related_item"]
CASE_NOT_FOUND = "case_not_found"  # GetCase answered 404 for this event
CASE_DELETED_FLAG = "case_deleted"  # the snapshot says the case was deleted

_KINDS: dict[str, EventKind] = {
    CASE_CREATED: "case",
    CASE_UPDATED: "case",
    CASE_DELETED: "deleted",
    RELATED_ITEM_CREATED: "related_item",
}


def event_kind(event: CaseEvent) -> EventKind:
    """How enrichment treats the event; `ValueError` for an eventType it does not handle."""
    kind = _KINDS.get(event.event_type)
    if kind is None or not event.handled:
        raise ValueError(f"no enrichment for eventType {event.event_type}")
    return kind


@dataclass(frozen=True, slots=True)
class IncludedFields:
    """What the domain's event configuration puts in case events (`includedData.caseData`)."""

    field_ids: frozenset[str] = frozenset()
    auto_include: Literal["All", "System", "Custom"] | None = None

    def covers(self, field_id: str) -> bool:
        if field_id in self.field_ids or self.auto_include == "All":
            return True
        system = field_id in SYSTEM_FIELD_IDS
        return (self.auto_include == "System" and system) or (self.auto_include == "Custom" and not system)

    @classmethod
    def from_settings(cls, settings: Settings) -> IncludedFields:
        return cls(settings.event_field_ids, settings.auto_include_fields)


NOTHING_INCLUDED = IncludedFields()


@dataclass(frozen=True, slots=True)
class EnrichmentPlan:
    """Where each needed field comes from. Every tuple is sorted; `fetch` is the one GetCase request."""

    kind: EventKind
    needed: frozenset[str]
    from_event: tuple[str, ...] = ()  # carried by the event
    empty_in_event: tuple[str, ...] = ()  # included in events, omitted by this one: empty
    from_snapshot: tuple[str, ...] = ()  # taken from the stored view (keeps its as_of)
    fetch: tuple[str, ...] = ()  # to ask GetCase for
    unavailable: tuple[str, ...] = ()  # nobody can supply them (the case is deleted)
    snapshot_deleted: bool = False

    @property
    def needs_getcase(self) -> bool:
        return bool(self.fetch)


def _snapshot_usable(snapshot: EnrichedCase, field_id: str, kind: EventKind, change_time: datetime) -> bool:
    field = snapshot.fields.get(field_id)
    if field is None:
        return False
    return kind != "case" or field.as_of >= change_time


def plan(
    event: CaseEvent,
    needed: frozenset[str],
    snapshot: EnrichedCase | None,
    *,
    included: IncludedFields = NOTHING_INCLUDED,
) -> EnrichmentPlan:
    """Decide where each of the `needed` fields comes from for `event` (see the module docstring)."""
    kind = event_kind(event)
    carried = event.fields
    from_event = needed & carried.keys()
    empty: set[str] = set()
    if kind == "case" and carried:
        empty = {f for f in needed - from_event if included.covers(f)}
    rest = needed - from_event - empty
    deleted = snapshot is not None and snapshot.deleted
    from_snapshot: set[str] = set()
    if snapshot is not None:
        from_snapshot = {f for f in rest if _snapshot_usable(snapshot, f, kind, event.change_time)}
    unknown = rest - from_snapshot
    stop = kind == "deleted" or deleted
    return EnrichmentPlan(
        kind=kind,
        needed=needed,
        from_event=tuple(sorted(from_event)),
        empty_in_event=tuple(sorted(empty)),
        from_snapshot=tuple(sorted(from_snapshot)),
        fetch=() if stop else tuple(sorted(unknown)),
        unavailable=tuple(sorted(unknown)) if stop else (),
        snapshot_deleted=deleted,
    )


EMPTY = FieldValue(empty_value=EmptyValue())  # frozen: one instance serves every empty field


def _field(value: FieldValue, source: Provenance, as_of: datetime) -> EnrichedField:
    # The parts are validated already (a parsed event, GetCase values, a stored view): skip revalidation.
    return EnrichedField.model_construct(value=value, source=source, as_of=as_of)


def merge(
    event: CaseEvent,
    plan: EnrichmentPlan,
    snapshot: EnrichedCase | None,
    *,
    fetched: Mapping[str, FieldValue] | None = None,
    fetched_template_id: str | None = None,
    fetched_at: datetime | None = None,
    case_not_found: bool = False,
) -> EnrichedCase:
    """The enriched view for `event`, with the provenance of every field.

    Event fields are current as of the event's approximateChangeTime, GetCase fields as of
    `fetched_at` (a requested field GetCase did not return is empty), snapshot fields keep their
    own `as_of`. `case_not_found`: GetCase answered 404, the fetched fields stay `missing`.
    """
    change_time = event.change_time
    fields: dict[str, EnrichedField] = {}
    if snapshot is not None:
        # Related items and deletions carry the whole stored view over; case events only what the plan allows.
        carry = snapshot.fields.keys() if plan.kind != "case" else plan.from_snapshot
        for field_id in carry:
            kept = snapshot.fields[field_id]
            fields[field_id] = _field(kept.value, Provenance.SNAPSHOT, kept.as_of)
    for field_id, value in event.fields.items():
        fields[field_id] = _field(value, Provenance.EVENT, change_time)
    for field_id in plan.empty_in_event:
        fields[field_id] = _field(EMPTY, Provenance.EVENT, change_time)
    fetched_now = bool(plan.fetch) and not case_not_found
    if fetched_now:
        if fetched_at is None:
            raise ValueError("merge needs fetched_at when the plan fetched fields")
        got = fetched or {}
        for field_id in plan.fetch:
            fields[field_id] = _field(got.get(field_id) or EMPTY, Provenance.GETCASE, fetched_at)

    flags: list[str] = []
    if case_not_found:
        flags.append(CASE_NOT_FOUND)
    if plan.snapshot_deleted and plan.kind != "deleted":
        flags.append(CASE_DELETED_FLAG)

    # A related item changes no case field: its view is the case as of the snapshot it was built on.
    version = snapshot.version if plan.kind == "related_item" and snapshot is not None else change_time
    used_snapshot = snapshot is not None and (plan.kind != "case" or bool(plan.from_snapshot))
    getcase_at = fetched_at if fetched_now else (snapshot.getcase_at if used_snapshot and snapshot else None)
    template_id = event.template_id or fetched_template_id or (snapshot.template_id if snapshot else None)
    case_id = event.case_id
    if case_id is None:  # parse_case_event guarantees a case id for every handled event
        raise ValueError("a handled event has a case id")
    return EnrichedCase(
        domain_id=event.domain_id,
        case_id=case_id,
        template_id=template_id,
        version=version,
        event_id=event.id,
        fields=fields,
        missing=tuple(sorted(plan.needed - fields.keys())),
        getcase_at=getcase_at,
        deleted=plan.kind == "deleted" or plan.snapshot_deleted,
        flags=tuple(flags),
    )


def supersedes(new: EnrichedCase, old: EnrichedCase) -> bool:
    """Whether `new` may replace the stored `old`: a newer version, or the same one fetched later."""
    if new.version != old.version:
        return new.version > old.version
    if new.getcase_at is None:
        return False
    return old.getcase_at is None or new.getcase_at > old.getcase_at


__all__ = [
    "CASE_DELETED_FLAG",
    "CASE_NOT_FOUND",
    "NOTHING_INCLUDED",
    "EnrichmentPlan",
    "EventKind",
    "IncludedFields",
    "event_kind",
    "merge",
    "plan",
    "supersedes",
]
