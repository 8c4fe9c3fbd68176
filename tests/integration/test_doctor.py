"""`casewatch doctor` against a "deployed stack" on moto and the Cases emulator.

The stack is built here as CloudFormation would leave it (rules with targets, queues, the alarm topic
with a subscription, Cases publishing what the settings ask), without CloudFormation: its outputs go
to doctor through `--outputs`, as `make deploy` writes them. Each test then breaks one thing and
expects exit 1 and the exact problem line, or keeps it healthy at an edge and expects exit 0.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from casewatch.constants import ENV_CASES_ENDPOINT
from casewatch.topology import CASE_CHANGED, EVENT_ROUTED, FUNCTIONS, RELATED_ITEM_CREATED_FN, SLA_TIMER
from casewatch_dev.cli import main
from casewatch_dev.emulator import CasesEmulator

REGION, ACCOUNT = "us-east-1", "123456789012"
DOMAIN_ID = "0c4e7a52-1f3b-4d6e-8a9c-2b5d7f1e3a60"
DOMAIN_ARN = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{DOMAIN_ID}"
PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
SETTINGS = {
    "domain_id": DOMAIN_ID,
    "field_names": {"priority": PRIORITY},
    "event_fields": ["status", "title", "priority"],
    "include_content": True,
}
# What the stack's custom resource puts for SETTINGS, written out (not computed by the code under test).
CONFIGURED: dict[str, Any] = {
    "enabled": True,
    "includedData": {
        "caseData": {"fields": [{"id": "status"}, {"id": "title"}, {"id": PRIORITY}]},
        "relatedItemData": {"includeContent": True},
    },
}
FUNCTION_NAMES = {spec: f"Casewatch-{spec.construct_id}-1A2B3C4D" for spec in FUNCTIONS}
RULE_NAMES = {spec: f"Casewatch-Routing{spec.construct_id}Rule-5E6F7A8B" for spec in EVENT_ROUTED}
QUEUES = ("RuleDeadLetterQueue", "FailureQueue", "InvalidEventsQueue")
REDEPLOY = "make deploy applies the settings"
PREFIX = "casewatch doctor: "


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def rule_pattern(spec: Any, domain_arn: str | None = DOMAIN_ARN) -> dict[str, Any]:
    pattern: dict[str, Any] = {"source": ["aws.cases"], "detail-type": ["Amazon Connect Cases Change"]}
    if domain_arn is not None:
        pattern["resources"] = [{"prefix": domain_arn}]
    pattern["detail"] = {"eventType": list(spec.event_types)}
    return pattern


@dataclass
class DeployedStack:
    emulator: CasesEmulator
    cases: Any
    events: Any
    sqs: Any
    sns: Any
    cloudwatch: Any
    outputs: dict[str, str]
    subscription_arn: str
    tmp: Path

    def doctor(self, *extra: str) -> tuple[int, list[str]]:
        outputs_file = self.tmp / "outputs.json"
        outputs_file.write_text(json.dumps({"Casewatch": self.outputs}))
        out = io.StringIO()
        code = main(
            ["doctor", "--outputs", str(outputs_file), "--config", str(self.tmp / "cdk.json"), *extra], out
        )
        return code, out.getvalue().splitlines()

    def problems(self, *extra: str) -> list[str]:
        """Doctor's lines (without the prefix), asserting exit 1."""
        code, lines = self.doctor(*extra)
        assert code == 1, lines
        assert all(line.startswith(PREFIX) for line in lines), lines
        return [line.removeprefix(PREFIX) for line in lines]

    def healthy(self, *extra: str) -> list[str]:
        code, lines = self.doctor(*extra)
        assert code == 0, lines
        assert "casewatch doctor: stack Casewatch is healthy" in lines
        return lines

    def queue_url(self, queue: str) -> str:
        return self.outputs[f"{queue}Url"]

    def put_metric(
        self, namespace: str, name: str, dimensions: dict[str, str], value: float, age: timedelta
    ) -> None:
        self.cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    "Value": value,
                    "Timestamp": datetime.now(UTC) - age,
                }
            ],
        )


@dataclass(frozen=True)
class Account:
    """What outlives one test: the Cases emulator (its domain reset per test)."""

    emulator: CasesEmulator
    baseline: dict[str, Any]  # the emulator's state: the domain and its custom field


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with CasesEmulator(seed=3) as emulator:
        emulator.seed_domain(domain_id=DOMAIN_ID)
        emulator.seed_field(DOMAIN_ID, "Priority", "SingleSelect", field_id=PRIORITY)
        yield Account(emulator, emulator.export_state())


