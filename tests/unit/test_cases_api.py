"""`CasesApi` (GetCase, SearchRelatedItems, SearchCases, SearchAllRelatedItems) and its one error translator, on the real boto3
`connectcases` client with botocore's Stubber (no network; one attempt, so no retry takes a stub)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from casewatch.adapters.cases_api import MAX_FIELDS_PER_REQUEST, CasesApi, translate
from casewatch.adapters.clients import client_config
from casewatch.errors import (
    CaseNotFoundError,
    CasesError,
    CasesRequestError,
    CasesThrottledError,
    CasesUnavailableError,
)
from casewatch.models.fields import FieldValue
from tests.builders import CASE_1, DOMAIN, REGION

CREATED = datetime(2026, 11, 23, 9, 1, tzinfo=UTC)


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[CasesApi, Stubber]]:
    client = boto3.client("connectcases", region_name=REGION, config=client_config(max_attempts=1))
    with Stubber(client) as stubber:
        yield CasesApi(client), stubber
        stubber.assert_no_pending_responses()


def client_error(code: str, status: int, operation: str = "GetCase") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


# --- the translator --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ResourceNotFoundException", 404, CaseNotFoundError),
        ("", 404, CaseNotFoundError),
        ("ThrottlingException", 429, CasesThrottledError),
        ("TooManyRequestsException", 400, CasesThrottledError),
        ("", 429, CasesThrottledError),
        ("InternalServerException", 500, CasesUnavailableError),
        ("ServiceUnavailableException", 503, CasesUnavailableError),
        ("", 500, CasesUnavailableError),  # the edge: 500 is the first unavailable status
        ("", 499, CasesRequestError),
        ("AccessDeniedException", 403, CasesRequestError),
        ("ValidationException", 400, CasesRequestError),
        ("ConflictException", 409, CasesRequestError),
    ],
)
def test_one_translation_of_what_cases_answers(code: str, status: int, kind: type[CasesError]) -> None:
    error = translate(client_error(code, status), "GetCase", CASE_1, requests=2, throttled=3)
    assert type(error) is kind
    assert CASE_1 in str(error) and "GetCase" in str(error)
    if isinstance(error, CasesThrottledError):
        assert (error.requests, error.throttled) == (2, 3)
    if isinstance(error, CasesRequestError):
        assert error.code == code


def test_a_connection_failure_is_unavailable() -> None:
    error = translate(EndpointConnectionError(endpoint_url="https://cases"), "SearchRelatedItems", CASE_1)
    assert type(error) is CasesUnavailableError
    assert "EndpointConnectionError" in str(error)


# --- GetCase ---------------------------------------------------------------------------------------------


def get_case_response(fields: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "templateId": "tpl",
        "fields": [{"id": fid, "value": value} for fid, value in fields.items()],
    }
    if token:
        response["nextToken"] = token
    return response


@pytest.mark.parametrize(
    ("ids", "requests"), [(1, 1), (MAX_FIELDS_PER_REQUEST, 1), (MAX_FIELDS_PER_REQUEST + 1, 2)]
)
def test_missing_fields_go_in_chunks_of_at_most_220(
    stubbed: tuple[CasesApi, Stubber], ids: int, requests: int
) -> None:
    api, stubber = stubbed
    field_ids = [f"f{i:03d}" for i in range(ids)]
    chunks = [field_ids[i : i + MAX_FIELDS_PER_REQUEST] for i in range(0, ids, MAX_FIELDS_PER_REQUEST)]
    for chunk in chunks:
        stubber.add_response(
            "get_case",
            get_case_response({fid: {"stringValue": fid} for fid in chunk}),
            {"domainId": DOMAIN, "caseId": CASE_1, "fields": [{"id": fid} for fid in chunk]},
        )
    read = api.get_case_fields(DOMAIN, CASE_1, field_ids + field_ids[:1])  # a repeated id is asked once
    assert (read.requests, len(chunks)) == (requests, requests)
    assert read.values == {fid: FieldValue.of(fid) for fid in field_ids}
    assert read.template_id == "tpl"


def test_pages_are_followed_and_empty_values_left_out(stubbed: tuple[CasesApi, Stubber]) -> None:
    api, stubber = stubbed
    asked = [{"id": "status"}, {"id": "title"}, {"id": "assigned_user"}, {"id": "score"}]
    stubber.add_response(
        "get_case",
        get_case_response({"status": {"stringValue": "open"}, "assigned_user": {"emptyValue": {}}}, "t1"),
        {"domainId": DOMAIN, "caseId": CASE_1, "fields": asked},
    )
    stubber.add_response(
        "get_case",
        get_case_response({"title": {"stringValue": "T"}, "score": {"doubleValue": 2.5}}),
        {"domainId": DOMAIN, "caseId": CASE_1, "fields": asked, "nextToken": "t1"},
    )
    read = api.get_case_fields(DOMAIN, CASE_1, ["status", "title", "assigned_user", "score"])
    assert read.requests == 2
    assert read.values == {
        "status": FieldValue.of("open"),
        "title": FieldValue.of("T"),
        "score": FieldValue.of(2.5),
    }  # assigned_user is empty: left out, as an absent field would be


def test_no_fields_no_request(stubbed: tuple[CasesApi, Stubber]) -> None:
    api, _ = stubbed
    read = api.get_case_fields(DOMAIN, CASE_1, [])
    assert (read.requests, read.values) == (0, {})


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ResourceNotFoundException", 404, CaseNotFoundError),
        ("ThrottlingException", 429, CasesThrottledError),
        ("InternalServerException", 500, CasesUnavailableError),
        ("AccessDeniedException", 403, CasesRequestError),
    ],
)
def test_getcase_errors_are_translated_from_the_client_error(
    stubbed: tuple[CasesApi, Stubber], code: str, status: int, kind: type[CasesError]
) -> None:
    api, stubber = stubbed
    stubber.add_response("get_case", get_case_response({"status": {"stringValue": "open"}}, "t1"))
    stubber.add_client_error("get_case", service_error_code=code, http_status_code=status)
    with pytest.raises(kind) as raised:
        api.get_case_fields(DOMAIN, CASE_1, ["status", "title"])
    assert isinstance(raised.value.__cause__, ClientError)  # raised from what boto3 raised
    if isinstance(raised.value, CasesThrottledError):
        assert raised.value.requests == 2  # both pages asked for


# --- SearchRelatedItems ------------------------------------------------------------------------------------


def sla_item(item_id: str, status: str = "Active") -> dict[str, Any]:
    return {
        "relatedItemId": item_id,
        "type": "Sla",
        "associationTime": CREATED,
        "content": {
            "sla": {
                "slaConfiguration": {
                    "name": "Callback",
                    "type": "CaseField",
                    "status": status,
                    "fieldId": "status",
                    "targetFieldValues": [{"stringValue": "closed"}],
                    "targetTime": datetime(2026, 11, 23, 10, 1, tzinfo=UTC),
                }
            }
        },
    }


def search(item_type: str, token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "domainId": DOMAIN,
        "caseId": CASE_1,
        "filters": [{item_type: {}}],
        "maxResults": 25,
    }
    if token:
        request["nextToken"] = token
    return request


def test_case_slas_follow_every_page(stubbed: tuple[CasesApi, Stubber]) -> None:
    api, stubber = stubbed
    stubber.add_response(
        "search_related_items", {"relatedItems": [sla_item("s1")], "nextToken": "p2"}, search("sla")
    )
    stubber.add_response(
        "search_related_items", {"relatedItems": [sla_item("s2", "Met")]}, search("sla", "p2")
    )
    reports = api.case_slas(DOMAIN, CASE_1)
    assert [(r.related_item_id, r.status) for r in reports] == [("s1", "Active"), ("s2", "Met")]
    assert reports[0].created == CREATED
    assert reports[0].spec.target_values == ("closed",)


def test_the_sparse_list_of_related_items_skips_its_empty_entries(
    stubbed: tuple[CasesApi, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore keeps `None` for the sparse list's null entries: skipped, not an AttributeError."""
    api, stubber = stubbed
    # What Cases returns is not what its model allows (a null entry): the stub must not refuse it.
    monkeypatch.setattr(stubber, "_validate_operation_response", lambda *_: None)
    stubber.add_response("search_related_items", {"relatedItems": [sla_item("s1"), None]}, search("sla"))
    assert [r.related_item_id for r in api.case_slas(DOMAIN, CASE_1)] == ["s1"]


