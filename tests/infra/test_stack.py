"""Properties of the synthesized `Casewatch` stack: routing, retries, dead letters, encryption, IAM, env."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk.assertions import Match
from infra.constructs.function import CasewatchFunction
from infra.constructs.routing import Routing

from casewatch.constants import (
    DEAD_LETTER_RETENTION_DAYS,
    ENV_CONFIG_FILE,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.observability import (
    DUPLICATES_IN_PROGRESS,
    EVENTS_PARKED,
    FUNCTION_DIMENSION,
    GETCASE_THROTTLED,
    RECONCILE_CASE_ERRORS,
    SIGNALS_PARKED,
    SLA_REPAIRS,
)
from casewatch.tables import STATE_TABLE
from casewatch.topology import (
    CASE_CHANGED,
    EVENT_ROUTED,
    FUNCTIONS,
    RECONCILE,
    RELATED_ITEM_CREATED_FN,
    SLA_TIMER,
    FunctionSpec,
)
from tests.infra.synth import Synthesized, domain_arn, render

QUEUES = ("RuleDeadLetterQueue", "FailureQueue", "InvalidEventsQueue")
Permission = tuple[str, str, str]  # (action, resource, condition JSON)


# -- helpers ---------------------------------------------------------------------------------------
def function(synth: Synthesized, spec: FunctionSpec) -> tuple[str, dict[str, Any]]:
    return synth.by_path(f"Functions/{spec.construct_id}/Resource")


def logical_id(synth: Synthesized, path: str) -> str:
    return synth.by_path(path)[0]


def getatt(synth: Synthesized, path: str) -> str:
    return "${" + logical_id(synth, path) + ".Arn}"


def queue_arn(synth: Synthesized, name: str) -> str:
    return getatt(synth, f"DeadLetters/{name}/Resource")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_permissions(synth: Synthesized, role_id: str) -> set[Permission]:
    """Every (action, resource, condition) the role's inline policies allow."""
    found: set[Permission] = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            condition = json.dumps(statement.get("Condition", {}), sort_keys=True)
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    found.add((action, render(resource), condition))
    return found


def function_permissions(synth: Synthesized, spec: FunctionSpec) -> set[Permission]:
    _, fn = function(synth, spec)
    return role_permissions(synth, fn["Properties"]["Role"]["Fn::GetAtt"][0])


def allow(
    actions: list[str], resources: list[str], condition: dict[str, Any] | None = None
) -> set[Permission]:
    cond = json.dumps(condition or {}, sort_keys=True)
    return {(a, r, cond) for a in actions for r in resources}


def expected_permissions(synth: Synthesized, spec: FunctionSpec) -> set[Permission]:
    domain = domain_arn(synth.settings.domain_id)
    state = getatt(synth, "SlaStore/CaseTable/Resource")
    schedules = (
        "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/casewatch-sla-timers/*"
    )
    granted = (
        allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])  # CDK, tracing
        # CDK, the on-failure destination
        | allow(
            ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            [queue_arn(synth, "FailureQueue")],
        )
        | allow(["sns:Publish"], ["${" + logical_id(synth, "Notifications/Topic/Resource") + "}"])
        | allow(["kms:GenerateDataKey", "kms:Decrypt"], [getatt(synth, "Notifications/Key/Resource")])
        | allow(["events:PutEvents"], [getatt(synth, "Notifications/EnrichedBus/Resource")])
        # the case's item, its observation items (batch-written, queried to fold again); no DeleteItem
        | allow(
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:Query",
            ],
            [state],
        )
        | allow(
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
            [schedules],
        )
        | allow(
            ["iam:PassRole"],
            [getatt(synth, "SlaStore/SchedulerRole/Resource")],
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )
    )
    if spec.event_types:  # enrichment reads Cases; only these functions park events
        granted |= allow(["cases:GetCase"], [domain, f"{domain}/case/*", f"{domain}/field/*"])
        granted |= allow(["sqs:SendMessage"], [queue_arn(synth, "InvalidEventsQueue")])
    if spec == RELATED_ITEM_CREATED_FN:  # an Sla item without content: its definition from Cases
        granted |= allow(["cases:SearchRelatedItems"], [domain, f"{domain}/case/*"])
    if spec in (SLA_TIMER, RECONCILE):  # several cases (and the feed's watermark) at once
        granted |= allow(["dynamodb:BatchGetItem"], [state])
    if spec == RECONCILE:  # the change feed: domain-wide searches, and the due sweep
        granted |= allow(["cases:SearchCases"], [domain, f"{domain}/field/*"])
        granted |= allow(["cases:SearchAllRelatedItems"], [domain, f"{domain}/case/*"])
        granted |= allow(["dynamodb:Query"], [f"{state}/index/due"])
    return granted