@pytest.fixture
def stack(moto: None, account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeployedStack:
    """The deployed stack on moto (the harness's `moto`: dummy credentials, the product's clients reset)."""
    emulator = account.emulator
    monkeypatch.setenv(ENV_CASES_ENDPOINT, emulator.url)
    emulator.load_state(account.baseline)
    cases = emulator.client()
    cases.put_case_event_configuration(domainId=DOMAIN_ID, eventBridge=CONFIGURED)
    events, sqs, sns, cloudwatch = (
        boto3.client(name, region_name=REGION) for name in ("events", "sqs", "sns", "cloudwatch")
    )
    outputs = {"DomainId": DOMAIN_ID}
    for spec, name in RULE_NAMES.items():
        arn = events.put_rule(Name=name, EventPattern=json.dumps(rule_pattern(spec)))["RuleArn"]
        events.put_targets(Rule=name, Targets=[{"Id": "Target0", "Arn": function_arn(FUNCTION_NAMES[spec])}])
        outputs[f"{spec.construct_id}RuleArn"] = arn
    outputs["ReplayFilterArns"] = ",".join(outputs[f"{s.construct_id}RuleArn"] for s in EVENT_ROUTED)
    for queue in QUEUES:
        outputs[f"{queue}Url"] = sqs.create_queue(QueueName=f"Casewatch-DeadLetters{queue}-9C0D")["QueueUrl"]
    topic = sns.create_topic(Name="Casewatch-MonitoringAlarmTopic-1E2F")["TopicArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    outputs["AlarmTopicArn"] = topic
    outputs.update({f"{spec.construct_id}FunctionName": name for spec, name in FUNCTION_NAMES.items()})
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"casewatch": SETTINGS}}))
    return DeployedStack(
        emulator=emulator,
        cases=cases,
        events=events,
        sqs=sqs,
        sns=sns,
        cloudwatch=cloudwatch,
        outputs=outputs,
        subscription_arn=subscription["SubscriptionArn"],
        tmp=tmp_path,
    )


# -- healthy -------------------------------------------------------------------------------------------
def test_a_healthy_stack_exits_0_with_a_summary(stack: DeployedStack) -> None:
    lines = stack.healthy()
    assert lines == [
        "casewatch doctor: stack Casewatch is healthy",
        f"  event-config  domain {DOMAIN_ID} publishes 3 fields, includeContent true, as the settings ask",
        "  rules         2 rules enabled, each matching the domain and targeting its function",
        "  queues        3 dead-letter queues empty",
        "  alarm-topic   1 confirmed alarm subscription (email)",
        "  errors        no function errors in the last 24h",
    ]


def test_json_reports_every_check(stack: DeployedStack) -> None:
    code, lines = stack.doctor("--json")
    document = json.loads("\n".join(lines))
    assert code == 0
    assert document["healthy"] is True
    assert list(document["checks"]) == ["event-config", "rules", "queues", "alarm-topic", "errors"]
    assert all(c["ok"] and c["problems"] == [] and c["warnings"] == [] for c in document["checks"].values())


def test_json_when_unhealthy(stack: DeployedStack) -> None:
    stack.events.disable_rule(Name=RULE_NAMES[CASE_CHANGED])
    code, lines = stack.doctor("--json")
    document = json.loads("\n".join(lines))
    assert code == 1
    assert document["healthy"] is False
    assert document["checks"]["rules"]["ok"] is False
    assert len(document["checks"]["rules"]["problems"]) == 1
    assert document["checks"]["queues"] == {
        "ok": True,
        "problems": [],
        "warnings": [],
        "summary": "3 dead-letter queues empty",
    }


# -- 1. the event configuration ------------------------------------------------------------------------
def test_fields_differing_from_the_settings(stack: DeployedStack) -> None:
    fields = [{"id": "status"}, {"id": "title"}, {"id": "summary"}]  # priority missing, summary extra
    included = {**CONFIGURED["includedData"], "caseData": {"fields": fields}}
    stack.cases.put_case_event_configuration(
        domainId=DOMAIN_ID, eventBridge={**CONFIGURED, "includedData": included}
    )
    assert stack.problems() == [
        f"event-config: event fields differ from event_fields: missing priority, extra summary; {REDEPLOY}"
    ]


def test_publishing_disabled(stack: DeployedStack) -> None:
    stack.cases.put_case_event_configuration(domainId=DOMAIN_ID, eventBridge={"enabled": False})
    assert stack.problems() == [
        f"event-config: domain {DOMAIN_ID} does not publish case events (enabled: false): no event reaches "
        f"casewatch; {REDEPLOY}"
    ]


