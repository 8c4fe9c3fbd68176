"""A notification as sent: subject, readable text, JSON payload and SNS message attributes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from casewatch.constants import CASE_CREATED, CASE_DELETED
from casewatch.domain.notifications.documents import (
    PAYLOAD_VERSION,
    REDACTED,
    case_document,
    event_document,
    notification_id,
    related_item_document,
    signal_document,
)
from casewatch.domain.notifications.view import CaseView
from casewatch.domain.values import cases_iso as iso
from casewatch.models.events import CaseEvent
from casewatch.models.fields import PythonValue
from casewatch.models.related_items import RelatedItemType
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.settings import NotificationRule, Settings

STATUS_FIELD: Final = "status"
SUBJECT_MAX: Final = 99  # SNS: "less than 100 characters", ASCII, no line breaks or control characters
TEXT_VALUE_MAX: Final = 300  # a long value is shortened in the readable text (never in the JSON)
# The `eventType` message attribute of SLA notifications (Cases-style names).
SLA_EVENT_TYPES: Final[Mapping[SlaSignalKind, str]] = {
    SlaSignalKind.AT_RISK: "SLA.AT_RISK",
    SlaSignalKind.BREACHED: "SLA.BREACHED",
    SlaSignalKind.MET: "SLA.MET",
    SlaSignalKind.NOT_MET: "SLA.NOT_MET",
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


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to send: built here, published by the SNS adapter."""

    rule: str
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


def plain(value: PythonValue) -> str:
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
    text = _CONTROL.sub(" ", plain(value))
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
    hidden = settings.redacted_field_ids
    parts = []
    title = view.value("title")
    if title not in (None, "") and "title" not in hidden:
        parts.append(f'"{_shown("title", title, hidden, 60)}"')
    reference = view.value("reference_number")
    if reference not in (None, "") and "reference_number" not in hidden:
        parts.append(f"(#{plain(reference)})")
    return " ".join(parts) or f"case {view.case_id[:8]}"


def _headline(
    rule: NotificationRule, event: CaseEvent, view: CaseView, changed: list[str], settings: Settings
) -> str:
    hidden = settings.redacted_field_ids
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
    hidden = settings.redacted_field_ids
    labels = settings.field_labels
    rows = sorted((labels.get(fid, fid), fid, f) for fid, f in view.fields.items())
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
    hidden = settings.redacted_field_ids
    priority_id = settings.field_id("priority")

    def case_value(fid: str) -> str | None:
        value = view.value(fid)
        if value is None:
            return None
        return REDACTED if fid in hidden else plain(value)

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


def build_event_notification(
    rule: NotificationRule,
    event: CaseEvent,
    view: CaseView,
    changed: list[str],
    settings: Settings,
    *,
    status_change: str | None = None,
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
        notification_id=nid,
        subject=subject,
        text=text,
        payload=payload,
        attributes=attributes,
        case_id=view.case_id,
        source_id=event.id,
        as_of=view.as_of,
        status_change=status_change,
        replay_name=event.replay_name,
    )


def build_signal_notification(
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
        notification_id=nid,
        subject=subject,
        text=text,
        payload=payload,
        attributes=attributes,
        case_id=signal.case_id,
        source_id=signal.signal_id,
        as_of=signal.at,
    )
