"""Notification rules and message building (pure): table-driven over the sample events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casewatch.domain.notifications.bus import (
    CASE_DELETED_DETAIL,
    CASE_ENRICHED,
    RELATED_ITEM_ENRICHED,
    SLA_DETAIL_TYPES,
    case_bus_event,
    sla_bus_event,
)
from casewatch.domain.notifications.documents import REDACTED, notification_id, without_field_values
from casewatch.domain.notifications.render import ascii_subject
from casewatch.domain.notifications.rules import evaluate_case_event, evaluate_sla_signal
from casewatch.domain.notifications.view import case_view
from casewatch.domain.values import same_value
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.settings import Settings, load_cdk_context
from tests.builders import ROOT, SAMPLE_FILES, load_event

DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
CASE_1 = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CASE_2 = "c9e8d7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f"
PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def settings_with(*rules: dict[str, Any], **extra: Any) -> Settings:
    return Settings.from_mapping(
        {
            "domain_id": DOMAIN,
            "field_names": {"priority": PRIORITY},
            "notification_rules": list(rules),
            **extra,
        }
    )


def event(name: str, *, fields: dict[str, Any] | None = None, changed: list[str] | None = None) -> CaseEvent:
    """A sample event, optionally with some field values (plain values) and changedFieldIds replaced."""
    raw = copy.deepcopy(load_event(name))
    case = raw["detail"].get("case")
    if fields is not None:
        assert case is not None
        case.setdefault("fields", {})
        for fid, value in fields.items():
            case["fields"][fid] = {"value": FieldValue.of(value).to_wire()}
    if changed is not None:
        raw["detail"]["changedFieldIds"] = changed
    return parse_case_event(raw)


def enriched(case_id: str, values: dict[str, Any], *, version: datetime = T0) -> EnrichedCase:
    return EnrichedCase(
        domain_id=DOMAIN,
        case_id=case_id,
        template_id="4d2c9e8f-1a3b-4c5d-8e7f-6a5b4c3d2e1f",
        version=version,
        fields={
            fid: EnrichedField(value=FieldValue.of(v), source=Provenance.SNAPSHOT, as_of=version)
            for fid, v in values.items()
        },
    )


CASE_1_HIGH = enriched(CASE_1, {"status": "open", PRIORITY: "high", "title": "Refund not received"})
CASE_2_LOW = enriched(CASE_2, {"status": "closed", PRIORITY: "low"})


# --- the table ---------------------------------------------------------------------------------

RULE_TABLE: list[tuple[str, dict[str, Any], CaseEvent, EnrichedCase | None, bool]] = [
    # case_created
    ("created fires on CASE.CREATED", {"on": "case_created"}, event("case-created"), None, True),
    ("created ignores CASE.UPDATED", {"on": "case_created"}, event("case-updated"), None, False),
    (
        "created match by field name",
        {"on": "case_created", "match": {"priority": ["high"]}},
        event("case-created"),
        None,
        True,
    ),
    (
        "created match by field id",
        {"on": "case_created", "match": {PRIORITY: ["high", "urgent"]}},
        event("case-created"),
        None,
        True,
    ),
    (
        "created match fails",
        {"on": "case_created", "match": {"priority": ["low"]}},
        event("case-created"),
        None,
        False,
    ),
    (
        "match on a field the case lacks fails",
        {"on": "case_created", "match": {"case_reason": ["billing"]}},
        event("case-created"),
        None,
        False,
    ),
    # case_updated
    ("updated fires on CASE.UPDATED", {"on": "case_updated"}, event("case-updated"), None, True),
    (
        "updated fires on metadata-only",
        {"on": "case_updated"},
        event("case-updated-metadata-only"),
        None,
        True,
    ),
    ("updated ignores CASE.CREATED", {"on": "case_updated"}, event("case-created"), None, False),
    (
        "updated with fields: one changed",
        {"on": "case_updated", "fields": ["assigned_user"]},
        event("case-updated"),
        None,
        True,
    ),
    (
        "updated with fields: none changed",
        {"on": "case_updated", "fields": ["title"]},
        event("case-updated"),
        None,
        False,
    ),
    # field_changed
    (
        "field changed",
        {"on": "field_changed", "fields": ["status"]},
        event("case-updated"),
        None,
        True,
    ),
    (
        "field changed on creation",
        {"on": "field_changed", "fields": ["status"]},
        event("case-created"),
        None,
        True,
    ),
    (
        "field not changed",
        {"on": "field_changed", "fields": ["title"]},
        event("case-updated"),
        None,
        False,
    ),
    (
        "to_values not reached",
        {"on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
        event("case-updated"),
        None,
        False,
    ),
    (
        "to_values reached (event value)",
        {"on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
        event("case-updated", fields={"status": "closed"}),
        None,
        True,
    ),
    (
        "to_values from the enriched case when the event lacks the value",
        {"on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
        event("case-updated-metadata-only"),
        CASE_2_LOW,
        True,
    ),
    (
        "the event's value wins over the enriched case's",
        {"on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
        event("case-updated", fields={"status": "open"}),
        enriched(CASE_1, {"status": "closed"}),
        False,
    ),
    (
        "to_values unknown (metadata only, no enrichment)",
        {"on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
        event("case-updated-metadata-only"),
        None,
        False,
    ),
    (
        "field by friendly name",
        {"on": "field_changed", "fields": ["priority"], "to_values": ["high"]},
        event("case-created"),
        None,
        True,
    ),
    (
        "one of several watched fields",
        {"on": "field_changed", "fields": ["title", "assigned_user"]},
        event("case-updated"),
        None,
        True,
    ),
    (
        "to_values compare by type: '1' is not 1",
        {"on": "field_changed", "fields": ["status"], "to_values": [1]},
        event("case-updated", fields={"status": "1"}),
        None,
        False,
    ),
    (
        "to_values numbers compare as numbers",
        {"on": "field_changed", "fields": ["status"], "to_values": [1]},
        event("case-updated", fields={"status": 1.0}),
        None,
        True,
    ),
    (
        "field_changed + match on the enriched case",
        {
            "on": "field_changed",
            "fields": ["status"],
            "to_values": ["closed"],
            "match": {"priority": ["high"]},
        },
        event("case-updated-metadata-only"),
        CASE_2_LOW,
        False,
    ),
    # case_deleted
    ("deleted fires on CASE.DELETED", {"on": "case_deleted"}, event("case-deleted"), None, True),
    ("deleted ignores updates", {"on": "case_deleted"}, event("case-updated"), None, False),
    (
        "deleted with match on the last known case",
        {"on": "case_deleted", "match": {"priority": ["low"]}},
        event("case-deleted"),
        CASE_2_LOW,
        True,
    ),
    # related items
    ("comment added", {"on": "comment_added"}, event("related-item-comment"), None, True),
    ("comment rule ignores contacts", {"on": "comment_added"}, event("related-item-contact"), None, False),
    ("contact linked", {"on": "contact_linked"}, event("related-item-contact"), None, True),
    ("file attached", {"on": "file_attached"}, event("related-item-file"), None, True),
    ("file rule ignores comments", {"on": "file_attached"}, event("related-item-comment"), None, False),
    ("any related item: SLA", {"on": "related_item_added"}, event("related-item-sla"), None, True),
    ("any related item: comment", {"on": "related_item_added"}, event("related-item-comment"), None, True),
    (
        "related item rule ignores case events",
        {"on": "related_item_added"},
        event("case-created"),
        None,
        False,
    ),
    (
        "comment with match on the enriched case",
        {"on": "comment_added", "match": {"priority": ["high"]}},
        event("related-item-comment"),
        CASE_1_HIGH,
        True,
    ),
    (
        "comment with match, no enriched case",
        {"on": "comment_added", "match": {"priority": ["high"]}},
        event("related-item-comment"),
        None,
        False,
    ),
    # SLA triggers never fire for events; unhandled events never notify
    ("sla trigger ignores events", {"on": "sla_breached"}, event("related-item-sla"), None, False),
    (
        "unhandled eventType",
        {"on": "related_item_added"},
        event("related-item-updated-unhandled"),
        None,
        False,
    ),
    (
        "unhandled eventType, comment",
        {"on": "comment_added"},
        event("related-item-updated-unhandled"),
        None,
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule", "evt", "case", "fires"),
    [pytest.param(rule, evt, case, fires, id=name) for name, rule, evt, case, fires in RULE_TABLE],
)
def test_rules(rule: dict[str, Any], evt: CaseEvent, case: EnrichedCase | None, fires: bool) -> None:
    settings = settings_with({"name": "r", **rule})
    notifications = evaluate_case_event(evt, case, settings)
    assert [n.rule for n in notifications] == (["r"] if fires else [])


SIGNAL = SlaSignal(
    kind=SlaSignalKind.BREACHED,
    domain_id=DOMAIN,
    case_id=CASE_1,
    sla_key="policy#first-response-high",
    sla_name="first-response-high",
    origin="policy",
    target_time=T0 + timedelta(minutes=30),
    at=T0 + timedelta(minutes=30),
)

SIGNAL_TABLE: list[tuple[str, dict[str, Any], SlaSignal, EnrichedCase | None, bool]] = [
    ("breached fires", {"on": "sla_breached"}, SIGNAL, CASE_1_HIGH, True),
    ("breached without a case", {"on": "sla_breached"}, SIGNAL, None, True),
    ("other kind", {"on": "sla_at_risk"}, SIGNAL, CASE_1_HIGH, False),
    ("case rule ignores signals", {"on": "case_updated"}, SIGNAL, CASE_1_HIGH, False),
    ("match on the case", {"on": "sla_breached", "match": {"priority": ["high"]}}, SIGNAL, CASE_1_HIGH, True),
    ("match fails", {"on": "sla_breached", "match": {"priority": ["low"]}}, SIGNAL, CASE_1_HIGH, False),
    ("match without a case", {"on": "sla_breached", "match": {"priority": ["high"]}}, SIGNAL, None, False),
    *[
        (
            f"{kind.value} fires",
            {"on": kind.value},
            SIGNAL.model_copy(update={"kind": kind}),
            CASE_1_HIGH,
            True,
        )
        for kind in SlaSignalKind
    ],
]


@pytest.mark.parametrize(
    ("rule", "signal", "case", "fires"),
    [pytest.param(rule, sig, case, fires, id=name) for name, rule, sig, case, fires in SIGNAL_TABLE],
)
def test_sla_rules(rule: dict[str, Any], signal: SlaSignal, case: EnrichedCase | None, fires: bool) -> None:
    notifications = evaluate_sla_signal(signal, case, settings_with({"name": "r", **rule}))
    assert [n.rule for n in notifications] == (["r"] if fires else [])


@pytest.mark.parametrize(
    ("actual", "expected", "same"),
    [
        ("high", "high", True),
        ("high", "High", False),
        ("1", 1, False),
        (1.0, 1, True),
        (2.5, 2.5, True),
        (True, True, True),
        (True, 1, False),
        (1.0, True, False),
        (None, "x", False),
        (None, None, False),  # empty matches nothing, not even empty
        ("", "", True),
        (0, False, False),
        (0, 0.0, True),
    ],
)
def test_values_compare_by_type(actual: Any, expected: Any, same: bool) -> None:
    assert same_value(actual, expected) is same


def test_every_rule_that_fires_notifies_in_rule_order() -> None:
    settings = settings_with(
        {"name": "b-updated", "on": "case_updated"},
        {"name": "a-assigned", "on": "field_changed", "fields": ["assigned_user"]},
        {"name": "c-comment", "on": "comment_added"},
    )
    assert [n.rule for n in evaluate_case_event(event("case-updated"), None, settings)] == [
        "b-updated",
        "a-assigned",
    ]


def test_the_shipped_rules_on_the_samples() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    fired = {
        path.stem: [n.rule for n in evaluate_case_event(parse_case_event(path.read_text()), None, settings)]
        for path in SAMPLE_FILES
    }
    assert fired == {
        "case-created": ["high-priority-created"],
        "case-deleted": [],
        "case-updated": ["case-assigned"],
        "case-updated-metadata-only": [],
        "case-updated-replayed": ["case-assigned"],
        "related-item-comment": ["comment-added"],
        "related-item-contact": [],
        "related-item-file": [],
        "related-item-sla": [],
        "related-item-updated-unhandled": [],
    }


# --- ids ---------------------------------------------------------------------------------------


def test_notification_ids_are_stable_per_event_rule_and_replay() -> None:
    settings = settings_with({"name": "a", "on": "case_updated"}, {"name": "b", "on": "case_updated"})
    first = evaluate_case_event(event("case-updated"), None, settings)
    again = evaluate_case_event(event("case-updated"), CASE_1_HIGH, settings)
    replay = evaluate_case_event(parse_case_event(load_event("case-updated-replayed")), None, settings)
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    assert first[0].notification_id != first[1].notification_id
    assert first[0].notification_id == notification_id("5c7e9a1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b", "a")
    assert replay[0].notification_id == notification_id(
        "7d9f1b3d-5f7b-4d9f-8b3d-7f9b1d3f5b7d", "a", "casewatch-replay-2026-11-24"
    )
    assert replay[0].replay_name == "casewatch-replay-2026-11-24"
    assert replay[0].attributes["replay"] == "true" and first[0].attributes["replay"] == "false"
    sla = evaluate_sla_signal(SIGNAL, None, settings_with({"name": "s", "on": "sla_breached"}))
    assert sla[0].notification_id == notification_id(SIGNAL.signal_id, "s")


def test_a_policy_and_a_cases_sla_of_one_name_and_target_do_not_share_a_notification_id() -> None:
    """The idempotency key is the SLA's key, not its name: both breaches must notify."""
    cases_sla = SIGNAL.model_copy(update={"sla_key": "cases#4f3e2d1c", "origin": "cases"})
    assert (cases_sla.sla_name, cases_sla.target_time, cases_sla.kind) == (
        SIGNAL.sla_name,
        SIGNAL.target_time,
        SIGNAL.kind,
    )
    assert cases_sla.signal_id != SIGNAL.signal_id
    settings = settings_with({"name": "s", "on": "sla_breached"})
    (policy_n,) = evaluate_sla_signal(SIGNAL, None, settings)
    (cases_n,) = evaluate_sla_signal(cases_sla, None, settings)
    assert policy_n.notification_id != cases_n.notification_id
    assert (
        sla_bus_event(SIGNAL, None, settings).event_key != sla_bus_event(cases_sla, None, settings).event_key
    )
    # and the same signal again (another function, a retry) keeps its id
    assert (
        evaluate_sla_signal(SIGNAL.model_copy(), None, settings)[0].notification_id
        == policy_n.notification_id
    )


