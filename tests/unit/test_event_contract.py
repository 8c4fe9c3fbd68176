from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casewatch.errors import InvalidCaseEventError
from casewatch.models.events import (
    CaseCreatedDetail,
    CaseDeletedDetail,
    CaseUpdatedDetail,
    RelatedItemCreatedDetail,
    UnhandledDetail,
    parse_case_event,
)
from casewatch.models.related_items import RelatedItemType
from tests.builders import EVENTS, INVALID_FILES, SAMPLE_FILES, load_event

DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
CASE1 = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CASE2 = "c9e8d7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f"
PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"

EXPECTED_KIND = {
    "case-created": CaseCreatedDetail,
    "case-updated": CaseUpdatedDetail,
    "case-updated-replayed": CaseUpdatedDetail,
    "case-updated-metadata-only": CaseUpdatedDetail,
    "case-deleted": CaseDeletedDetail,
    "related-item-comment": RelatedItemCreatedDetail,
    "related-item-contact": RelatedItemCreatedDetail,
    "related-item-file": RelatedItemCreatedDetail,
    "related-item-sla": RelatedItemCreatedDetail,
    "related-item-updated-unhandled": UnhandledDetail,
}

# One file per way to be wrong, and the reason each must give (location and message).
EXPECTED_REASON = {
    "bad-change-time": "detail.approximateChangeTime: Input should be a valid datetime",
    "case-id-mismatch": "resources: case ARN does not match the caseId in detail",
    "case-missing": "detail.case: Field required",
    "content-mismatch": "detail.relatedItem: at most one content object",
    "missing-event-type": "detail: eventType is missing or not a string",
    "no-domain-arn": "resources: no Cases domain ARN",
    "no-union-member": "detail.case.fields.status.value: exactly one of stringValue",
    "not-an-object": "an event must be a JSON object, got list",
    "not-json": "not valid JSON",
    "string-too-long": "detail.case.fields.title.value.stringValue: String should have at most 4100",
    "two-performers": "detail.performedBy.user: exactly one of userArn, customEntity",
    "two-union-members": "found 2",
    "unknown-related-item-type": "detail.relatedItem.relatedItemType: unknown relatedItemType",
    "wrong-detail-type": "detail-type: Input should be 'Amazon Connect Cases Change'",
    "wrong-source": "source: Input should be 'aws.cases'",  # only Cases publishes Cases events
}


def test_the_corpus_is_complete() -> None:
    assert {p.stem for p in SAMPLE_FILES} == set(EXPECTED_KIND)
    assert {p.stem for p in INVALID_FILES} == set(EXPECTED_REASON)
    assert (EVENTS / "README.md").is_file()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_every_sample_parses_to_its_kind(path: Path) -> None:
    event = parse_case_event(path.read_bytes())
    assert isinstance(event.detail, EXPECTED_KIND[path.stem])
    assert event.domain_id == DOMAIN
    assert event.case_id in {CASE1, CASE2}
    assert event.change_time.tzinfo is not None


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_every_invalid_sample_fails_with_its_reason(path: Path) -> None:
    with pytest.raises(InvalidCaseEventError) as caught:
        parse_case_event(path.read_bytes())
    assert EXPECTED_REASON[path.stem] in caught.value.reason


def test_reasons_never_echo_field_values() -> None:
    for name, secret in [("string-too-long", "xxxx"), ("two-union-members", "open")]:
        with pytest.raises(InvalidCaseEventError) as caught:
            parse_case_event((EVENTS / "invalid" / f"{name}.json").read_bytes())
        assert secret not in caught.value.reason
        assert secret not in repr(caught.value.problems)


def test_case_created_accessors() -> None:
    event = parse_case_event(load_event("case-created"))
    assert event.event_type == "CASE.CREATED"
    assert event.case_arn == f"arn:aws:cases:us-east-1:123456789012:domain/{DOMAIN}/case/{CASE1}"
    assert event.template_id == "4d2c9e8f-1a3b-4c5d-8e7f-6a5b4c3d2e1f"
    assert event.field_values()["status"] == "open"
    assert event.field_values()[PRIORITY] == "high"
    assert event.performed_by is not None and "/agent/" in event.performed_by
    assert event.change_time == datetime(2026, 11, 23, 9, 0, 0, 412000, tzinfo=UTC)
    assert not event.is_replay


def test_update_changed_fields_and_empty_values() -> None:
    event = parse_case_event(load_event("case-updated"))
    changed = event.changed_fields()
    assert changed["status"] == "pending-customer"
    assert changed["assigned_user"].endswith("7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d")  # userArnValue
    assert event.fields["case_reason"].is_empty
    assert event.field_values()["case_reason"] is None


