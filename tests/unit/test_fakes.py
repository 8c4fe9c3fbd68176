"""Fakes of the SLA ports and builders of Cases events, shared by the SLA test modules (and tested here)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casewatch.domain.sla import (
    CaseSlaLog,
    SlaConflictError,
    SlaState,
    TimerKind,
    TimerSpec,
)
from casewatch.domain.sla_ports import SlaCaseRecord, StoredSla
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue, PythonValue

DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
DOMAIN_ARN = f"arn:aws:cases:us-east-1:123456789012:domain/{DOMAIN}"
PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _envelope(resource: str, detail: dict[str, Any], when: datetime, event_id: str | None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, str(detail))),
        "detail-type": "Amazon Connect Cases Change",
        "source": "aws.cases",
        "account": "123456789012",
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [DOMAIN_ARN, resource],
        "detail": detail,
    }


def _union(value: PythonValue) -> dict[str, Any]:
    return FieldValue.of(value).to_wire()


def case_event_raw(
    event_type: str,
    case_id: str,
    when: datetime,
    fields: Mapping[str, PythonValue] | None = None,
    *,
    changed: Sequence[str] | None = None,
    created: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    fields = dict(fields or {})
    body: dict[str, Any] = {"caseId": case_id, "templateId": "tpl-1"}
    if event_type != "CASE.DELETED":
        body["createdDateTime"] = _ms(created or when)
        body["fields"] = {fid: {"value": _union(v)} for fid, v in fields.items() if v is not None}
    detail = {
        "version": "0",
        "eventType": event_type,
        "approximateChangeTime": _ms(when),
        "changedFieldIds": list(changed if changed is not None else fields),
        "case": body,
    }
    return _envelope(f"{DOMAIN_ARN}/case/{case_id}", detail, when, event_id)


def related_raw(
    case_id: str,
    when: datetime,
    item_type: str,
    item_id: str,
    content: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "relatedItemType": item_type,
        "relatedItemId": item_id,
        "caseId": case_id,
        "createdDateTime": _ms(when),
    }
    if content:
        item.update(content)
    detail = {
        "version": "0",
        "eventType": "RELATED_ITEM.CREATED",
        "approximateChangeTime": _ms(when),
        "changedAttributes": [],
        "relatedItem": item,
    }
    return _envelope(f"{DOMAIN_ARN}/case/{case_id}/related-item/{item_id}", detail, when, event_id)


def sla_item_raw(
    case_id: str,
    when: datetime,
    item_id: str,
    *,
    name: str = "First response",
    field_id: str = "status",
    values: Sequence[str] = ("pending-customer",),
    minutes: int = 30,
    status: str = "Active",
    completion: datetime | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "type": "CaseField",
        "status": status,
        "fieldId": field_id,
        "targetFieldValues": [{"stringValue": v} for v in values],
        "targetTime": _ms(when + timedelta(minutes=minutes)),
    }
    if completion is not None:
        config["completionTime"] = _ms(completion)
    return related_raw(case_id, when, "Sla", item_id, {"sla": {"slaConfiguration": config}})


def enriched(event: CaseEvent, extra: Mapping[str, PythonValue] | None = None) -> EnrichedCase:
    """The enriched view of an event: its own fields (provenance EVENT), plus `extra` from a snapshot."""
    fields = {
        fid: EnrichedField(value=FieldValue.of(v), source=Provenance.SNAPSHOT, as_of=event.change_time)
        for fid, v in (extra or {}).items()
    }
    fields.update(
        {
            fid: EnrichedField(value=value, source=Provenance.EVENT, as_of=event.change_time)
            for fid, value in event.fields.items()
        }
    )
    assert event.case_id is not None
    return EnrichedCase(
        domain_id=event.domain_id,
        case_id=event.case_id,
        version=event.change_time,
        event_id=event.id,
        fields=fields,
        deleted=event.event_type == "CASE.DELETED",
    )


def parsed(raw: dict[str, Any]) -> CaseEvent:
    return parse_case_event(raw)


# --- fakes of the ports ----------------------------------------------------------------------------


class InMemorySlaStore:
    """`SlaStore` in dicts, with the DynamoDB store's revision check."""

    def __init__(self) -> None:
        self.records: dict[str, SlaCaseRecord] = {}
        self.saves = 0
        self.conflicts = 0
        self.checks: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()
        self.before_save: Any = None  # a hook tests use to interleave a competing writer

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        with self._lock:
            return self.records.get(case_id) or SlaCaseRecord.empty(domain_id, case_id)

    def save(self, old: SlaCaseRecord, log: CaseSlaLog, changed: Sequence[SlaState]) -> SlaCaseRecord:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        with self._lock:
            current = self.records.get(log.case_id)
            if (current.revision if current else 0) != old.revision:
                self.conflicts += 1
                raise SlaConflictError("revision moved")
            slas = dict(old.slas)
            revision = old.revision + 1
            for state in changed:
                before = old.slas.get(state.key)
                slas[state.key] = StoredSla(
                    log.domain_id,
                    log.case_id,
                    state,
                    log.version,
                    revision,
                    before.next_check_at if before else None,
                )
            record = SlaCaseRecord(log, slas, revision)
            self.records[log.case_id] = record
            self.saves += 1
            return record

    def case_slas(self, case_id: str) -> list[StoredSla]:
        record = self.records.get(case_id)
        return list(record.slas.values()) if record else []

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        due = []
        for record in self.records.values():
            for sla in record.slas.values():
                if not sla.state.status.is_open:
                    continue
                due_at = self.checks.get((sla.case_id, sla.state.key)) or sla.state.target_time
                due_at = max(due_at, sla.state.target_time)
                if due_at < moment:
                    due.append(sla)
        return sorted(due, key=lambda s: s.state.target_time)[:limit]

    def defer_check(self, case_id: str, sla_key: str, until: datetime) -> None:
        self.checks[(case_id, sla_key)] = until

    def states(self) -> dict[tuple[str, str], SlaState]:
        return {(case_id, key): s.state for case_id, r in self.records.items() for key, s in r.slas.items()}


