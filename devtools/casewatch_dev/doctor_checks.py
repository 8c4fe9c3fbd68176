"""The checks of `casewatch doctor` (the command is `casewatch_dev.doctor`).

Each check reads one concern of a deployed stack and returns a `CheckResult`: problems (the stack is
not healthy: exit 1), warnings (worth knowing, not failing) and a one-phrase summary when all is well.
Every line names resources, ids, states and counts, never case data. What each check means and what
to do about its problems is in the README (Deploy: Check the deployment).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from casewatch.constants import DETAIL_TYPE, EVENT_SOURCE
from casewatch.observability import (
    DEFAULT_NAMESPACE,
    DUPLICATES_IN_PROGRESS,
    EVENTS_INVALID,
    EVENTS_PARKED,
    FUNCTION_DIMENSION,
    GETCASE_THROTTLED,
    RECONCILE_CASE_ERRORS,
    SERVICE,
    SIGNALS_PARKED,
)
from casewatch.settings import Settings
from casewatch.topology import FunctionSpec

REDEPLOY = "make deploy applies the settings"
REDRIVE = "read them, fix the cause, then redrive (README: Deploy, Dead letters and redrive)"
# The queues of `infra/constructs/dead_letters.py` (outputs `<name>Url`) and what a message in each means.
DEAD_LETTER_QUEUES: dict[str, str] = {
    "RuleDeadLetterQueue": "events EventBridge could not deliver to a function",
    "FailureQueue": "events a function failed on after Lambda's retries",
    "InvalidEventsQueue": "events parked with their reason (invalid, or a delivery that failed for good)",
}
# casewatch's own metrics doctor reads (namespace Casewatch, dimension service=casewatch). Warnings, not
# problems: what they count is a problem elsewhere while it lasts (a message in InvalidEventsQueue, a
# function error), and a metric keeps counting for the whole window after it was dealt with.
CASEWATCH_METRICS: dict[str, str] = {
    EVENTS_INVALID: "invalid events parked in InvalidEventsQueue with their reason",
    EVENTS_PARKED: "events parked after a delivery failed for good (e.g. the topic's key); "
    "redrive them from InvalidEventsQueue once fixed",
    GETCASE_THROTTLED: "GetCase calls Cases throttled (the account's 4 requests/s are contested): "
    "add the fields the sinks need to event_fields, or lower reserved_concurrency",
    SIGNALS_PARKED: "SLA signals the sla-timer could not deliver, for good (e.g. the topic's key): "
    "read its log; once fixed, the change feed's next poll sends what is pending",
    RECONCILE_CASE_ERRORS: "cases the change feed could not apply (its watermark waits before them; every "
    "poll tries again): read the reconcile log",
}
_SHOWN_IDS = 10


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "warnings": self.warnings, "summary": self.summary}


@dataclass(frozen=True)
class Deployment:
    """What doctor checks: the stack's resources (from its outputs) and the settings it was deployed with."""

    stack: str
    settings: Settings
    rules: tuple[tuple[FunctionSpec, str], ...]  # (event-routed function, its rule's ARN)
    functions: tuple[tuple[FunctionSpec, str], ...]  # (function, its deployed name)
    queues: tuple[tuple[str, str], ...]  # (dead-letter queue, its URL)
    alarm_topic_arn: str

    def function_name(self, spec: FunctionSpec) -> str:
        return dict(self.functions)[spec]


def aws_error(exc: Exception) -> str:
    """`Code: message` of an AWS error (no request ids, no payloads)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message') or exc}"
    return str(exc)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _listed(items: Iterable[str]) -> str:
    chosen = list(items)
    shown = ", ".join(chosen[:_SHOWN_IDS])
    return shown + (f" and {len(chosen) - _SHOWN_IDS} more" if len(chosen) > _SHOWN_IDS else "")


# -- 1. the Cases event configuration ------------------------------------------------------------------
def expected_event_configuration(settings: Settings) -> dict[str, Any]:
    """The `eventBridge` part of what the stack's custom resource puts (PutCaseEventConfiguration)."""
    from casewatch.domain.event_configuration import event_configuration

    bridge: dict[str, Any] = event_configuration(settings)["eventBridge"]
    return bridge


