"""The custom resource that turns on case events: casewatch's own Python handler, checked against botocore.

The request is built once (`event_configuration(settings)`) and travels as the resource's
`Configuration` property; it is validated here against botocore's `connectcases` model. The
handler runs from the same `functions/` asset and dependencies layer as the other functions (the
layer's botocore knows `autoIncludeFields`), reads the configuration back, and may turn publishing
off in the domain it configured before (issue 12, items 3 and BS4).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel
from botocore.validate import ParamValidator
from infra.constructs.event_config import (
    PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID,
    PREVIOUS_RESOURCE_LOGICAL_ID,
    CaseEventConfiguration,
    event_configuration,
)

from casewatch.domain.event_configuration import CONFIGURATION_PROPERTY
from tests.infra.synth import Synthesized, render

PRIORITY_FIELD_ID = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
ANY_DOMAIN = "arn:${AWS::Partition}:cases:${AWS::Region}:${AWS::AccountId}:domain/*"


@pytest.fixture(scope="module")
def cases_model() -> ServiceModel:
    model: ServiceModel = botocore.session.get_session().get_service_model("connectcases")
    return model


def custom_resource(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = synth.of_type("Custom::CaseEventConfiguration").items()
    return found


def configuration(synth: Synthesized) -> dict[str, Any]:
    _, resource = custom_resource(synth)
    request: dict[str, Any] = json.loads(resource["Properties"][CONFIGURATION_PROPERTY])
    return request


def handler_function(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    """The Python function the Provider framework's onEvent function invokes (its environment says)."""
    _, resource = custom_resource(synth)
    token_function = synth.resources[resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    target = token_function["Properties"]["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"]
    logical_id = target["Fn::GetAtt"][0]
    return logical_id, synth.resources[logical_id]


def role_statements(synth: Synthesized, function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_request_is_a_valid_put_case_event_configuration(
    synth: Synthesized, cases_model: ServiceModel
) -> None:
    request = configuration(synth)
    assert request == event_configuration(synth.settings)  # the one builder
    shape = cases_model.operation_model("PutCaseEventConfiguration").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_events_are_turned_on_with_the_configured_fields(synth: Synthesized) -> None:
    request = configuration(synth)
    settings = synth.settings
    assert request["domainId"] == settings.domain_id
    bridge = request["eventBridge"]
    assert bridge["enabled"] is True
    fields = [f["id"] for f in bridge["includedData"]["caseData"]["fields"]]
    assert fields == [settings.field_id(ref) for ref in settings.event_fields]
    assert PRIORITY_FIELD_ID in fields and "priority" not in fields  # names resolve to ids
    assert "autoIncludeFields" not in bridge["includedData"]["caseData"]  # null in cdk.json
    assert bridge["includedData"]["relatedItemData"] == {"includeContent": settings.include_content}


def test_the_handler_is_casewatch_code_with_the_locked_sdk(synth: Synthesized) -> None:
    _, handler = handler_function(synth)
    props = handler["Properties"]
    assert props["Handler"] == "casewatch.handlers.event_configuration.handler"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    _, case_changed = synth.by_path("Functions/CaseChanged/Resource")
    assert handler["Metadata"]["aws:asset:path"] == case_changed["Metadata"]["aws:asset:path"]  # functions/
    dependencies_id, _ = synth.by_path("Functions/Dependencies/Layer/Resource")
    assert props["Layers"] == [{"Ref": dependencies_id}]  # boto3/botocore of uv.lock


def test_the_handler_may_put_and_read_the_configuration_of_this_accounts_domains_only(
    synth: Synthesized,
) -> None:
    """The domain configured before a `domain_id` change is not known at synth: any domain of this
    account and Region, for these two actions only (least privilege that can turn the old one off)."""
    _, handler = handler_function(synth)
    granted = {
        (action, render(resource))
        for statement in role_statements(synth, handler)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in (
            [statement["Resource"]] if not isinstance(statement["Resource"], list) else statement["Resource"]
        )
    }
    assert granted == {
        ("cases:PutCaseEventConfiguration", ANY_DOMAIN),
        ("cases:GetCaseEventConfiguration", ANY_DOMAIN),
    }


def test_an_upgrade_updates_the_previous_resource_in_place(synth: Synthesized) -> None:
    """Same logical id and service token as the previous release's AwsCustomResource: CloudFormation
    refuses a changed service token, and a new resource would be created before the old one's cleanup
    Delete, which would then turn publishing off for the domain."""
    logical_id, resource = custom_resource(synth)
    assert logical_id == PREVIOUS_RESOURCE_LOGICAL_ID == "CaseEventConfiguration8AF543FE"
    assert resource["Properties"]["ServiceToken"] == {
        "Fn::GetAtt": [PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID, "Arn"]
    }
    assert PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID == "AWS679f53fac002430cb0da5b7982bd22872D164C4C"
    assert (
        "FunctionName" not in synth.resources[PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID]["Properties"]
    )  # same ARN


def test_publishing_starts_after_the_rules_exist(synth: Synthesized) -> None:
    _, resource = custom_resource(synth)
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
