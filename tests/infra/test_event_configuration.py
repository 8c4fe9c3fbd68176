"""The custom resource that turns on case events: its SDK call per lifecycle, checked against botocore.

`AwsCustomResource` is not validated at synth time (a wrong service or action only fails at deploy),
so the calls are validated here against botocore's `connectcases` model: the service, the operation
name and the request parameters.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel
from botocore.validate import ParamValidator
from infra.constructs.event_config import CaseEventConfiguration, event_configuration

from tests.infra.synth import Synthesized, domain_arn, render

PRIORITY_FIELD_ID = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"


@pytest.fixture(scope="module")
def cases_model() -> ServiceModel:
    model: ServiceModel = botocore.session.get_session().get_service_model("connectcases")
    return model


def sdk_call(synth: Synthesized, lifecycle: str) -> dict[str, Any]:
    _, resource = synth.by_path("CaseEventConfiguration/Resource/Resource/Default")
    call: dict[str, Any] = json.loads(resource["Properties"][lifecycle])
    return call


@pytest.mark.parametrize("lifecycle", ["Create", "Update", "Delete"])
def test_the_call_is_a_real_connectcases_operation_with_valid_parameters(
    synth: Synthesized, cases_model: ServiceModel, lifecycle: str
) -> None:
    call = sdk_call(synth, lifecycle)
    assert call["service"] == cases_model.service_name == "connectcases"
    assert call["action"] in cases_model.operation_names
    assert call["action"] == "PutCaseEventConfiguration"
    shape = cases_model.operation_model(call["action"]).input_shape
    report = ParamValidator().validate(call["parameters"], shape)
    assert not report.has_errors(), report.generate_report()
    assert call["physicalResourceId"] == {"id": synth.settings.domain_id}  # stable


@pytest.mark.parametrize("lifecycle", ["Create", "Update"])
def test_create_and_update_turn_events_on_with_the_configured_fields(
    synth: Synthesized, lifecycle: str
) -> None:
    params = sdk_call(synth, lifecycle)["parameters"]
    settings = synth.settings
    assert params["domainId"] == settings.domain_id
    bridge = params["eventBridge"]
    assert bridge["enabled"] is True
    fields = [f["id"] for f in bridge["includedData"]["caseData"]["fields"]]
    assert fields == [settings.field_id(ref) for ref in settings.event_fields]
    assert PRIORITY_FIELD_ID in fields and "priority" not in fields  # names resolve to ids
    assert "autoIncludeFields" not in bridge["includedData"]["caseData"]  # null in cdk.json
    assert bridge["includedData"]["relatedItemData"] == {"includeContent": settings.include_content}


def test_delete_turns_events_off(synth: Synthesized) -> None:
    call = sdk_call(synth, "Delete")
    assert call["parameters"] == {"domainId": synth.settings.domain_id, "eventBridge": {"enabled": False}}
    assert call["ignoreErrorCodesMatching"] == "ResourceNotFoundException"


def test_provider_uses_the_runtime_sdk_and_may_only_put_the_configuration(synth: Synthesized) -> None:
    _, resource = synth.by_path("CaseEventConfiguration/Resource/Resource/Default")
    assert resource["Properties"]["InstallLatestAwsSdk"] is False
    _, policy = synth.by_path("CaseEventConfiguration/Resource/CustomResourcePolicy/Resource")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "cases:PutCaseEventConfiguration"
    assert render(statement["Resource"]) == domain_arn(synth.settings.domain_id)


def test_publishing_starts_after_the_rules_exist(synth: Synthesized) -> None:
    _, resource = synth.by_path("CaseEventConfiguration/Resource/Resource/Default")
    rule_ids = {k for k, r in synth.of_type("AWS::Events::Rule").items() if "EventPattern" in r["Properties"]}
    assert rule_ids <= set(resource.get("DependsOn", []))


def test_auto_include_fields_and_content_follow_the_settings(synth: Synthesized) -> None:
    settings = synth.settings.model_copy(update={"auto_include_fields": "System", "include_content": False})
    params = event_configuration(settings)
    included = params["eventBridge"]["includedData"]
    assert included["caseData"]["autoIncludeFields"] == "System"
    assert included["relatedItemData"] == {"includeContent": False}
    model = botocore.session.get_session().get_service_model("connectcases")
    shape = model.operation_model("PutCaseEventConfiguration").input_shape
    assert not ParamValidator().validate(params, shape).has_errors()
    assert CaseEventConfiguration  # the construct the stack uses
