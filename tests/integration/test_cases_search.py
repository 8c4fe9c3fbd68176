"""The emulator's domain-wide search with the real boto3 client, against botocore's `connectcases` model:
SearchCases and SearchAllRelatedItems (filters, sorts, page sizes at the limits, paginators, validation
errors, quotas) and the search index's lag (CASES-EVENTS.md, "Domain-wide search").

The client here is in process (`client(in_process=True)`); `test_cases_in_process.py` holds it to the
same answers as HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import DEFAULT_SEARCH_INDEX_LAG, REAL_QUOTAS, CasesEmulator

START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
LAG = timedelta(seconds=5)
USER = "arn:aws:connect:us-east-1:123456789012:instance/f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b/agent/7a6b"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def emu(clock: VirtualClock) -> CasesEmulator:
    return CasesEmulator(clock=clock, seed=7, search_index_lag=LAG)


@pytest.fixture
def cases(emu: CasesEmulator) -> Any:
    return emu.client(in_process=True)


def _domain(emu: CasesEmulator) -> tuple[str, str, dict[str, str]]:
    """A domain with custom fields (priority, score, vip) and a template."""
    domain_id = emu.seed_domain(name="acme")
    custom = {
        "priority": emu.seed_field(domain_id, "Priority", "SingleSelect"),
        "score": emu.seed_field(domain_id, "Score", "Number"),
        "vip": emu.seed_field(domain_id, "VIP", "Boolean"),
    }
    return domain_id, emu.seed_template(domain_id, "Default"), custom


def _string(field_id: str, value: str) -> dict[str, Any]:
    return {"id": field_id, "value": {"stringValue": value}}


def _message(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Message"])


def _sla(name: str, minutes: int, target: str) -> dict[str, Any]:
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


# --- SearchCases: pages ------------------------------------------------------------------------------


def test_search_cases_pages_at_the_api_limits(emu: CasesEmulator, cases: Any, clock: VirtualClock) -> None:
    domain_id, template_id, _ = _domain(emu)
    ids = [emu.seed_case(domain_id, template_id, {"title": f"case {n:03d}"}) for n in range(101)]
    clock.advance(LAG)

    default = cases.search_cases(domainId=domain_id)
    assert (len(default["cases"]), default["totalCount"]) == (25, 101)  # the model's default page
    largest = cases.search_cases(domainId=domain_id, maxResults=100)
    assert len(largest["cases"]) == 100
    rest = cases.search_cases(domainId=domain_id, maxResults=100, nextToken=largest["nextToken"])
    assert len(rest["cases"]) == 1
    assert "nextToken" not in rest
    assert [c["caseId"] for c in largest["cases"] + rest["cases"]] == ids

    all_but_last = {"not": {"field": {"equalTo": {"id": "case_id", "value": {"stringValue": ids[-1]}}}}}
    exact = cases.search_cases(domainId=domain_id, maxResults=100, filter=all_but_last)
    assert (len(exact["cases"]), exact["totalCount"]) == (100, 100)
    assert "nextToken" not in exact  # exactly one full page

    first_25 = {"orAll": [{"field": {"lessThanOrEqualTo": _string("title", "case 024")}}]}
    one_page = cases.search_cases(domainId=domain_id, filter=first_25)
    assert len(one_page["cases"]) == 25
    assert "nextToken" not in one_page
    first_26 = {"field": {"lessThanOrEqualTo": _string("title", "case 025")}}
    two_pages = list(cases.get_paginator("search_cases").paginate(domainId=domain_id, filter=first_26))
    assert [len(p["cases"]) for p in two_pages] == [25, 1]

    pages = list(
        cases.get_paginator("search_cases").paginate(domainId=domain_id, PaginationConfig={"PageSize": 100})
    )
    assert [len(p["cases"]) for p in pages] == [100, 1]
    assert [c["caseId"] for p in pages for c in p["cases"]] == ids
    assert emu.calls["SearchCases"] == 9


# --- SearchCases: validation -------------------------------------------------------------------------


def test_search_cases_validation_errors_follow_the_model(emu: CasesEmulator, cases: Any) -> None:
    domain_id, _, _ = _domain(emu)
    lenient: Any = emu.client(Config(parameter_validation=False), in_process=True)
    title = {"field": {"equalTo": _string("title", "x")}}
    refused: list[tuple[Any, dict[str, Any], str]] = [
        (
            cases,
            {"maxResults": 101},
            "Value at 'maxResults' failed to satisfy constraint: Member must be less",
        ),
        (
            lenient,
            {"maxResults": 0},
            "Value at 'maxResults' failed to satisfy constraint: Member must be greater",
        ),
        (
            cases,
            {"fields": [{"id": "title"}] * 26},
            "Value at 'fields' failed to satisfy constraint: Member must have length less than or equal to 25",
        ),
        (cases, {"sorts": [{"fieldId": "title", "sortOrder": "Asc"}] * 3}, "Value at 'sorts'"),
        (cases, {"sorts": [{"fieldId": "title", "sortOrder": "Up"}]}, "enum value set: [Asc, Desc]"),
        (cases, {"filter": {"andAll": [title] * 11}}, "Value at 'filter.andAll'"),
        (lenient, {"filter": {**title, "tag": {"equalTo": {"key": "team"}}}}, "exactly one member"),
        (cases, {"searchTerm": "x" * 256}, "Value at 'searchTerm'"),
        (cases, {"filter": {"field": {"equalTo": _string("no-such-field", "x")}}}, "no-such-field"),
        (cases, {"sorts": [{"fieldId": "no-such-sort", "sortOrder": "Asc"}]}, "no-such-sort"),
        (
            cases,
            {"filter": {"field": {"greaterThan": _string("last_updated_datetime", "soon")}}},
            "date-time",
        ),
    ]
    for client, kwargs, expected in refused:
        with pytest.raises(client.exceptions.ValidationException) as excinfo:
            client.search_cases(domainId=domain_id, **kwargs)
        assert expected in _message(excinfo), kwargs
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ParamValidationError):  # botocore itself checks minimums (not maximums)
        cases.search_cases(domainId=domain_id, maxResults=0)
    assert cases.search_cases(domainId=domain_id, fields=[{"id": "title"}] * 25)["cases"] == []


# --- SearchCases: filters and sorts ------------------------------------------------------------------


def test_search_cases_filters(emu: CasesEmulator, cases: Any, clock: VirtualClock) -> None:
    domain_id, template_id, f = _domain(emu)
    seeds: list[tuple[dict[str, object], dict[str, str]]] = [
        (
            {"title": "Refund request", f["priority"]: "high", f["score"]: 10, f["vip"]: True},
            {"team": "billing"},
        ),
        ({"title": "Password reset", f["priority"]: "low", f["score"]: 3, f["vip"]: False}, {"team": "it"}),
        ({"title": "refund again", f["priority"]: "high", f["score"]: 7}, {}),
        ({"title": "Other"}, {}),
    ]
    for fields, tags in seeds:
        emu.seed_case(domain_id, template_id, fields, tags=tags)
    clock.advance(LAG)

    def titles(spec: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        if spec is not None:
            kwargs["filter"] = spec
        found = cases.search_cases(domainId=domain_id, fields=[{"id": "title"}], **kwargs)
        return [c["fields"][0]["value"]["stringValue"] for c in found["cases"]]

    def field(operator: str, field_id: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"field": {operator: {"id": field_id, "value": value}}}

    high = field("equalTo", f["priority"], {"stringValue": "high"})
    assert titles(high) == ["Refund request", "refund again"]
    assert titles(field("contains", "title", {"stringValue": "efund"})) == ["Refund request", "refund again"]
    assert titles(field("greaterThan", f["score"], {"doubleValue": 7})) == ["Refund request"]
    assert titles(field("greaterThanOrEqualTo", f["score"], {"doubleValue": 7})) == [
        "Refund request",
        "refund again",
    ]
    assert titles(field("lessThan", f["score"], {"doubleValue": 7})) == ["Password reset"]
    assert titles(field("lessThanOrEqualTo", f["score"], {"doubleValue": 7})) == [
        "Password reset",
        "refund again",
    ]
    assert titles(field("equalTo", f["vip"], {"booleanValue": True})) == ["Refund request"]
    assert titles(field("equalTo", f["priority"], {"emptyValue": {}})) == ["Other"]
    assert titles({"not": high}) == ["Password reset", "Other"]
    score_above_8 = field("greaterThan", f["score"], {"doubleValue": 8})
    assert titles({"andAll": [high, score_above_8]}) == ["Refund request"]
    low = field("equalTo", f["priority"], {"stringValue": "low"})
    vip = field("equalTo", f["vip"], {"booleanValue": True})
    assert titles({"orAll": [low, vip]}) == ["Refund request", "Password reset"]
    assert titles({"tag": {"equalTo": {"key": "team", "value": "billing"}}}) == ["Refund request"]
    assert titles({"tag": {"equalTo": {"key": "team"}}}) == ["Refund request", "Password reset"]
    assert titles(searchTerm="REFUND") == ["Refund request", "refund again"]
    assert titles({"not": high}, searchTerm="reset") == ["Password reset"]
    found = cases.search_cases(domainId=domain_id, filter=high, fields=[{"id": f["score"]}, {"id": "status"}])
    assert [c["fields"] for c in found["cases"]] == [
        [{"id": f["score"], "value": {"doubleValue": 10.0}}, _string("status", "open")],
        [{"id": f["score"], "value": {"doubleValue": 7.0}}, _string("status", "open")],
    ]
    assert found["totalCount"] == 2
    assert {c["templateId"] for c in found["cases"]} == {template_id}
    assert found["cases"][0]["tags"] == {"team": "billing"}


def test_search_cases_sorts_with_missing_values_last(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    domain_id, template_id, f = _domain(emu)
    for title, priority in [("b", "high"), ("a", "low"), ("c", "high"), ("d", None)]:
        emu.seed_case(
            domain_id, template_id, {"title": title, **({f["priority"]: priority} if priority else {})}
        )
    clock.advance(LAG)

    def titles(*sorts: tuple[str, str]) -> list[str]:
        found = cases.search_cases(
            domainId=domain_id,
            fields=[{"id": "title"}],
            sorts=[{"fieldId": field_id, "sortOrder": order} for field_id, order in sorts],
        )
        return [c["fields"][0]["value"]["stringValue"] for c in found["cases"]]

    assert titles((f["priority"], "Asc"), ("title", "Desc")) == ["c", "b", "a", "d"]
    assert titles((f["priority"], "Desc"), ("title", "Asc")) == ["a", "b", "c", "d"]  # no value: last
    assert titles(("title", "Desc")) == ["d", "c", "b", "a"]


def test_date_time_fields_compare_as_instants(emu: CasesEmulator, cases: Any, clock: VirtualClock) -> None:
    """The change feed's sweep: `last_updated_datetime` greaterThan a watermark, sorted ascending."""
    domain_id, template_id, _ = _domain(emu)

    def create(title: str, at: timedelta) -> str:
        clock.set(START + at)
        return str(
            cases.create_case(domainId=domain_id, templateId=template_id, fields=[_string("title", title)])[
                "caseId"
            ]
        )

    early = create("early", timedelta(seconds=0.25))
    half = create("half", timedelta(seconds=1.5))  # 09:00:01.500Z: after 09:00:01Z, before it as a string
    later = create("later", timedelta(seconds=61))
    clock.set(START + timedelta(seconds=120.25))
    cases.update_case(domainId=domain_id, caseId=early, fields=[_string("title", "early, updated")])
    clock.advance(LAG)
    stamp = cases.get_case(domainId=domain_id, caseId=half, fields=[{"id": "last_updated_datetime"}])
    assert stamp["fields"][0]["value"] == {"stringValue": "2026-11-23T09:00:01.500Z"}  # the stored form

    def sweep(operator: str, watermark: dict[str, Any], order: str = "Asc") -> list[str]:
        found = cases.search_cases(
            domainId=domain_id,
            filter={"field": {operator: {"id": "last_updated_datetime", "value": watermark}}},
            sorts=[{"fieldId": "last_updated_datetime", "sortOrder": order}],
        )
        return [c["caseId"] for c in found["cases"]]

    after_01 = [half, later, early]
    assert sweep("greaterThan", {"stringValue": "2026-11-23T09:00:01Z"}) == after_01
    assert sweep("greaterThan", {"stringValue": "2026-11-23T09:00:01.000Z"}) == after_01
    assert sweep("greaterThan", {"stringValue": "2026-11-23T10:00:01+01:00"}) == after_01
    epoch_ms = (START + timedelta(seconds=1)).timestamp() * 1000
    assert sweep("greaterThan", {"doubleValue": epoch_ms}) == after_01
    assert sweep("greaterThan", {"stringValue": "2026-11-23T09:00:01.5Z"}) == [later, early]
    assert sweep("greaterThanOrEqualTo", {"stringValue": "2026-11-23T09:00:01.5Z"}) == [half, later, early]
    assert sweep("greaterThan", {"stringValue": "2026-11-23T09:00:00Z"}, "Desc") == [early, later, half]
    assert sweep("lessThan", {"stringValue": "2026-11-23T09:01:01Z"}) == [half]
    assert sweep("equalTo", {"stringValue": "2026-11-23T09:01:01Z"}) == [later]
    created = cases.search_cases(
        domainId=domain_id, sorts=[{"fieldId": "created_datetime", "sortOrder": "Desc"}]
    )
    assert [c["caseId"] for c in created["cases"]] == [later, half, early]


