"""The emulator's data: domains, fields, templates, cases, related items, and their rules."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from casewatch_dev.emulator._protocol import JSON, validation

# id -> (display name, field type). Ids and types as ListFields reports them for a new domain.
SYSTEM_FIELDS: dict[str, tuple[str, str]] = {
    "case_id": ("Case ID", "Text"),
    "case_reason": ("Case reason", "SingleSelect"),
    "customer_id": ("Customer", "Text"),
    "created_datetime": ("Created date/time", "DateTime"),
    "last_updated_datetime": ("Updated date/time", "DateTime"),
    "last_closed_datetime": ("Closed date/time", "DateTime"),
    "reference_number": ("Reference number", "Text"),
    "status": ("Status", "SingleSelect"),
    "summary": ("Summary", "Text"),
    "title": ("Title", "Text"),
    "assigned_user": ("Assigned user", "User"),
    "assigned_queue": ("Assigned queue", "Text"),
    "last_updated_user": ("Updated by", "User"),
    "next_sla_breach_datetime": ("Next SLA breach", "DateTime"),
    "last_reopened_datetime": ("Reopened date/time", "DateTime"),
}
# Set by the service, never by CreateCase/UpdateCase.
READ_ONLY_FIELDS = frozenset(
    {
        "case_id",
        "created_datetime",
        "last_updated_datetime",
        "last_closed_datetime",
        "reference_number",
        "last_updated_user",
        "next_sla_breach_datetime",
        "last_reopened_datetime",
    }
)
T = TypeVar("T")
UNION_MEMBERS = ("stringValue", "doubleValue", "booleanValue", "emptyValue", "userArnValue")
_ACCEPTED_MEMBERS: dict[str, frozenset[str]] = {
    "Text": frozenset({"stringValue"}),
    "Url": frozenset({"stringValue"}),
    "SingleSelect": frozenset({"stringValue"}),
    "Number": frozenset({"doubleValue"}),
    "Boolean": frozenset({"booleanValue"}),
    "DateTime": frozenset({"stringValue", "doubleValue"}),  # representation undocumented: take both
    "User": frozenset({"userArnValue"}),
}
CONTENT_KEYS = {
    "Contact": "contact",
    "Comment": "comment",
    "File": "file",
    "Sla": "sla",
    "ConnectCase": "connectCase",
    "Custom": "custom",
}
CHANGED_ATTRIBUTES = {
    "Contact": "contact.contactArn",
    "Comment": "comment.commentText",
    "File": "file.fileArn",
    "Sla": "sla.slaConfiguration",
    "ConnectCase": "connectCase.caseId",
    "Custom": "custom.fields",
}


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as Cases writes times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- field values ------------------------------------------------------------------------------


def member_of(value: JSON | None) -> tuple[str, Any] | None:
    """The union member set in `value`, or None for no value / `emptyValue`."""
    if not value:
        return None
    for name in UNION_MEMBERS:
        if value.get(name) is not None:
            return None if name == "emptyValue" else (name, value[name])
    return None


def has_value(value: JSON | None) -> bool:
    return member_of(value) is not None


def values_equal(left: JSON | None, right: JSON | None) -> bool:
    a, b = member_of(left), member_of(right)
    if a is None or b is None:
        return a is b
    if a[0] == "doubleValue" and b[0] == "doubleValue":
        return float(a[1]) == float(b[1])
    return a == b


def to_union(python: object, field_type: str) -> JSON:
    """A Python value (or a ready union dict) as the FieldValueUnion a field of `field_type` takes."""
    if isinstance(python, dict):
        return dict(python)
    if python is None:
        return {"emptyValue": {}}
    if isinstance(python, bool):
        return {"booleanValue": python}
    if isinstance(python, int | float):
        return {"doubleValue": float(python)}
    if isinstance(python, datetime):
        return {"stringValue": iso(python)}
    if field_type == "User":
        return {"userArnValue": str(python)}
    return {"stringValue": str(python)}


def check_value_type(field_id: str, field_type: str, value: JSON) -> None:
    found = member_of(value)
    if found is not None and found[0] not in _ACCEPTED_MEMBERS.get(field_type, frozenset(UNION_MEMBERS)):
        raise validation(f"Field {field_id} of type {field_type} does not accept {found[0]}")


# --- records -----------------------------------------------------------------------------------


@dataclass
class FieldDef:
    field_id: str
    name: str
    type: str
    namespace: str  # System | Custom
    description: str | None = None
    attributes: JSON | None = None

    def wire(self, domain_arn: str) -> JSON:
        out: JSON = {
            "fieldId": self.field_id,
            "fieldArn": f"{domain_arn}/field/{self.field_id}",
            "name": self.name,
            "type": self.type,
            "namespace": self.namespace,
        }
        if self.attributes:
            out["attributes"] = self.attributes
        return out


@dataclass
class Template:
    template_id: str
    name: str
    status: str = "Active"
    required_fields: list[str] = field(default_factory=list)
    description: str | None = None


@dataclass
class RelatedItem:
    related_item_id: str
    type: str
    content: JSON  # the input content union, e.g. {"comment": {...}}
    created: datetime
    performed_by: JSON | None = None
    target_time: datetime | None = None  # SLA only
    completion_time: datetime | None = None  # SLA only: when the field first reached a target value

    @property
    def sla_input(self) -> JSON:
        sla: JSON = self.content.get("sla", {}).get("slaInputConfiguration", {})
        return sla

    def sla_status(self, now: datetime) -> str:
        """Met/NotMet once fulfilled (before/after the target); else Overdue past the target, else Active."""
        assert self.target_time is not None
        if self.completion_time is not None:
            return "Met" if self.completion_time <= self.target_time else "NotMet"
        return "Overdue" if now > self.target_time else "Active"

    def read_content(self, now: datetime) -> JSON:
        """The content as the API (and an event with includeContent) returns it."""
        if self.type == "Sla":
            sla = self.sla_input
            config: JSON = {
                "name": sla.get("name"),
                "type": sla.get("type", "CaseField"),
                "status": self.sla_status(now),
            }
            if sla.get("fieldId") is not None:
                config["fieldId"] = sla["fieldId"]
            if sla.get("targetFieldValues") is not None:
                config["targetFieldValues"] = sla["targetFieldValues"]
            assert self.target_time is not None
            config["targetTime"] = iso(self.target_time)
            if self.completion_time is not None:
                config["completionTime"] = iso(self.completion_time)
            return {"sla": {"slaConfiguration": config}}
        if self.type == "Contact":
            contact = dict(self.content.get("contact", {}))
            contact.setdefault("channel", "VOICE")
            contact.setdefault("connectedToSystemTime", iso(self.created))
            return {"contact": contact}
        key = CONTENT_KEYS[self.type]
        return {key: json.loads(json.dumps(self.content.get(key, {})))}

    def wire(self, now: datetime) -> JSON:
        out: JSON = {
            "relatedItemId": self.related_item_id,
            "type": self.type,
            "associationTime": iso(self.created),
            "content": self.read_content(now),
            "tags": {},
        }
        if self.performed_by:
            out["performedBy"] = self.performed_by
        return out


@dataclass
class Case:
    case_id: str
    template_id: str
    created: datetime
    fields: dict[str, JSON] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    related: dict[str, RelatedItem] = field(default_factory=dict)

    def slas(self) -> list[RelatedItem]:
        return [item for item in self.related.values() if item.type == "Sla"]

    def snapshot(self) -> Case:
        """A copy that later changes to this case leave alone (what the search index holds). Field values
        and related-item contents are replaced, never changed in place: shallow copies suffice."""
        return Case(
            self.case_id,
            self.template_id,
            self.created,
            fields=dict(self.fields),
            tags=dict(self.tags),
            related={key: copy.copy(item) for key, item in self.related.items()},
        )

    def value(self, field_id: str) -> JSON | None:
        """The stored value, with `next_sla_breach_datetime` derived from the open SLAs."""
        if field_id == "next_sla_breach_datetime":
            pending = [s.target_time for s in self.slas() if s.completion_time is None and s.target_time]
            return {"stringValue": iso(min(pending))} if pending else None
        stored = self.fields.get(field_id)
        return stored if has_value(stored) else None

    def complete_slas(self, now: datetime) -> None:
        """Record when each open SLA's field first holds one of its target values."""
        for sla in self.slas():
            if sla.completion_time is not None:
                continue
            config = sla.sla_input
            current = self.value(str(config.get("fieldId", "")))
            if any(values_equal(current, target) for target in config.get("targetFieldValues", [])):
                sla.completion_time = now


