"""Alarms and a dashboard. Every alarm notifies the alarm topic (and `alarm_email`, if set).

A topic policy replaces SNS's default one, so the alarm topic's policy says who may publish:
`cloudwatch.amazonaws.com`, on behalf of this account (`aws:SourceAccount`) and of this stack's
alarms only (`aws:SourceArn`, the exact alarm ARNs: CloudWatch sends the alarm's ARN as the source).
The alarms are named `<stack>-<alarm id>` so their ARNs are known without a reference (the key
policy, which the topic references, cannot reference the alarms back). The topic's KMS key lets
CloudWatch encrypt under the same two conditions.

| alarm                         | fires when (5-minute periods)                                          |
| ----------------------------- | ---------------------------------------------------------------------- |
| `<queue>Depth`                | a dead-letter / failure / invalid-events queue has a message           |
| `<function>Errors`            | a function invocation failed, not counting concurrent duplicates       |
| `<function>Throttles`         | a function was throttled (account or reserved concurrency)             |
| `GetCaseThrottled`            | Cases throttled GetCase and the retry budget was spent                 |
| `SlaRepairs`                  | reconciliation repaired SLA state (an event was missed)                |
| `EventsParked`                | an event was parked: a delivery failed for good (SNS/KMS, PutEvents)   |
| `SlaSignalsParked`            | an SLA timer's signal could not be delivered, for good                 |
| `SlaReconcileCaseErrors`      | reconciliation could not check a case (it was deferred)                |

`<function>Errors` is metric math, `<fn>Errors - FILL(<fn>Duplicates, 0)`: AWS/Lambda `Errors` of the function
minus casewatch's `DuplicatesInProgress` of the same function. A concurrent duplicate (Powertools'
idempotency record in progress) fails its invocation on purpose so that Lambda or Scheduler retries it
and finds the side effect done; the handlers count it once per failed invocation with the dimensions
`service` and `function_name` (the deployed name, as the Lambda context has it), so the subtraction is
per function and two stacks in one account never discount each other's errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from casewatch.observability import (
    DUPLICATES_IN_PROGRESS,
    EVENTS_PARKED,
    FUNCTION_DIMENSION,
    GETCASE_THROTTLED,
    RECONCILE_CASE_ERRORS,
    SIGNALS_PARKED,
    SLA_REPAIRS,
)
from casewatch.settings import Settings
from infra.constructs.function import CasewatchFunction

NAMESPACE = CasewatchFunction.METRICS_NAMESPACE
SERVICE_DIMENSION = {"service": CasewatchFunction.SERVICE_NAME}  # Powertools Metrics' default dimension
PERIOD = Duration.minutes(5)


def casewatch_metric(name: str, function: CasewatchFunction | None = None) -> cloudwatch.Metric:
    """A metric the handlers emit with Powertools Metrics (namespace Casewatch, dimension service), or
    one counted per function (`count_per_function`: dimensions service and function_name)."""
    dimensions = dict(SERVICE_DIMENSION)
    if function is not None:
        dimensions[FUNCTION_DIMENSION] = function.function_name
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
    )


def failed_invocations(function: CasewatchFunction) -> cloudwatch.MathExpression:
    """The function's errors that are real problems: AWS/Lambda Errors minus its concurrent duplicates
    (failed on purpose, retried, benign). No duplicate in a period counts 0; no invocation, no data."""
    name = function.spec.construct_id[0].lower() + function.spec.construct_id[1:]  # ids unique in a graph
    errors, duplicates = f"{name}Errors", f"{name}Duplicates"
    return cloudwatch.MathExpression(
        expression=f"{errors} - FILL({duplicates}, 0)",
        using_metrics={
            errors: function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            duplicates: casewatch_metric(DUPLICATES_IN_PROGRESS, function),
        },
        label=f"{function.spec.name} errors (without concurrent duplicates)",
        period=PERIOD,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        key: kms.IKey,
        functions: Sequence[CasewatchFunction],
        queues: Mapping[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="casewatch alarms", master_key=key, enforce_ssl=True
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_name=self.alarm_name(alarm_id),
                alarm_description=f"casewatch: {description}",
                metric=metric,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(action)
            self.alarms[alarm_id] = created

        for name, queue in queues.items():
            alarm(
                f"{name}Depth",
                queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                f"messages in {name}: inspect, fix, then redrive (README: Deploy)",
            )
        for fn in functions:
            alarm(
                f"{fn.spec.construct_id}Errors",
                failed_invocations(fn),
                f"{fn.spec.name} errors (concurrent duplicates, retried on purpose, not counted)",
            )
            alarm(
                f"{fn.spec.construct_id}Throttles",
                fn.metric_throttles(period=PERIOD),
                f"{fn.spec.name} throttled (reserved concurrency)",
            )
        alarm(
            GETCASE_THROTTLED,
            casewatch_metric(GETCASE_THROTTLED),
            "GetCase throttled by Cases after retries (account quota 4 req/s)",
        )
        alarm(SLA_REPAIRS, casewatch_metric(SLA_REPAIRS), "reconciliation repaired SLA state (missed events)")
        alarm(
            EVENTS_PARKED,
            casewatch_metric(EVENTS_PARKED),
            "events parked: a delivery failed for good (e.g. the topic's key); fix it, then redrive "
            "InvalidEventsQueue (README: Deploy)",
        )
        alarm(
            SIGNALS_PARKED,
            casewatch_metric(SIGNALS_PARKED),
            "SLA signals not delivered: a delivery failed for good; fix it (the sla-timer log says why), "
            "reconciliation repairs the SLA state",
        )
        alarm(
            RECONCILE_CASE_ERRORS,
            casewatch_metric(RECONCILE_CASE_ERRORS),
            "reconciliation could not check a case (deferred): read the reconcile log",
        )
        self._allow_alarms_to_publish(key)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.hours(24),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations", left=[fn.metric_invocations(period=PERIOD) for fn in functions], width=8
            ),
            cloudwatch.GraphWidget(
                title="Errors (without concurrent duplicates) and throttles",
                left=[failed_invocations(fn) for fn in functions],
                right=[fn.metric_throttles(period=PERIOD) for fn in functions],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Duration p99",
                left=[fn.metric_duration(period=PERIOD, statistic="p99") for fn in functions],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead letters",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
                    for q in queues.values()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="GetCase throttles and SLA repairs",
                left=[casewatch_metric(GETCASE_THROTTLED), casewatch_metric(SLA_REPAIRS)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Parked and deferred (a human must act)",
                left=[
                    casewatch_metric(name) for name in (EVENTS_PARKED, SIGNALS_PARKED, RECONCILE_CASE_ERRORS)
                ],
                width=24,
            ),
        )

    def alarm_name(self, alarm_id: str) -> str:
        return f"{Stack.of(self).stack_name}-{alarm_id}"

    def alarm_arns(self) -> list[str]:
        """The ARNs of this stack's alarms, from their names (no reference to the alarms)."""
        stack = Stack.of(self)
        return [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=self.alarm_name(alarm_id),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for alarm_id in self.alarms
        ]

    def _allow_alarms_to_publish(self, key: kms.IKey) -> None:
        """CloudWatch may publish this stack's alarms to the topic, and encrypt them with its key."""
        cloudwatch_service = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        conditions = {
            "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
            "ArnEquals": {"aws:SourceArn": self.alarm_arns()},
        }
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_service],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_service],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=conditions,
            )
        )