# --- content -----------------------------------------------------------------------------------


def test_the_view_is_the_state_at_the_change_time_with_provenance() -> None:
    newer = enriched(CASE_1, {"status": "closed", "customer_id": "c-1"}, version=T0 + timedelta(hours=1))
    evt = event("case-updated")
    view = case_view(evt, newer)
    assert view.as_of == evt.change_time
    assert view.fields["status"].value == "pending-customer"  # the event's, not the newer snapshot's
    assert view.fields["status"].source == "event"
    assert view.fields["customer_id"].source == "snapshot"
    notification = evaluate_case_event(evt, newer, settings_with({"name": "r", "on": "case_updated"}))[0]
    case = notification.payload["case"]
    assert case["asOf"] == "2026-11-23T09:14:37.905Z"
    assert case["fields"]["status"] == {
        "value": "pending-customer",
        "source": "event",
        "asOf": "2026-11-23T09:14:37.905Z",
    }
    assert case["fields"]["customer_id"]["asOf"] == "2026-11-23T10:00:00.000Z"
    assert case["fieldNames"] == {PRIORITY: "priority"}
    assert "Case as of 2026-11-23T09:14:37.905Z:" in notification.text
    assert "customer_id: c-1 (as of 2026-11-23T10:00:00.000Z)" in notification.text


