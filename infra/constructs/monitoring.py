"""Alarms and a dashboard. Every alarm notifies the alarm topic (and `alarm_email`, if set).

A topic policy replaces SNS's default one, so the alarm topic's policy says who may publish:
`cloudwatch.amazonaws.com`, on behalf of this account (`aws:SourceAccount`) and of this stack's
alarms only (`aws:SourceArn`, the exact alarm ARNs: CloudWatch sends the alarm's ARN as the source).
The alarms are named `<stack>-<alarm id>` so their ARNs are known without a reference (the key
policy, which the topic references, cannot reference the alarms back). The topic's KMS key lets
CloudWatch encrypt under the same two conditions.

| alarm                         | fires when (5-minute periods)                                |
| ----------------------------- | ------------------------------------------------------------ |
| `<queue>Depth`                | a dead-letter / failure / invalid-events queue has a message |
| `<function>Errors`            | a function invocation failed                                 |
| `<function>Throttles`         | a function was throttled (account or reserved concurrency)   |
| `GetCaseThrottled`            | Cases throttled GetCase and the retry budget was spent       |
| `SlaRepairs`                  | reconciliation repaired SLA state (an event was missed)      |
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

from casewatch.observability import GETCASE_THROTTLED, SLA_REPAIRS
from casewatch.settings import Settings
from infra.constructs.function import CasewatchFunction

NAMESPACE = CasewatchFunction.METRICS_NAMESPACE
SERVICE_DIMENSION = {"service": CasewatchFunction.SERVICE_NAME}  # Powertools Metrics' default dimension
PERIOD = Duration.minutes(5)


def casewatch_metric(name: str) -> cloudwatch.Metric:
    """A metric the handlers emit with Powertools Metrics (namespace Casewatch, dimension service)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=SERVICE_DIMENSION,
        statistic=cloudwatch.Stats.SUM,
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
            alarm(f"{fn.spec.construct_id}Errors", fn.metric_errors(period=PERIOD), f"{fn.spec.name} errors")
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
                title="Errors and throttles",
                left=[fn.metric_errors(period=PERIOD) for fn in functions],
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