# -- routing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", EVENT_ROUTED, ids=lambda s: s.name)
def test_each_event_routed_function_has_one_rule_with_its_pattern(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    fn_id, _ = function(synth, spec)
    _, rule = synth.by_path(f"Routing/{spec.construct_id}Rule/Resource")
    props = rule["Properties"]
    pattern = props["EventPattern"]
    assert {k: v for k, v in pattern.items() if k != "resources"} == {
        k: v for k, v in (spec.event_pattern("") or {}).items() if k != "resources"
    }  # the domain prefix: test_domain_scope.py
    assert "EventBusName" not in props  # the default bus, where Cases publishes
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": Routing.RULE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": int(Routing.RULE_MAX_EVENT_AGE.to_seconds()),
    }
    assert render(target["DeadLetterConfig"]["Arn"]) == queue_arn(synth, "RuleDeadLetterQueue")


def test_rule_dlq_accepts_only_casewatch_rules(synth: Synthesized) -> None:
    _, policy = synth.by_path("DeadLetters/RuleDeadLetterQueue/Policy/Resource")
    senders = {
        render(s["Condition"]["ArnEquals"]["aws:SourceArn"])
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    }
    rules = {getatt(synth, f"Routing/{spec.construct_id}Rule/Resource") for spec in EVENT_ROUTED}
    assert senders == rules | {getatt(synth, "Routing/ReconcileSchedule/Resource")}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_async_invocations_retry_twice_then_go_to_the_failure_queue(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    fn_id, _ = function(synth, spec)
    synth.assertions.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": fn_id},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": int(CasewatchFunction.MAX_EVENT_AGE.to_seconds()),
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": {
                        "Fn::GetAtt": [logical_id(synth, "DeadLetters/FailureQueue/Resource"), "Arn"]
                    }
                }
            },
        },
    )


@pytest.mark.parametrize("name", QUEUES)
def test_queues_are_encrypted_tls_only_and_keep_messages_14_days(synth: Synthesized, name: str) -> None:
    """14 days (`DEAD_LETTER_RETENTION_DAYS`): idempotency records outlive them (a redrive sends nothing
    twice, tests/unit/test_notification_adapters.py)."""
    queue_id, queue = synth.by_path(f"DeadLetters/{name}/Resource")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert DEAD_LETTER_RETENTION_DAYS == 14
    assert queue["Properties"]["MessageRetentionPeriod"] == DEAD_LETTER_RETENTION_DAYS * 24 * 3600
    _, policy = synth.by_path(f"DeadLetters/{name}/Policy/Resource")
    assert {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
    } in policy["Properties"]["PolicyDocument"]["Statement"]


def test_archive_keeps_every_cases_event_on_the_default_bus(synth: Synthesized) -> None:
    _, archive = synth.by_path("Routing/Archive/Archive")
    props = archive["Properties"]
    assert set(props["EventPattern"]) == {"source", "detail-type", "resources"}  # resources: the domain
    assert props["EventPattern"]["source"] == ["aws.cases"]
    assert props["RetentionDays"] == synth.settings.archive_retention_days
    assert render(props["SourceArn"]) == (
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    )


def test_outputs_name_everything_a_user_or_a_replay_needs(synth: Synthesized) -> None:
    outputs = synth.template["Outputs"]
    rule_ids = [logical_id(synth, f"Routing/{s.construct_id}Rule/Resource") for s in EVENT_ROUTED]
    assert outputs["ReplayFilterArns"]["Value"] == {
        "Fn::Join": [",", [{"Fn::GetAtt": [r, "Arn"]} for r in rule_ids]]
    }
    expected = {
        "ArchiveName",
        "ArchiveArn",
        "StateTableName",
        "TopicArn",
        "EnrichedBusName",
        "ScheduleGroupName",
        "AlarmTopicArn",
        "DashboardName",
        *(f"{q}Url" for q in QUEUES),
        *(f"{s.construct_id}RuleArn" for s in EVENT_ROUTED),
        *(f"{s.construct_id}FunctionName" for s in FUNCTIONS),
    }
    assert expected <= set(outputs)
    assert outputs["StateTableName"]["Value"] == {"Ref": logical_id(synth, "SlaStore/CaseTable/Resource")}