def test_include_content_and_auto_include_fields_differing(stack: DeployedStack) -> None:
    stack.cases.put_case_event_configuration(
        domainId=DOMAIN_ID,
        eventBridge={
            "enabled": True,
            "includedData": {
                "caseData": {**CONFIGURED["includedData"]["caseData"], "autoIncludeFields": "System"},
                "relatedItemData": {"includeContent": False},
            },
        },
    )
    assert stack.problems() == [
        f"event-config: autoIncludeFields is System, auto_include_fields is null; {REDEPLOY}",
        f"event-config: includeContent is false, include_content is true; {REDEPLOY}",
    ]


def test_the_domain_is_the_one_the_stack_was_deployed_for(stack: DeployedStack) -> None:
    # `make deploy DOMAIN_ID=...` overrides cdk.json: doctor checks the stack's DomainId output.
    other = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    stack.outputs["DomainId"] = other
    lines = stack.problems()
    assert lines[0] == (
        f"event-config: domain {other} not found (ResourceNotFoundException: Domain not found): "
        "check domain_id and the Region"
    )
    assert [line.split(":", 1)[0] for line in lines[1:]] == ["rules", "rules"]  # scoped to DOMAIN_ID
    del stack.outputs["DomainId"]  # a stack without the output: the settings' domain
    stack.healthy()


def test_access_denied_is_a_problem(stack: DeployedStack) -> None:
    stack.emulator.fail_next("GetCaseEventConfiguration", status=403)
    (line,) = stack.problems()
    assert line.startswith(
        f"event-config: cannot read domain {DOMAIN_ID}'s event configuration (AccessDeniedException: "
    )
    assert line.endswith("): your credentials need cases:GetCaseEventConfiguration on the domain")


# -- 2. rules ------------------------------------------------------------------------------------------
def test_a_disabled_rule(stack: DeployedStack) -> None:
    name = RULE_NAMES[CASE_CHANGED]
    stack.events.disable_rule(Name=name)
    assert stack.problems() == [
        f"rules: rule {name} is DISABLED: case-changed gets no events; aws events enable-rule --name {name}"
    ]


def test_a_rule_targeting_another_function(stack: DeployedStack) -> None:
    name = RULE_NAMES[RELATED_ITEM_CREATED_FN]
    other = function_arn(FUNCTION_NAMES[SLA_TIMER])
    stack.events.put_targets(Rule=name, Targets=[{"Id": "Target0", "Arn": other}])
    assert stack.problems() == [
        f"rules: rule {name} does not target the related-item-created function "
        f"{FUNCTION_NAMES[RELATED_ITEM_CREATED_FN]} (targets: {other}); {REDEPLOY}"
    ]


def test_a_rule_without_its_event_types(stack: DeployedStack) -> None:
    name = RULE_NAMES[CASE_CHANGED]
    pattern = rule_pattern(CASE_CHANGED)
    pattern["detail"] = {"eventType": ["CASE.CREATED"]}
    stack.events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    assert stack.problems() == [
        f"rules: rule {name}'s pattern does not match eventType CASE.UPDATED, eventType CASE.DELETED: "
        f"case-changed misses them; {REDEPLOY}"
    ]


def test_a_rule_of_another_domain(stack: DeployedStack) -> None:
    name = RULE_NAMES[CASE_CHANGED]
    other = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    stack.events.put_rule(Name=name, EventPattern=json.dumps(rule_pattern(CASE_CHANGED, other)))
    assert stack.problems() == [
        f'rules: rule {name} does not match domain {DOMAIN_ID}\'s events (resources [{{"prefix": "{other}"}}]): '
        f"case-changed gets none; {REDEPLOY}"
    ]


def test_a_rule_of_every_domain_is_a_warning(stack: DeployedStack) -> None:
    name = RULE_NAMES[CASE_CHANGED]
    stack.events.put_rule(Name=name, EventPattern=json.dumps(rule_pattern(CASE_CHANGED, None)))
    lines = stack.healthy()
    assert lines[0] == (
        f"casewatch doctor: rules: warning: rule {name} matches the events of every Cases domain of the "
        "account (no resources prefix): case-changed is invoked for other domains' events and leaves them "
        "unhandled"
    )