# --- SearchAllRelatedItems ---------------------------------------------------------------------------


def test_search_all_related_items_across_the_domain(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    domain_id, template_id, f = _domain(emu)
    one, two, three = (
        cases.create_case(domainId=domain_id, templateId=template_id, fields=[])["caseId"] for _ in range(3)
    )
    contact = "arn:aws:connect:us-east-1:123456789012:instance/i-1/contact/c-1"
    file_arn = "arn:aws:connect:us-east-1:123456789012:instance/i-1/file/f-1"
    plan: list[tuple[str, str, dict[str, Any]]] = [
        (one, "Comment", {"comment": {"body": "hello", "contentType": "Text/Plain"}}),
        (one, "Sla", _sla("First response", 30, "pending-customer")),
        (one, "Contact", {"contact": {"contactArn": contact}}),
        (two, "Sla", _sla("Resolve", 60, "pending-customer")),
        (two, "File", {"file": {"fileArn": file_arn}}),
        (two, "Custom", {"custom": {"fields": [_string(f["priority"], "high")]}}),
        (two, "ConnectCase", {"connectCase": {"caseId": one}}),
        (three, "Sla", _sla("Escalate", 2, "escalated")),
        (three, "Sla", _sla("First response", 5, "pending-customer")),
    ]
    made: list[tuple[str, str, datetime]] = []  # (case, item, association time)
    for n, (case_id, kind, content) in enumerate(plan):
        clock.set(START + timedelta(seconds=10 * (n + 1)))
        item = cases.create_related_item(
            domainId=domain_id, caseId=case_id, type=kind, content=content, performedBy={"userArn": USER}
        )
        made.append((case_id, item["relatedItemId"], clock.now()))
    clock.set(START + timedelta(minutes=2))
    cases.update_case(domainId=domain_id, caseId=two, fields=[_string("status", "pending-customer")])  # Met
    clock.set(START + timedelta(minutes=7))
    cases.update_case(domainId=domain_id, caseId=three, fields=[_string("status", "escalated")])  # NotMet
    clock.set(
        START + timedelta(minutes=8) + LAG
    )  # search sees the domain at 09:08: First response of 3 overdue

    def search(*filters: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
        found = cases.search_all_related_items(domainId=domain_id, filters=list(filters), **kwargs)
        return list(found["relatedItems"])

    def ids(*filters: dict[str, Any], **kwargs: Any) -> list[str]:
        return [i["relatedItemId"] for i in search(*filters, **kwargs)]

    everything = search()
    assert [(i["caseId"], i["relatedItemId"], i["associationTime"]) for i in everything] == made
    comment = everything[0]
    assert set(comment) == {
        "caseId",
        "relatedItemId",
        "type",
        "associationTime",
        "content",
        "performedBy",
        "tags",
    }
    assert comment["type"] == "Comment"
    assert comment["content"] == {"comment": {"body": "hello", "contentType": "Text/Plain"}}
    assert comment["performedBy"] == {"userArn": USER}

    item = {item_id: n for n, (_, item_id, _) in enumerate(made)}
    assert [item[i] for i in ids({"sla": {"status": "Active"}})] == [1]
    assert [item[i] for i in ids({"sla": {"status": "Met"}})] == [3]
    assert [item[i] for i in ids({"sla": {"status": "NotMet"}})] == [7]
    assert [item[i] for i in ids({"sla": {"status": "Overdue"}})] == [8]
    assert [item[i] for i in ids({"sla": {"name": "First response"}})] == [1, 8]
    assert [item[i] for i in ids({"sla": {"name": "First response", "status": "Overdue"}})] == [8]
    assert [item[i] for i in ids({"sla": {}})] == [1, 3, 7, 8]
    assert [item[i] for i in ids({"comment": {}})] == [0]
    assert [item[i] for i in ids({"contact": {"contactArn": contact, "channel": ["VOICE"]}})] == [2]
    assert [item[i] for i in ids({"file": {"fileArn": file_arn}})] == [4]
    equal_high = {"field": {"equalTo": _string(f["priority"], "high")}}
    assert [item[i] for i in ids({"custom": {"fields": equal_high}})] == [5]
    assert [item[i] for i in ids({"connectCase": {"caseId": one}})] == [6]
    assert [item[i] for i in ids({"comment": {}}, {"file": {}})] == [0, 4]  # filters are OR-ed

    by_time = ids(sorts=[{"sortProperty": "AssociationTime", "sortOrder": "Desc"}])
    assert [item[i] for i in by_time] == list(range(8, -1, -1))
    by_case = search(
        sorts=[
            {"sortProperty": "CaseId", "sortOrder": "Asc"},
            {"sortProperty": "AssociationTime", "sortOrder": "Desc"},
        ]
    )
    expected = sorted(made, key=lambda m: (m[0], -m[2].timestamp()))
    assert [(i["caseId"], i["relatedItemId"]) for i in by_case] == [(c, i) for c, i, _ in expected]
    assert emu.calls["SearchAllRelatedItems"] == 16
    assert emu.call_log[-1].params == {  # ids and orders only, never content
        "domainId": domain_id,
        "filters": [],
        "sorts": ["CaseId Asc", "AssociationTime Desc"],
    }


def test_search_all_related_items_pages_and_validation(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    domain_id, template_id, _ = _domain(emu)
    first, second = (emu.seed_case(domain_id, template_id) for _ in range(2))
    comment = {"comment": {"body": "note", "contentType": "Text/Plain"}}
    for n in range(25):
        emu.seed_related_item(domain_id, first if n % 2 else second, "Comment", comment)
    emu.seed_related_item(domain_id, second, "File", {"file": {"fileArn": "arn:aws:connect:::file/f"}})
    clock.advance(LAG)

    default = cases.search_all_related_items(domainId=domain_id)
    assert len(default["relatedItems"]) == 25  # no default in the model: its largest page
    rest = cases.search_all_related_items(domainId=domain_id, nextToken=default["nextToken"])
    assert [i["type"] for i in rest["relatedItems"]] == ["File"]
    assert "nextToken" not in rest
    comments = cases.search_all_related_items(domainId=domain_id, maxResults=25, filters=[{"comment": {}}])
    assert len(comments["relatedItems"]) == 25
    assert "nextToken" not in comments  # exactly one full page
    paginator = cases.get_paginator("search_all_related_items")
    assert [len(p["relatedItems"]) for p in paginator.paginate(domainId=domain_id)] == [25, 1]
    small = list(paginator.paginate(domainId=domain_id, PaginationConfig={"PageSize": 10}))
    assert [len(p["relatedItems"]) for p in small] == [10, 10, 6]
    assert {i["caseId"] for p in small for i in p["relatedItems"]} == {first, second}

    lenient: Any = emu.client(Config(parameter_validation=False), in_process=True)
    sort = {"sortProperty": "AssociationTime", "sortOrder": "Asc"}
    refused: list[tuple[Any, dict[str, Any], str]] = [
        (
            cases,
            {"maxResults": 26},
            "Value at 'maxResults' failed to satisfy constraint: Member must be less",
        ),
        (
            lenient,
            {"maxResults": 0},
            "Value at 'maxResults' failed to satisfy constraint: Member must be greater",
        ),
        (cases, {"filters": [{"comment": {}}] * 11}, "Value at 'filters'"),
        (cases, {"sorts": [sort] * 3}, "Value at 'sorts'"),
        (cases, {"sorts": [{**sort, "sortProperty": "Title"}]}, "enum value set: [AssociationTime, CaseId]"),
        (cases, {"filters": [{"sla": {"status": "Late"}}]}, "enum value set: [Active, Overdue, Met, NotMet]"),
        (lenient, {"filters": [{"comment": {}, "file": {}}]}, "exactly one member"),
    ]
    for client, kwargs, expected in refused:
        with pytest.raises(client.exceptions.ValidationException) as excinfo:
            client.search_all_related_items(domainId=domain_id, **kwargs)
        assert expected in _message(excinfo), kwargs
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        cases.search_all_related_items(domainId="no-such-domain")


# --- quotas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["SearchCases", "SearchAllRelatedItems"])
def test_search_quota_two_per_second_burst_ten(clock: VirtualClock, operation: str) -> None:
    emu = CasesEmulator(clock=clock, quotas=REAL_QUOTAS)
    assert REAL_QUOTAS[operation] == (2.0, 10)
    cases: Any = emu.client(in_process=True)
    domain_id = emu.seed_domain()
    search = cases.search_cases if operation == "SearchCases" else cases.search_all_related_items

    for _ in range(10):
        search(domainId=domain_id)
    with pytest.raises(cases.exceptions.ThrottlingException) as excinfo:  # the 11th of the burst
        search(domainId=domain_id)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    clock.advance(0.5)  # one token back
    search(domainId=domain_id)
    with pytest.raises(cases.exceptions.ThrottlingException):
        search(domainId=domain_id)
    assert [r.status for r in emu.call_log if r.operation == operation] == [200] * 10 + [429, 200, 429]


# --- the index lag -----------------------------------------------------------------------------------


def test_search_sees_a_change_only_after_the_index_lag(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    domain_id, template_id, _ = _domain(emu)

    def searched() -> dict[str, str]:
        found = cases.search_cases(domainId=domain_id, fields=[{"id": "title"}])
        return {c["caseId"]: c["fields"][0]["value"]["stringValue"] for c in found["cases"]}

    def title_now(case_id: str) -> str:
        got = cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}])
        return str(got["fields"][0]["value"]["stringValue"])

    case_id = cases.create_case(domainId=domain_id, templateId=template_id, fields=[_string("title", "v1")])[
        "caseId"
    ]
    assert (searched(), title_now(case_id)) == ({}, "v1")  # GetCase reads its writes; search does not
    clock.advance(LAG - timedelta(milliseconds=1))
    assert searched() == {}
    clock.advance(timedelta(milliseconds=1))
    assert searched() == {case_id: "v1"}

    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", "v2")])
    clock.advance(LAG / 2)
    cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", "v3")])
    assert (searched(), title_now(case_id)) == ({case_id: "v1"}, "v3")  # the old version in between
    clock.advance(LAG / 2)
    assert searched() == {case_id: "v2"}
    clock.advance(LAG / 2)
    assert searched() == {case_id: "v3"}

    comment = {"comment": {"body": "hi", "contentType": "Text/Plain"}}
    cases.create_related_item(domainId=domain_id, caseId=case_id, type="Comment", content=comment)
    per_case = cases.search_related_items(domainId=domain_id, caseId=case_id)["relatedItems"]
    assert len(per_case) == 1  # per case: read-after-write
    assert cases.search_all_related_items(domainId=domain_id)["relatedItems"] == []
    clock.advance(LAG)
    assert len(cases.search_all_related_items(domainId=domain_id)["relatedItems"]) == 1

    cases.delete_case(domainId=domain_id, caseId=case_id)
    with pytest.raises(cases.exceptions.ResourceNotFoundException):
        title_now(case_id)
    assert searched() == {case_id: "v3"}  # still indexed
    assert len(cases.search_all_related_items(domainId=domain_id)["relatedItems"]) == 1
    clock.advance(LAG)
    assert searched() == {}
    assert cases.search_all_related_items(domainId=domain_id)["relatedItems"] == []


def test_ground_truth_records_are_indexed_with_the_lag(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    """The local pipeline applies Cases' timeline with `put_case_record` / `remove_case`."""
    domain_id, template_id, _ = _domain(emu)
    case_id = emu.seed_case(domain_id, template_id, {"title": "before"})
    clock.advance(LAG)
    record = emu.case_record(domain_id, case_id)
    record["fields"]["title"] = {"stringValue": "after"}

    def searched() -> list[dict[str, Any]]:
        return list(cases.search_cases(domainId=domain_id, fields=[{"id": "title"}])["cases"])

    emu.put_case_record(domain_id, record)
    assert searched()[0]["fields"] == [_string("title", "before")]
    clock.advance(LAG)
    assert searched()[0]["fields"] == [_string("title", "after")]
    emu.remove_case(domain_id, case_id)
    assert len(searched()) == 1
    clock.advance(LAG)
    assert searched() == []

    emu.put_case_record(domain_id, record)  # back again
    emu.flush_search_index()  # as if the lag had passed
    assert searched()[0]["fields"] == [_string("title", "after")]

    restored = CasesEmulator(clock=clock)  # a loaded state: Cases indexed it long ago
    restored.load_state(emu.export_state())
    assert len(restored.client(in_process=True).search_cases(domainId=domain_id)["cases"]) == 1


def test_sla_statuses_in_search_are_as_of_the_lag(
    emu: CasesEmulator, cases: Any, clock: VirtualClock
) -> None:
    domain_id, template_id, _ = _domain(emu)
    case_id = emu.seed_case(domain_id, template_id)
    cases.create_related_item(
        domainId=domain_id, caseId=case_id, type="Sla", content=_sla("First response", 1, "pending-customer")
    )

    def statuses() -> tuple[str, str]:
        everywhere = cases.search_all_related_items(domainId=domain_id)["relatedItems"]
        here = cases.search_related_items(domainId=domain_id, caseId=case_id)["relatedItems"]
        return str(everywhere[0]["content"]["sla"]["slaConfiguration"]["status"]), str(
            here[0]["content"]["sla"]["slaConfiguration"]["status"]
        )

    clock.advance(timedelta(minutes=1, seconds=1))  # past the target
    assert statuses() == ("Active", "Overdue")  # search: the domain as it was LAG ago
    clock.advance(LAG)
    assert statuses() == ("Overdue", "Overdue")


def test_jittered_indexing_never_goes_back_to_an_older_version(clock: VirtualClock) -> None:
    emu = CasesEmulator(
        clock=clock, seed=3, search_index_lag=timedelta(seconds=1), search_index_jitter=LAG * 2
    )
    cases: Any = emu.client(in_process=True)
    domain_id, template_id, _ = _domain(emu)
    case_id = emu.seed_case(domain_id, template_id, {"title": "v00"})
    for n in range(1, 20):
        clock.advance(0.1)
        cases.update_case(domainId=domain_id, caseId=case_id, fields=[_string("title", f"v{n:02d}")])
    seen: list[str] = []
    for _ in range(30):
        found = cases.search_cases(domainId=domain_id, fields=[{"id": "title"}])["cases"]
        seen += [c["fields"][0]["value"]["stringValue"] for c in found]
        clock.advance(0.5)
    assert seen == sorted(seen)
    assert seen[-1] == "v19"
    assert len(set(seen)) < 20  # some versions were overtaken before they were ever visible


def test_the_default_lag_and_the_knobs() -> None:
    clock = VirtualClock(START)
    emu = CasesEmulator(clock=clock)
    assert emu.search_index_lag == DEFAULT_SEARCH_INDEX_LAG == timedelta(seconds=3)
    assert emu.search_index_jitter == timedelta(0)
    emu.search_index_lag = timedelta(0)
    cases: Any = emu.client(in_process=True)
    domain_id = emu.seed_domain()
    template_id = emu.seed_template(domain_id, "T")
    emu.seed_case(domain_id, template_id)
    assert cases.search_cases(domainId=domain_id)["totalCount"] == 1  # no lag: at once
    with pytest.raises(ValueError, match="negative"):
        emu.search_index_lag = timedelta(seconds=-1)
