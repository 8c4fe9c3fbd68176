"""The `Custom::CaseEventConfiguration` handler on a fake Cases client: lifecycle, read-back, domain change.

Issue 12: a `domain_id` change must turn the old domain's publishing off in the same update
(item 3), and a configuration Cases did not store as asked must fail the deployment (BS4: e.g. an
SDK that silently dropped `autoIncludeFields`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from casewatch.adapters.event_configuration import CasesEventConfiguration
from casewatch.domain.event_configuration import CONFIGURATION_PROPERTY, differences
from casewatch.errors import EventConfigurationMismatchError, InvalidResourcePropertiesError
from casewatch.handlers.event_configuration import handler
from tests.lambda_context import LambdaContext

OLD, NEW = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c", "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"


class FakeCases:
    """Put/GetCaseEventConfiguration per domain; `drops` members the way an older SDK would."""

    def __init__(self, domains: tuple[str, ...] = (OLD, NEW), drops: tuple[str, ...] = ()) -> None:
        self.stored: dict[str, dict[str, Any]] = {d: {"enabled": False} for d in domains}
        self.drops = drops
        self.calls: list[tuple[str, str]] = []

    def _domain(self, domain_id: str, operation: str) -> None:
        self.calls.append((operation, domain_id))
        if domain_id not in self.stored:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "domain"}}, operation
            )

    def put_case_event_configuration(self, *, domainId: str, eventBridge: dict[str, Any]) -> dict[str, Any]:
        self._domain(domainId, "PutCaseEventConfiguration")
        stored = copy.deepcopy(eventBridge)
        case_data = (stored.get("includedData") or {}).get("caseData") or {}
        for member in self.drops:
            case_data.pop(member, None)
        self.stored[domainId] = stored
        return {}

    def get_case_event_configuration(self, *, domainId: str) -> dict[str, Any]:
        self._domain(domainId, "GetCaseEventConfiguration")
        stored = copy.deepcopy(self.stored[domainId])
        fields = ((stored.get("includedData") or {}).get("caseData") or {}).get("fields")
        if fields:
            fields.reverse()  # Cases keeps no order: compared as a set
        return {"eventBridge": stored}


def request(domain_id: str, *, auto: str | None = "System", content: bool = True) -> dict[str, Any]:
    case_data: dict[str, Any] = {"fields": [{"id": "status"}, {"id": "title"}]}
    if auto:
        case_data["autoIncludeFields"] = auto
    return {
        "domainId": domain_id,
        "eventBridge": {
            "enabled": True,
            "includedData": {"caseData": case_data, "relatedItemData": {"includeContent": content}},
        },
    }


def cfn_event(
    kind: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": kind,
        "RequestId": "a8f1b0c2-0000-4000-8000-000000000001",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Casewatch/x",
        "LogicalResourceId": "CaseEventConfiguration8AF543FE",
        "ResourceType": "Custom::CaseEventConfiguration",
        "ResourceProperties": {"ServiceToken": "arn", CONFIGURATION_PROPERTY: json.dumps(new)} if new else {},
        **extra,
    }
    if old is not None:
        event["OldResourceProperties"] = {"ServiceToken": "arn", CONFIGURATION_PROPERTY: json.dumps(old)}
    return event


def invoke(event: dict[str, Any], cases: FakeCases) -> dict[str, Any]:
    context = LambdaContext("Casewatch-event-configuration")
    return handler(event, context, configuration=CasesEventConfiguration(cases))  # type: ignore[arg-type]


def test_create_puts_the_configuration_and_reads_it_back() -> None:
    cases = FakeCases()
    response = invoke(cfn_event("Create", request(NEW)), cases)
    assert response["PhysicalResourceId"] == NEW
    assert cases.stored[NEW]["enabled"] is True
    assert cases.calls == [("PutCaseEventConfiguration", NEW), ("GetCaseEventConfiguration", NEW)]


def test_a_dropped_auto_include_fields_fails_the_create_and_leaves_publishing_off() -> None:
    cases = FakeCases(drops=("autoIncludeFields",))  # what an SDK older than botocore 1.44.5 does
    with pytest.raises(
        EventConfigurationMismatchError, match=r"autoIncludeFields \(asked 'System', stored None\)"
    ):
        invoke(cfn_event("Create", request(NEW)), cases)
    assert cases.stored[NEW] == {"enabled": False}  # no Delete follows a failed Create


def test_an_update_in_the_same_domain_puts_the_new_configuration_only() -> None:
    cases = FakeCases()
    invoke(cfn_event("Create", request(OLD)), cases)
    response = invoke(
        cfn_event("Update", request(OLD, content=False), request(OLD), PhysicalResourceId=OLD), cases
    )
    assert response["PhysicalResourceId"] == OLD
    assert cases.stored[OLD]["includedData"]["relatedItemData"] == {"includeContent": False}
    assert ("PutCaseEventConfiguration", NEW) not in cases.calls


def test_a_domain_change_turns_the_old_domain_off_in_the_same_update() -> None:
    cases = FakeCases()
    invoke(cfn_event("Create", request(OLD)), cases)
    response = invoke(cfn_event("Update", request(NEW), request(OLD), PhysicalResourceId=OLD), cases)
    assert response["PhysicalResourceId"] == NEW  # CloudFormation then deletes OLD: off again, harmless
    assert cases.stored[NEW]["enabled"] is True
    assert cases.stored[OLD] == {"enabled": False}
    invoke(cfn_event("Delete", request(OLD), PhysicalResourceId=OLD), cases)  # the cleanup
    assert cases.stored[NEW]["enabled"] is True and cases.stored[OLD] == {"enabled": False}


def test_a_failed_update_of_the_new_domain_leaves_the_old_one_publishing_for_the_rollback() -> None:
    cases = FakeCases(drops=("autoIncludeFields",))
    invoke(cfn_event("Create", request(OLD, auto=None)), cases)
    with pytest.raises(EventConfigurationMismatchError):
        invoke(cfn_event("Update", request(NEW), request(OLD, auto=None), PhysicalResourceId=OLD), cases)
    assert cases.stored[OLD]["enabled"] is True


def test_delete_turns_publishing_off_and_a_vanished_domain_is_fine() -> None:
    cases = FakeCases()
    invoke(cfn_event("Create", request(OLD)), cases)
    assert invoke(cfn_event("Delete", request(OLD), PhysicalResourceId=OLD), cases) == {
        "PhysicalResourceId": OLD
    }
    assert cases.stored[OLD] == {"enabled": False}
    gone = FakeCases(domains=())
    assert invoke(cfn_event("Delete", request(OLD), PhysicalResourceId=OLD), gone) == {
        "PhysicalResourceId": OLD
    }


def test_other_errors_fail_the_request() -> None:
    class Denied(FakeCases):
        def put_case_event_configuration(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Put")

    with pytest.raises(ClientError, match="AccessDenied"):
        invoke(cfn_event("Delete", request(OLD), PhysicalResourceId=OLD), Denied())


def test_the_previous_releases_properties_are_understood() -> None:
    """An upgrade's rollback sends the AwsCustomResource properties of the previous release."""
    cases = FakeCases()
    legacy_call = {
        "service": "connectcases",
        "action": "PutCaseEventConfiguration",
        "parameters": request(OLD),
    }
    event = cfn_event("Update", None, PhysicalResourceId=OLD)
    event["ResourceProperties"] = {
        "ServiceToken": "arn",
        "Create": json.dumps(legacy_call),
        "Update": json.dumps(legacy_call),
        "InstallLatestAwsSdk": "false",
    }
    assert invoke(event, cases)["PhysicalResourceId"] == OLD
    assert cases.stored[OLD]["includedData"]["caseData"]["autoIncludeFields"] == "System"


def test_properties_without_a_request_are_refused() -> None:
    with pytest.raises(InvalidResourcePropertiesError):
        invoke(cfn_event("Create", None), FakeCases())


def test_differences_compare_fields_as_a_set_and_absent_content_as_off() -> None:
    asked = request(NEW, auto=None, content=False)["eventBridge"]
    stored = copy.deepcopy(asked)
    stored["includedData"] = {"caseData": {"fields": [{"id": "title"}, {"id": "status"}]}}
    assert differences(asked, stored) == []
    stored["includedData"]["caseData"]["fields"].append({"id": "summary"})
    assert differences(asked, stored) == ["fields (missing [], unexpected ['summary'])"]
    assert differences({"enabled": False}, {"enabled": False, "includedData": {}}) == []