# --- SearchCases, SearchAllRelatedItems: the change feed ---------------------------------------------------

SINCE = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)


def cases_search(
    token: str | None = None, fields: tuple[str, ...] = ("status", "last_updated_datetime")
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "domainId": DOMAIN,
        "fields": [{"id": f} for f in fields],
        "filter": {
            "field": {
                "greaterThan": {
                    "id": "last_updated_datetime",
                    "value": {"stringValue": "2026-11-23T09:00:00.123Z"},
                }
            }
        },
        "sorts": [{"fieldId": "last_updated_datetime", "sortOrder": "Asc"}],
        "maxResults": 25,
    }
    if token:
        request["nextToken"] = token
    return request


def found_case(case_id: str, status: str) -> dict[str, Any]:
    return {
        "caseId": case_id,
        "templateId": "tpl",
        "fields": [
            {"id": "status", "value": {"stringValue": status}},
            {"id": "last_updated_datetime", "value": {"stringValue": "2026-11-23T09:30:00.000Z"}},
            {"id": "summary", "value": {"emptyValue": {}}},
        ],
        "tags": {},
    }


def test_changed_cases_follow_every_page_of_25_sorted_by_last_update(
    stubbed: tuple[CasesApi, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, stubber = stubbed
    monkeypatch.setattr(stubber, "_validate_operation_response", lambda *_: None)  # the sparse null entry
    page = [found_case(f"c{n:02d}", "open") for n in range(25)]
    stubber.add_response("search_cases", {"cases": page, "nextToken": "p2"}, cases_search())
    stubber.add_response("search_cases", {"cases": [None, found_case("c25", "closed")]}, cases_search("p2"))
    found = api.changed_cases(DOMAIN, SINCE, ["status", "last_updated_datetime"])
    assert found.requests == 2
    assert [c.case_id for c in found.items] == [f"c{n:02d}" for n in range(26)]
    assert found.items[-1].values == {
        "status": FieldValue.of("closed"),
        "last_updated_datetime": FieldValue.of("2026-11-23T09:30:00.000Z"),
    }  # an emptyValue is no value


def test_changed_cases_of_exactly_one_page_take_one_request(stubbed: tuple[CasesApi, Stubber]) -> None:
    api, stubber = stubbed
    page = [found_case(f"c{n:02d}", "open") for n in range(25)]
    stubber.add_response("search_cases", {"cases": page}, cases_search())
    found = api.changed_cases(DOMAIN, SINCE, ["status", "last_updated_datetime"])
    assert (len(found.items), found.requests) == (25, 1)


def test_changed_cases_ask_for_at_most_25_fields(stubbed: tuple[CasesApi, Stubber]) -> None:
    api, stubber = stubbed
    fields = tuple(f"f{n:02d}" for n in range(30))
    stubber.add_response("search_cases", {"cases": []}, cases_search(fields=fields[:25]))
    assert api.changed_cases(DOMAIN, SINCE, fields).items == []


def items_search(token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "domainId": DOMAIN,
        "filters": [{"sla": {}}, {"comment": {}}],
        "sorts": [{"sortProperty": "AssociationTime", "sortOrder": "Desc"}],
        "maxResults": 25,
    }
    if token:
        request["nextToken"] = token
    return request


def found_item(item_id: str, item_type: str, at: datetime, case_id: str = CASE_1) -> dict[str, Any]:
    content = (
        sla_item(item_id)["content"]
        if item_type == "Sla"
        else {"comment": {"body": "hi", "contentType": "Text/Plain"}}
    )
    return {
        "caseId": case_id,
        "relatedItemId": item_id,
        "type": item_type,
        "associationTime": at,
        "content": content,
    }


def test_associated_items_stop_at_the_first_item_not_after_since(
    stubbed: tuple[CasesApi, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest first: the first item at or before `since` ends the search (no further page is read)."""
    api, stubber = stubbed
    monkeypatch.setattr(stubber, "_validate_operation_response", lambda *_: None)  # the sparse null entry
    first = [found_item(f"cm{n:02d}", "Comment", SINCE + timedelta(minutes=60 - n)) for n in range(25)]
    second = [
        None,
        found_item("s1", "Sla", SINCE + timedelta(microseconds=1), case_id="c2"),
        found_item("cm-at", "Comment", SINCE),  # exactly at `since`: already seen
        found_item("cm-old", "Comment", SINCE - timedelta(minutes=1)),
    ]
    stubber.add_response(
        "search_all_related_items", {"relatedItems": first, "nextToken": "p2"}, items_search()
    )
    stubber.add_response(
        "search_all_related_items", {"relatedItems": second, "nextToken": "p3"}, items_search("p2")
    )
    found = api.associated_items(DOMAIN, SINCE, ["Sla", "comment"])
    assert found.requests == 2  # p3 is never asked for
    assert [i.related_item_id for i in found.items] == [*(f"cm{n:02d}" for n in range(25)), "s1"]
    sla = found.items[-1]
    assert (sla.case_id, sla.item_type, sla.associated_at) == ("c2", "Sla", SINCE + timedelta(microseconds=1))
    assert sla.sla is not None and sla.sla.spec.target_values == ("closed",)
    assert found.items[0].sla is None


def test_search_errors_are_translated_from_the_client_error(stubbed: tuple[CasesApi, Stubber]) -> None:
    """The translated error's cause is boto3's error (it once was raised `from` itself)."""
    api, stubber = stubbed
    stubber.add_response(
        "search_related_items", {"relatedItems": [sla_item("s1")], "nextToken": "p2"}, search("sla")
    )
    stubber.add_client_error(
        "search_related_items", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    with pytest.raises(CaseNotFoundError) as raised:
        api.case_slas(DOMAIN, CASE_1)
    assert isinstance(raised.value.__cause__, ClientError)
    assert raised.value.__cause__ is not raised.value


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 429, CasesThrottledError),
        ("InternalServerException", 500, CasesUnavailableError),
    ],
)
def test_feed_search_errors_are_translated(
    stubbed: tuple[CasesApi, Stubber], code: str, status: int, kind: type[CasesError]
) -> None:
    api, stubber = stubbed
    stubber.add_client_error("search_cases", service_error_code=code, http_status_code=status)
    stubber.add_client_error("search_all_related_items", service_error_code=code, http_status_code=status)
    with pytest.raises(kind, match="SearchCases"):
        api.changed_cases(DOMAIN, SINCE, ["status"])
    with pytest.raises(kind, match="SearchAllRelatedItems"):
        api.associated_items(DOMAIN, SINCE, ["Sla"])
