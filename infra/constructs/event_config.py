"""Turns on case event publishing for the domain: PutCaseEventConfiguration (no CloudFormation type exists).

A custom resource backed by casewatch's own Python handler (`casewatch.handlers.event_configuration`,
through CDK's Provider framework), from the same `functions/` asset and dependencies layer as the
other functions: the layer's botocore is uv.lock's, so `autoIncludeFields` is sent, and the handler
reads the configuration back and fails the deployment if Cases did not store what was asked.
Create and update put the configuration (`event_configuration(settings)`, the one request builder);
a `domain_id` change turns the old domain's publishing off in the same update; delete turns it off.

Upgrade from the previous release (an `AwsCustomResource`): CloudFormation refuses to change a
custom resource's service token, and a renamed resource would be created before the old one's
cleanup Delete, which would then turn publishing off for the domain. So the resource keeps the
previous logical id, and the Provider framework's function takes the logical id of the previous
singleton provider function: updated in place, its ARN (the service token) stays the same, and the
resource receives an Update (its physical id is the domain id, as before).
"""

from __future__ import annotations

import json
from typing import cast

from aws_cdk import CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from casewatch.domain.event_configuration import CONFIGURATION_PROPERTY, event_configuration
from casewatch.settings import Settings
from infra.constructs.function import LAMBDA_BASIC_EXECUTION, CasewatchFunction, log_retention, removal_policy
from infra.nag import acknowledge

HANDLER = "casewatch.handlers.event_configuration.handler"
IAM_ACTIONS = ["cases:PutCaseEventConfiguration", "cases:GetCaseEventConfiguration"]
RESOURCE_TYPE = "Custom::CaseEventConfiguration"
# The previous release's logical ids (its AwsCustomResource, and the singleton provider function
# whose ARN is the service token): kept so that an upgrade updates the resource in place.
PREVIOUS_RESOURCE_LOGICAL_ID = "CaseEventConfiguration8AF543FE"
PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID = "AWS679f53fac002430cb0da5b7982bd22872D164C4C"


class CaseEventConfiguration(Construct):
    TIMEOUT = Duration.minutes(2)  # a put and a read, with the Cases client's adaptive retries

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        code: lambda_.Code,
        layers: list[lambda_.ILayerVersion],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.handler = lambda_.Function(
            self,
            "Handler",
            description="casewatch: Custom::CaseEventConfiguration (Put/GetCaseEventConfiguration)",
            code=code,
            handler=HANDLER,
            layers=layers,
            runtime=CasewatchFunction.RUNTIME,
            architecture=CasewatchFunction.ARCHITECTURE,
            memory_size=CasewatchFunction.MEMORY_MB,
            timeout=self.TIMEOUT,
            logging_format=CasewatchFunction.LOG_FORMAT,
            application_log_level_v2=CasewatchFunction.APPLICATION_LOG_LEVEL,
            system_log_level_v2=CasewatchFunction.SYSTEM_LOG_LEVEL,
            log_group=logs.LogGroup(
                self,
                "HandlerLogs",
                retention=log_retention(settings.log_retention_days),
                removal_policy=removal_policy(settings),
            ),
        )
        # The domain configured before a `domain_id` change is only known at deploy time (the
        # resource's physical id), so these two actions are allowed on the domains of this account
        # and Region: the least privilege that can still turn the old domain's publishing off.
        self.any_domain_arn = stack.format_arn(service="cases", resource="domain", resource_name="*")
        self.handler.add_to_role_policy(
            iam.PolicyStatement(actions=IAM_ACTIONS, resources=[self.any_domain_arn])
        )

        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            log_group=logs.LogGroup(
                self,
                "Logs",
                retention=log_retention(settings.log_retention_days),
                removal_policy=removal_policy(settings),
            ),
        )
        framework = cast(
            CfnResource, provider.node.find_child("framework-onEvent").node.find_child("Resource")
        )
        framework.override_logical_id(PREVIOUS_PROVIDER_FUNCTION_LOGICAL_ID)

        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={CONFIGURATION_PROPERTY: json.dumps(event_configuration(settings), sort_keys=True)},
        )
        cast(CfnResource, self.resource.node.default_child).override_logical_id(PREVIOUS_RESOURCE_LOGICAL_ID)
        self._acknowledge(provider)

    def _acknowledge(self, provider: cr.Provider) -> None:
        acknowledge(
            self,
            "IAM4",
            "AWSLambdaBasicExecutionRole is CDK's logging grant for the custom resource's handler and the "
            "Provider framework's function; each logs to its own log group.",
            applies_to=[LAMBDA_BASIC_EXECUTION],
        )
        acknowledge(
            self.handler,
            "IAM5",
            "Put/GetCaseEventConfiguration on the Cases domains of this account and Region only: after a "
            "domain_id change the handler must turn the previous domain's publishing off, and that domain "
            "is only known at deploy time (the resource's physical id).",
            applies_to=["Resource::arn:<AWS::Partition>:cases:<AWS::Region>:<AWS::AccountId>:domain/*"],
        )
        acknowledge(
            provider,
            "IAM5",
            "CDK's Provider framework may invoke any version of the custom resource's handler (its ARN "
            "with ':*'); the handler is this construct's own function.",
            applies_to=[f"Resource::<{Stack.of(self).get_logical_id(self._cfn(self.handler))}.Arn>:*"],
        )
        acknowledge(
            self.handler,
            "L1",
            f"Python {CasewatchFunction.RUNTIME.name.removeprefix('python')} on purpose: the dependencies "
            "layer is built for it and the tests run it; runtime and layer move together.",
        )

    @staticmethod
    def _cfn(fn: lambda_.Function) -> CfnResource:
        return cast(CfnResource, fn.node.default_child)
