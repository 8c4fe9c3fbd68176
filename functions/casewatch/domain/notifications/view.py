"""The case as a notification shows it: the enriched case at the change, each field with its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from casewatch.constants import CASE_DELETED
from casewatch.domain.values import per_call
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import PythonValue
from casewatch.models.signals import SlaSignal


@dataclass(frozen=True, slots=True)
class ViewField:
    """One case field as a message shows it: value, where it came from, when it was current."""

    value: PythonValue
    source: str  # "event" | "snapshot" | "getcase"
    as_of: datetime


@dataclass(frozen=True, slots=True)
class CaseView:
    """The case at `as_of`: the enriched case's fields overlaid with the event's own values."""

    domain_id: str
    case_id: str
    template_id: str | None
    as_of: datetime
    fields: dict[str, ViewField]
    version: datetime | None = None  # the enriched case's version
    deleted: bool = False
    missing: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def value(self, field_id: str) -> PythonValue:
        entry = self.fields.get(field_id)
        return None if entry is None else entry.value


@per_call
def case_view(event: CaseEvent, case: EnrichedCase | None) -> CaseView:
    """The case at the event's approximateChangeTime (event values win over the enriched case's)."""
    fields: dict[str, ViewField] = {}
    if case is not None:
        fields = {fid: ViewField(f.value.python, f.source.value, f.as_of) for fid, f in case.fields.items()}
    for fid, value in event.fields.items():
        fields[fid] = ViewField(value.python, "event", event.change_time)
    return CaseView(
        domain_id=event.domain_id,
        case_id=event.case_id or (case.case_id if case is not None else ""),
        template_id=event.template_id or (case.template_id if case is not None else None),
        as_of=event.change_time,
        fields=fields,
        version=case.version if case is not None else None,
        deleted=event.event_type == CASE_DELETED or (case is not None and case.deleted),
        missing=tuple(m for m in (case.missing if case is not None else ()) if m not in fields),
        flags=case.flags if case is not None else (),
    )


@per_call
def signal_view(signal: SlaSignal, case: EnrichedCase | None) -> CaseView:
    """The case as the SLA tracker last saw it (as of the enriched case's version)."""
    if case is None:
        return CaseView(signal.domain_id, signal.case_id, None, signal.at, {})
    return CaseView(
        domain_id=case.domain_id,
        case_id=case.case_id,
        template_id=case.template_id,
        as_of=case.version,
        fields={fid: ViewField(f.value.python, f.source.value, f.as_of) for fid, f in case.fields.items()},
        version=case.version,
        deleted=case.deleted,
        missing=case.missing,
        flags=case.flags,
    )
