"""Search semantics: SearchCases' filters and sorts, the related-item filters, and the two domain-wide
searches (SearchCases, SearchAllRelatedItems) over what the search index holds (`_index.SearchIndex`).

Date-time fields (`created_datetime`, `last_updated_datetime`, `last_closed_datetime`, any field of type
DateTime). The emulator writes them as a `stringValue`, ISO-8601 UTC with milliseconds and `Z`, exactly
what GetCase and the events return (`_state.iso`). Search compares and sorts them as *instants*, never as
strings: a filter operand may be any ISO-8601 form (with or without a fraction, `Z` or an offset) or a
`doubleValue` of epoch milliseconds (AWS does not document the representation; CASES-EVENTS.md §2), and
`greaterThan` a watermark means later in time. An operand of another form is a ValidationException.
`contains` stays a substring test on the string. A case without a value for a sorted field comes last,
in both sort orders.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from casewatch_dev.emulator._protocol import JSON, validation
from casewatch_dev.emulator._state import (
    CONTENT_KEYS,
    Case,
    Domain,
    RelatedItem,
    member_of,
    page,
    query_key,
    values_equal,
)

Lookup = Callable[[str], JSON | None]
SEARCH_CASES_DEFAULT_PAGE: Final = 25  # the model: "When no value is provided, 25 is the default."
RELATED_ITEMS_DEFAULT_PAGE: Final = 25  # the model states no default: its largest page
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "greaterThan": operator.gt,
    "greaterThanOrEqualTo": operator.ge,
    "lessThan": operator.lt,
    "lessThanOrEqualTo": operator.le,
}
_OPERATORS: Final = ("equalTo", "contains", *_ORDER)


# --- values ------------------------------------------------------------------------------------------


def instant(value: JSON | None) -> int | None:
    """A date-time field value as epoch microseconds: an ISO-8601 `stringValue` (no offset: UTC) or a
    `doubleValue` of epoch milliseconds; None for no value or an unreadable one."""
    found = member_of(value)
    if found is None:
        return None
    kind, raw = found
    if kind == "doubleValue":
        return round(float(raw) * 1000)
    if kind != "stringValue":
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _comparable(value: JSON | None) -> Any:
    found = member_of(value)
    if found is None:
        return None
    kind, raw = found
    return float(raw) if kind == "doubleValue" else raw


def _sort_value(value: JSON | None, field_type: str | None) -> tuple[int, Any] | None:
    """What a sort orders by (None: no value, sorted last); numbers before text if a field mixes them."""
    if field_type == "DateTime":
        moment = instant(value)
        return None if moment is None else (0, moment)
    found = _comparable(value)
    if found is None:
        return None
    if isinstance(found, bool | float):
        return (0, float(found))
    return (1, str(found))


# --- filters -----------------------------------------------------------------------------------------


def _match_field(spec: JSON, lookup: Lookup, types: Mapping[str, str]) -> bool:
    """FieldFilter (a union): equalTo, contains, greaterThan(OrEqualTo), lessThan(OrEqualTo)."""
    name = next((k for k in _OPERATORS if spec.get(k) is not None), None)
    if name is None:
        return True
    operand: JSON = spec[name]
    field_id = str(operand.get("id", ""))
    actual, expected = lookup(field_id), operand.get("value")
    if member_of(expected) is None:  # an emptyValue operand: "has no value"
        return name == "equalTo" and member_of(actual) is None
    if name == "contains":
        left, right = _comparable(actual), _comparable(expected)
        return isinstance(left, str) and isinstance(right, str) and right in left
    if types.get(field_id) == "DateTime":
        wanted, found = instant(expected), instant(actual)
        if wanted is None or found is None:
            return False  # an unreadable operand is refused up front (`check_filter`)
        return found == wanted if name == "equalTo" else _ORDER[name](found, wanted)
    if name == "equalTo":
        return values_equal(actual, expected)
    left, right = _comparable(actual), _comparable(expected)
    if left is None or type(left) is not type(right):
        return False
    return _ORDER[name](left, right)


def match_case_filter(spec: JSON, lookup: Lookup, tags: Mapping[str, Any], types: Mapping[str, str]) -> bool:
    """CaseFilter / CustomFieldsFilter (unions): field, not, tag, andAll, orAll."""
    if spec.get("field") is not None:
        return _match_field(spec["field"], lookup, types)
    if spec.get("not") is not None:
        return not match_case_filter(spec["not"], lookup, tags, types)
    if spec.get("tag") is not None:
        equal: JSON = spec["tag"].get("equalTo") or {}
        key = equal.get("key")
        if key is None or key not in tags:
            return False
        return equal.get("value") is None or tags[key] == equal["value"]
    if spec.get("andAll") is not None:
        return all(match_case_filter(s, lookup, tags, types) for s in spec["andAll"])
    if spec.get("orAll") is not None:
        return any(match_case_filter(s, lookup, tags, types) for s in spec["orAll"])
    return True


def _operands(spec: JSON | None) -> Iterator[tuple[str, JSON]]:
    """Every (operator, FieldValue) of a CaseFilter / CustomFieldsFilter."""
    if not spec:
        return
    for name, operand in (spec.get("field") or {}).items():
        if isinstance(operand, dict):
            yield name, operand
    if spec.get("not") is not None:
        yield from _operands(spec["not"])
    for member in ("andAll", "orAll"):
        for nested in spec.get(member) or []:
            yield from _operands(nested)


def check_filter(domain: Domain, spec: JSON | None, *more_field_ids: str) -> None:
    """Refuse a filter (and other field ids of the request) naming a field the domain lacks, or comparing
    a date-time field with a value that is not one (ValidationException), before any case is read."""
    operands = list(_operands(spec))
    unknown = domain.unknown_fields(
        list(dict.fromkeys([*more_field_ids, *(str(o.get("id")) for _, o in operands)]))
    )
    if unknown:
        raise validation(f"Fields not found in the domain: {', '.join(unknown)}")
    for name, operand in operands:
        field_id = str(operand.get("id"))
        value = operand.get("value")
        if (
            domain.fields[field_id].type == "DateTime"
            and name != "contains"
            and member_of(value) is not None
            and instant(value) is None
        ):
            raise validation(
                f"The value for {field_id} must be an ISO-8601 date-time string or epoch milliseconds"
            )


def matches_related(item: RelatedItem, spec: JSON, as_of: datetime, types: Mapping[str, str]) -> bool:
    """RelatedItemTypeFilter: the item's type, and the type's own criteria (SLA status at `as_of`)."""
    kind = next((k for k in CONTENT_KEYS.values() if spec.get(k) is not None), None)
    if kind is None or CONTENT_KEYS.get(item.type) != kind:
        return False
    body: JSON = spec[kind]
    content = item.read_content(as_of)[kind]
    if kind == "sla":
        config = content["slaConfiguration"]
        return all(body.get(k) in (None, config.get(k)) for k in ("name", "status"))
    if kind == "contact":
        channels = body.get("channel") or []
        arn_ok = body.get("contactArn") in (None, content.get("contactArn"))
        return arn_ok and (not channels or content.get("channel") in channels)
    if kind in {"file", "connectCase"}:
        member = "fileArn" if kind == "file" else "caseId"
        return body.get(member) in (None, content.get(member))
    if kind == "custom" and body.get("fields"):
        values = {f["id"]: f["value"] for f in content.get("fields", [])}
        return match_case_filter(body["fields"], values.get, {}, types)
    return True


def field_types(domain: Domain) -> dict[str, str]:
    return {field_id: definition.type for field_id, definition in domain.fields.items()}


# --- the domain-wide searches ------------------------------------------------------------------------


def search_cases(
    domain: Domain, indexed: Iterable[Case], p: JSON, render: Callable[[Case, list[str]], list[JSON]]
) -> JSON:
    """SearchCases over the indexed cases: filter, searchTerm, sorts (first one first), a page of
    `maxResults` (default 25) with `fields` rendered by `render`, and `totalCount`."""
    wanted = [str(f["id"]) for f in p.get("fields") or []]
    sorts: list[JSON] = p.get("sorts") or []
    spec: JSON | None = p.get("filter")
    check_filter(domain, spec, *wanted, *(str(s["fieldId"]) for s in sorts))
    types = field_types(domain)
    term = str(p.get("searchTerm") or "").lower()
    matched = [
        case
        for case in indexed
        if (spec is None or match_case_filter(spec, case.value, case.tags, types))
        and (not term or any(term in str(v.get("stringValue", "")).lower() for v in case.fields.values()))
    ]
    for sort in reversed(sorts):  # stable sorts, the last key first: the first sort takes precedence
        field_id = str(sort["fieldId"])
        keyed = [(case, _sort_value(case.value(field_id), types.get(field_id))) for case in matched]
        present = [(case, key) for case, key in keyed if key is not None]
        present.sort(key=lambda pair: pair[1], reverse=sort["sortOrder"] == "Desc")
        matched = [case for case, _ in present] + [case for case, key in keyed if key is None]
    key = query_key("SearchCases", domain.domain_id, {k: v for k, v in p.items() if k != "nextToken"})
    chunk, token = page(matched, p.get("maxResults") or SEARCH_CASES_DEFAULT_PAGE, p.get("nextToken"), key)
    return {
        "cases": [
            {
                "caseId": c.case_id,
                "templateId": c.template_id,
                "fields": render(c, wanted),
                "tags": dict(c.tags),
            }
            for c in chunk
        ],
        "nextToken": token,
        "totalCount": len(matched),
    }


def search_all_related_items(domain: Domain, indexed: Iterable[Case], p: JSON, as_of: datetime) -> JSON:
    """SearchAllRelatedItems over the indexed cases: filters OR-ed, sorts by AssociationTime or CaseId
    (first one first), a page of `maxResults` (default 25); SLA statuses as of `as_of`."""
    filters: list[JSON] = p.get("filters") or []
    for spec in filters:
        check_filter(domain, (spec.get("custom") or {}).get("fields"))
    types = field_types(domain)
    found = [
        (case, item)
        for case in indexed
        for item in case.related.values()
        if not filters or any(matches_related(item, f, as_of, types) for f in filters)
    ]
    for sort in reversed(p.get("sorts") or []):
        descending = sort["sortOrder"] == "Desc"
        if sort["sortProperty"] == "AssociationTime":
            found.sort(key=lambda pair: pair[1].created, reverse=descending)
        else:
            found.sort(key=lambda pair: pair[0].case_id, reverse=descending)
    key = query_key(
        "SearchAllRelatedItems", domain.domain_id, {k: v for k, v in p.items() if k != "nextToken"}
    )
    chunk, token = page(found, p.get("maxResults") or RELATED_ITEMS_DEFAULT_PAGE, p.get("nextToken"), key)
    return {
        "relatedItems": [{**item.wire(as_of), "caseId": case.case_id} for case, item in chunk],
        "nextToken": token,
    }


__all__ = [
    "RELATED_ITEMS_DEFAULT_PAGE",
    "SEARCH_CASES_DEFAULT_PAGE",
    "check_filter",
    "field_types",
    "instant",
    "match_case_filter",
    "matches_related",
    "search_all_related_items",
    "search_cases",
]
