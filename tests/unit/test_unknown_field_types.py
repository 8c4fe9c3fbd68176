"""A field type newer than casewatch (issue 12, defect 8): a `FieldValueUnion` member the model does not
know is kept opaque, the event stays valid and is processed (through the case-changed handler over the
World harness: its enriched view, its notification and bus event, its SLAs), the value is counted and logged by field
id and member name only. Two members, or none, are still invalid (`events/invalid/`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from casewatch.domain.values import same_value
from casewatch.errors import InvalidCaseEventError
from casewatch.models.events import parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.observability import UNKNOWN_FIELD_TYPES
from casewatch.topology import CASE_CHANGED
from tests.apps import World
from tests.builders import EVENTS, load_event, repo_settings

DATE_FIELD = "0d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # custom fields of a type Cases added later
TAGS_FIELD = "1e2d3c4b-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
SECRET = "2026-11-23T08:59:59.123Z-customer-4711"  # a value that must not reach the logs
NEWER = {DATE_FIELD: {"dateValue": SECRET}, TAGS_FIELD: {"tagListValue": ["vip", SECRET]}}


def created_with_newer_field_types() -> dict[str, Any]:
    raw = copy.deepcopy(load_event("case-created"))
    for field_id, value in NEWER.items():
        raw["detail"]["case"]["fields"][field_id] = {"value": value}
    return raw


# -- the model ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", list(NEWER.values()), ids=["dateValue", "tagListValue"])
def test_an_unknown_member_is_kept_opaque_and_round_trips(wire: dict[str, Any]) -> None:
    value = FieldValue.model_validate(wire)
    assert value.opaque_member == next(iter(wire))
    assert value.to_wire() == wire
    assert FieldValue.model_validate(value.to_wire()) == value
    assert (value.python, value.is_empty, value.as_datetime()) == (None, False, None)


@pytest.mark.parametrize("other", ["2026-11-23T08:59:59.123Z", SECRET, "", 0.0, True, False, None])
def test_an_opaque_value_compares_equal_to_nothing(other: str | float | bool | None) -> None:
    value = FieldValue.model_validate(NEWER[DATE_FIELD])
    assert value != FieldValue.of(other)
    assert not same_value(value.python, other)


def test_a_known_value_is_not_opaque() -> None:
    assert FieldValue.model_validate({"stringValue": "open"}).opaque_member is None


@pytest.mark.parametrize(
    "wire",
    [
        {"stringValue": "open", "dateValue": "2026-11-23"},  # one known member and one unknown: two
        {"dateValue": "2026-11-23", "tagListValue": []},  # two unknown
        {},  # none
    ],
    ids=["known-and-unknown", "two-unknown", "none"],
)
def test_exactly_one_member_still_holds_with_unknown_members(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=f"found {len(wire)}"):
        FieldValue.model_validate(wire)


@pytest.mark.parametrize(("stem", "found"), [("two-union-members", 2), ("no-union-member", 0)])
def test_two_known_members_or_none_stay_invalid_events(stem: str, found: int) -> None:
    with pytest.raises(InvalidCaseEventError) as caught:
        parse_case_event((EVENTS / "invalid" / f"{stem}.json").read_bytes())
    assert f"found {found}" in caught.value.reason


# -- the event path ----------------------------------------------------------------------------------------


def test_an_event_with_unknown_field_types_is_valid_processed_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = created_with_newer_field_types()
    event = parse_case_event(raw)
    assert {fid: event.fields[fid].to_wire() for fid in NEWER} == NEWER
    assert {fid: event.fields[fid].opaque_member for fid in NEWER} == {
        DATE_FIELD: "dateValue",
        TAGS_FIELD: "tagListValue",
    }
    world = World(repo_settings())
    caplog.set_level("DEBUG")
    result = world.deliver(raw, CASE_CHANGED.name)
    assert result["outcome"] == "handled"
    [view] = world.views()  # the enriched view the event's messages and bus event are built from
    assert view.fields[DATE_FIELD].value.to_wire() == NEWER[DATE_FIELD]
    assert view.fields[TAGS_FIELD].value.to_wire() == NEWER[TAGS_FIELD]
    assert [n["rule"] for n in world.notifications()] == ["high-priority-created"]  # rules still run
    assert len(world.bus_events()) == 1
    assert {key for _, key in world.states()} == {"policy#first-response-high", "policy#resolve-within-8h"}
    assert (world.counts[UNKNOWN_FIELD_TYPES], world.counts["EventsHandled"]) == (2, 1)
    [warning] = [r for r in caplog.records if r.getMessage() == "field values of an unknown type kept opaque"]
    assert warning.__dict__["members"] == {DATE_FIELD: "dateValue", TAGS_FIELD: "tagListValue"}
    logged = "\n".join(f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records)
    assert SECRET not in logged


def test_an_event_without_unknown_field_types_counts_none() -> None:
    world = World(repo_settings())
    assert world.deliver(load_event("case-created"), CASE_CHANGED.name)["outcome"] == "handled"
    assert world.counts[UNKNOWN_FIELD_TYPES] == 0
    assert world.counts["EventsHandled"] == 1