def test_message_shapes() -> None:
    settings = settings_with(
        {"name": "closed", "on": "field_changed", "fields": ["status"], "to_values": ["closed"]}
    )
    evt = event("case-updated", fields={"status": "closed"})
    (n,) = evaluate_case_event(evt, None, settings)
    assert n.subject == 'Case status changed to closed: "Refund not received"'
    assert n.attributes == {
        "notificationId": n.notification_id,
        "rule": "closed",
        "eventType": "CASE.UPDATED",
        "caseId": CASE_1,
        "domainId": DOMAIN,
        "templateId": "4d2c9e8f-1a3b-4c5d-8e7f-6a5b4c3d2e1f",
        "status": "closed",
        "priority": "high",
        "replay": "false",
    }
    assert n.payload["rule"] == {"name": "closed", "on": "field_changed"}
    assert n.payload["event"]["id"] == evt.id
    assert n.payload["event"]["changedFieldIds"] == ["status", "assigned_user", "last_updated_datetime"]
    assert n.payload["signal"] is None and n.payload["relatedItem"] is None
    assert n.text.startswith("Case status changed to closed\n")
    json.dumps(n.payload)  # serialisable

    (comment,) = evaluate_case_event(
        event("related-item-comment"), CASE_1_HIGH, settings_with({"name": "c", "on": "comment_added"})
    )
    assert comment.subject == 'Comment added: "Refund not received"'
    assert comment.attributes["relatedItemType"] == "Comment"
    assert comment.payload["relatedItem"]["content"] == {
        "body": "Called the customer, refund was issued to an old card.",
        "contentType": "Text/Plain",
    }

    (sla,) = evaluate_sla_signal(SIGNAL, CASE_1_HIGH, settings_with({"name": "s", "on": "sla_breached"}))
    assert sla.subject == 'SLA breached: first-response-high: "Refund not received"'
    assert sla.attributes["eventType"] == "SLA.BREACHED"
    assert sla.attributes["slaName"] == "first-response-high"
    assert sla.payload["signal"]["kind"] == "sla_breached"
    assert len(sla.attributes) <= 10


