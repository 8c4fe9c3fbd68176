"""The Cases emulator against the real boto3 client: protocol, errors, faults, quota, SLAs, events."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from casewatch.adapters.system_clock import SystemClock
from casewatch.models.events import parse_case_event
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import CasesEmulator
from tests.builders import EVENTS

START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)

USER = "arn:aws:connect:us-east-1:123456789012:instance/f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b/agent/7a6b"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def emu(clock: VirtualClock) -> Iterator[CasesEmulator]:
    with CasesEmulator(clock=clock, seed=7) as emulator:
        yield emulator


@pytest.fixture
def cases(emu: CasesEmulator) -> Any:
    return emu.client()


def _setup(cases: Any, custom_fields: int = 1) -> tuple[str, list[str], str]:
    """A domain, `custom_fields` SingleSelect fields and a template, created over the API."""
    domain_id = cases.create_domain(name="acme")["domainId"]
    field_ids = [
        cases.create_field(domainId=domain_id, name=f"Priority {i}", type="SingleSelect")["fieldId"]
        for i in range(custom_fields)
    ]
    template_id = cases.create_template(domainId=domain_id, name="Default")["templateId"]
    return domain_id, field_ids, template_id


def _string(field_id: str, value: str) -> dict[str, Any]:
    return {"id": field_id, "value": {"stringValue": value}}


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# --- protocol and CRUD -------------------------------------------------------------------------


def test_crud_round_trip_with_the_real_client(cases: Any, emu: CasesEmulator) -> None:
    domain_id, (priority,), template_id = _setup(cases)
    domain = cases.get_domain(domainId=domain_id)
    assert domain["domainArn"] == f"arn:aws:cases:us-east-1:123456789012:domain/{domain_id}"
    assert domain["createdTime"] == START

    created = cases.create_case(
        domainId=domain_id,
        templateId=template_id,
        fields=[_string("title", "Refund"), _string(priority, "high")],
        tags={"team": "billing"},
    )
    assert created["caseArn"] == f"{domain['domainArn']}/case/{created['caseId']}"
    got = cases.get_case(
        domainId=domain_id,
        caseId=created["caseId"],
        fields=[{"id": i} for i in ("title", priority, "status", "case_id", "created_datetime", "summary")],
    )
    values = {f["id"]: f["value"] for f in got["fields"]}
    assert values == {
        "title": {"stringValue": "Refund"},
        priority: {"stringValue": "high"},
        "status": {"stringValue": "open"},
        "case_id": {"stringValue": created["caseId"]},
        "created_datetime": {"stringValue": "2026-11-23T09:00:00.000Z"},
    }
    assert got["templateId"] == template_id
    assert got["tags"] == {"team": "billing"}
    assert "nextToken" not in got

    cases.update_case(domainId=domain_id, caseId=created["caseId"], fields=[_string("status", "closed")])
    closed = cases.get_case(
        domainId=domain_id, caseId=created["caseId"], fields=[{"id": "last_closed_datetime"}]
    )
    assert closed["fields"] == [
        {"id": "last_closed_datetime", "value": {"stringValue": "2026-11-23T09:00:00.000Z"}}
    ]
    assert emu.calls["GetCase"] == 2
    assert emu.calls["CreateField"] == 1


def test_list_fields_pages_through_system_and_custom_fields(cases: Any) -> None:
    domain_id, custom, _ = _setup(cases, custom_fields=3)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"domainId": domain_id, "maxResults": 4}
    while True:
        page = cases.list_fields(**kwargs)
        assert len(page["fields"]) <= 4
        seen += [f["fieldId"] for f in page["fields"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert len(seen) == len(set(seen)) == 15 + 3
    assert set(custom) <= set(seen)
    assert {"status", "title", "next_sla_breach_datetime"} <= set(seen)


def test_conflicts_and_unimplemented_operations(cases: Any) -> None:
    domain_id, _, _ = _setup(cases)
    with pytest.raises(cases.exceptions.ConflictException):
        cases.create_field(domainId=domain_id, name="Priority 0", type="Text")
    with pytest.raises(ClientError) as excinfo:
        cases.list_domains()
    assert _code(excinfo) == "NotImplementedException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


# --- GetCase validation, 404s, pagination ------------------------------------------------------


def test_get_case_with_221_fields_is_a_validation_error(cases: Any) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    with pytest.raises(cases.exceptions.ValidationException) as excinfo:
        cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}] * 221)
    assert "220" in excinfo.value.response["Error"]["Message"]
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_get_case_with_an_unknown_field_is_a_validation_error(cases: Any) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    with pytest.raises(cases.exceptions.ValidationException) as excinfo:
        cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}, {"id": "no-such-field"}])
    assert "no-such-field" in excinfo.value.response["Error"]["Message"]


def test_unknown_or_deleted_case_and_domain_are_not_found(cases: Any, emu: CasesEmulator) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    with pytest.raises(cases.exceptions.ResourceNotFoundException) as excinfo:
        cases.get_case(domainId=domain_id, caseId="missing", fields=[{"id": "title"}])
    assert excinfo.value.response["resourceType"] == "Case"
    assert excinfo.value.response["resourceId"] == "missing"
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        cases.get_case(domainId="no-domain", caseId=case_id, fields=[{"id": "title"}])

    cases.delete_case(domainId=domain_id, caseId=case_id)
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}])
    cases.delete_domain(domainId=domain_id)
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        cases.get_domain(domainId=domain_id)
    assert [r.status for r in emu.call_log if r.operation == "GetCase"] == [404, 404, 404]


def test_get_case_pages_return_every_field_exactly_once(clock: VirtualClock) -> None:
    with CasesEmulator(clock=clock, seed=1, getcase_page_size=3) as emu:
        cases: Any = emu.client()
        domain_id, custom, template_id = _setup(cases, custom_fields=5)
        values = [_string(f, f"v{i}") for i, f in enumerate(custom)] + [_string("title", "T")]
        case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=values)["caseId"]
        wanted = [{"id": i} for i in [*custom, "title", "status", "summary", "reference_number"]]

        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            kwargs: dict[str, Any] = {"domainId": domain_id, "caseId": case_id, "fields": wanted}
            if token:
                kwargs["nextToken"] = token
            page = cases.get_case(**kwargs)
            pages += 1
            seen += [f["id"] for f in page["fields"]]
            token = page.get("nextToken")
            if token is None:
                break
        assert pages == 3  # 9 ids, 3 per page
        assert sorted(seen) == sorted([*custom, "title", "status", "reference_number"])  # summary: no value
        assert emu.calls["GetCase"] == 3

        first = cases.get_case(domainId=domain_id, caseId=case_id, fields=wanted)
        with pytest.raises(cases.exceptions.ValidationException):
            cases.get_case(
                domainId=domain_id, caseId=case_id, fields=wanted[:4], nextToken=first["nextToken"]
            )


@pytest.mark.parametrize(
    ("empty_as", "expected"),
    [
        ("omit", [{"id": "title", "value": {"stringValue": "T"}}]),
        (
            "emptyValue",
            [
                {"id": "title", "value": {"stringValue": "T"}},
                {"id": "summary", "value": {"emptyValue": {}}},
                {"id": "customer_id", "value": {"emptyValue": {}}},
            ],
        ),
    ],
)
def test_fields_without_a_value_are_omitted_or_empty(
    clock: VirtualClock, empty_as: Any, expected: list[dict[str, Any]]
) -> None:
    with CasesEmulator(clock=clock, empty_as=empty_as) as emu:
        cases: Any = emu.client()
        domain_id, _, template_id = _setup(cases)
        case_id = cases.create_case(
            domainId=domain_id, templateId=template_id, fields=[_string("title", "T")]
        )["caseId"]
        got = cases.get_case(
            domainId=domain_id,
            caseId=case_id,
            fields=[{"id": "title"}, {"id": "summary"}, {"id": "customer_id"}],
        )
        assert got["fields"] == expected


def test_server_side_validation_follows_the_model(cases: Any) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    with pytest.raises(cases.exceptions.ValidationException) as excinfo:  # botocore checks min, not max
        cases.search_related_items(domainId=domain_id, caseId=case_id, maxResults=26)
    assert "maxResults" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(cases.exceptions.ValidationException):  # read-only system field
        cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("reference_number", "1")])
    with pytest.raises(cases.exceptions.ValidationException):  # wrong union member for the field type
        cases.update_case(
            domainId=domain_id, caseId=case_id, fields=[{"id": "title", "value": {"doubleValue": 1}}]
        )


# --- errors and fault injection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (402, "ServiceQuotaExceededException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (409, "ConflictException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
    ],
)
def test_injected_errors_raise_the_modeled_exception(emu: CasesEmulator, status: int, code: str) -> None:
    cases: Any = emu.client()
    emu.fail_next("CreateDomain", status=status)
    with pytest.raises(getattr(cases.exceptions, code)) as excinfo:
        cases.create_domain(name="acme")
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_fail_next_throttles_then_succeeds(cases: Any, emu: CasesEmulator) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    emu.fail_next("GetCase", status=429, count=2)
    for _ in range(2):
        with pytest.raises(cases.exceptions.ThrottlingException) as excinfo:
            cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "status"}])
        assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "status"}])["fields"]
    assert emu.calls["GetCase"] == 3
    assert [r.status for r in emu.call_log if r.operation == "GetCase"] == [429, 429, 200]
    emu.reset_counters()
    assert emu.calls["GetCase"] == 0
    assert emu.call_log == []


def test_standard_retries_absorb_a_single_throttle(
    emu: CasesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    cases = emu.client(Config(retries={"mode": "standard", "max_attempts": 3}))
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    emu.fail_next("GetCase", status=429)
    got = cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "status"}])
    assert got["ResponseMetadata"]["RetryAttempts"] == 1
    assert emu.calls["GetCase"] == 2


def test_random_faults_are_seeded_and_scoped(clock: VirtualClock) -> None:
    def outcomes(seed: int) -> list[int]:
        with CasesEmulator(clock=clock, seed=seed, throttle_rate=0.5, fault_operations=["GetCase"]) as emu:
            cases: Any = emu.client()
            domain_id, _, template_id = _setup(cases)  # not GetCase: never faulted
            case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
            for _ in range(12):
                with contextlib.suppress(cases.exceptions.ThrottlingException):
                    cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "status"}])
            return [r.status for r in emu.call_log if r.operation == "GetCase"]

    first = outcomes(3)
    assert first == outcomes(3)
    assert {200, 429} == set(first)

    with CasesEmulator(clock=clock, error_rate=1.0) as emu:
        cases: Any = emu.client()
        with pytest.raises(cases.exceptions.InternalServerException):
            cases.create_domain(name="acme")
        emu.error_rate = 0.0
        assert cases.create_domain(name="acme")["domainId"]
    with pytest.raises(ValueError, match="probability"):
        emu.throttle_rate = 1.5
    with pytest.raises(ValueError, match="not a Cases operation"):
        emu.fail_next("GetCases")


def test_getcase_quota_on_a_virtual_clock(clock: VirtualClock) -> None:
    with CasesEmulator(clock=clock, getcase_quota=True) as emu:
        cases: Any = emu.client()
        domain_id, _, template_id = _setup(cases)
        case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]

        def get() -> None:
            cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "status"}])

        for _ in range(10):
            get()
        with pytest.raises(cases.exceptions.ThrottlingException):
            get()
        clock.advance(1)
        for _ in range(4):
            get()
        with pytest.raises(cases.exceptions.ThrottlingException):
            get()
        assert emu.calls["GetCase"] == 16
        assert emu.calls["CreateCase"] == 1  # other operations are not limited


# --- related items and SLAs --------------------------------------------------------------------


def _sla(name: str, minutes: int, target: str = "pending-customer") -> dict[str, Any]:
    return {
        "sla": {
            "slaInputConfiguration": {
                "name": name,
                "type": "CaseField",
                "fieldId": "status",
                "targetFieldValues": [{"stringValue": target}],
                "targetSlaMinutes": minutes,
            }
        }
    }


def _slas(cases: Any, domain_id: str, case_id: str, **sla_filter: str) -> dict[str, dict[str, Any]]:
    items = cases.search_related_items(domainId=domain_id, caseId=case_id, filters=[{"sla": sla_filter}])
    return {
        i["content"]["sla"]["slaConfiguration"]["name"]: i["content"]["sla"]["slaConfiguration"]
        for i in items["relatedItems"]
    }


def test_sla_target_time_and_status_transitions(cases: Any, clock: VirtualClock) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    cases.create_related_item(
        domainId=domain_id, caseId=case_id, type="Sla", content=_sla("First response", 30)
    )
    cases.create_related_item(
        domainId=domain_id, caseId=case_id, type="Sla", content=_sla("Resolve", 60, "closed")
    )
    cases.create_related_item(
        domainId=domain_id, caseId=case_id, type="Sla", content=_sla("Escalate", 10, "x")
    )

    first = _slas(cases, domain_id, case_id, name="First response")["First response"]
    assert first["targetTime"] == START + timedelta(minutes=30)
    assert first["status"] == "Active"
    assert "completionTime" not in first
    breach = cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "next_sla_breach_datetime"}])
    assert breach["fields"][0]["value"] == {"stringValue": "2026-11-23T09:10:00.000Z"}

    clock.advance(5 * 60)  # 09:05: the target value is reached before the target
    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("status", "pending-customer")])
    clock.advance(10 * 60)  # 09:15: Escalate's target (09:10) has passed
    met = _slas(cases, domain_id, case_id, status="Met")
    assert set(met) == {"First response"}
    assert met["First response"]["completionTime"] == START + timedelta(minutes=5)
    assert set(_slas(cases, domain_id, case_id, status="Overdue")) == {"Escalate"}
    assert set(_slas(cases, domain_id, case_id, status="Active")) == {"Resolve"}

    clock.advance(60 * 60)  # 10:15: Resolve is overdue, then reached late
    assert set(_slas(cases, domain_id, case_id, status="Overdue")) == {"Escalate", "Resolve"}
    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("status", "closed")])
    assert set(_slas(cases, domain_id, case_id, status="NotMet")) == {"Resolve"}
    assert _slas(cases, domain_id, case_id, name="Resolve", status="Met") == {}


def test_related_items_of_every_type_filters_and_pages(cases: Any, emu: CasesEmulator) -> None:
    domain_id, (priority,), template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    other_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    contact = "arn:aws:connect:us-east-1:123456789012:instance/i/contact/c1"
    file_arn = f"arn:aws:cases:us-east-1:123456789012:domain/{domain_id}/file/f1"
    contents = [
        ("Comment", {"comment": {"body": "hello", "contentType": "Text/Plain"}}),
        ("Contact", {"contact": {"contactArn": contact}}),
        ("File", {"file": {"fileArn": file_arn}}),
        ("Sla", _sla("First response", 30)),
        ("ConnectCase", {"connectCase": {"caseId": other_id}}),
        ("Custom", {"custom": {"fields": [_string(priority, "high")]}}),
        ("Comment", {"comment": {"body": "again", "contentType": "Text/Plain"}}),
    ]
    ids = []
    for kind, content in contents:
        created = cases.create_related_item(domainId=domain_id, caseId=case_id, type=kind, content=content)
        assert created["relatedItemArn"].endswith(f"/case/{case_id}/related-item/{created['relatedItemId']}")
        ids.append(created["relatedItemId"])

    def search(*filters: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
        found = cases.search_related_items(
            domainId=domain_id, caseId=case_id, filters=list(filters), **kwargs
        )
        return list(found["relatedItems"])

    assert [i["type"] for i in search({"comment": {}})] == ["Comment", "Comment"]
    (contact_item,) = search({"contact": {"contactArn": contact, "channel": ["VOICE"]}})
    assert contact_item["content"]["contact"]["connectedToSystemTime"] == START
    assert search({"contact": {"channel": ["CHAT"]}}) == []
    assert [i["relatedItemId"] for i in search({"file": {"fileArn": file_arn}})] == [ids[2]]
    assert [i["relatedItemId"] for i in search({"connectCase": {"caseId": other_id}})] == [ids[4]]
    equal = {"equalTo": {"id": priority, "value": {"stringValue": "high"}}}
    assert [i["relatedItemId"] for i in search({"custom": {"fields": {"field": equal}}})] == [ids[5]]
    assert len(search({"comment": {}}, {"file": {}})) == 3  # filters are OR-ed

    seen: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 3}
    while True:
        page = cases.search_related_items(domainId=domain_id, caseId=case_id, **kwargs)
        seen += [i["relatedItemId"] for i in page["relatedItems"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert seen == ids

    with pytest.raises(cases.exceptions.ValidationException):  # type and content disagree
        cases.create_related_item(domainId=domain_id, caseId=case_id, type="File", content=contents[0][1])
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        cases.create_related_item(
            domainId=domain_id,
            caseId=case_id,
            type="ConnectCase",
            content={"connectCase": {"caseId": "nope"}},
        )
    for n in range(9):
        cases.create_related_item(domainId=domain_id, caseId=case_id, type="Sla", content=_sla(f"s{n}", 5))
    with pytest.raises(cases.exceptions.ServiceQuotaExceededException):  # at most 10 SLAs
        cases.create_related_item(domainId=domain_id, caseId=case_id, type="Sla", content=_sla("eleventh", 5))
    assert emu.call_log[-1].params == {"domainId": domain_id, "caseId": case_id, "type": "Sla"}


def test_search_cases_filters_and_pages(cases: Any, emu: CasesEmulator, clock: VirtualClock) -> None:
    domain_id, (priority,), template_id = _setup(cases)
    made = {}
    for i, level in enumerate(["high", "low", "high", "high", "low"]):
        fields = [_string(priority, level), _string("title", f"case {i}")]
        made[cases.create_case(domainId=domain_id, templateId=template_id, fields=fields)["caseId"]] = level
    clock.advance(emu.search_index_lag)  # search is index-backed (tests/integration/test_cases_search.py)

    everything = cases.search_cases(domainId=domain_id)
    assert [c["caseId"] for c in everything["cases"]] == list(made)
    assert all(c["templateId"] == template_id and c["fields"] == [] for c in everything["cases"])

    high: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "domainId": domain_id,
        "maxResults": 2,
        "filter": {"field": {"equalTo": {"id": priority, "value": {"stringValue": "high"}}}},
        "fields": [{"id": priority}, {"id": "title"}],
    }
    while True:
        page = cases.search_cases(**kwargs)
        high += page["cases"]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert [c["caseId"] for c in high] == [cid for cid, level in made.items() if level == "high"]
    assert high[0]["fields"] == [_string(priority, "high"), _string("title", "case 0")]


# --- events ------------------------------------------------------------------------------------


def test_event_configuration_round_trip(cases: Any) -> None:
    domain_id, (priority,), _ = _setup(cases)
    assert cases.get_case_event_configuration(domainId=domain_id)["eventBridge"] == {"enabled": False}
    bridge = {
        "enabled": True,
        "includedData": {
            "caseData": {"fields": [{"id": "status"}, {"id": priority}], "autoIncludeFields": "System"},
            "relatedItemData": {"includeContent": True},
        },
    }
    cases.put_case_event_configuration(domainId=domain_id, eventBridge=bridge)
    assert cases.get_case_event_configuration(domainId=domain_id)["eventBridge"] == bridge
    with pytest.raises(cases.exceptions.ValidationException):
        cases.put_case_event_configuration(
            domainId=domain_id,
            eventBridge={"enabled": True, "includedData": {"caseData": {"fields": [{"id": "nope"}]}}},
        )


def test_events_carry_the_configured_fields_after_the_change(cases: Any, emu: CasesEmulator) -> None:
    domain_id, (priority,), template_id = _setup(cases)
    cases.put_case_event_configuration(
        domainId=domain_id,
        eventBridge={
            "enabled": True,
            "includedData": {"caseData": {"fields": [{"id": "status"}, {"id": priority}, {"id": "summary"}]}},
        },
    )
    case_id = cases.create_case(
        domainId=domain_id,
        templateId=template_id,
        fields=[_string("title", "Refund"), _string(priority, "high")],
        performedBy={"userArn": USER},
    )["caseId"]
    created = emu.emitted[-1]
    domain_arn = f"arn:aws:cases:us-east-1:123456789012:domain/{domain_id}"
    assert {k: created[k] for k in ("version", "detail-type", "source", "account", "region", "time")} == {
        "version": "0",
        "detail-type": "Amazon Connect Cases Change",
        "source": "aws.cases",
        "account": "123456789012",
        "region": "us-east-1",
        "time": "2026-11-23T09:00:00Z",
    }
    assert created["resources"] == [domain_arn, f"{domain_arn}/case/{case_id}"]
    detail = created["detail"]
    assert detail["eventType"] == "CASE.CREATED"
    assert detail["approximateChangeTime"] == "2026-11-23T09:00:00.000Z"
    assert detail["performedBy"]["user"] == {"userArn": USER}
    assert detail["changedFieldIds"] == ["title", priority, "status", "reference_number", "created_datetime"]
    assert detail["case"]["fields"] == {  # summary has no value: absent; title is not configured
        "status": {"value": {"stringValue": "open"}},
        priority: {"value": {"stringValue": "high"}},
    }

    emu.clock.advance(90)  # type: ignore[attr-defined]
    cases.update_case(
        domainId=domain_id, caseId=case_id, fields=[_string("status", "pending"), _string("title", "Refund")]
    )
    updated = emu.emitted[-1]["detail"]
    assert updated["eventType"] == "CASE.UPDATED"
    assert updated["approximateChangeTime"] == "2026-11-23T09:01:30.000Z"
    assert updated["changedFieldIds"] == ["status", "last_updated_datetime"]  # the title did not change
    assert updated["case"]["fields"]["status"] == {"value": {"stringValue": "pending"}}
    assert "performedBy" not in updated or "user" not in updated["performedBy"]

    cases.delete_case(domainId=domain_id, caseId=case_id)
    deleted = emu.emitted[-1]["detail"]
    assert deleted["eventType"] == "CASE.DELETED"
    assert deleted["case"] == {"caseId": case_id, "templateId": template_id}

    assert len(emu.emitted) == 3
    for event in emu.emitted:
        parsed = parse_case_event(event)
        assert parsed.case_id == case_id
        assert parsed.domain_id == domain_id


@pytest.mark.parametrize(
    ("auto", "expected_ids"),
    [
        (
            "System",
            {"status", "title", "case_id", "reference_number", "created_datetime", "last_updated_datetime"},
        ),
        ("Custom", {"CUSTOM"}),
        (
            "All",
            {
                "status",
                "title",
                "case_id",
                "reference_number",
                "created_datetime",
                "last_updated_datetime",
                "CUSTOM",
            },
        ),
    ],
)
def test_auto_include_fields(emu: CasesEmulator, auto: Any, expected_ids: set[str]) -> None:
    domain_id = emu.seed_domain()
    custom = emu.seed_field(domain_id, "Priority", "SingleSelect")
    template_id = emu.seed_template(domain_id, "Default")
    emu.set_event_configuration(domain_id, auto_include=auto)
    emu.seed_case(domain_id, template_id, {"title": "T", custom: "high"}, emit=True)
    (event,) = emu.emitted
    assert set(event["detail"]["case"]["fields"]) == {custom if i == "CUSTOM" else i for i in expected_ids}
    parse_case_event(event)


def test_related_item_events_include_content_only_when_configured(emu: CasesEmulator) -> None:
    domain_id = emu.seed_domain()
    template_id = emu.seed_template(domain_id, "Default")
    case_id = emu.seed_case(domain_id, template_id, {"title": "T"})
    cases: Any = emu.client()
    comment = {"comment": {"body": "Called the customer", "contentType": "Text/Plain"}}

    emu.set_event_configuration(domain_id, include_content=True)
    item = cases.create_related_item(domainId=domain_id, caseId=case_id, type="Comment", content=comment)
    cases.create_related_item(
        domainId=domain_id, caseId=case_id, type="Sla", content=_sla("First response", 30)
    )
    emu.set_event_configuration(domain_id, include_content=False)
    cases.create_related_item(domainId=domain_id, caseId=case_id, type="Comment", content=comment)

    with_content, sla, without = emu.emitted
    assert with_content["resources"][1] == item["relatedItemArn"]
    assert with_content["detail"]["changedAttributes"] == ["comment.commentText"]
    assert with_content["detail"]["relatedItem"]["comment"] == comment["comment"]
    assert sla["detail"]["relatedItem"]["sla"]["slaConfiguration"] == {
        "name": "First response",
        "type": "CaseField",
        "status": "Active",
        "fieldId": "status",
        "targetFieldValues": [{"stringValue": "pending-customer"}],
        "targetTime": "2026-11-23T09:30:00.000Z",
    }
    assert "comment" not in without["detail"]["relatedItem"]
    assert without["detail"]["relatedItem"]["relatedItemType"] == "Comment"
    for event in emu.emitted:
        parsed = parse_case_event(event)
        assert parsed.related_item is not None
    assert parse_case_event(with_content).related_item.has_content  # type: ignore[union-attr]
    assert not parse_case_event(without).related_item.has_content  # type: ignore[union-attr]


def test_no_events_unless_enabled(emu: CasesEmulator) -> None:
    cases: Any = emu.client()
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"]
    cases.put_case_event_configuration(
        domainId=domain_id,
        eventBridge={"enabled": False, "includedData": {"relatedItemData": {"includeContent": True}}},
    )
    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", "x")])
    cases.create_related_item(
        domainId=domain_id,
        caseId=case_id,
        type="Comment",
        content={"comment": {"body": "b", "contentType": "Text/Plain"}},
    )
    assert emu.emitted == []

    cases.put_case_event_configuration(domainId=domain_id, eventBridge={"enabled": True})
    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", "y")])
    (event,) = emu.emitted
    assert event["detail"]["case"]["fields"] == {}  # metadata only
    parse_case_event(event)


def test_sink_performer_knob_and_sample_ids(clock: VirtualClock) -> None:
    sample = json.loads((EVENTS / "case-created.json").read_text())
    domain_id = sample["resources"][0].rsplit("/", 1)[1]
    case_id = sample["detail"]["case"]["caseId"]
    template_id = sample["detail"]["case"]["templateId"]
    received: list[dict[str, Any]] = []
    with CasesEmulator(
        clock=clock,
        on_event=received.append,
        performed_by=USER,
        iam_principal_arn=None,
        no_fields_as="absent",
    ) as emu:
        assert emu.seed_domain(domain_id=domain_id) == domain_id
        emu.seed_template(domain_id, "Default", template_id=template_id)
        emu.set_event_configuration(domain_id)
        emu.seed_case(domain_id, template_id, {"title": "T"}, case_id=case_id, emit=True)
        assert emu.emitted == []  # a custom sink replaces the default list
    (event,) = received
    assert event["resources"] == sample["resources"]
    assert event["detail"]["performedBy"] == {"user": {"userArn": USER}}
    assert "fields" not in event["detail"]["case"]
    assert parse_case_event(event).case_id == case_id


def test_call_log_holds_ids_not_content(cases: Any, emu: CasesEmulator) -> None:
    domain_id, _, template_id = _setup(cases)
    case_id = cases.create_case(
        domainId=domain_id, templateId=template_id, fields=[_string("title", "secret title")]
    )["caseId"]
    cases.create_related_item(
        domainId=domain_id,
        caseId=case_id,
        type="Comment",
        content={"comment": {"body": "secret body", "contentType": "Text/Plain"}},
    )
    logged = json.dumps([(r.operation, r.params) for r in emu.call_log])
    assert "secret" not in logged
    assert emu.call_log[-2].params["fields"] == ["title"]


def test_clocks() -> None:
    virtual = VirtualClock(START)
    assert virtual.advance(1.5) == START + timedelta(seconds=1.5)
    virtual.set(START)
    assert virtual.now() == START
    with pytest.raises(ValueError, match="aware"):
        virtual.set(datetime(2026, 1, 1))
    assert SystemClock().now().tzinfo is not None


def test_concurrent_clients_share_one_consistent_state(emu: CasesEmulator) -> None:
    domain_id = emu.seed_domain()
    template_id = emu.seed_template(domain_id, "Default")
    case_id = emu.seed_case(domain_id, template_id, {"title": "T"})
    emu.set_event_configuration(domain_id)

    def work(worker: int) -> None:
        cases: Any = emu.client()
        for n in range(10):
            cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", f"{worker}-{n}")])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emu.calls["UpdateCase"] == 40
    assert len(emu.emitted) == 40
    assert len({e["id"] for e in emu.emitted}) == 40