@dataclass(frozen=True)
class _Included:
    fields: frozenset[str]
    auto_include: str | None
    include_content: bool

    @classmethod
    def of(cls, bridge: dict[str, Any]) -> _Included:
        included = bridge.get("includedData") or {}
        case_data = included.get("caseData") or {}
        return cls(
            fields=frozenset(str(f["id"]) for f in case_data.get("fields") or [] if f and f.get("id")),
            auto_include=case_data.get("autoIncludeFields") or None,
            include_content=bool((included.get("relatedItemData") or {}).get("includeContent", False)),
        )


def check_event_configuration(cases: Any, settings: Settings) -> CheckResult:
    """Cases publishes the domain's events to EventBridge with the fields and content the settings ask."""
    domain = settings.domain_id
    try:
        answer = cases.get_case_event_configuration(domainId=domain)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return CheckResult(
                [f"domain {domain} not found ({aws_error(exc)}): check domain_id and the Region"]
            )
        if _code(exc) == "AccessDeniedException":
            needed = "your credentials need cases:GetCaseEventConfiguration on the domain"
            return CheckResult(
                [f"cannot read domain {domain}'s event configuration ({aws_error(exc)}): {needed}"]
            )
        return CheckResult([f"cannot read domain {domain}'s event configuration ({aws_error(exc)})"])
    actual = answer.get("eventBridge") or {}
    if actual.get("enabled") is not True:
        off = f"domain {domain} does not publish case events (enabled: false): no event reaches casewatch"
        return CheckResult([f"{off}; {REDEPLOY}"])
    want, have = _Included.of(expected_event_configuration(settings)), _Included.of(actual)
    problems = []
    missing, extra = sorted(want.fields - have.fields), sorted(have.fields - want.fields)
    if missing or extra:
        parts = [f"missing {_listed(settings.field_label(f) for f in missing)}"] if missing else []
        parts += [f"extra {_listed(extra)}"] if extra else []
        problems.append(f"event fields differ from event_fields: {', '.join(parts)}; {REDEPLOY}")
    if want.auto_include != have.auto_include:
        problems.append(
            f"autoIncludeFields is {have.auto_include or 'not set'}, auto_include_fields is "
            f"{want.auto_include or 'null'}; {REDEPLOY}"
        )
    if want.include_content != have.include_content:
        problems.append(
            f"includeContent is {str(have.include_content).lower()}, include_content is "
            f"{str(want.include_content).lower()}; {REDEPLOY}"
        )
    summary = (
        f"domain {domain} publishes {_plural(len(have.fields), 'field')}"
        + (f" (+ {have.auto_include} automatically)" if have.auto_include else "")
        + f", includeContent {str(have.include_content).lower()}, as the settings ask"
    )
    return CheckResult(problems, summary=summary)


# -- 2. the routing rules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, arn: str) -> _Arn:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"not an ARN: {arn}")
        return cls(*parts[1:])


def _selects(values: Any, wanted: str) -> bool:
    """Whether a pattern's list of values matches `wanted` (absent: everything matches)."""
    return values is None or (isinstance(values, list) and wanted in values)


def _selects_domain(entry: Any, domain_arn: str) -> bool:
    if isinstance(entry, str):
        return entry == domain_arn
    if isinstance(entry, dict) and isinstance(entry.get("prefix"), str):
        return str(entry["prefix"]).rstrip("/") == domain_arn
    return False


def _pattern_problems(name: str, spec: FunctionSpec, pattern: dict[str, Any]) -> list[str]:
    detail = pattern.get("detail") if isinstance(pattern.get("detail"), dict) else {}
    event_types = (detail or {}).get("eventType")
    unselected = [f"source {EVENT_SOURCE}"] if not _selects(pattern.get("source"), EVENT_SOURCE) else []
    unselected += (
        [f"detail-type {DETAIL_TYPE!r}"] if not _selects(pattern.get("detail-type"), DETAIL_TYPE) else []
    )
    unselected += [f"eventType {t}" for t in spec.event_types if not _selects(event_types, t)]
    if not unselected:
        return []
    return [
        f"rule {name}'s pattern does not match {', '.join(unselected)}: {spec.name} misses them; {REDEPLOY}"
    ]