@pytest.mark.parametrize(
    "title",
    ["Remboursement non reçu — «urgent»", "x" * 300, "line\nbreak\tand\x00control", "", "日本語のみ"],
)
def test_subjects_are_sns_safe(title: str) -> None:
    settings = settings_with({"name": "r", "on": "case_created"})
    (n,) = evaluate_case_event(event("case-created", fields={"title": title}), None, settings)
    assert len(n.subject) < 100
    assert n.subject.isascii()
    assert not any(ord(c) < 32 or ord(c) == 127 for c in n.subject)
    assert n.subject[0].isalnum() or not n.subject[0].isspace()
    assert ascii_subject("Remboursement reçu") == "Remboursement recu"
    assert ascii_subject("") == "casewatch notification"


def test_redacted_fields_never_appear() -> None:
    settings = settings_with(
        {"name": "r", "on": "case_created"},
        {"name": "s", "on": "related_item_added"},
        redact_fields=["title", "summary", "customer_id", "status", "priority"],
    )
    evt = event("case-created")
    (n,) = evaluate_case_event(evt, None, settings)
    bus = case_bus_event(evt, None, settings)
    assert bus is not None
    everything = (
        n.subject + n.text + json.dumps(n.payload) + json.dumps(n.attributes) + json.dumps(bus.detail)
    )
    for secret in ("Refund not received", "Customer reports", "profiles/5e4d3c2b", '"open"', '"high"'):
        assert secret not in everything
    assert n.attributes["status"] == REDACTED and n.attributes["priority"] == REDACTED
    assert n.payload["case"]["redactedFieldIds"] == sorted(
        ["title", "summary", "customer_id", "status", PRIORITY]
    )
    # an SLA related item on a redacted field: its target values are redacted too
    sla_item = evaluate_case_event(event("related-item-sla"), None, settings)[0]
    content = sla_item.payload["relatedItem"]["content"]["slaConfiguration"]
    assert content["targetFieldValues"] == [REDACTED]
    assert "pending-customer" not in json.dumps(sla_item.payload)


