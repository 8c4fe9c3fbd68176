"""Notification rules and message building: pure decisions, no I/O.

`evaluate_case_event(event, case, settings)` and `evaluate_sla_signal(signal, case, settings)` return the
`Notification`s the configured rules (`settings.notification_rules`) ask for; `case_bus_event` and
`sla_bus_event` build the enriched event re-published on casewatch's own bus. The adapters only send
what is built here.

Rules
-----
| `on` | fires for |
| --- | --- |
| `case_created` / `case_updated` | CASE.CREATED / CASE.UPDATED |
| `field_changed` | CASE.CREATED or CASE.UPDATED whose `changedFieldIds` hold a watched field (`fields`) |
| `case_deleted` | CASE.DELETED |
| `comment_added`, `contact_linked`, `file_attached` | RELATED_ITEM.CREATED of that type |
| `related_item_added` | RELATED_ITEM.CREATED of any type |
| `sla_at_risk`, `sla_breached`, `sla_met`, `sla_not_met` | the SLA tracker's signals |

`fields` (any case trigger; required for `field_changed`): at least one watched field changed.
`to_values`: the new value of a changed watched field is one of them (the event's value, else the
enriched case's). `match`: every listed field of the case has one of the listed values (a field the
case has no value for does not match). Values compare by type: "1" is not 1, true is not 1.
Field references may be names from `field_names`.

The state a message shows is the state at the event's `approximateChangeTime` (`asOf`): the event's
values win over the enriched case's, and every field carries its provenance and its own `asOf`.

Ids
---
`notification_id` = a stable hash of (event id, rule name) — or (SLA signal id, rule name) — plus the
replay name for a replayed event, so an archive replay is a new notification and not a duplicate of
the original. It is the idempotency key and the `notificationId` message attribute.

Redaction
---------
Values of `settings.redact_fields` are replaced by `"[redacted]"` in every subject, text, payload,
attribute and bus event (also inside SLA and custom related-item content). Related-item content
(comment bodies, contact ARNs) is passed on as Cases sent it: turn `include_content` off to keep it
out of events, messages and the bus alike.

Ordering
--------
A notification whose rule watches `status` and whose event changed it is a *status notification*
(`Notification.status_change` holds the new status): the sink suppresses it when a newer status
notification with a different status was already sent for the case ("closed" is never followed by a
stale "open"). Other notifications are never suppressed by ordering: their content says `asOf`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from casewatch.constants import CASE_CREATED, CASE_DELETED, CASE_UPDATED, RELATED_ITEM_CREATED
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent, RelatedItem, RelatedItemType
from casewatch.models.fields import PythonValue
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.settings import NotificationRule, ScalarValue, Settings

REDACTED: Final = "[redacted]"
PAYLOAD_VERSION: Final = "1"
STATUS_FIELD: Final = "status"
SUBJECT_MAX: Final = 99  # SNS: "less than 100 characters", ASCII, no line breaks or control characters
TEXT_VALUE_MAX: Final = 300  # a long value is shortened in the readable text (never in the JSON)

# Detail-types of the enriched-event bus (source `casewatch`).
CASE_ENRICHED: Final = "Case Enriched"
RELATED_ITEM_ENRICHED: Final = "Related Item Enriched"
CASE_DELETED_DETAIL: Final = "Case Deleted"
SLA_DETAIL_TYPES: Final[Mapping[SlaSignalKind, str]] = {
    SlaSignalKind.AT_RISK: "Sla At Risk",
    SlaSignalKind.BREACHED: "Sla Breached",
    SlaSignalKind.MET: "Sla Met",
    SlaSignalKind.NOT_MET: "Sla Not Met",
}
# The `eventType` message attribute of SLA notifications (Cases-style names).
SLA_EVENT_TYPES: Final[Mapping[SlaSignalKind, str]] = {
    SlaSignalKind.AT_RISK: "SLA.AT_RISK",
    SlaSignalKind.BREACHED: "SLA.BREACHED",
    SlaSignalKind.MET: "SLA.MET",
    SlaSignalKind.NOT_MET: "SLA.NOT_MET",
}

_CASE_TRIGGERS: Final[Mapping[str, tuple[str, ...]]] = {
    "case_created": (CASE_CREATED,),
    "case_updated": (CASE_UPDATED,),
    "field_changed": (CASE_CREATED, CASE_UPDATED),
    "case_deleted": (CASE_DELETED,),
}
_RELATED_ITEM_TRIGGERS: Final[Mapping[str, RelatedItemType | None]] = {
    "comment_added": RelatedItemType.COMMENT,
    "contact_linked": RelatedItemType.CONTACT,
    "file_attached": RelatedItemType.FILE,
    "related_item_added": None,  # any type
}
_RELATED_ITEM_HEADLINES: Final[Mapping[RelatedItemType, str]] = {
    RelatedItemType.COMMENT: "Comment added",
    RelatedItemType.CONTACT: "Contact linked",
    RelatedItemType.FILE: "File attached",
    RelatedItemType.SLA: "SLA added",
    RelatedItemType.CONNECT_CASE: "Case linked",
    RelatedItemType.CUSTOM: "Related item added",
}
_SLA_HEADLINES: Final[Mapping[SlaSignalKind, str]] = {
    SlaSignalKind.AT_RISK: "SLA at risk",
    SlaSignalKind.BREACHED: "SLA breached",
    SlaSignalKind.MET: "SLA met",
    SlaSignalKind.NOT_MET: "SLA not met",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")


# --- the case as of a change -------------------------------------------------------------------


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


# --- the notification --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to send: built here, published by the SNS adapter."""

    rule: str
    trigger: str
    notification_id: str
    subject: str
    text: str
    payload: dict[str, Any]
    attributes: dict[str, str]
    case_id: str
    source_id: str  # the event id or the SLA signal id
    as_of: datetime
    status_change: str | None = None  # the new status, for a status notification (ordering)
    replay_name: str | None = None


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One entry for the enriched-event bus (PutEvents), without the bus name."""

    event_key: str  # stable id: the idempotency key and `detail.id`
    detail_type: str
    detail: dict[str, Any]
    time: datetime
    resources: tuple[str, ...] = field(default_factory=tuple)


def stable_id(*parts: str) -> str:
    """A stable, opaque id of its parts (sha-256, 32 hex chars)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def notification_id(source_id: str, rule_name: str, replay_name: str | None = None) -> str:
    """The id of (event or signal, rule) — a replay is a different notification than its original."""
    parts = (source_id, rule_name) if replay_name is None else (source_id, rule_name, replay_name)
    return stable_id(*parts)