def _rule_result(
    events: Any, spec: FunctionSpec, rule_arn: str, function_name: str, domain_id: str
) -> CheckResult:
    arn = _Arn.parse(rule_arn)
    *bus_parts, name = arn.resource.removeprefix("rule/").split("/")
    bus = bus_parts[0] if bus_parts else "default"
    try:
        rule = events.describe_rule(Name=name, EventBusName=bus)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return CheckResult(
                [f"rule {name} ({spec.name}) not found: {spec.name} gets no events; {REDEPLOY}"]
            )
        raise
    result = CheckResult()
    state = str(rule.get("State", ""))
    if not state.startswith("ENABLED"):
        result.problems.append(
            f"rule {name} is {state}: {spec.name} gets no events; aws events enable-rule --name {name}"
        )
    pattern = json.loads(rule.get("EventPattern") or "{}")
    result.problems += _pattern_problems(name, spec, pattern)
    domain_arn = f"arn:{arn.partition}:cases:{arn.region}:{arn.account}:domain/{domain_id}"
    resources = pattern.get("resources")
    if resources is None:
        result.warnings.append(
            f"rule {name} matches the events of every Cases domain of the account (no resources prefix): "
            f"{spec.name} is invoked for other domains' events and leaves them unhandled"
        )
    elif not (isinstance(resources, list) and any(_selects_domain(e, domain_arn) for e in resources)):
        result.problems.append(
            f"rule {name} does not match domain {domain_id}'s events (resources {json.dumps(resources)}): "
            f"{spec.name} gets none; {REDEPLOY}"
        )
    function_arn = f"arn:{arn.partition}:lambda:{arn.region}:{arn.account}:function:{function_name}"
    targets = [
        str(t.get("Arn", ""))
        for page in events.get_paginator("list_targets_by_rule").paginate(Rule=name, EventBusName=bus)
        for t in page.get("Targets", [])
    ]
    if not any(t == function_arn or t.startswith(f"{function_arn}:") for t in targets):
        result.problems.append(
            f"rule {name} does not target the {spec.name} function {function_name} "
            f"(targets: {_listed(targets) or 'none'}); {REDEPLOY}"
        )
    return result


def check_rules(events: Any, deployment: Deployment) -> CheckResult:
    """Each routing rule exists, is enabled, matches the domain's events of its types and targets its
    function."""
    total = CheckResult()
    for spec, rule_arn in deployment.rules:
        try:
            one = _rule_result(
                events, spec, rule_arn, deployment.function_name(spec), deployment.settings.domain_id
            )
        except (ClientError, BotoCoreError, ValueError) as exc:
            one = CheckResult([f"cannot read the rule {rule_arn} of {spec.name} ({aws_error(exc)})"])
        total.problems += one.problems
        total.warnings += one.warnings
    rules = _plural(len(deployment.rules), "rule")
    total.summary = f"{rules} enabled, each matching the domain and targeting its function"
    return total


# -- 3. the dead-letter queues -------------------------------------------------------------------------
def check_queues(sqs: Any, deployment: Deployment) -> CheckResult:
    """The dead-letter queues are empty (messages visible or in flight)."""
    result = CheckResult()
    for name, url in deployment.queues:
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            result.problems.append(f"cannot read {name} ({aws_error(exc)})")
            continue
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        if visible + in_flight > 0:
            meaning = DEAD_LETTER_QUEUES.get(name, "dead letters")
            result.problems.append(
                f"{name} holds {_plural(visible + in_flight, 'message')} ({visible} visible, {in_flight} "
                f"in flight): {meaning}; {REDRIVE}"
            )
    result.summary = f"{_plural(len(deployment.queues), 'dead-letter queue')} empty"
    return result