@pytest.mark.parametrize("fields", [None, {}, "absent"])
def test_metadata_only_events_have_no_fields(fields: object) -> None:
    raw = load_event("case-updated-metadata-only")
    if fields != "absent":
        raw["detail"]["case"]["fields"] = fields
    event = parse_case_event(raw)
    assert event.fields == {}
    assert event.changed_fields() == {"status": None, "last_updated_datetime": None}
    assert event.performed_by == "Acme self-service portal"  # customEntity


def test_replayed_event() -> None:
    event = parse_case_event(load_event("case-updated-replayed"))
    assert event.is_replay and event.replay_name == "casewatch-replay-2026-11-24"


def test_deleted_event_with_no_body_takes_the_case_from_resources() -> None:
    raw = load_event("case-deleted")
    del raw["detail"]["case"]
    event = parse_case_event(raw)
    assert isinstance(event.detail, CaseDeletedDetail)
    assert event.case_id == CASE2


@pytest.mark.parametrize(
    ("name", "kind", "key"),
    [
        ("related-item-comment", RelatedItemType.COMMENT, "comment"),
        ("related-item-contact", RelatedItemType.CONTACT, "contact"),
        ("related-item-file", RelatedItemType.FILE, "file"),
        ("related-item-sla", RelatedItemType.SLA, "sla"),
    ],
)
def test_related_items(name: str, kind: RelatedItemType, key: str) -> None:
    event = parse_case_event(load_event(name))
    item = event.related_item
    assert item is not None and item.related_item_type is kind and item.has_content
    assert event.related_item_id == item.related_item_id
    # Without includeContent the same event carries no content object.
    raw = load_event(name)
    del raw["detail"]["relatedItem"][key]
    bare = parse_case_event(raw).related_item
    assert bare is not None and not bare.has_content


def test_sla_content() -> None:
    item = parse_case_event(load_event("related-item-sla")).related_item
    assert item is not None and item.sla is not None
    config = item.sla.sla_configuration
    assert (config.name, config.field_id, config.status) == ("First response", "status", "Active")
    assert [v.python for v in config.target_field_values] == ["pending-customer"]
    assert config.target_time == datetime(2026, 11, 23, 9, 30, 1, 650000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "content"),
    [
        ("connectCase", {"caseId": CASE2}),
        ("custom", {"fields": [{"id": "note", "value": {"stringValue": "x"}}]}),
    ],
)
def test_connect_case_and_custom_content(key: str, content: dict[str, object]) -> None:
    raw = load_event("related-item-comment")
    item = raw["detail"]["relatedItem"]
    del item["comment"]
    item["relatedItemType"] = key[0].upper() + key[1:]
    item[key] = content
    parsed = parse_case_event(raw).related_item
    assert parsed is not None and parsed.has_content


@pytest.mark.parametrize("spelling", ["COMMENT", "comment", "Comment"])
def test_related_item_type_is_case_insensitive(spelling: str) -> None:
    raw = load_event("related-item-comment")
    raw["detail"]["relatedItem"]["relatedItemType"] = spelling
    item = parse_case_event(raw).related_item
    assert item is not None and item.related_item_type is RelatedItemType.COMMENT


def test_unknown_event_type_is_unhandled_not_invalid() -> None:
    event = parse_case_event(load_event("related-item-updated-unhandled"))
    assert not event.handled
    assert event.case_id == CASE1  # from resources


def test_missing_account_is_taken_from_the_domain_arn() -> None:
    raw = load_event("case-created")
    del raw["account"]
    assert parse_case_event(raw).account == "123456789012"


def test_bytes_str_and_dict_inputs_agree() -> None:
    raw = load_event("case-created")
    text = json.dumps(raw)
    assert parse_case_event(raw) == parse_case_event(text) == parse_case_event(text.encode())


def test_field_value_numbers_and_booleans() -> None:
    raw = load_event("case-created")
    fields = raw["detail"]["case"]["fields"]
    fields["score"] = {"value": {"doubleValue": 3}}
    fields["vip"] = {"value": {"booleanValue": False}}
    values = parse_case_event(raw).field_values()
    assert values["score"] == 3.0 and isinstance(values["score"], float)
    assert values["vip"] is False
    bad = copy.deepcopy(raw)
    bad["detail"]["case"]["fields"]["vip"] = {"value": {"booleanValue": "yes"}}
    with pytest.raises(InvalidCaseEventError, match=r"fields\.vip\.value\.booleanValue"):
        parse_case_event(bad)