@lru_cache(maxsize=4096)  # the same few times (the event's, the case's) are written many times over
def iso(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z`, as Cases writes times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redacted_ids(settings: Settings) -> frozenset[str]:
    return settings.redacted_field_ids


# --- rules -------------------------------------------------------------------------------------


def same_value(actual: PythonValue, expected: ScalarValue) -> bool:
    """Type-aware equality: booleans only equal booleans, numbers compare as floats."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    return isinstance(actual, str) and isinstance(expected, str) and actual == expected


def _one_of(actual: PythonValue, expected: Iterable[ScalarValue]) -> bool:
    return any(same_value(actual, e) for e in expected)


def matches_case(rule: NotificationRule, view: CaseView, settings: Settings) -> bool:
    """`match`: every listed field has one of the listed values."""
    for ref, values in rule.match.items():
        fid = settings.field_id(ref)
        if fid not in view.fields or not _one_of(view.value(fid), values):
            return False
    return True


def changed_watched_fields(
    rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings
) -> list[str] | None:
    """Watched fields the event changed (to one of `to_values` if set); None if the rule does not fire.

    A rule without `fields` watches nothing in particular: an empty list (fires).
    """
    if not rule.fields:
        return []
    changed = set(event.changed_field_ids)
    hits = [fid for fid in dict.fromkeys(settings.field_id(ref) for ref in rule.fields) if fid in changed]
    if rule.to_values:
        hits = [fid for fid in hits if _one_of(view.value(fid), rule.to_values)]
    return hits or None


def rule_fires(rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings) -> bool:
    """Does `rule` notify for `event` (trigger, fields/to_values, match)?"""
    if not event.handled:
        return False
    if rule.on in _CASE_TRIGGERS:
        if event.event_type not in _CASE_TRIGGERS[rule.on]:
            return False
        if changed_watched_fields(rule, event, view, settings) is None:
            return False
    elif rule.on in _RELATED_ITEM_TRIGGERS:
        item = event.related_item
        wanted = _RELATED_ITEM_TRIGGERS[rule.on]
        if event.event_type != RELATED_ITEM_CREATED or item is None:
            return False
        if wanted is not None and item.related_item_type is not wanted:
            return False
    else:  # sla_* triggers fire for SLA signals only
        return False
    return matches_case(rule, view, settings)


def signal_rule_fires(rule: NotificationRule, signal: SlaSignal, view: CaseView, settings: Settings) -> bool:
    return rule.on == signal.kind.value and matches_case(rule, view, settings)


def _status_change(
    rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings
) -> str | None:
    """The new status if this is a status notification (the rule watches status and it changed)."""
    if rule.on not in ("field_changed", "case_updated", "case_created"):
        return None
    if STATUS_FIELD not in {settings.field_id(ref) for ref in rule.fields}:
        return None
    if STATUS_FIELD not in event.changed_field_ids:
        return None
    status = view.value(STATUS_FIELD)
    return None if status is None else _plain(status)


def evaluate_case_event(
    event: CaseEvent, case: EnrichedCase | None, settings: Settings
) -> list[Notification]:
    """The notifications the rules ask for, in rule order (replay policy is the sink's business)."""
    if not event.handled or event.case_id is None:
        return []
    view = case_view(event, case)
    notifications = []
    for rule in settings.notification_rules:
        if rule_fires(rule, event, view, settings):
            changed = changed_watched_fields(rule, event, view, settings) or []
            notifications.append(
                _build_event_notification(rule, event, view, changed, settings),
            )
    return notifications


def evaluate_sla_signal(
    signal: SlaSignal, case: EnrichedCase | None, settings: Settings
) -> list[Notification]:
    view = signal_view(signal, case)
    return [
        _build_signal_notification(rule, signal, view, settings)
        for rule in settings.notification_rules
        if signal_rule_fires(rule, signal, view, settings)
    ]


# --- documents (JSON) --------------------------------------------------------------------------


def case_document(view: CaseView, settings: Settings) -> dict[str, Any]:
    """The enriched case view: values with provenance, redacted."""
    hidden = redacted_ids(settings)
    names = {fid: settings.field_label(fid) for fid in view.fields}
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
    hidden = redacted_ids(settings)
    content_key = {
        RelatedItemType.CONTACT: "contact",
        RelatedItemType.COMMENT: "comment",
        RelatedItemType.FILE: "file",
        RelatedItemType.SLA: "sla",
        RelatedItemType.CONNECT_CASE: "connect_case",
        RelatedItemType.CUSTOM: "custom",
    }[item.related_item_type]
    content_model = getattr(item, content_key)
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


# --- human text --------------------------------------------------------------------------------


def _plain(value: PythonValue) -> str:
    """A value as text: bools lowercase, integral floats without `.0`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return value


def _shown(fid: str, value: PythonValue, hidden: frozenset[str], limit: int = TEXT_VALUE_MAX) -> str:
    if fid in hidden:
        return REDACTED
    text = _CONTROL.sub(" ", _plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ascii_subject(text: str, limit: int = SUBJECT_MAX) -> str:
    """SNS-safe subject: ASCII, one line, no control characters, at most `limit` characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    folded = _SPACES.sub(" ", _CONTROL.sub(" ", folded)).strip()
    if len(folded) > limit:
        folded = folded[: limit - 3].rstrip() + "..."
    return folded or "casewatch notification"


def _case_label(view: CaseView, settings: Settings) -> str:
    """`"Refund not received" (#78412093)` from the title and reference number, when not redacted."""
    hidden = redacted_ids(settings)
    parts = []
    title = view.value("title")
    if title not in (None, "") and "title" not in hidden:
        parts.append(f'"{_shown("title", title, hidden, 60)}"')
    reference = view.value("reference_number")
    if reference not in (None, "") and "reference_number" not in hidden:
        parts.append(f"(#{_plain(reference)})")
    return " ".join(parts) or f"case {view.case_id[:8]}"


def _headline(
    rule: NotificationRule, event: CaseEvent, view: CaseView, changed: list[str], settings: Settings
) -> str:
    hidden = redacted_ids(settings)
    item = event.related_item
    if item is not None:
        return _RELATED_ITEM_HEADLINES[item.related_item_type]
    if event.event_type == CASE_DELETED:
        return "Case deleted"
    if changed:
        labels = ", ".join(settings.field_label(fid) for fid in changed)
        if len(changed) == 1:
            shown = _shown(changed[0], view.value(changed[0]), hidden, 40)
            if view.value(changed[0]) is not None and not shown.startswith("arn:"):
                return f"Case {labels} changed to {shown}"
        return f"Case {labels} changed"
    return "Case created" if event.event_type == CASE_CREATED else "Case updated"


def _field_lines(view: CaseView, settings: Settings) -> list[str]:
    hidden = redacted_ids(settings)
    rows = sorted((settings.field_label(fid), fid, f) for fid, f in view.fields.items())
    return [
        f"  {label}: {_shown(fid, f.value, hidden)}"
        + ("" if f.as_of == view.as_of else f" (as of {iso(f.as_of)})")
        for label, fid, f in rows
    ]


def _text(head: str, rule: NotificationRule, view: CaseView, details: list[str], settings: Settings) -> str:
    lines = [
        head,
        "",
        f"Rule: {rule.name} ({rule.on})",
        f"Case: {view.case_id} {_case_label(view, settings)}".rstrip(),
        f"Domain: {view.domain_id}",
        *details,
        "",
        f"Case as of {iso(view.as_of)}:" if view.fields else f"Case as of {iso(view.as_of)}: no field values",
        *_field_lines(view, settings),
    ]
    return "\n".join(lines) + "\n"


# --- attributes --------------------------------------------------------------------------------


def _attributes(
    *,
    notification_id_: str,
    rule: NotificationRule,
    event_type: str,
    view: CaseView,
    replay: bool,
    settings: Settings,
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """String attributes for SNS filter policies (at most 10: SQS's limit). Empty values are left out."""
    hidden = redacted_ids(settings)
    priority_id = settings.field_id("priority")

    def case_value(fid: str) -> str | None:
        value = view.value(fid)
        if value is None:
            return None
        return REDACTED if fid in hidden else _plain(value)

    candidates: dict[str, str | None] = {
        "notificationId": notification_id_,
        "rule": rule.name,
        "eventType": event_type,
        "caseId": view.case_id,
        "domainId": view.domain_id,
        "templateId": view.template_id,
        "status": case_value(STATUS_FIELD),
        "priority": case_value(priority_id),
        "replay": "true" if replay else "false",
        **(extra or {}),
    }
    return {k: v for k, v in candidates.items() if v}


# --- builders ----------------------------------------------------------------------------------


def _build_event_notification(
    rule: NotificationRule, event: CaseEvent, view: CaseView, changed: list[str], settings: Settings
) -> Notification:
    nid = notification_id(event.id, rule.name, event.replay_name)
    head = _headline(rule, event, view, changed, settings)
    subject = ascii_subject(f"{head}: {_case_label(view, settings)}")
    details = [
        f"Event: {event.event_type} at {iso(event.change_time)}"
        + (f" by {event.performed_by}" if event.performed_by else ""),
    ]
    if event.changed_field_ids:
        details.append("Changed: " + ", ".join(settings.field_label(f) for f in event.changed_field_ids))
    item = event.related_item
    if item is not None:
        details.append(f"Related item: {item.related_item_type.value} {item.related_item_id}")
        if item.comment is not None and item.comment.body:
            details.append("Comment: " + _shown("", item.comment.body, frozenset(), 1000))
    if event.replay_name:
        details.append(f"Replay: {event.replay_name} (a replayed event, sent again as new)")
    text = _text(head, rule, view, details, settings)
    payload = {
        "version": PAYLOAD_VERSION,
        "notificationId": nid,
        "rule": {"name": rule.name, "on": rule.on},
        "subject": subject,
        "text": text,
        "asOf": iso(view.as_of),
        "event": event_document(event),
        "signal": None,
        "case": case_document(view, settings),
        "relatedItem": related_item_document(item, settings) if item is not None else None,
    }
    attributes = _attributes(
        notification_id_=nid,
        rule=rule,
        event_type=event.event_type,
        view=view,
        replay=event.is_replay,
        settings=settings,
        extra={"relatedItemType": item.related_item_type.value if item is not None else None},
    )
    return Notification(
        rule=rule.name,
        trigger=rule.on,
        notification_id=nid,
        subject=subject,
        text=text,
        payload=payload,
        attributes=attributes,
        case_id=view.case_id,
        source_id=event.id,
        as_of=view.as_of,
        status_change=_status_change(rule, event, view, settings),
        replay_name=event.replay_name,
    )


def _build_signal_notification(
    rule: NotificationRule, signal: SlaSignal, view: CaseView, settings: Settings
) -> Notification:
    nid = notification_id(signal.signal_id, rule.name)
    head = f"{_SLA_HEADLINES[signal.kind]}: {signal.sla_name}"
    subject = ascii_subject(f"{head}: {_case_label(view, settings)}")
    details = [
        f"SLA: {signal.sla_name} ({signal.origin}), target {iso(signal.target_time)}",
        f"Signal: {signal.kind.value} at {iso(signal.at)}",
    ]
    text = _text(head, rule, view, details, settings)
    payload = {
        "version": PAYLOAD_VERSION,
        "notificationId": nid,
        "rule": {"name": rule.name, "on": rule.on},
        "subject": subject,
        "text": text,
        "asOf": iso(view.as_of),
        "event": None,
        "signal": signal_document(signal),
        "case": case_document(view, settings),
        "relatedItem": None,
    }
    attributes = _attributes(
        notification_id_=nid,
        rule=rule,
        event_type=SLA_EVENT_TYPES[signal.kind],
        view=view,
        replay=False,
        settings=settings,
        extra={"slaName": signal.sla_name},
    )
    return Notification(
        rule=rule.name,
        trigger=rule.on,
        notification_id=nid,
        subject=subject,
        text=text,
        payload=payload,
        attributes=attributes,
        case_id=signal.case_id,
        source_id=signal.signal_id,
        as_of=signal.at,
    )


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
