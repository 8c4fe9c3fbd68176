"""The JSON documents of messages and enriched events: the case, the event, the related item, the signal."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from casewatch.domain.notifications.view import CaseView
from casewatch.domain.values import cases_iso as iso
from casewatch.domain.values import per_call
from casewatch.models.events import CaseEvent
from casewatch.models.related_items import RelatedItem
from casewatch.models.signals import SlaSignal
from casewatch.settings import Settings

REDACTED: Final = "[redacted]"
PAYLOAD_VERSION: Final = "1"


def stable_id(*parts: str) -> str:
    """A stable, opaque id of its parts (sha-256, 32 hex chars)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def notification_id(source_id: str, rule_name: str, replay_name: str | None = None) -> str:
    """The id of (event or signal, rule) — a replay is a different notification than its original."""
    parts = (source_id, rule_name) if replay_name is None else (source_id, rule_name, replay_name)
    return stable_id(*parts)


@per_call
def case_document(view: CaseView, settings: Settings) -> dict[str, Any]:
    """The enriched case view: values with provenance, redacted."""
    hidden = settings.redacted_field_ids
    labels = settings.field_labels
    names = {fid: labels.get(fid, fid) for fid in view.fields}
    return {
        "domainId": view.domain_id,
        "caseId": view.case_id,
        "templateId": view.template_id,
        "asOf": iso(view.as_of),
        "version": iso(view.version) if view.version is not None else None,
        "deleted": view.deleted,
        "fields": {
            fid: {
                "value": REDACTED if fid in hidden else f.value,
                "source": f.source,
                "asOf": iso(f.as_of),
            }
            for fid, f in sorted(view.fields.items())
        },
        "fieldNames": {fid: name for fid, name in sorted(names.items()) if name != fid},
        "missing": list(view.missing),
        "flags": list(view.flags),
        "redactedFieldIds": sorted(hidden & view.fields.keys()),
    }


@per_call
def event_document(event: CaseEvent) -> dict[str, Any]:
    """The source event's identity (no field values: those are in the case document)."""
    return {
        "id": event.id,
        "eventType": event.event_type,
        "time": iso(event.time),
        "approximateChangeTime": iso(event.change_time),
        "resources": list(event.resources),
        "performedBy": event.performed_by,
        "changedFieldIds": event.changed_field_ids,
        "changedAttributes": list(getattr(event.detail, "changed_attributes", [])),
        "replayName": event.replay_name,
    }


def related_item_document(item: RelatedItem, settings: Settings) -> dict[str, Any]:
    """The related item with its content as Cases sent it (case field values in it redacted)."""
    hidden = settings.redacted_field_ids
    content_model = item.content
    content: dict[str, Any] | None = None
    if content_model is not None:
        content = content_model.model_dump(mode="json", by_alias=True, exclude_none=True)
    if content is not None and item.sla is not None:
        sla = content.get("slaConfiguration", {})
        if sla.get("fieldId") in hidden and "targetFieldValues" in sla:
            sla["targetFieldValues"] = [REDACTED for _ in sla["targetFieldValues"]]
    if content is not None and item.custom is not None:
        for entry in content.get("fields", []):
            if entry.get("id") in hidden and "value" in entry:
                entry["value"] = REDACTED
    return {
        "type": item.related_item_type.value,
        "id": item.related_item_id,
        "caseId": item.case_id,
        "createdDateTime": iso(item.created_date_time) if item.created_date_time else None,
        "content": content,
    }


def signal_document(signal: SlaSignal) -> dict[str, Any]:
    return {
        "id": signal.signal_id,
        "kind": signal.kind.value,
        "slaName": signal.sla_name,
        "origin": signal.origin,
        "targetTime": iso(signal.target_time),
        "at": iso(signal.at),
    }


def json_size(document: Any) -> int:
    """Bytes of a document as compact UTF-8 JSON (the adapters' size checks)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


def without_field_values(document: dict[str, Any]) -> dict[str, Any]:
    """A copy with the case's field values dropped (ids kept): for messages over the size limit."""
    shrunk = dict(document)
    case = shrunk.get("case")
    if isinstance(case, dict):
        case = dict(case)
        case["fieldIds"] = sorted(case.get("fields", {}))
        case["fields"] = {}
        case["truncated"] = True
        shrunk["case"] = case
    if "text" in shrunk:
        shrunk["text"] = (
            str(shrunk["text"]).split("\n\nCase as of", 1)[0] + "\n\n(field values omitted: size)\n"
        )
    return shrunk