# -- 4. the alarm topic --------------------------------------------------------------------------------
def check_alarm_topic(sns: Any, deployment: Deployment) -> CheckResult:
    """Someone receives the alarms: the alarm topic has at least one confirmed subscription."""
    try:
        subscriptions = [
            s
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=deployment.alarm_topic_arn
            )
            for s in page.get("Subscriptions", [])
        ]
    except ClientError as exc:
        if _code(exc) == "NotFound":
            return CheckResult([f"the alarm topic {deployment.alarm_topic_arn} not found; {REDEPLOY}"])
        raise
    # An unconfirmed subscription is listed with SubscriptionArn "PendingConfirmation" instead of an ARN.
    confirmed = [s for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    protocols = ", ".join(sorted({str(s.get("Protocol", "?")) for s in pending}))
    if confirmed:
        warnings = (
            [f"{_plural(len(pending), 'subscription')} ({protocols}) pending confirmation"] if pending else []
        )
        kinds = ", ".join(sorted({str(s.get("Protocol", "?")) for s in confirmed}))
        return CheckResult(
            warnings=warnings, summary=f"{_plural(len(confirmed), 'confirmed alarm subscription')} ({kinds})"
        )
    if pending:
        waiting = (
            f"{_plural(len(pending), 'subscription')} to the alarm topic ({protocols}) pending confirmation"
        )
        fix = "follow the link in the confirmation message (or subscribe again)"
        return CheckResult([f"{waiting}, none confirmed: alarms notify nobody; {fix}"])
    fix = "set alarm_email (then make deploy) or subscribe to AlarmTopicArn"
    return CheckResult([f"no subscription to the alarm topic: alarms notify nobody; {fix}"])


# -- 5. recent errors ----------------------------------------------------------------------------------
def metric_period(window: timedelta) -> int:
    """A period (s) CloudWatch accepts for the window: at most 1,440 data points, coarser for old data."""
    for period in (60, 300, 3600):
        if window.total_seconds() / period <= 1440:
            return period
    return 86400


def metric_sum(
    cloudwatch: Any, namespace: str, name: str, dimensions: dict[str, str], *, start: datetime, end: datetime
) -> float:
    """The sum of a metric over [start, end) (0 without data)."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=metric_period(end - start),
        Statistics=["Sum"],
    )
    return float(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", [])))


def _count(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def check_recent_errors(
    cloudwatch: Any, deployment: Deployment, *, start: datetime, end: datetime, window: str
) -> CheckResult:
    """No function failed in the window (AWS/Lambda Errors, less the function's concurrent duplicates,
    as its error alarm counts them); casewatch's own counters as warnings."""
    result = CheckResult()
    for spec, function_name in deployment.functions:
        errors = metric_sum(
            cloudwatch, "AWS/Lambda", "Errors", {"FunctionName": function_name}, start=start, end=end
        )
        duplicates = metric_sum(
            cloudwatch,
            DEFAULT_NAMESPACE,
            DUPLICATES_IN_PROGRESS,
            {"service": SERVICE, FUNCTION_DIMENSION: function_name},
            start=start,
            end=end,
        )
        failed = errors - duplicates
        if failed > 0:
            benign = (
                f", not counting {_count(duplicates)} concurrent duplicates retried" if duplicates else ""
            )
            result.problems.append(
                f"{spec.name} ({function_name}) failed {_count(failed)} "
                f"{'invocation' if failed == 1 else 'invocations'} {window} (AWS/Lambda Errors{benign}): "
                "read its log group (LoggingConfig.LogGroup), then the failure queue"
            )
    for name, meaning in CASEWATCH_METRICS.items():
        total = metric_sum(cloudwatch, DEFAULT_NAMESPACE, name, {"service": SERVICE}, start=start, end=end)
        if total > 0:
            result.warnings.append(f"{name} {_count(total)} {window}: {meaning}")
    result.summary = f"no function errors {window}"
    return result


__all__ = [
    "CASEWATCH_METRICS",
    "DEAD_LETTER_QUEUES",
    "CheckResult",
    "Deployment",
    "aws_error",
    "check_alarm_topic",
    "check_event_configuration",
    "check_queues",
    "check_recent_errors",
    "check_rules",
    "expected_event_configuration",
    "metric_period",
    "metric_sum",
]
