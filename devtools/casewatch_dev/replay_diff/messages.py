"""What the stack's subscribers received, read into `observed.Message`s: notifications, enriched bus
events, dead letters.

**Identity.** A notification is (source, rule): the source event's id, or for an SLA signal its (case,
SLA, kind) — not its target, so a target that moves shows as a *changed* notification, not as a
removed and an added one. An enriched event is (source, detail-type), a dead letter (function, event
id or the archive line). Repeats of a key are numbered (`#2`) in time order.

**Case data.** What a subscriber receives carries case field values: the subject and text, the case's
field values, related-item content, the `status` and `priority` attributes. Only the paths of the
`*_SAFE` lists (ids, times, rules, provenance) are kept in the clear; the rest is *withheld*: kept in
memory for the comparison and written only as a digest, unless the run's settings have
`log_case_data: true`. Subjects are kept with the case's values replaced by the field's name
(`Case status changed to <status>: "<title>" (#<reference_number>)`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Final

from casewatch_dev.replay_diff.observed import Json, Message, normal_time

Path = tuple[str, ...]

# Paths kept in the clear (`*` one segment, `**` anything below). Everything else is case data.
_CASE_SAFE: Final = (
    "case.domainId",
    "case.caseId",
    "case.templateId",
    "case.asOf",
    "case.version",
    "case.deleted",
    "case.missing.**",
    "case.flags.**",
    "case.redactedFieldIds.**",
    "case.fieldNames.**",
    "case.fieldIds.**",
    "case.truncated",
    "case.fields.*.source",
    "case.fields.*.asOf",
    "relatedItem.type",
    "relatedItem.id",
    "relatedItem.caseId",
    "relatedItem.createdDateTime",
    "event.**",  # the source event's identity: ids, types, times, changed field ids (no values)
    "signal.**",
    "version",
    "id",
    "asOf",
)
NOTIFICATION_SAFE: Final = (
    *_CASE_SAFE,
    "notificationId",
    "rule.**",
    *(
        f"attributes.{name}"
        for name in (
            "notificationId",
            "rule",
            "eventType",
            "caseId",
            "domainId",
            "templateId",
            "replay",
            "relatedItemType",
            "slaName",
        )
    ),
)
BUS_SAFE: Final = (
    "detail-type",
    "source",
    "time",
    "resources.**",
    "account",
    "region",
    "version",
    *(f"detail.{path}" for path in _CASE_SAFE),
)
DEAD_LETTER_SAFE: Final = (
    "reason",
    "function",
    "eventId",
    "event.id",
    "event.origin",
    "event.time",
    "event.detail-type",
    "event.detail.eventType",
    "requestContext.**",
    "responseContext.**",
    "requestPayload.id",
    "requestPayload.time",
    "requestPayload.detail-type",
    "requestPayload.detail.eventType",
)
# Never compared: differs from run to run by construction (the bus envelope's random id).
BUS_IGNORED: Final = ("id",)


def _segments(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("."))


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    for n, part in enumerate(pattern):
        if part == "**":
            return True
        if n >= len(path) or (part != "*" and part != path[n]):
            return False
    return len(pattern) == len(path)


def flatten(value: Json, prefix: Path = ()) -> dict[Path, Json]:
    """Values by path: objects by key, lists of objects by index; a list of scalars (ids, ARNs) and an
    empty object are values of their own."""
    if isinstance(value, dict) and value:
        out: dict[Path, Json] = {}
        for k, v in value.items():
            out.update(flatten(v, (*prefix, str(k))))
        return out
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        out = {}
        for n, v in enumerate(value):
            out.update(flatten(v, (*prefix, str(n))))
        return out
    return {prefix: value}


_IGNORED: Final = "ignored"
_SAFE: Final = "safe"
_WITHHELD: Final = "withheld"


@lru_cache(maxsize=4096)
def _kind_of(path: Path, safe: tuple[str, ...], ignored: tuple[str, ...]) -> tuple[str, str]:
    """(ignored | safe | withheld, the dotted path): the same few hundred paths recur in every message."""
    if any(_matches(_segments(p), path) for p in ignored):
        return _IGNORED, ""
    kind = _SAFE if any(_matches(_segments(p), path) for p in safe) else _WITHHELD
    return kind, ".".join(path)


def partition(
    content: Json, safe: tuple[str, ...], ignored: tuple[str, ...] = ()
) -> tuple[dict[str, Json], dict[str, Json]]:
    """(safe, withheld), each as dotted path -> value."""
    parts: dict[str, dict[str, Json]] = {_SAFE: {}, _WITHHELD: {}}
    for path, value in flatten(content).items():
        kind, dotted = _kind_of(path, safe, ignored)
        if kind != _IGNORED:
            parts[kind][dotted] = value
    return parts[_SAFE], parts[_WITHHELD]


def digest(values: Mapping[str, Json]) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _fold(text: str) -> str:
    """As SNS subjects are folded: ASCII, one line, single spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]+", " ", folded)).strip()


def _plain(value: Json) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return None


_TRUNCATED_MIN: Final = 6  # a value shortened in a subject keeps at least this much before "..."


def mask(text: str, values: Mapping[str, Json]) -> str:
    """`text` with each value (or a shortened form of it: `Refund not rec...`) replaced by `<name>`."""
    found = [(name, _fold(p)) for name, v in values.items() if (p := _plain(v)) is not None]
    for name, value in sorted(found, key=lambda nv: -len(nv[1])):
        if not value or value == "[redacted]" or value[:_TRUNCATED_MIN] not in text:
            continue
        whole = rf"(?<![\w-]){re.escape(value)}(?![\w-])"
        text, n = re.subn(whole, f"<{name}>", text)
        if n or "..." not in text:
            continue
        for length in range(len(value) - 1, _TRUNCATED_MIN - 1, -1):
            shortened = rf"(?<![\w-]){re.escape(value[:length].rstrip())}\.\.\."
            text, n = re.subn(shortened, f"<{name}>...", text)
            if n:
                break
    return text