@dataclass
class Domain:
    domain_id: str
    name: str
    created: datetime
    arn: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    event_config: JSON | None = None
    client_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for field_id, (name, kind) in SYSTEM_FIELDS.items():
            self.fields.setdefault(field_id, FieldDef(field_id, name, kind, "System"))

    def unknown_fields(self, field_ids: list[str]) -> list[str]:
        return [f for f in field_ids if f not in self.fields]

    def case_arn(self, case_id: str) -> str:
        return f"{self.arn}/case/{case_id}"


# --- pagination --------------------------------------------------------------------------------


def query_key(*parts: object) -> str:
    """A short digest of what a page token belongs to (the query without the token)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def page(items: list[T], size: int, token: str | None, key: str) -> tuple[list[T], str | None]:
    """One page of `items` and the token of the next (None on the last page)."""
    offset = 0
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset, token_key = int(decoded["o"]), decoded["k"]
        except (ValueError, KeyError, TypeError):
            raise validation("The nextToken is not valid") from None
        if token_key != key or offset < 0:
            raise validation("The nextToken does not belong to this request")
    chunk = items[offset : offset + size]
    following = offset + size
    if following >= len(items):
        return chunk, None
    return chunk, base64.urlsafe_b64encode(json.dumps({"o": following, "k": key}).encode()).decode()


def sla_target(created: datetime, minutes: int) -> datetime:
    return created + timedelta(minutes=minutes)


__all__ = [
    "CHANGED_ATTRIBUTES",
    "CONTENT_KEYS",
    "READ_ONLY_FIELDS",
    "SYSTEM_FIELDS",
    "Case",
    "Domain",
    "FieldDef",
    "RelatedItem",
    "Template",
    "check_value_type",
    "has_value",
    "iso",
    "member_of",
    "page",
    "query_key",
    "sla_target",
    "to_union",
    "values_equal",
]
