"""Routing on the default bus: one rule per event-routed function, the archive, the reconcile schedule.

Patterns come from `casewatch.topology` (defined once, shared with the local pipeline), scoped to
the configured domain: the account's other Cases domains publish to the same bus. Each
rule's target retries delivery (`RULE_RETRY_ATTEMPTS`, `RULE_MAX_EVENT_AGE`) and then sends the
event to the rule DLQ; the function itself retries failures twice and then uses its on-failure
destination (see `CasewatchFunction`).

Replays: EventBridge delivers a replayed event only to the rules listed in the replay's
`FilterArns` (never to other rules of the bus), with a top-level `replay-name`. casewatch's
replay command passes the ARNs of these rules (stack outputs `*RuleArn`, all of them in
`ReplayFilterArns`); the handlers then apply the `replays` setting (`process`, or `skip`
notifications). The reconcile schedule and the optional capture rule are never replay targets.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from casewatch.settings import Settings
from casewatch.topology import EVENT_ROUTED, archive_pattern, domain_arn
from infra.constructs.dead_letters import DeadLetters
from infra.constructs.function import log_retention, removal_policy
from infra.constructs.functions import Functions

_PATTERN_KEYS = {
    "source": "source",
    "detail-type": "detail_type",
    "detail": "detail",
    "account": "account",
    "region": "region",
    "resources": "resources",
    "id": "id",
    "time": "time",
    "version": "version",
}


def _top_level_filter(key: str, value: Any) -> Any:
    """A top-level value of the pattern: CDK types those as lists of strings, so a content filter
    (`[{"prefix": ...}]`) goes through `events.Match`, which renders the same JSON."""
    if key == "detail" or not isinstance(value, list) or all(isinstance(v, str) for v in value):
        return value
    if len(value) == 1 and isinstance(value[0], dict) and set(value[0]) == {"prefix"}:
        return events.Match.prefix(value[0]["prefix"])
    raise ValueError(f"unsupported event pattern filter for {key!r}: {value!r}")


def event_pattern(pattern: dict[str, Any] | None) -> events.EventPattern:
    """The CDK EventPattern of a pattern written as EventBridge JSON (as in `casewatch.topology`)."""
    if not pattern:
        raise ValueError("an event-routed function needs an event pattern")
    unknown = set(pattern) - set(_PATTERN_KEYS)
    if unknown:
        raise ValueError(f"unsupported event pattern keys: {sorted(unknown)}")
    return events.EventPattern(
        **{_PATTERN_KEYS[key]: _top_level_filter(key, value) for key, value in pattern.items()}
    )


@jsii.implements(events.IRuleTarget)
class _LogGroupTarget:
    """A rule target writing events to a log group (the ARN without the `:*` suffix)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self.log_group = log_group

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        arn = Stack.of(self.log_group).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return events.RuleTargetConfig(arn=arn)


class Routing(Construct):
    RULE_RETRY_ATTEMPTS = 10
    RULE_MAX_EVENT_AGE = Duration.hours(6)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        functions: Functions,
        dead_letters: DeadLetters,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        # The events of this domain only; partition, Region and account resolve at deploy time.
        self.domain_arn = domain_arn(
            settings.domain_id, partition=stack.partition, region=stack.region, account=stack.account
        )

        self.rules: dict[str, events.Rule] = {}
        for spec in EVENT_ROUTED:
            rule = events.Rule(
                self,
                f"{spec.construct_id}Rule",
                description=f"casewatch: {', '.join(spec.event_types)} -> {spec.name}",
                event_pattern=event_pattern(spec.event_pattern(self.domain_arn)),
            )
            rule.add_target(
                targets.LambdaFunction(
                    functions.by_spec[spec.name],
                    dead_letter_queue=dead_letters.rule_dlq,
                    retry_attempts=self.RULE_RETRY_ATTEMPTS,
                    max_event_age=self.RULE_MAX_EVENT_AGE,
                )
            )
            self.rules[spec.name] = rule

        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.default_bus,
            event_pattern=event_pattern(archive_pattern(self.domain_arn)),
            description="casewatch: every Amazon Connect Cases event of the domain, for replays",
            retention=Duration.days(settings.archive_retention_days)
            if settings.archive_retention_days
            else None,
        )

        # The periodic repair of SLA state (covers events EventBridge did not deliver).
        self.reconcile_schedule = events.Rule(
            self,
            "ReconcileSchedule",
            description=f"casewatch: reconcile every {settings.reconcile_every_minutes} min",
            schedule=events.Schedule.rate(Duration.minutes(settings.reconcile_every_minutes)),
        )
        self.reconcile_schedule.add_target(
            targets.LambdaFunction(
                functions.reconcile,
                dead_letter_queue=dead_letters.rule_dlq,
                retry_attempts=2,
                max_event_age=Duration.minutes(settings.reconcile_every_minutes),
            )
        )

        # Optional: every Cases event into a log group, for `casewatch capture pull`.
        self.capture_log_group: logs.LogGroup | None = None
        if settings.capture_events:
            self.capture_log_group = logs.LogGroup(
                self,
                "CaptureLogs",
                log_group_name=f"/aws/events/{stack.stack_name.lower()}-capture",
                retention=log_retention(settings.log_retention_days),
                removal_policy=removal_policy(settings),
            )
            self.capture_rule = events.Rule(
                self,
                "CaptureRule",
                description="casewatch: capture Cases events to CloudWatch Logs",
                event_pattern=event_pattern(archive_pattern(self.domain_arn)),
            )
            self.capture_rule.add_target(_LogGroupTarget(self.capture_log_group))
            # EventBridge writes to the log group under this account-level resource policy (CDK's own
            # CloudWatchLogGroup target would add a custom resource and its Lambda for the same thing).
            # EventBridge's PutLogEvents carries the rule's ARN (aws:SourceArn), its CreateLogStream does
            # not: a condition on it would deny every stream, so only PutLogEvents is conditioned.
            events_service = iam.ServicePrincipal("events.amazonaws.com")
            logs.ResourcePolicy(
                self,
                "CapturePolicy",
                resource_policy_name=f"{stack.stack_name}-capture",
                policy_statements=[
                    iam.PolicyStatement(
                        principals=[events_service],
                        actions=["logs:CreateLogStream"],
                        resources=[self.capture_log_group.log_group_arn],
                    ),
                    iam.PolicyStatement(
                        principals=[events_service],
                        actions=["logs:PutLogEvents"],
                        resources=[self.capture_log_group.log_group_arn],
                        conditions={"ArnEquals": {"aws:SourceArn": self.capture_rule.rule_arn}},
                    ),
                ],
            )