def _json_body(message: Mapping[str, Json]) -> dict[str, Json]:
    try:
        body = json.loads(message.get("Body") or "{}")
    except ValueError:
        return {"unparsed": message.get("Body")}
    return body if isinstance(body, dict) else {"unparsed": body}


def _named_fields(case: Mapping[str, Json]) -> dict[str, Json]:
    """The case document with its fields under their friendly names (`fieldNames`)."""
    names = case.get("fieldNames") or {}
    fields = case.get("fields") or {}
    return {**case, "fields": {names.get(fid, fid): v for fid, v in fields.items()}}


def _case_values(case: Mapping[str, Json]) -> dict[str, Json]:
    return {name: f.get("value") for name, f in (case.get("fields") or {}).items() if isinstance(f, dict)}


def _signal_source(signal: Mapping[str, Json], case_id: str | None) -> tuple[str, str]:
    """(key part, words) of an SLA signal: its case, SLA and kind (not its target)."""
    sla = f"{signal.get('origin')}:{signal.get('slaName')}"
    return f"sla|{case_id}|{sla}|{signal.get('kind')}", f"{signal.get('kind')} {signal.get('slaName')}"


def notification(message: Mapping[str, Json]) -> Message:
    """A message of the topic's (raw delivery) subscriber: attributes and the JSON document."""
    attributes = {k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()}
    body = _json_body(message)
    case = _named_fields(body.get("case") or {})
    rule = attributes.get("rule") or (body.get("rule") or {}).get("name") or "?"
    case_id = attributes.get("caseId") or case.get("caseId")
    signal, event = body.get("signal"), body.get("event")
    if isinstance(signal, dict):
        part, source = _signal_source(signal, case_id)
        at = normal_time(signal.get("at"))
    elif isinstance(event, dict):
        part, source = f"event|{event.get('id')}", f"event {event.get('id')}"
        at = normal_time(event.get("approximateChangeTime") or event.get("time"))
    else:
        part, source, at = f"id|{attributes.get('notificationId')}", "notification", None
    safe, withheld = partition({**body, "case": case, "attributes": attributes}, NOTIFICATION_SAFE)
    subject = str(body.get("subject", ""))
    return Message(
        key=f"{part}|{rule}",
        source=source,
        label=rule,
        case_id=case_id,
        at=at,
        safe=safe,
        digest=digest(withheld),
        subject=mask(subject, _case_values(case)),
        withheld=withheld,
    )


def bus_event(message: Mapping[str, Json]) -> Message:
    """An event of the enriched bus, as the bus's subscriber queue received it."""
    body = _json_body(message)
    detail = body.get("detail") or {}
    case = _named_fields(detail.get("case") or {})
    detail_type = str(body.get("detail-type", "?"))
    case_id = case.get("caseId")
    signal, event = detail.get("signal"), detail.get("event")
    if isinstance(signal, dict):
        part, source = _signal_source(signal, case_id)
        at = normal_time(signal.get("at"))
    elif isinstance(event, dict):
        part, source = f"event|{event.get('id')}", f"event {event.get('id')}"
        at = normal_time(event.get("approximateChangeTime") or body.get("time"))
    else:
        part, source, at = f"detail|{detail.get('id')}", "enriched event", normal_time(body.get("time"))
    safe, withheld = partition({**body, "detail": {**detail, "case": case}}, BUS_SAFE, BUS_IGNORED)
    return Message(
        key=f"{part}|{detail_type}",
        source=source,
        label=detail_type,
        case_id=case_id,
        at=at,
        safe=safe,
        digest=digest(withheld),
        withheld=withheld,
    )


def dead_letter(message: Mapping[str, Json]) -> Message:
    """A message of the invalid-events queue (parked with its reason) or of the failure destination."""
    body = _json_body(message)
    parked: dict[str, Json] = body["event"] if isinstance(body.get("event"), dict) else {}
    payload: dict[str, Json] = body["requestPayload"] if isinstance(body.get("requestPayload"), dict) else {}
    function = str(
        body.get("function") or ("failure-destination" if payload or "requestContext" in body else "?")
    )
    safe, withheld = partition(body, DEAD_LETTER_SAFE)
    event_id = body.get("eventId") or parked.get("id") or payload.get("id")
    source = f"event {event_id}" if event_id else str(parked.get("origin") or f"content {digest(withheld)}")
    return Message(
        key=f"{function}|{event_id or parked.get('origin') or digest(withheld)}",
        source=source,
        label=function,
        case_id=None,
        at=normal_time(parked.get("time") or payload.get("time")),
        safe=safe,
        digest=digest(withheld),
        withheld=withheld,
    )


def numbered(messages: Iterable[Message]) -> list[Message]:
    """Sorted by key, repeats of a key numbered in time order (`key#2`, ...)."""
    groups: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        groups[message.key].append(message)
    out: list[Message] = []
    for key, group in groups.items():
        group.sort(key=lambda m: (m.at or "", m.digest))
        out += [m if n == 1 else replace(m, key=f"{key}#{n}") for n, m in enumerate(group, start=1)]
    return sorted(out, key=lambda m: m.key)


__all__ = [
    "BUS_SAFE",
    "DEAD_LETTER_SAFE",
    "NOTIFICATION_SAFE",
    "bus_event",
    "dead_letter",
    "digest",
    "flatten",
    "mask",
    "notification",
    "numbered",
    "partition",
]