def test_a_deleted_rule(stack: DeployedStack) -> None:
    name = RULE_NAMES[RELATED_ITEM_CREATED_FN]
    stack.events.remove_targets(Rule=name, Ids=["Target0"])
    stack.events.delete_rule(Name=name)
    assert stack.problems() == [
        f"rules: rule {name} (related-item-created) not found: related-item-created gets no events; {REDEPLOY}"
    ]


# -- 3. queues -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("messages", [0, 1, 2])
def test_queue_depth_at_the_edge(stack: DeployedStack, messages: int) -> None:
    for n in range(messages):
        stack.sqs.send_message(QueueUrl=stack.queue_url("FailureQueue"), MessageBody=json.dumps({"n": n}))
    if messages == 0:
        stack.healthy()
        return
    noun = "message" if messages == 1 else "messages"
    assert stack.problems() == [
        f"queues: FailureQueue holds {messages} {noun} ({messages} visible, 0 in flight): events a function "
        "failed on after Lambda's retries; read them, fix the cause, then redrive (README: Deploy, Dead "
        "letters and redrive)"
    ]


def test_a_message_in_flight_counts(stack: DeployedStack) -> None:
    url = stack.queue_url("InvalidEventsQueue")
    stack.sqs.send_message(QueueUrl=url, MessageBody="{}")
    stack.sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)  # someone is reading it: not visible
    assert stack.problems() == [
        "queues: InvalidEventsQueue holds 1 message (0 visible, 1 in flight): events parked with their reason "
        "(invalid, or a delivery that failed for good); read them, fix the cause, then redrive (README: "
        "Deploy, Dead letters and redrive)"
    ]


# -- 4. the alarm topic --------------------------------------------------------------------------------
def _pending_confirmation(subscription_arn: str) -> None:
    """moto confirms every subscription at once; AWS lists an unconfirmed one as `PendingConfirmation`."""
    from moto.sns.models import sns_backends

    sns_backends[ACCOUNT][REGION].subscriptions[subscription_arn].arn = "PendingConfirmation"


def test_an_unconfirmed_subscription_only(stack: DeployedStack) -> None:
    _pending_confirmation(stack.subscription_arn)
    assert stack.problems() == [
        "alarm-topic: 1 subscription to the alarm topic (email) pending confirmation, none confirmed: alarms "
        "notify nobody; follow the link in the confirmation message (or subscribe again)"
    ]


def test_no_subscription(stack: DeployedStack) -> None:
    stack.sns.unsubscribe(SubscriptionArn=stack.subscription_arn)
    assert stack.problems() == [
        "alarm-topic: no subscription to the alarm topic: alarms notify nobody; set alarm_email (then make "
        "deploy) or subscribe to AlarmTopicArn"
    ]


def test_one_confirmed_beside_a_pending_one_is_healthy(stack: DeployedStack) -> None:
    pending = stack.sns.subscribe(
        TopicArn=stack.outputs["AlarmTopicArn"], Protocol="email", Endpoint="b@example.com"
    )
    _pending_confirmation(pending["SubscriptionArn"])
    lines = stack.healthy()
    assert lines[0] == "casewatch doctor: alarm-topic: warning: 1 subscription (email) pending confirmation"


# -- 5. recent errors ----------------------------------------------------------------------------------
def test_function_errors(stack: DeployedStack) -> None:
    name = FUNCTION_NAMES[CASE_CHANGED]
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": name}, 1, timedelta(hours=1))
    assert stack.problems() == [
        f"errors: case-changed ({name}) failed 1 invocation in the last 24h (AWS/Lambda Errors): read its log "
        "group (LoggingConfig.LogGroup), then the failure queue"
    ]


def test_zero_errors_and_errors_of_other_functions_are_healthy(stack: DeployedStack) -> None:
    stack.put_metric(
        "AWS/Lambda", "Errors", {"FunctionName": FUNCTION_NAMES[SLA_TIMER]}, 0, timedelta(hours=1)
    )
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": "SomeoneElse-Function"}, 4, timedelta(hours=1))
    stack.healthy()


def test_errors_before_the_window_are_ignored_unless_since_reaches_them(stack: DeployedStack) -> None:
    name = FUNCTION_NAMES[SLA_TIMER]
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": name}, 3, timedelta(hours=25))
    stack.healthy()
    assert stack.problems("--since", "2d") == [
        f"errors: sla-timer ({name}) failed 3 invocations in the last 2d (AWS/Lambda Errors): read its log "
        "group (LoggingConfig.LogGroup), then the failure queue"
    ]