# -- functions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_function_house_defaults(synth: Synthesized, spec: FunctionSpec) -> None:
    _, fn = function(synth, spec)
    props = fn["Properties"]
    assert props["Handler"] == spec.handler
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 256
    assert props["Timeout"] == (60 if spec == RECONCILE else 30)
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert props["Layers"] == [
        {"Ref": logical_id(synth, "Functions/Dependencies/Layer/Resource")},
        {"Ref": logical_id(synth, "Functions/Settings/Layer/Resource")},  # /opt/casewatch/settings.json
    ]
    assert "ReservedConcurrentExecutions" not in props  # default: unreserved (issue 12)
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = synth.resources[log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == synth.settings.log_retention_days
    assert log_group["DeletionPolicy"] == "Retain"  # removal_policy: retain


def test_no_function_reserves_concurrency_by_default(synth: Synthesized) -> None:
    """A new account (10 concurrent executions, 100 must stay unreserved) can deploy the default stack."""
    assert synth.settings.reserved_concurrency is None
    for logical_id_, fn in synth.of_type("AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in fn["Properties"], logical_id_


def test_the_layer_is_for_python313_on_arm64(synth: Synthesized) -> None:
    _, layer = synth.by_path("Functions/Dependencies/Layer/Resource")
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_function_environment(synth: Synthesized, spec: FunctionSpec) -> None:
    _, fn = function(synth, spec)
    env = fn["Properties"]["Environment"]["Variables"]
    # The settings are a file of the settings layer (test_settings_layer.py); the environment names it.
    assert env[ENV_CONFIG_FILE] == "/opt/casewatch/settings.json"
    assert set(env) == {
        ENV_CONFIG_FILE,
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        ENV_SLA_TABLE,
        ENV_TOPIC_ARN,
        ENV_EVENT_BUS,
        ENV_SCHEDULE_GROUP,
        ENV_SCHEDULER_ROLE_ARN,
        ENV_SLA_TIMER_ARN,
        *([ENV_DEAD_LETTER_QUEUE_URL] if spec.event_types else []),  # the timer and reconcile park nothing
    }
    assert env["POWERTOOLS_SERVICE_NAME"] == "casewatch"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Casewatch"
    ref = {
        ENV_SLA_TABLE: "SlaStore/CaseTable/Resource",
        ENV_TOPIC_ARN: "Notifications/Topic/Resource",
        ENV_EVENT_BUS: "Notifications/EnrichedBus/Resource",
        **(
            {ENV_DEAD_LETTER_QUEUE_URL: "DeadLetters/InvalidEventsQueue/Resource"} if spec.event_types else {}
        ),
    }
    for name, path in ref.items():
        assert env[name] == {"Ref": logical_id(synth, path)}, name
    assert env[ENV_SCHEDULE_GROUP] == "casewatch-sla-timers"
    assert render(env[ENV_SCHEDULER_ROLE_ARN]) == getatt(synth, "SlaStore/SchedulerRole/Resource")
    # The timers' target, the sla-timer (named, so it can name itself without a circular reference).
    _, sla_timer = function(synth, SLA_TIMER)
    assert sla_timer["Properties"]["FunctionName"] == "Casewatch-sla-timer"
    assert render(env[ENV_SLA_TIMER_ARN]) == (
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:Casewatch-sla-timer"
    )


# -- IAM ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_each_function_role_has_exact_actions_on_exact_resources(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    assert function_permissions(synth, spec) == expected_permissions(synth, spec)


def test_cases_is_read_by_the_event_functions_and_the_feed_only(synth: Synthesized) -> None:
    """GetCase on the event path only (the domain, its cases and fields); the breach timer reads no
    Cases at all (the change feed's polls do, domain-wide)."""
    domain = domain_arn(synth.settings.domain_id)
    for spec in FUNCTIONS:
        get_case = {r for a, r, _ in function_permissions(synth, spec) if a == "cases:GetCase"}
        expected = {domain, f"{domain}/case/*", f"{domain}/field/*"} if spec.event_types else set()
        assert get_case == expected, spec.name
    assert {a for a, _, _ in function_permissions(synth, SLA_TIMER) if a.startswith("cases:")} == set()
    assert {a for a, _, _ in function_permissions(synth, RECONCILE) if a.startswith("cases:")} == {
        "cases:SearchCases",
        "cases:SearchAllRelatedItems",
    }


def test_nothing_deletes_items_and_there_is_no_idempotency_table(synth: Synthesized) -> None:
    """Claims are written with the case (no idempotency table), and nothing deletes a case's item (TTL
    does); observation items are deleted by BatchWriteItem's compaction only."""
    assert not [path for path in synth.resources if "Idempotency" in path]
    for spec in FUNCTIONS:
        actions = {a for a, _, _ in function_permissions(synth, spec)}
        assert "dynamodb:DeleteItem" not in actions and "dynamodb:Scan" not in actions, spec.name


def test_no_wildcard_resource_except_xray(synth: Synthesized) -> None:
    for spec in FUNCTIONS:
        star = {a for a, r, _ in function_permissions(synth, spec) if r == "*"}
        assert star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, spec.name


def test_one_role_per_function(synth: Synthesized) -> None:
    roles = [function(synth, spec)[1]["Properties"]["Role"]["Fn::GetAtt"][0] for spec in FUNCTIONS]
    assert len(set(roles)) == len(FUNCTIONS)


def test_scheduler_group_and_role_invoke_only_the_sla_timer(synth: Synthesized) -> None:
    synth.assertions.has_resource_properties(
        "AWS::Scheduler::ScheduleGroup", {"Name": "casewatch-sla-timers"}
    )
    role_id, role = synth.by_path("SlaStore/SchedulerRole/Resource")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"},
            "aws:SourceArn": {"Fn::GetAtt": [logical_id(synth, "SlaStore/ScheduleGroup"), "Arn"]},
        }
    }
    sla_timer_id, _ = function(synth, SLA_TIMER)
    assert role_permissions(synth, role_id) == allow(["lambda:InvokeFunction"], [f"${{{sla_timer_id}.Arn}}"])


