"""Turning what casewatch learns into SLA observations (pure): events, Cases SLA items, case reads.

An observation holds only facts true at its time, so that folding the set of them in time order
does not depend on the order they arrived in:
- a case event contributes the values it carries of the *tracked* fields (those policies read, the
  fields of the case's Cases SLAs, and `status`) — values after the change, at approximateChangeTime.
  A tracked field the event lacks is taken from the enriched case only when the event says it
  changed (metadata-only events), or for CASE.CREATED (the initial values); otherwise it is unknown
  at that time and the fold carries the previous value;
- a related item contributes its type (and, for an Sla, its definition and completion);
- reconciliation contributes what Cases answers now, at the times Cases says it became true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from casewatch.constants import CASE_CREATED, CASE_DELETED, CASE_UPDATED, RELATED_ITEM_CREATED
from casewatch.domain.sla.fold import FoldState
from casewatch.domain.sla.log import Observation, ObsKind, case_fields
from casewatch.domain.sla.model import CasesSlaSpec, PolicySpec
from casewatch.domain.values import Scalar, scalar
from casewatch.errors import SettingsError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.related_items import RelatedItemType, SlaConfiguration

STATUS_FIELD = "status"
MAX_SEARCH_FIELDS = 25  # SearchCases returns at most 25 fields per case
LAST_UPDATED_FIELD = "last_updated_datetime"
LAST_CLOSED_FIELD = "last_closed_datetime"
CREATED_FIELD = "created_datetime"
CLOSED = "closed"
RECONCILE = "reconcile"


def tracked_fields(policies: Sequence[PolicySpec], cases_sla_fields: Iterable[str] = ()) -> frozenset[str]:
    """The case fields SLA tracking records: what policies read, Cases SLA fields, and `status`."""
    ids: set[str] = {STATUS_FIELD, *cases_sla_fields}
    for policy in policies:
        ids |= policy.field_ids
    return frozenset(ids)


@dataclass(frozen=True, slots=True)
class CasesSlaReport:
    """A Cases SLA related item as Cases describes it (an event's content, or SearchRelatedItems)."""

    related_item_id: str
    created: datetime
    spec: CasesSlaSpec
    status: str | None = None  # Active | Overdue | Met | NotMet
    completion_time: datetime | None = None

    def observations(self) -> list[Observation]:
        """The definition (at creation) and, if Cases reports one, the completion. Whether they come
        from an event or from reconciliation, they are the same observations (no double counting)."""
        out = [Observation(self.created, ObsKind.SLA, ref=self.related_item_id, sla=self.spec)]
        if self.completion_time is not None:
            out.append(Observation(self.completion_time, ObsKind.SLA_DONE, ref=self.related_item_id))
        return out


def sla_report(related_item_id: str, created: datetime, config: SlaConfiguration) -> CasesSlaReport | None:
    """A report from a Cases `slaConfiguration`; None when it names no field or no target."""
    target = config.target_time
    if target is None and config.target_sla_minutes is not None:
        target = created + timedelta(minutes=config.target_sla_minutes)
    if target is None or not config.field_id:
        return None
    spec = CasesSlaSpec(
        name=config.name,
        field_id=config.field_id,
        target_values=tuple(scalar(v.python) for v in config.target_field_values),
        target_time=target,
    )
    return CasesSlaReport(related_item_id, created, spec, config.status, config.completion_time)


def _value(value: FieldValue) -> Scalar:
    return scalar(value.python)


def observe_event(event: CaseEvent, case: EnrichedCase | None, tracked: frozenset[str]) -> list[Observation]:
    """The observations of one handled Cases event (empty for an unhandled one)."""
    at = event.change_time
    if event.event_type == CASE_DELETED:
        return [Observation(at, ObsKind.DELETED)]
    if event.event_type in (CASE_CREATED, CASE_UPDATED):
        carried = event.fields
        values: dict[str, Scalar] = {fid: _value(v) for fid, v in carried.items() if fid in tracked}
        changed = set(event.changed_field_ids)
        if case is not None:
            for fid in tracked - values.keys():
                if event.event_type == CASE_CREATED or fid in changed:
                    if fid in case.fields:
                        values[fid] = _value(case.fields[fid].value)
                    elif fid in case.missing:
                        values[fid] = None
        created = getattr(getattr(event.detail, "case", None), "created_date_time", None)
        return [Observation(at, ObsKind.CASE, fields=case_fields(values), created=created)]
    item = event.related_item
    if event.event_type == RELATED_ITEM_CREATED and item is not None:
        out = [
            Observation(at, ObsKind.ITEM, item_type=item.related_item_type.value, ref=item.related_item_id)
        ]
        if item.related_item_type is RelatedItemType.SLA and item.sla is not None:
            report = sla_report(
                item.related_item_id, item.created_date_time or at, item.sla.sla_configuration
            )
            if report is not None:
                out += report.observations()
        return out
    return []


def needs_sla_lookup(event: CaseEvent) -> bool:
    """An Sla related item whose event lacks a usable definition (includeContent off): ask Cases."""
    item = event.related_item
    if item is None or item.related_item_type is not RelatedItemType.SLA:
        return False
    if item.sla is None:
        return True
    config = item.sla.sla_configuration
    return not config.field_id or (config.target_time is None and config.target_sla_minutes is None)


def observe_case_read(
    values: Mapping[str, FieldValue], tracked: frozenset[str], now: datetime
) -> list[Observation]:
    """What a GetCase read says, at the times it became true (reconciliation).

    The values held since the case's last update (`last_updated_datetime`, else `now`); a `closed`
    status since `last_closed_datetime`, which dates a missed closing exactly. Cases' own times are
    used as they are (not capped at `now`): a fact is placed where it happened.
    """
    updated = values.get(LAST_UPDATED_FIELD)
    since = (updated.as_datetime() if updated is not None else None) or now
    fields = {fid: _value(values[fid]) if fid in values else None for fid in tracked}
    out = [Observation(since, ObsKind.CASE, source=RECONCILE, fields=case_fields(fields))]
    closed = values.get(LAST_CLOSED_FIELD)
    closed_at = closed.as_datetime() if closed is not None else None
    if closed_at is not None and closed_at < since and fields.get(STATUS_FIELD) == CLOSED:
        out.append(
            Observation(closed_at, ObsKind.CASE, source=RECONCILE, fields=case_fields({STATUS_FIELD: CLOSED}))
        )
    return out


def reconcile_fields(tracked: frozenset[str]) -> list[str]:
    """The fields the change feed reads: the change dates and the creation time first, then the tracked
    ones."""
    dates = [LAST_UPDATED_FIELD, LAST_CLOSED_FIELD, CREATED_FIELD]
    fields = dates + sorted(tracked - set(dates))
    if len(fields) > MAX_SEARCH_FIELDS:
        raise SettingsError(
            f"sla_policies: the policies read {len(tracked)} case fields; the change feed tracks at most "
            f"{MAX_SEARCH_FIELDS - len(dates)} (SearchCases returns {MAX_SEARCH_FIELDS} fields per case)"
        )
    return fields


def observe_search(
    values: Mapping[str, FieldValue], tracked: frozenset[str], fold: FoldState | None, now: datetime
) -> list[Observation]:
    """What a search result says about a case that the fold does not know already.

    The case's values (`observe_case_read`, with the case's creation time so a policy can be armed from
    it when no event of the case arrived), left out when the fold knows exactly these values already:
    the same values later in time only say that time passed, which the feed's horizon says too.
    """
    found = observe_case_read(values, tracked, now)
    created_value = values.get(CREATED_FIELD)
    created = created_value.as_datetime() if created_value is not None else None
    if created is not None:
        found[0] = replace(found[0], created=created)
    if fold is None or fold.last is None:
        return found
    return [obs for obs in found if any(not _same(fold.known.get(fid, _UNKNOWN), v) for fid, v in obs.fields)]


def observe_items(
    items: Iterable[tuple[str, str, datetime, CasesSlaReport | None]], fold: FoldState | None
) -> list[Observation]:
    """What found related items (id, type, association time, Cases SLA report) say that the fold does not
    know: items it has not seen, Cases SLAs it does not know, completions of Cases SLAs it has open."""
    seen = fold.refs if fold is not None else set()
    out: list[Observation] = []
    for ref, item_type, at, report in items:
        if report is not None:
            definition, *done = report.observations()
            if ref not in seen:
                out.append(definition)
            if done and (ref not in seen or (fold is not None and fold.open_cases_sla(ref))):
                out += done
        elif ref not in seen:
            out.append(Observation(at, ObsKind.ITEM, item_type=item_type, ref=ref))
    return out


_UNKNOWN = object()


def _same(known: object, value: Scalar) -> bool:
    return known is not _UNKNOWN and known == value and type(known) is type(value)


__all__ = [
    "CasesSlaReport",
    "needs_sla_lookup",
    "observe_case_read",
    "observe_event",
    "observe_items",
    "observe_search",
    "reconcile_fields",
    "sla_report",
    "tracked_fields",
]
