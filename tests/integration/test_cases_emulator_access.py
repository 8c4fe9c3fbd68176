"""The Cases emulator authorizes `cases:*` actions on the resources Cases authorizes, under the policies of
whoever signed the request (its access key), and answers 403 AccessDeniedException as Cases would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.clients import reset_clients, session_scope
from casewatch.constants import ENV_CASES_ENDPOINT
from casewatch.errors import CasesRequestError
from casewatch_dev.emulator import CasesEmulator
from casewatch_dev.iam import AccessControl, Decision, Policy, Principal

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/casewatch-local-case-changed/case-changed"


def grants(domain: str, *, fields: bool = True, search: bool = False) -> Policy:
    arn = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{domain}"
    resources = [arn, f"{arn}/case/*"] + ([f"{arn}/field/*"] if fields else [])
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "cases:GetCase", "Resource": resources}]
    if search:
        statements.append(
            {"Effect": "Allow", "Action": "cases:SearchRelatedItems", "Resource": [arn, f"{arn}/case/*"]}
        )
    return Policy.parse("role", {"Statement": statements})


@pytest.fixture
def access() -> AccessControl:
    return AccessControl()


@pytest.fixture
def emu(access: AccessControl) -> Iterator[CasesEmulator]:
    with CasesEmulator(seed=3, account_id=ACCOUNT, region=REGION, access=access) as emulator:
        yield emulator


@pytest.fixture
def case(emu: CasesEmulator) -> tuple[str, str]:
    domain = emu.seed_domain(domain_id="d-1")
    template = emu.seed_template(domain, "Default")
    return domain, emu.seed_case(domain, template, {"title": "Printer on fire", "status": "open"})


def client(emu: CasesEmulator, key: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key="s", aws_session_token="t", region_name=REGION
    ).client(
        "connectcases",
        endpoint_url=emu.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_a_granted_call_is_answered(emu: CasesEmulator, access: AccessControl, case: tuple[str, str]) -> None:
    domain, case_id = case
    access.register("ASIAFUNCTION", Principal("case-changed", ROLE, (grants(domain),)))
    found = client(emu, "ASIAFUNCTION").get_case(domainId=domain, caseId=case_id, fields=[{"id": "title"}])
    assert found["fields"] == [{"id": "title", "value": {"stringValue": "Printer on fire"}}]
    assert access.denials == []


def test_every_resource_of_the_request_must_be_allowed(
    emu: CasesEmulator, access: AccessControl, case: tuple[str, str]
) -> None:
    domain, case_id = case
    access.register("ASIAFUNCTION", Principal("case-changed", ROLE, (grants(domain, fields=False),)))
    cases = client(emu, "ASIAFUNCTION")
    with pytest.raises(cases.exceptions.AccessDeniedException) as denied:  # the modeled exception
        cases.get_case(domainId=domain, caseId=case_id, fields=[{"id": "title"}])
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    field = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{domain}/field/title"
    assert denied.value.response["Error"]["Message"] == (
        f"User: {ROLE} is not authorized to perform: cases:GetCase on resource: {field} "
        "because no identity-based policy allows the cases:GetCase action"
    )
    (denial,) = access.denials
    assert (denial.caller, denial.action, denial.resource, denial.decision) == (
        "case-changed",
        "cases:GetCase",
        field,
        Decision.IMPLICIT_DENY,
    )
    with pytest.raises(cases.exceptions.AccessDeniedException):  # not granted at all
        cases.search_related_items(domainId=domain, caseId=case_id)
    assert emu.calls["GetCase"] == 1  # a denied request is still a request


def test_an_unknown_or_missing_signature_is_denied(
    emu: CasesEmulator, access: AccessControl, case: tuple[str, str]
) -> None:
    domain, case_id = case
    cases = client(emu, "ASIAUNKNOWN")
    with pytest.raises(cases.exceptions.AccessDeniedException):
        cases.get_case(domainId=domain, caseId=case_id, fields=[{"id": "title"}])
    status, _, _ = emu.handle("POST", f"/domains/{domain}/cases/{case_id}", b'{"fields": [{"id": "title"}]}')
    assert status == 403
    assert [d.caller for d in access.denials] == ["unknown caller (ASIAUNKNOWN)", "unknown caller (unsigned)"]


def test_without_access_control_everything_is_answered(case: tuple[str, str]) -> None:
    with CasesEmulator(seed=3, account_id=ACCOUNT, region=REGION) as open_emu:
        domain = open_emu.seed_domain(domain_id="d-1")
        template = open_emu.seed_template(domain, "Default")
        case_id = open_emu.seed_case(domain, template, {"title": "x"})
        assert client(open_emu, "anything").get_case(
            domainId=domain, caseId=case_id, fields=[{"id": "title"}]
        )


def test_the_product_sees_a_request_error_it_does_not_retry(
    emu: CasesEmulator,
    access: AccessControl,
    case: tuple[str, str],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    domain, case_id = case
    access.register("ASIAFUNCTION", Principal("sla-timer", ROLE, (grants(domain),)))
    monkeypatch.setenv(ENV_CASES_ENDPOINT, emu.url)
    reset_clients()
    session = boto3.session.Session(
        aws_access_key_id="ASIAFUNCTION", aws_secret_access_key="s", aws_session_token="t", region_name=REGION
    )
    try:
        with session_scope(session):
            api = CasesApi(max_attempts=3)
            assert api.get_case_fields(domain, case_id, ["title"])
            with pytest.raises(CasesRequestError) as refused:
                api.case_slas(domain, case_id)
    finally:
        reset_clients()
    assert refused.value.code == "AccessDeniedException"
    assert emu.calls["SearchRelatedItems"] == 1  # not retried