def test_errors_of_concurrent_duplicates_are_not_problems(stack: DeployedStack) -> None:
    """As the function's error alarm counts them: Errors less the function's DuplicatesInProgress (a
    concurrent duplicate fails on purpose and is retried); another function's duplicates discount nothing."""
    name, other = FUNCTION_NAMES[CASE_CHANGED], FUNCTION_NAMES[RELATED_ITEM_CREATED_FN]
    duplicates = {"service": "casewatch", "function_name": name}
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": name}, 2, timedelta(hours=1))
    stack.put_metric("Casewatch", "DuplicatesInProgress", duplicates, 2, timedelta(hours=1))
    stack.healthy()
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": name}, 1, timedelta(minutes=10))
    stack.put_metric("AWS/Lambda", "Errors", {"FunctionName": other}, 1, timedelta(minutes=10))
    stack.put_metric(
        "Casewatch", "DuplicatesInProgress", {**duplicates, "function_name": other}, 0, timedelta(0)
    )
    stack.put_metric(
        "Casewatch", "DuplicatesInProgress", {"service": "casewatch"}, 5, timedelta(0)
    )  # not per fn
    assert stack.problems() == [
        f"errors: case-changed ({name}) failed 1 invocation in the last 24h (AWS/Lambda Errors, not counting "
        "2 concurrent duplicates retried): read its log group (LoggingConfig.LogGroup), then the failure queue",
        f"errors: related-item-created ({other}) failed 1 invocation in the last 24h (AWS/Lambda Errors): "
        "read its log group (LoggingConfig.LogGroup), then the failure queue",
    ]


def test_parked_signals_and_reconciliation_errors_are_warnings(stack: DeployedStack) -> None:
    stack.put_metric("Casewatch", "SlaSignalsParked", {"service": "casewatch"}, 1, timedelta(minutes=30))
    stack.put_metric("Casewatch", "SlaReconcileCaseErrors", {"service": "casewatch"}, 3, timedelta(hours=3))
    lines = stack.healthy()
    assert lines[:2] == [
        "casewatch doctor: errors: warning: SlaSignalsParked 1 in the last 24h: SLA signals the sla-timer could "
        "not deliver, for good (e.g. the topic's key): read its log; once fixed, the change feed's next poll "
        "sends what is pending",
        "casewatch doctor: errors: warning: SlaReconcileCaseErrors 3 in the last 24h: cases the change feed could "
        "not apply (its watermark waits before them; every poll tries again): read the reconcile log",
    ]


def test_casewatch_metrics_are_warnings(stack: DeployedStack) -> None:
    stack.put_metric("Casewatch", "EventsInvalid", {"service": "casewatch"}, 2, timedelta(minutes=30))
    stack.put_metric("Casewatch", "GetCaseThrottled", {"service": "casewatch"}, 5, timedelta(hours=2))
    lines = stack.healthy()
    assert lines[:2] == [
        "casewatch doctor: errors: warning: EventsInvalid 2 in the last 24h: invalid events parked in "
        "InvalidEventsQueue with their reason",
        "casewatch doctor: errors: warning: GetCaseThrottled 5 in the last 24h: GetCase calls Cases throttled "
        "(the account's 4 requests/s are contested): add the fields the sinks need to event_fields, or lower "
        "reserved_concurrency",
    ]


# -- several problems, usage errors --------------------------------------------------------------------
def test_one_line_per_problem_across_checks(stack: DeployedStack) -> None:
    stack.cases.put_case_event_configuration(domainId=DOMAIN_ID, eventBridge={"enabled": False})
    stack.sqs.send_message(QueueUrl=stack.queue_url("RuleDeadLetterQueue"), MessageBody="{}")
    stack.sns.unsubscribe(SubscriptionArn=stack.subscription_arn)
    lines = stack.problems()
    assert [line.split(":", 1)[0] for line in lines] == ["event-config", "queues", "alarm-topic"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "'yesterday': expected e.g. 2h, 30m, 1d or an ISO-8601 time"),
        (("--stack", "Other"), "no outputs of stack 'Other'"),
    ],
)
def test_usage_errors_exit_2(
    stack: DeployedStack, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, lines = stack.doctor(*args)
    assert (code, lines) == (2, [])
    assert message in capsys.readouterr().err


def test_a_missing_output_is_a_usage_error(stack: DeployedStack, capsys: pytest.CaptureFixture[str]) -> None:
    del stack.outputs["AlarmTopicArn"]
    code, _ = stack.doctor()
    assert code == 2
    assert "stack 'Casewatch' has no output AlarmTopicArn" in capsys.readouterr().err
