"""Turns on case event publishing for the domain: PutCaseEventConfiguration (no CloudFormation type exists).

Create and update put the configuration from the settings (`event_fields` resolved to field
ids through `field_names`, `auto_include_fields`, `include_content`); delete turns publishing
off. The physical id is the domain id, so changing `domain_id` disables the old domain.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from casewatch.settings import Settings
from infra.constructs.cases import CasesDomainArns
from infra.constructs.function import LAMBDA_BASIC_EXECUTION, log_retention, removal_policy
from infra.nag import acknowledge

# AWS SDK for JavaScript v3 names (client `@aws-sdk/client-connectcases`); equal to botocore's
# service and operation names, which the infra tests check.
SERVICE = "connectcases"
ACTION = "PutCaseEventConfiguration"
IAM_ACTION = "cases:PutCaseEventConfiguration"
# The construct id CDK gives the AwsCustomResource provider function (a per-stack singleton).
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


def event_configuration(settings: Settings, *, enabled: bool = True) -> dict[str, Any]:
    """The PutCaseEventConfiguration request for the settings (or the one turning events off)."""
    if not enabled:
        return {"domainId": settings.domain_id, "eventBridge": {"enabled": False}}
    field_ids = list(dict.fromkeys(settings.field_id(ref) for ref in settings.event_fields))
    case_data: dict[str, Any] = {"fields": [{"id": field_id} for field_id in field_ids]}
    if settings.auto_include_fields:
        case_data["autoIncludeFields"] = settings.auto_include_fields
    return {
        "domainId": settings.domain_id,
        "eventBridge": {
            "enabled": True,
            "includedData": {
                "caseData": case_data,
                "relatedItemData": {"includeContent": settings.include_content},
            },
        },
    }


class CaseEventConfiguration(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        domain = CasesDomainArns.of(self, settings.domain_id)
        physical_id = cr.PhysicalResourceId.of(settings.domain_id)
        put = cr.AwsSdkCall(
            service=SERVICE,
            action=ACTION,
            parameters=event_configuration(settings),
            physical_resource_id=physical_id,
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Resource",
            resource_type="Custom::CaseEventConfiguration",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service=SERVICE,
                action=ACTION,
                parameters=event_configuration(settings, enabled=False),
                physical_resource_id=physical_id,
                # The domain is gone: nothing publishes any more, nothing to turn off.
                ignore_error_codes_matching="ResourceNotFoundException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=[IAM_ACTION], resources=[domain.domain])]
            ),
            install_latest_aws_sdk=False,
            timeout=Duration.minutes(2),
            log_group=logs.LogGroup(
                self,
                "Logs",
                retention=log_retention(settings.log_retention_days),
                removal_policy=removal_policy(settings),
            ),
        )
        # The provider is a singleton function of the stack, shared by AwsCustomResources.
        provider = Stack.of(self).node.find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
        acknowledge(
            provider,
            "IAM4",
            "CDK's AwsCustomResource provider logs with AWSLambdaBasicExecutionRole; its only other "
            "permission is cases:PutCaseEventConfiguration on the domain.",
            applies_to=[LAMBDA_BASIC_EXECUTION],
        )
