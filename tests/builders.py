"""Builders of test inputs, one module for every suite: the `events/` corpus, Cases events made to
measure (case, related item, Cases SLA), enriched views, SLA signals, and the SLA scenario settings.

Fixtures (AWS environment, moto, tables, a Lambda context, settings resets) are in `tests/conftest.py`;
the use cases composed over fakes are in `tests/apps.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from casewatch.domain.sla.model import compile_policies
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue, PythonValue
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.settings import Settings, load_cdk_context

# --- the corpus --------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SAMPLE_FILES = sorted(EVENTS.glob("*.json"))
INVALID_FILES = sorted((EVENTS / "invalid").glob("*.json"))


def load_event(name: str) -> dict[str, Any]:
    """A sample event by file stem, e.g. `load_event("case-created")` (a fresh copy every call)."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


def raw_of(path: Path) -> Any:
    """A corpus file as a caller would hand it over: its JSON, or its text when it is not JSON."""
    text = path.read_text()
    try:
        return json.loads(text)
    except ValueError:
        return text


@cache
def _repo_settings() -> Settings:
    return load_cdk_context(ROOT / "cdk.json")


def repo_settings() -> Settings:
    """The settings cdk.json deploys (immutable: tests derive variants with `model_copy`)."""
    return _repo_settings()


# --- the sample domain -------------------------------------------------------------------------------

ACCOUNT = "123456789012"
REGION = "us-east-1"
DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
DOMAIN_ARN = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{DOMAIN}"
TEMPLATE = "4d2c9e8f-1a3b-4c5d-8e7f-6a5b4c3d2e1f"
PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"  # the custom field `priority`
CASE_1 = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # the sample events' cases
CASE_2 = "c9e8d7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f"
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 (09:00 UTC on the sample day) plus `minutes`."""
    return T0 + timedelta(minutes=minutes)


# --- Cases events made to measure --------------------------------------------------------------------


def _ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _envelope(resource: str, detail: dict[str, Any], when: datetime, event_id: str | None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, str(detail))),
        "detail-type": "Amazon Connect Cases Change",
        "source": "aws.cases",
        "account": ACCOUNT,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [DOMAIN_ARN, resource],
        "detail": detail,
    }


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
    """A case event envelope; the id is derived from the detail unless given (same detail, same id)."""
    fields = dict(fields or {})
    body: dict[str, Any] = {"caseId": case_id, "templateId": "tpl-1"}
    if event_type != "CASE.DELETED":
        body["createdDateTime"] = _ms(created or when)
        body["fields"] = {
            fid: {"value": FieldValue.of(v).to_wire()} for fid, v in fields.items() if v is not None
        }
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
    """A RELATED_ITEM.CREATED envelope; `content` e.g. `{"comment": {"body": "hi"}}`."""
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
    """A Cases SLA related item created at `when`, due `minutes` later."""
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


def parsed(raw: dict[str, Any]) -> CaseEvent:
    return parse_case_event(raw)


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


def sla_signal(
    kind: SlaSignalKind = SlaSignalKind.BREACHED,
    *,
    case_id: str = CASE_1,
    name: str = "first-response-high",
    key: str | None = None,
    origin: str = "policy",
    target: datetime | None = None,
    moment: datetime | None = None,
) -> SlaSignal:
    """An SLA signal; the key defaults to the policy key of `name` (`policy#<name>`)."""
    target = target or at(30)
    return SlaSignal(
        kind=kind,
        domain_id=DOMAIN,
        case_id=case_id,
        sla_key=key or f"{origin}#{name}",
        sla_name=name,
        origin=origin,
        target_time=target,
        at=moment or target,
    )


# --- the SLA scenario: two policies, a warning at 80 % -------------------------------------------------

SLA_SETTINGS = Settings.from_mapping(
    {
        "domain_id": DOMAIN,
        "field_names": {"priority": PRIORITY},
        "sla_policies": [
            {
                "name": "first-response-high",
                "match": {"priority": ["high"]},
                "target_minutes": 30,
                "complete_when": {"related_item": "Comment"},
            },
            {
                "name": "resolve-within-8h",
                "target_minutes": 480,
                "complete_when": {"field": "status", "values": ["closed"]},
                "pause_when": {"status": ["pending-customer"]},
                "rearm_on_reopen": True,
            },
        ],
        "sla_warning_fraction": 0.8,
    }
)
POLICIES = compile_policies(SLA_SETTINGS.sla_policies, SLA_SETTINGS.field_id)
FIRST = "policy#first-response-high"
RESOLVE = "policy#resolve-within-8h"


def sla_policies_reading(count: int, *extra: str) -> list[dict[str, Any]]:
    """`sla_policies` that read `count` case fields: `status` (each completes on it) and `count - 1` custom
    ones, one a policy; `extra` field ids read besides (by one more policy). The change feed reads at most
    22 besides the three change dates (SearchCases returns 25 fields)."""
    policies: list[dict[str, Any]] = [
        {
            "name": f"p{n:02d}",
            "match": {f"field-{n:02d}": ["x"]},
            "target_minutes": 30,
            "complete_when": {"field": "status", "values": ["closed"]},
        }
        for n in range(count - 1)
    ]
    if extra:
        policies.append(
            {
                "name": "extra",
                "match": {field_id: ["x"] for field_id in extra},
                "target_minutes": 30,
                "complete_when": {"related_item": "Comment"},
            }
        )
    return policies


def created(case_id: str, minutes: float, priority: str = "low", status: str = "open") -> dict[str, Any]:
    return case_event_raw("CASE.CREATED", case_id, at(minutes), {"status": status, PRIORITY: priority})


def updated(
    case_id: str, minutes: float, status: str, priority: str = "low", created_at: float = 0
) -> dict[str, Any]:
    return case_event_raw(
        "CASE.UPDATED",
        case_id,
        at(minutes),
        {"status": status, PRIORITY: priority},
        changed=["status"],
        created=at(created_at),
    )


def comment(case_id: str, minutes: float, item_id: str = "cm1") -> dict[str, Any]:
    return related_raw(case_id, at(minutes), "Comment", item_id, {"comment": {"body": "hello"}})


def deleted(case_id: str, minutes: float) -> dict[str, Any]:
    return case_event_raw("CASE.DELETED", case_id, at(minutes))