@dataclass
class RecordingTimers:
    """`SlaTimers` that keeps the pending timers in a dict and counts calls."""

    pending: dict[tuple[str, str, TimerKind], TimerSpec] = field(default_factory=dict)
    sets: int = 0
    cancels: int = 0

    def set(self, timer: TimerSpec) -> None:
        self.sets += 1
        self.pending[(timer.case_id, timer.sla_key, timer.kind)] = timer

    def cancel(self, case_id: str, sla_key: str, kind: TimerKind) -> None:
        self.cancels += 1
        self.pending.pop((case_id, sla_key, kind), None)

    def due(self) -> list[TimerSpec]:
        return sorted(self.pending.values(), key=lambda t: (t.fire_at, t.case_id, t.sla_key, t.kind.value))


# --- the fakes behave like the real store ----------------------------------------------------------


def test_in_memory_store_rejects_a_stale_revision() -> None:
    store = InMemorySlaStore()
    empty = store.load(DOMAIN, "c1")
    log = CaseSlaLog(DOMAIN, "c1")
    store.save(empty, log, [])
    with pytest.raises(SlaConflictError):
        store.save(empty, log, [])
    assert store.conflicts == 1
    assert store.load(DOMAIN, "c1").revision == 1


def test_event_builders_parse() -> None:
    created = parsed(case_event_raw("CASE.CREATED", "c1", at(0), {"status": "open", PRIORITY: "high"}))
    assert created.case_id == "c1"
    assert created.field_values() == {"status": "open", PRIORITY: "high"}
    sla = parsed(sla_item_raw("c1", at(1), "s1"))
    assert sla.related_item is not None
    assert sla.related_item.sla is not None
    assert sla.related_item.sla.sla_configuration.target_time == at(31)
    assert enriched(created).value(PRIORITY) == "high"
