"""One Lambda function of casewatch, with the house defaults as class constants.

Sizing is provisional (see the README): 256 MB and 30 s for event handlers, 60 s for the
reconciliation. Event-routed functions reserve concurrency only when `reserved_concurrency` is
set (default null): Lambda requires 100 executions of the account to stay unreserved, so a
reservation fails the deployment on accounts with a low concurrency quota (new accounts have 10).
Without it, the account's GetCase quota (4 req/s) is protected by the Cases client's adaptive
retries (client-side rate limiting, `getcase_max_attempts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from casewatch.constants import ENV_CONFIG_FILE
from casewatch.errors import SettingsError
from casewatch.observability import DEFAULT_NAMESPACE, SERVICE
from casewatch.settings import Settings
from casewatch.topology import RECONCILE, FunctionSpec
from infra.constructs.lambda_limits import check_environment_size
from infra.constructs.settings_layer import SETTINGS_FILE
from infra.nag import acknowledge

LAMBDA_BASIC_EXECUTION = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)

# CloudWatch Logs' retention values (days) and their CDK names.
_RETENTION_DAYS: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def log_retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention for `log_retention_days` (one of the values Logs accepts)."""
    if days not in _RETENTION_DAYS:
        raise SettingsError(
            f"casewatch.log_retention_days: {days} is not a CloudWatch Logs retention; "
            f"use one of {sorted(_RETENTION_DAYS)}"
        )
    return logs.RetentionDays[_RETENTION_DAYS[days]]


def removal_policy(settings: Settings) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if settings.removal_policy == "destroy" else RemovalPolicy.RETAIN


class CasewatchFunction(lambda_.Function):
    """A casewatch Lambda function: python3.13 on arm64, JSON logs, X-Ray, async failure destination.

    The construct id is the spec's `construct_id` (e.g. `CaseChanged`), which is also the id
    `sam local invoke` accepts.
    """

    RUNTIME = lambda_.Runtime.PYTHON_3_13
    ARCHITECTURE = lambda_.Architecture.ARM_64
    MEMORY_MB = 256
    EVENT_TIMEOUT = Duration.seconds(30)
    RECONCILE_TIMEOUT = Duration.seconds(60)
    LOG_FORMAT = lambda_.LoggingFormat.JSON
    APPLICATION_LOG_LEVEL = lambda_.ApplicationLogLevel.INFO
    SYSTEM_LOG_LEVEL = lambda_.SystemLogLevel.WARN
    TRACING = lambda_.Tracing.ACTIVE
    # Asynchronous invocations (EventBridge rules, Scheduler): retried twice by Lambda, then the
    # failure destination; events older than this are sent there too instead of being processed.
    RETRY_ATTEMPTS = 2
    MAX_EVENT_AGE = Duration.hours(6)
    SERVICE_NAME = SERVICE  # POWERTOOLS_SERVICE_NAME: also the `service` dimension of every metric
    METRICS_NAMESPACE = DEFAULT_NAMESPACE

    def __init__(
        self,
        scope: Construct,
        spec: FunctionSpec,
        *,
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        settings: Settings,
        failure_queue: sqs.IQueue,
        environment: Mapping[str, str] | None = None,
        function_name: str | None = None,
    ) -> None:
        log_group = logs.LogGroup(
            scope,
            f"{spec.construct_id}Logs",
            retention=log_retention(settings.log_retention_days),
            removal_policy=removal_policy(settings),
        )
        # The settings are a file of the settings layer (one of `layers`); the environment names it.
        variables = {
            ENV_CONFIG_FILE: str(SETTINGS_FILE),
            "POWERTOOLS_SERVICE_NAME": self.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": self.METRICS_NAMESPACE,
            **(environment or {}),
        }
        # Measured with the lengths AWS allows the referenced names, ARNs and URLs (not CDK's tokens).
        self.environment_bound = check_environment_size(scope, variables, owner=f"the {spec.name} function")
        super().__init__(
            scope,
            spec.construct_id,
            function_name=function_name,
            description=f"casewatch {spec.name}: {spec.description}",
            code=code,
            handler=spec.handler,
            layers=list(layers),
            runtime=self.RUNTIME,
            architecture=self.ARCHITECTURE,
            memory_size=self.MEMORY_MB,
            timeout=self.RECONCILE_TIMEOUT if spec == RECONCILE else self.EVENT_TIMEOUT,
            reserved_concurrent_executions=settings.reserved_concurrency if spec.event_types else None,
            logging_format=self.LOG_FORMAT,
            application_log_level_v2=self.APPLICATION_LOG_LEVEL,
            system_log_level_v2=self.SYSTEM_LOG_LEVEL,
            log_group=log_group,
            tracing=self.TRACING,
            environment=variables,
            retry_attempts=self.RETRY_ATTEMPTS,
            max_event_age=self.MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(failure_queue),
        )
        self.spec = spec
        # `sam local invoke <construct id>` (SAM also derives it from aws:cdk:path; this is explicit).
        cast(lambda_.CfnFunction, self.node.default_child).add_metadata("SamResourceId", spec.construct_id)
        self._acknowledge_house_defaults()

    def _acknowledge_house_defaults(self) -> None:
        acknowledge(
            self,
            "IAM4",
            "AWSLambdaBasicExecutionRole is CDK's logging grant for Lambda (CreateLogStream/PutLogEvents); "
            "the function logs to its own log group, and its other permissions are exact.",
            applies_to=[LAMBDA_BASIC_EXECUTION],
        )
        acknowledge(
            self,
            "IAM5",
            "X-Ray active tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource-level "
            "permissions, AWS requires Resource '*'.",
            applies_to=["Resource::*"],
        )
        acknowledge(
            self,
            "L1",
            f"Python {self.RUNTIME.name.removeprefix('python')} on purpose: the dependencies layer is built "
            "for it and the tests run it; runtime and layer move together.",
        )