def test_reconcile_runs_on_a_schedule(synth: Synthesized) -> None:
    """cdk.json polls the change feed every minute: `rate(1 minute)` (EventBridge refuses `rate(1 minutes)`;
    a longer period is plural). A poll's event older than the period is dropped, not retried."""
    assert synth.settings.reconcile_every_minutes == 1
    _, rule = synth.by_path("Routing/ReconcileSchedule/Resource")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert events.Schedule.rate(Duration.minutes(15)).expression_string == "rate(15 minutes)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function(synth, RECONCILE)[0], "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 2}


# -- storage and notifications ------------------------------------------------------------------------
def test_the_state_table_matches_the_shared_definition(synth: Synthesized) -> None:
    spec = STATE_TABLE
    assert list(synth.of_type("AWS::DynamoDB::Table")) == [logical_id(synth, "SlaStore/CaseTable/Resource")]
    _, table = synth.by_path(f"SlaStore/{spec.construct_id}/Resource")
    props = table["Properties"]
    args = spec.create_table_args("x")
    assert props["KeySchema"] == args["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(args["AttributeDefinitions"], key=str)
    assert [
        {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
        for gsi in props["GlobalSecondaryIndexes"]
    ] == args["GlobalSecondaryIndexes"]
    [due] = props["GlobalSecondaryIndexes"]
    assert due["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["dom"]}  # the due sweep's
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"] == {"SSEEnabled": True}  # KMS, AWS managed key
    assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("path", ["Notifications/Topic", "Monitoring/AlarmTopic"])
def test_topics_use_the_stack_key_and_tls_only(synth: Synthesized, path: str) -> None:
    topic_id, topic = synth.by_path(f"{path}/Resource")
    key_id, key = synth.by_path("Notifications/Key/Resource")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    _, policy = synth.by_path(f"{path}/Policy/Resource")
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in policy["Properties"]["PolicyDocument"]["Statement"]


def test_enriched_bus_is_named_from_the_stack(synth: Synthesized) -> None:
    synth.assertions.has_resource_properties("AWS::Events::EventBus", {"Name": "casewatch-enriched"})


# -- monitoring ---------------------------------------------------------------------------------------
SERVICE_ALARMS = (GETCASE_THROTTLED, SLA_REPAIRS, EVENTS_PARKED, SIGNALS_PARKED, RECONCILE_CASE_ERRORS)


def alarm_named(synth: Synthesized, alarm_id: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"Casewatch-{alarm_id}"
    ]
    return alarm


def test_alarms_cover_queues_functions_getcase_throttles_repairs_and_what_a_human_must_act_on(
    synth: Synthesized,
) -> None:
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == len(QUEUES) + 2 * len(FUNCTIONS) + len(SERVICE_ALARMS)
    alarm_topic = {"Ref": logical_id(synth, "Monitoring/AlarmTopic/Resource")}
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [alarm_topic]
        assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == 0
        assert (props["EvaluationPeriods"], props["TreatMissingData"]) == (1, "notBreaching")
    for name in QUEUES:
        queue_id = logical_id(synth, f"DeadLetters/{name}/Resource")
        synth.assertions.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            },
        )
    for spec in FUNCTIONS:
        synth.assertions.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": f"Casewatch-{spec.construct_id}Throttles",
                "MetricName": "Throttles",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function(synth, spec)[0]}}],
            },
        )
    for metric in SERVICE_ALARMS:  # counted by the handlers for the whole service
        synth.assertions.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": f"Casewatch-{metric}",
                "Namespace": "Casewatch",
                "MetricName": metric,
                "Dimensions": [{"Name": "service", "Value": "casewatch"}],
                "Statistic": "Sum",
                "Period": 300,
            },
        )
    synth.assertions.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    synth.assertions.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardBody": Match.any_value()}
    )


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_a_function_error_alarm_discounts_that_functions_concurrent_duplicates(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    """Errors - FILL(DuplicatesInProgress, 0), both of this function: its AWS/Lambda Errors by FunctionName,
    and the duplicates its handler counted with the dimensions service and function_name (the deployed
    name, which `Ref` of the function is and the Lambda context reports)."""
    alarm = alarm_named(synth, f"{spec.construct_id}Errors")
    assert "MetricName" not in alarm and "Dimensions" not in alarm  # metric math, not the bare Errors
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    [expression] = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True
    assert all(q["ReturnData"] is False for q in queries.values() if q is not expression)
    errors, duplicates = expression["Expression"].split(" - ")
    assert duplicates.startswith("FILL(") and duplicates.endswith(", 0)")  # no duplicate: counts 0
    errors_stat, duplicates_stat = queries[errors]["MetricStat"], queries[duplicates[5:-4]]["MetricStat"]
    this_function = {"Ref": function(synth, spec)[0]}
    assert (errors_stat["Stat"], errors_stat["Period"]) == ("Sum", 300)
    assert errors_stat["Metric"] == {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": this_function}],
    }
    assert (duplicates_stat["Stat"], duplicates_stat["Period"]) == ("Sum", 300)
    assert duplicates_stat["Metric"]["Namespace"] == "Casewatch"
    assert duplicates_stat["Metric"]["MetricName"] == DUPLICATES_IN_PROGRESS
    assert {d["Name"]: d["Value"] for d in duplicates_stat["Metric"]["Dimensions"]} == {
        "service": "casewatch",
        FUNCTION_DIMENSION: this_function,
    }


def alarm_arns(synth: Synthesized) -> set[str]:
    """The ARN of every alarm of the stack, by its (explicit) name."""
    names = [a["Properties"].get("AlarmName") for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    assert all(isinstance(name, str) for name in names), "every alarm needs an explicit name"
    return {
        f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{n}" for n in names
    }


def service_statements(document: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in document["Statement"]
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": service}
    ]


def test_cloudwatch_may_publish_the_stack_alarms_to_the_alarm_topic(synth: Synthesized) -> None:
    """A topic policy replaces SNS's default one: without this statement no alarm can notify (issue 12)."""
    topic_id, _ = synth.by_path("Monitoring/AlarmTopic/Resource")
    _, policy = synth.by_path("Monitoring/AlarmTopic/Policy/Resource")
    (statement,) = service_statements(policy["Properties"]["PolicyDocument"], "cloudwatch.amazonaws.com")
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": topic_id}
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert {render(arn) for arn in as_list(condition["ArnEquals"]["aws:SourceArn"])} == alarm_arns(synth)


def test_the_topic_key_lets_cloudwatch_encrypt_for_the_stack_alarms_only(synth: Synthesized) -> None:
    _, key = synth.by_path("Notifications/Key/Resource")
    (statement,) = service_statements(key["Properties"]["KeyPolicy"], "cloudwatch.amazonaws.com")
    assert set(as_list(statement["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert statement["Resource"] == "*"  # in a key policy: this key
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert {render(arn) for arn in as_list(condition["ArnEquals"]["aws:SourceArn"])} == alarm_arns(synth)


def test_alarms_are_named_after_the_stack(synth: Synthesized) -> None:
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmName"].startswith("Casewatch-")


# -- the grants cover what the code calls -------------------------------------------------------------


class Calls:
    """The AWS operations a function's code made (botocore's `before-parameter-build` hook on the DynamoDB
    client: the API parameters, paginated or not; the Cases emulator's call log): {(IAM action, resource
    kind)}, resource kind "table", "index" (the `due` index) or "" (Cases)."""

    def __init__(self, dynamodb: Any, emu: Any) -> None:
        self.emu = emu
        self.seen: set[tuple[str, str]] = set()
        dynamodb.meta.events.register("before-parameter-build.dynamodb", self._dynamodb)

    def _dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.seen.add((f"dynamodb:{model.name}", "index" if params.get("IndexName") else "table"))

    def take(self) -> set[tuple[str, str]]:
        taken = self.seen | {(f"cases:{c.operation}", "") for c in self.emu.call_log}
        self.seen = set()
        self.emu.reset_counters()
        return taken


def test_every_call_each_function_makes_is_granted(synth: Synthesized, state_table: str) -> None:
    """Each function run over the DynamoDB store (moto) and Cases (the emulator, in process) on the paths
    that reach every call — a new case, a later and an out-of-order event, an Sla item without content,
    a fold stored under other policies, a breach timer, a change-feed poll with news and a due case —
    and every DynamoDB and Cases action it used is in its role (on the table, or the `due` index)."""
    from datetime import timedelta

    from casewatch.adapters.cases_api import CasesApi
    from casewatch.adapters.clients import dynamodb_client
    from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
    from casewatch.bootstrap import policies
    from casewatch.models.signals import SlaTimerPayload
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.emulator import CasesEmulator
    from tests.apps import World
    from tests.builders import DOMAIN, FIRST, PRIORITY, T0, at, case_event_raw, comment, related_raw

    settings = synth.settings
    assert settings.domain_id == DOMAIN
    clock = VirtualClock(T0)
    emu = CasesEmulator(clock=clock, seed=5, search_index_lag=settings.index_lag)
    emu.seed_domain(domain_id=DOMAIN)
    emu.seed_field(DOMAIN, "Priority", "SingleSelect", field_id=PRIORITY)
    template = emu.seed_template(DOMAIN, "Default")
    known = emu.seed_case(DOMAIN, template, {"status": "open", PRIORITY: "high"}, case_id="c-known")
    api = CasesApi(emu.client(in_process=True))
    client = dynamodb_client()
    calls = Calls(client, emu)
    world = World(
        settings,
        clock=clock,
        cases=api,
        cases_slas=api,
        search=api,
        store=DynamoDbCaseStore(state_table, client, policies(settings)),
    )
    used: dict[str, set[tuple[str, str]]] = {spec.name: set() for spec in FUNCTIONS}

    def run(spec: FunctionSpec, action: Any) -> None:
        calls.take()
        action()
        used[spec.name] |= calls.take()

    # case-changed: a new case, a later event, one out of order (the log is queried to fold again), GetCase
    fields = {"status": "open", PRIORITY: "high"}
    run(CASE_CHANGED, lambda: world.deliver(case_event_raw("CASE.CREATED", "c1", at(0), fields)))
    run(
        CASE_CHANGED,
        lambda: world.deliver(
            case_event_raw(
                "CASE.UPDATED", "c1", at(20), {**fields, "status": "pending-customer"}, changed=["status"]
            )
        ),
    )
    run(
        CASE_CHANGED,
        lambda: world.deliver(
            case_event_raw("CASE.UPDATED", "c1", at(10), {**fields, "status": "open"}, changed=["status"])
        ),
    )
    metadata_only = case_event_raw("CASE.UPDATED", known, at(5), {}, changed=["status"])
    metadata_only["detail"]["case"].pop("fields")
    run(CASE_CHANGED, lambda: world.deliver(metadata_only))
    # related-item-created: a comment (GetCase: no stored view), an older one, an Sla item without content
    run(RELATED_ITEM_CREATED_FN, lambda: world.deliver(comment("c2", 15, "cm-1")))
    run(RELATED_ITEM_CREATED_FN, lambda: world.deliver(comment("c2", 5, "cm-0")))
    item = emu.seed_related_item(
        DOMAIN,
        known,
        "Sla",
        {
            "sla": {
                "slaInputConfiguration": {
                    "name": "R",
                    "type": "CaseField",
                    "fieldId": "status",
                    "targetFieldValues": [{"stringValue": "closed"}],
                    "targetSlaMinutes": 60,
                }
            }
        },
    )
    run(RELATED_ITEM_CREATED_FN, lambda: world.deliver(related_raw(known, at(6), "Sla", item)))
    # sla-timer: a breach with the feed past its target; a case folded under other policies (the timer finds
    # no SLA in it: the feed's due sweep folds its log again)
    longer = [p.model_copy(update={"target_minutes": p.target_minutes + 1}) for p in settings.sla_policies]
    earlier = settings.model_copy(update={"sla_policies": longer})  # the settings of the last deployment
    other = World(earlier, clock=clock, store=DynamoDbCaseStore(state_table, client, policies(earlier)))
    other.deliver(case_event_raw("CASE.CREATED", "c3", at(0), fields))
    clock.set(at(30) + settings.breach_grace)
    world.catch_up()
    for case_id in ("c1", "c3"):
        payload = SlaTimerPayload(
            kind="breach",
            domain_id=DOMAIN,
            case_id=case_id,
            sla_name="first-response-high",
            sla_key=FIRST,
            target_time=at(30),
        )
        run(SLA_TIMER, lambda p=payload: world.fire(p))
    # reconcile: news of a case (its events lost), and a due case
    emu.seed_case(DOMAIN, template, {"status": "open", PRIORITY: "low"}, case_id="c-lost")
    clock.advance(timedelta(minutes=5))
    run(RECONCILE, lambda: world.poll("poll-1"))
    clock.advance(timedelta(hours=9))
    run(RECONCILE, lambda: world.poll("poll-2"))

    state = getatt(synth, "SlaStore/CaseTable/Resource")
    resource = {"table": state, "index": f"{state}/index/due"}
    for spec in FUNCTIONS:
        granted = function_permissions(synth, spec)
        actions = {a for a, _, _ in granted}
        for action, kind in sorted(used[spec.name]):
            if action.startswith("dynamodb:"):
                assert (action, resource[kind], "{}") in granted, (spec.name, action, kind)
            else:
                assert action in actions, (spec.name, action)
    # the paths meant to reach them did
    assert ("dynamodb:BatchWriteItem", "table") in used[CASE_CHANGED.name]
    assert ("dynamodb:Query", "table") in used[CASE_CHANGED.name] & used[RELATED_ITEM_CREATED_FN.name]
    assert ("dynamodb:Query", "table") in used[RECONCILE.name]  # c3's due sweep folds its log again
    assert ("dynamodb:BatchGetItem", "table") in used[SLA_TIMER.name] & used[RECONCILE.name]
    assert ("dynamodb:Query", "index") in used[RECONCILE.name]
    assert {("cases:GetCase", ""), ("cases:SearchRelatedItems", "")} <= used[RELATED_ITEM_CREATED_FN.name]
    assert ("cases:GetCase", "") in used[CASE_CHANGED.name]
    assert {("cases:SearchCases", ""), ("cases:SearchAllRelatedItems", "")} <= used[RECONCILE.name]
    assert not {a for a, _ in used[SLA_TIMER.name] if a.startswith("cases:")}
