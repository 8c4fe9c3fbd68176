"""The emulator in process: a boto3 client answered through botocore's `before-send` event, with no
socket, gets the same answers as over HTTP and keeps botocore's parsing, modeled errors and retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pytest_socket import disable_socket, enable_socket

from casewatch.adapters import clients
from casewatch.adapters.cases_api import CasesApi
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import IN_PROCESS_ENDPOINT, CasesEmulator
from casewatch_dev.pipeline.virtual_time import botocore_sleeps_on

START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


@contextmanager
def no_sockets() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


def _world(emu: CasesEmulator, clock: VirtualClock) -> tuple[str, str]:
    """A domain with a case, a comment and an SLA, indexed for search."""
    domain_id = emu.seed_domain(name="acme")
    template_id = emu.seed_template(domain_id, "Default")
    case_id = emu.seed_case(domain_id, template_id, {"title": "Refund"}, tags={"team": "billing"})
    emu.seed_related_item(
        domain_id, case_id, "Comment", {"comment": {"body": "hi", "contentType": "Text/Plain"}}
    )
    sla = {"name": "First response", "type": "CaseField", "fieldId": "status"}
    config = {**sla, "targetFieldValues": [{"stringValue": "closed"}], "targetSlaMinutes": 30}
    emu.seed_related_item(domain_id, case_id, "Sla", {"sla": {"slaInputConfiguration": config}})
    clock.advance(emu.search_index_lag)
    return domain_id, case_id


def _answer(call: Any) -> dict[str, Any]:
    """What a call returned or raised, without what differs per request (request id, transport headers)."""
    try:
        response = dict(call())
    except ClientError as error:
        response = dict(error.response)
    status = response.pop("ResponseMetadata")["HTTPStatusCode"]
    return {**response, "status": status}


def test_in_process_answers_like_http(clock: VirtualClock) -> None:
    with CasesEmulator(clock=clock, seed=7) as emu:
        domain_id, case_id = _world(emu, clock)
        over_http: Any = emu.client()
        in_process: Any = emu.client(in_process=True)
        assert in_process.meta.endpoint_url == IN_PROCESS_ENDPOINT

        def calls(cases: Any) -> list[Any]:
            return [
                lambda: cases.get_domain(domainId=domain_id),
                lambda: cases.get_case(
                    domainId=domain_id, caseId=case_id, fields=[{"id": "title"}, {"id": "status"}]
                ),
                lambda: cases.search_cases(domainId=domain_id, fields=[{"id": "title"}]),
                lambda: cases.search_all_related_items(
                    domainId=domain_id, filters=[{"sla": {"status": "Active"}}]
                ),
                lambda: cases.search_related_items(domainId=domain_id, caseId=case_id, maxResults=1),
                lambda: cases.list_fields(domainId=domain_id, maxResults=3),
                lambda: cases.get_case(domainId=domain_id, caseId="missing", fields=[{"id": "title"}]),
                lambda: cases.search_cases(domainId=domain_id, maxResults=101),
                cases.list_domains,
            ]

        expected = [_answer(call) for call in calls(over_http)]
        with no_sockets():
            answers = [_answer(call) for call in calls(in_process)]
        assert answers == expected
        assert [a["status"] for a in answers] == [200] * 6 + [404, 400, 501]
        assert answers[6]["Error"]["Code"] == "ResourceNotFoundException"
        assert answers[6]["resourceId"] == "missing"  # modeled error members parsed by botocore
        assert isinstance(answers[3]["relatedItems"][0]["associationTime"], datetime)


def test_a_throttle_in_process_is_retried_by_botocore(clock: VirtualClock) -> None:
    emu = CasesEmulator(clock=clock)  # never started: no server at all
    domain_id, case_id = _world(emu, clock)
    before = clock.now()
    cases: Any = emu.client(Config(retries={"mode": "standard", "total_max_attempts": 3}), in_process=True)
    emu.fail_next("GetCase", 429)
    with botocore_sleeps_on(clock), no_sockets():
        got = cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}])
        assert got["ResponseMetadata"]["RetryAttempts"] == 1
        assert clock.now() > before  # botocore's back-off, slept on the virtual clock
        emu.fail_next("GetCase", 429, count=3)
        with pytest.raises(cases.exceptions.ThrottlingException) as excinfo:
            cases.get_case(domainId=domain_id, caseId=case_id, fields=[{"id": "title"}])
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [r.status for r in emu.call_log if r.operation == "GetCase"] == [429, 200, 429, 429, 429]


def test_the_product_client_goes_in_process(clock: VirtualClock, aws_env: None) -> None:
    """`casewatch.adapters.clients.cases_client()` (adaptive retries), attached after it is created."""
    emu = CasesEmulator(clock=clock, getcase_quota=True)
    domain_id, case_id = _world(emu, clock)
    clients.reset_clients()
    try:
        with botocore_sleeps_on(clock):
            client = emu.attach(clients.cases_client(4))  # its endpoint is Cases' own: nothing leaves
            api = CasesApi(client)
            emu.fail_next("GetCase", 429, count=2)
            with no_sockets():
                fields = api.get_case_fields(domain_id, case_id, ["title", "status"])
                # Over the quota (4/s, burst 10): throttled, and adaptive mode's retries and rate limiter
                # wait on the virtual clock until every call gets through.
                for _ in range(40):
                    api.get_case_fields(domain_id, case_id, ["title"])
    finally:
        clients.reset_clients()
    assert {k: v.python for k, v in fields.values.items()} == {"title": "Refund", "status": "open"}
    assert (fields.requests, fields.throttled) == (1, 2)  # CasesApi saw every attempt (needs-retry)
    statuses = [r.status for r in emu.call_log if r.operation == "GetCase"]
    assert statuses.count(200) == 41
    assert statuses.count(429) > 2  # the quota's own throttles, retried


def test_attach_replaces_and_detach_restores(clock: VirtualClock) -> None:
    with CasesEmulator(clock=clock, seed=1) as served:
        other = CasesEmulator(clock=clock, seed=2)
        served_domain, other_domain = served.seed_domain(name="served"), other.seed_domain(name="other")
        cases: Any = served.client()  # over HTTP to `served`
        with no_sockets():
            other.attach(cases)
            assert cases.get_domain(domainId=other_domain)["name"] == "other"
            served.attach(cases)  # replaces `other`
            assert cases.get_domain(domainId=served_domain)["name"] == "served"
        CasesEmulator.detach(cases)
        assert cases.get_domain(domainId=served_domain)["name"] == "served"  # over HTTP again
        assert (other.calls["GetDomain"], served.calls["GetDomain"]) == (1, 2)