def test_status_notifications_are_marked_for_ordering() -> None:
    settings = settings_with(
        {"name": "status", "on": "field_changed", "fields": ["status"]},
        {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
        {"name": "updated", "on": "case_updated"},
        {"name": "created", "on": "case_created"},
    )
    by_rule = {n.rule: n for n in evaluate_case_event(event("case-updated"), None, settings)}
    assert by_rule["status"].status_change == "pending-customer"
    assert by_rule["assigned"].status_change is None
    assert by_rule["updated"].status_change is None
    created = evaluate_case_event(event("case-created"), None, settings)
    assert {n.rule: n.status_change for n in created} == {"status": "open", "created": None}


# --- bus events --------------------------------------------------------------------------------


def test_bus_events_for_every_sample() -> None:
    settings = settings_with()
    detail_types = {}
    for path in SAMPLE_FILES:
        evt = parse_case_event(path.read_text())
        bus = case_bus_event(evt, None, settings)
        detail_types[path.stem] = bus.detail_type if bus else None
        if bus is not None:
            assert bus.time == evt.change_time
            assert bus.resources == tuple(evt.resources)
            assert bus.detail["event"]["id"] == evt.id
            assert bus.detail["id"] == bus.event_key
            json.dumps(bus.detail)
    assert detail_types == {
        "case-created": CASE_ENRICHED,
        "case-deleted": CASE_DELETED_DETAIL,
        "case-updated": CASE_ENRICHED,
        "case-updated-metadata-only": CASE_ENRICHED,
        "case-updated-replayed": CASE_ENRICHED,
        "related-item-comment": RELATED_ITEM_ENRICHED,
        "related-item-contact": RELATED_ITEM_ENRICHED,
        "related-item-file": RELATED_ITEM_ENRICHED,
        "related-item-sla": RELATED_ITEM_ENRICHED,
        "related-item-updated-unhandled": None,
    }
    original = case_bus_event(event("case-updated"), None, settings)
    replayed = case_bus_event(parse_case_event(load_event("case-updated-replayed")), None, settings)
    assert original is not None and replayed is not None
    assert original.event_key != replayed.event_key
    assert replayed.detail["event"]["replayName"] == "casewatch-replay-2026-11-24"
    deleted = case_bus_event(event("case-deleted"), CASE_2_LOW, settings)
    assert deleted is not None and deleted.detail["case"]["deleted"] is True


def test_sla_bus_events() -> None:
    for kind, detail_type in SLA_DETAIL_TYPES.items():
        signal = SIGNAL.model_copy(update={"kind": kind})
        bus = sla_bus_event(signal, CASE_1_HIGH, settings_with())
        assert bus.detail_type == detail_type
        assert bus.detail["signal"]["id"] == signal.signal_id
        assert bus.detail["case"]["fields"]["status"]["value"] == "open"
        assert bus.time == signal.at
    assert sla_bus_event(SIGNAL, None, settings_with()).detail["case"]["fields"] == {}


def test_documents_shrink_without_field_values() -> None:
    (n,) = evaluate_case_event(
        event("case-created"), None, settings_with({"name": "r", "on": "case_created"})
    )
    slim = without_field_values(n.payload)
    assert slim["case"]["fields"] == {} and slim["case"]["truncated"] is True
    assert "status" in slim["case"]["fieldIds"]
    assert "Case as of" not in slim["text"] and "(field values omitted: size)" in slim["text"]
    assert n.payload["case"]["fields"]  # the original is untouched
