"""Every service-to-resource delivery of the synthesized stack is allowed, with conditions AWS supports.

The edges are derived from the template, not listed by hand: rule targets and their dead-letter
queues, alarm actions (and the topic's KMS key), Lambda's asynchronous destinations and log
groups, the layers, the custom resource's service token and the Provider framework's handler,
what the functions' environment points them at (tables, queues, topics, buses, the scheduler role
and the timer function it invokes), publishers of encrypted topics, the archive's bus. An edge of
a kind this module does not know fails the walk: add the check with the new edge. Both syntheses
are walked (the variant has the capture rule and the alarm e-mail).

Condition keys per (service principal, action) are those AWS documents for that delivery; a key
AWS does not send makes the grant fail in a real account (e.g. `aws:SourceArn` on EventBridge's
`logs:CreateLogStream`), so the check rejects keys outside the table, and requires the
confused-deputy keys where AWS supports them (issue 12, BS2).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from casewatch.constants import (
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from tests.infra.synth import Synthesized, render

PSEUDO_PREFIX = "arn:${AWS::Partition}"
ACCOUNT_ROOT = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
BASIC_EXECUTION = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
BASIC_EXECUTION_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}  # on "*"

# Condition keys AWS supports for a service principal's call (documented confused-deputy keys).
SUPPORTED_KEYS: dict[tuple[str, str], frozenset[str]] = {
    ("events.amazonaws.com", "sqs:SendMessage"): frozenset({"aws:SourceArn", "aws:SourceAccount"}),
    # CloudWatch Logs: EventBridge's PutLogEvents carries the rule ARN, its CreateLogStream does not.
    ("events.amazonaws.com", "logs:PutLogEvents"): frozenset({"aws:SourceArn"}),
    ("events.amazonaws.com", "logs:CreateLogStream"): frozenset(),
    ("cloudwatch.amazonaws.com", "sns:Publish"): frozenset({"aws:SourceArn", "aws:SourceAccount"}),
    ("cloudwatch.amazonaws.com", "kms:GenerateDataKey"): frozenset(
        {"aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:aws:sns:topicArn"}
    ),
    ("cloudwatch.amazonaws.com", "kms:Decrypt"): frozenset(
        {"aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:aws:sns:topicArn"}
    ),
    ("scheduler.amazonaws.com", "sts:AssumeRole"): frozenset({"aws:SourceArn", "aws:SourceAccount"}),
}
CONFUSED_DEPUTY_KEYS = frozenset({"aws:SourceArn", "aws:SourceAccount"})
# What a function's environment reference means: the action the function must be allowed on it.
ENV_GRANTS: dict[str, tuple[str, str]] = {
    ENV_SLA_TABLE: ("dynamodb:PutItem", "arn"),
    ENV_TOPIC_ARN: ("sns:Publish", "ref"),
    ENV_EVENT_BUS: ("events:PutEvents", "arn"),
    ENV_DEAD_LETTER_QUEUE_URL: ("sqs:SendMessage", "arn"),
    ENV_SCHEDULER_ROLE_ARN: ("iam:PassRole", "arn"),
}
# Environment references that are not resources the function itself calls.
ENV_NOT_CALLED = {ENV_SLA_TIMER_ARN}  # the timers' target: Scheduler invokes it (the scheduler edge)


@dataclass(frozen=True)
class Edge:
    kind: str
    source: str  # logical id
    target: str  # logical id
    via: str = ""  # the property the edge was found in

    def __str__(self) -> str:
        return f"{self.kind}: {self.source} -> {self.target} ({self.via})"


class UnknownEdgeError(AssertionError):
    """The walk found a delivery this module has no check for."""


# -- template helpers --------------------------------------------------------------------------------
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced(value: Any, resources: dict[str, Any]) -> list[str]:
    """Logical ids of the template's resources a value references (Ref / GetAtt, also inside Joins)."""
    found: list[str] = []
    if isinstance(value, dict):
        if "Ref" in value and value["Ref"] in resources:
            found.append(value["Ref"])
        elif "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in resources:
            found.append(value["Fn::GetAtt"][0])
        else:
            for inner in value.values():
                found.extend(referenced(inner, resources))
    elif isinstance(value, list):
        for inner in value:
            found.extend(referenced(inner, resources))
    return found


def single_target(synth: Synthesized, value: Any, what: str) -> str:
    targets = referenced(value, synth.resources)
    if len(targets) != 1:
        raise UnknownEdgeError(f"{what}: {json.dumps(value)} does not name one resource of the stack")
    return targets[0]


def arn_of(synth: Synthesized, logical_id: str) -> str:
    return "${" + logical_id + ".Arn}"


def rendered_policy(document: Any) -> dict[str, Any]:
    """A policy document (an object, or a JSON string built with Fn::Join) with references rendered."""
    if isinstance(document, dict) and "Statement" in document:
        return json.loads(render_deep(document))  # type: ignore[no-any-return]
    return json.loads(render(document))  # type: ignore[no-any-return]


def render_deep(value: Any) -> str:
    def walk(node: Any) -> Any:
        if (
            isinstance(node, dict)
            and len(node) == 1
            and next(iter(node)) in ("Ref", "Fn::GetAtt", "Fn::Join")
        ):
            return render(node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(value))


def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def principals(statement: dict[str, Any], kind: str) -> list[str]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return ["*"]
    return [str(p) for p in as_list(principal.get(kind, []))]


def condition_keys(statement: dict[str, Any]) -> dict[str, list[str]]:
    """{condition key: rendered values} over every operator."""
    keys: dict[str, list[str]] = {}
    for operator in statement.get("Condition", {}).values():
        for key, values in operator.items():
            keys.setdefault(key, []).extend(str(v) for v in as_list(values))
    return keys


def service_grants(
    document: dict[str, Any], service: str, action: str, resource: str | None
) -> list[dict[str, Any]]:
    """Allow statements of a resource policy for the service principal, action and (rendered) resource."""
    return [
        s
        for s in document["Statement"]
        if s["Effect"] == "Allow"
        and service in principals(s, "Service")
        and any(action_matches(a, action) for a in as_list(s["Action"]))
        and (resource is None or any(fnmatch.fnmatchcase(resource, r) for r in as_list(s["Resource"])))
    ]


def condition_problems(
    statement: dict[str, Any], service: str, action: str, source_arn: str | None
) -> list[str]:
    """Keys AWS does not send for this delivery; missing confused-deputy keys; a source not covered."""
    supported = SUPPORTED_KEYS.get((service, action.rstrip("*")))
    if supported is None:
        return [f"no known condition keys for {service} {action}: add them to SUPPORTED_KEYS"]
    keys = condition_keys(statement)
    problems = [f"{service} does not send {k} with {action}" for k in keys if k not in supported]
    if supported & CONFUSED_DEPUTY_KEYS and not keys.keys() & CONFUSED_DEPUTY_KEYS:
        problems.append(f"{service} {action}: no aws:SourceArn/aws:SourceAccount condition")
    if "aws:SourceAccount" in keys and keys["aws:SourceAccount"] != ["${AWS::AccountId}"]:
        problems.append(f"aws:SourceAccount is not this account: {keys['aws:SourceAccount']}")
    if (
        source_arn
        and "aws:SourceArn" in keys
        and not any(fnmatch.fnmatchcase(source_arn, allowed) for allowed in keys["aws:SourceArn"])
    ):
        problems.append(f"aws:SourceArn does not cover {source_arn}")
    return problems


def resource_policy_problems(
    document: dict[str, Any], service: str, actions: list[str], resource: str, source_arn: str | None
) -> list[str]:
    problems = []
    for action in actions:
        grants = service_grants(document, service, action, resource)
        if not grants:
            problems.append(f"no statement allows {service} {action} on {resource}")
        elif all(condition_problems(g, service, action, source_arn) for g in grants):
            problems.extend(condition_problems(grants[0], service, action, source_arn))
    return problems


def role_statements(synth: Synthesized, role_id: str) -> Iterator[dict[str, Any]]:
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            yield from rendered_policy(policy["Properties"]["PolicyDocument"])["Statement"]


def role_allows(synth: Synthesized, role_id: str, action: str, resource: str) -> bool:
    role = synth.resources[role_id]["Properties"]
    if action in BASIC_EXECUTION_ACTIONS and any(
        render(arn) == BASIC_EXECUTION for arn in role.get("ManagedPolicyArns", [])
    ):
        return True
    return any(
        s["Effect"] == "Allow"
        and any(action_matches(a, action) for a in as_list(s["Action"]))
        and any(fnmatch.fnmatchcase(resource, r) for r in as_list(s["Resource"]))
        for s in role_statements(synth, role_id)
    )


def function_role(synth: Synthesized, function_id: str) -> str:
    return str(synth.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0])


def resource_type(synth: Synthesized, logical_id: str) -> str:
    return str(synth.resources[logical_id]["Type"])


def alarm_arn(alarm: dict[str, Any]) -> str | None:
    name = alarm["Properties"].get("AlarmName")
    return (
        f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{name}"
        if name
        else None
    )


# -- the walk ---------------------------------------------------------------------------------------------
def edges(synth: Synthesized) -> list[Edge]:
    found: list[Edge] = []
    for rule_id, rule in synth.of_type("AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            if "RoleArn" in target:
                raise UnknownEdgeError(f"{rule_id}: a target with a RoleArn (EventBridge assumes a role)")
            target_id = single_target(synth, target["Arn"], f"{rule_id} target")
            kind = {"AWS::Lambda::Function": "rule->lambda", "AWS::Logs::LogGroup": "rule->log-group"}.get(
                resource_type(synth, target_id)
            )
            if kind is None:
                raise UnknownEdgeError(f"{rule_id}: a target of type {resource_type(synth, target_id)}")
            found.append(Edge(kind, rule_id, target_id, "Targets"))
            if "DeadLetterConfig" in target:
                dlq = single_target(synth, target["DeadLetterConfig"]["Arn"], f"{rule_id} dead-letter queue")
                found.append(Edge("rule->dead-letter-queue", rule_id, dlq, "DeadLetterConfig"))
    for alarm_id, alarm in synth.of_type("AWS::CloudWatch::Alarm").items():
        for prop in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in alarm["Properties"].get(prop, []):
                topic = single_target(synth, action, f"{alarm_id} {prop}")
                if resource_type(synth, topic) != "AWS::SNS::Topic":
                    raise UnknownEdgeError(
                        f"{alarm_id}: an alarm action of type {resource_type(synth, topic)}"
                    )
                found.append(Edge("alarm->topic", alarm_id, topic, prop))
    for config_id, config in synth.of_type("AWS::Lambda::EventInvokeConfig").items():
        function_id = single_target(synth, config["Properties"]["FunctionName"], config_id)
        for outcome, destination in config["Properties"].get("DestinationConfig", {}).items():
            target = single_target(synth, destination["Destination"], f"{config_id} {outcome}")
            if resource_type(synth, target) != "AWS::SQS::Queue":
                raise UnknownEdgeError(f"{config_id}: a destination of type {resource_type(synth, target)}")
            found.append(Edge("lambda->destination-queue", function_id, target, outcome))
    for function_id, function in synth.of_type("AWS::Lambda::Function").items():
        props = function["Properties"]
        if "LoggingConfig" in props and "LogGroup" in props["LoggingConfig"]:
            log_group = single_target(synth, props["LoggingConfig"]["LogGroup"], f"{function_id} log group")
            found.append(Edge("lambda->log-group", function_id, log_group, "LoggingConfig"))
        for layer in props.get("Layers", []):
            found.append(
                Edge("lambda->layer", function_id, single_target(synth, layer, function_id), "Layers")
            )
        for name, value in props.get("Environment", {}).get("Variables", {}).items():
            targets = referenced(value, synth.resources)
            if name == "USER_ON_EVENT_FUNCTION_ARN":  # CDK's Provider framework invokes the handler
                found.append(Edge("provider->handler", function_id, targets[0], name))
            elif name == ENV_SCHEDULER_ROLE_ARN:
                found.append(Edge("scheduler->timer", targets[0], function_id, name))
                found.append(Edge("env->resource", function_id, targets[0], name))
            elif name in ENV_NOT_CALLED:
                continue
            elif targets:
                if name not in ENV_GRANTS:
                    raise UnknownEdgeError(f"{function_id}: environment {name} references {targets}")
                found.append(Edge("env->resource", function_id, targets[0], name))
    for topic_id, topic in synth.of_type("AWS::SNS::Topic").items():
        if "KmsMasterKeyId" in topic["Properties"]:
            key = single_target(synth, topic["Properties"]["KmsMasterKeyId"], f"{topic_id} key")
            found.append(Edge("topic->key", topic_id, key, "KmsMasterKeyId"))
    for resource_id, resource in synth.resources.items():
        token = resource.get("Properties", {}).get("ServiceToken")
        if (
            resource["Type"].startswith("Custom::")
            or resource["Type"] == "AWS::CloudFormation::CustomResource"
        ):
            found.append(
                Edge("custom-resource->lambda", resource_id, single_target(synth, token, resource_id))
            )
    for archive_id in synth.of_type("AWS::Events::Archive"):
        found.append(Edge("archive->bus", archive_id, "default", "SourceArn"))
    return found


# -- the checks, one per kind of edge ----------------------------------------------------------------------
def check_rule_to_lambda(synth: Synthesized, edge: Edge) -> list[str]:
    permissions = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if referenced(p["Properties"]["FunctionName"], synth.resources) == [edge.target]
    ]
    ok = [
        p
        for p in permissions
        if p["Action"] == "lambda:InvokeFunction"
        and p["Principal"] == "events.amazonaws.com"
        and render(p.get("SourceArn", "")) == arn_of(synth, edge.source)
    ]
    return [] if ok else ["no Lambda permission for events.amazonaws.com with SourceArn = the rule"]


def check_rule_to_queue(synth: Synthesized, edge: Edge) -> list[str]:
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": edge.target} in p["Properties"]["Queues"]
    ]
    if not policies:
        return ["the queue has no queue policy"]
    document = {"Statement": [s for d in policies for s in rendered_policy(d)["Statement"]]}
    return resource_policy_problems(
        document,
        "events.amazonaws.com",
        ["sqs:SendMessage"],
        arn_of(synth, edge.target),
        arn_of(synth, edge.source),
    )


def check_rule_to_log_group(synth: Synthesized, edge: Edge) -> list[str]:
    statements = [
        s
        for p in synth.of_type("AWS::Logs::ResourcePolicy").values()
        for s in rendered_policy(p["Properties"]["PolicyDocument"])["Statement"]
    ]
    return resource_policy_problems(
        {"Statement": statements},
        "events.amazonaws.com",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        arn_of(synth, edge.target),
        arn_of(synth, edge.source),
    )


def check_alarm_to_topic(synth: Synthesized, edge: Edge) -> list[str]:
    source = alarm_arn(synth.resources[edge.source])
    if source is None:
        return ["the alarm has no name: its ARN cannot be named in the topic and key policies"]
    policies = [
        rendered_policy(p["Properties"]["PolicyDocument"])
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if {"Ref": edge.target} in p["Properties"]["Topics"]
    ]
    if not policies:
        return ["the topic has no topic policy (SNS's default one does not exist with CDK's)"]
    document = {"Statement": [s for d in policies for s in d["Statement"]]}
    problems = resource_policy_problems(
        document, "cloudwatch.amazonaws.com", ["sns:Publish"], "${" + edge.target + "}", source
    )
    key = synth.resources[edge.target]["Properties"].get("KmsMasterKeyId")
    if key is not None:
        key_id = single_target(synth, key, edge.target)
        key_policy = rendered_policy(synth.resources[key_id]["Properties"]["KeyPolicy"])
        problems += resource_policy_problems(
            key_policy, "cloudwatch.amazonaws.com", ["kms:GenerateDataKey", "kms:Decrypt"], "*", source
        )
    return problems


def check_destination_queue(synth: Synthesized, edge: Edge) -> list[str]:
    role = function_role(synth, edge.source)
    if role_allows(synth, role, "sqs:SendMessage", arn_of(synth, edge.target)):
        return []
    return ["the function's role may not sqs:SendMessage to its destination"]


def check_log_group(synth: Synthesized, edge: Edge) -> list[str]:
    role = function_role(synth, edge.source)
    log_group = arn_of(synth, edge.target)
    return [
        f"the function's role may not {action} to its log group"
        for action in ("logs:CreateLogStream", "logs:PutLogEvents")
        if not role_allows(synth, role, action, log_group)
    ]


def check_layer(synth: Synthesized, edge: Edge) -> list[str]:
    kind = resource_type(synth, edge.target)
    return [] if kind == "AWS::Lambda::LayerVersion" else [f"a layer of type {kind}"]  # own account: no grant


def check_env_resource(synth: Synthesized, edge: Edge) -> list[str]:
    action, form = ENV_GRANTS[edge.via]
    resource = arn_of(synth, edge.target) if form == "arn" else "${" + edge.target + "}"
    role = function_role(synth, edge.source)
    return [] if role_allows(synth, role, action, resource) else [f"the function's role may not {action} it"]


def check_scheduler_to_timer(synth: Synthesized, edge: Edge) -> list[str]:
    """The role Scheduler assumes (named by the environment) trusts Scheduler for this account's group
    only, and may invoke the function the environment names as the timers' target."""
    role = synth.resources[edge.source]["Properties"]
    trust = rendered_policy(role["AssumeRolePolicyDocument"])
    problems = resource_policy_problems(trust, "scheduler.amazonaws.com", ["sts:AssumeRole"], None, None)
    target = render(synth.resources[edge.target]["Properties"]["Environment"]["Variables"][ENV_SLA_TIMER_ARN])
    name = target.rsplit(":", 1)[-1]
    (timer_id,) = [
        k
        for k, f in synth.of_type("AWS::Lambda::Function").items()
        if f["Properties"].get("FunctionName") == name
    ]
    if not role_allows(synth, edge.source, "lambda:InvokeFunction", arn_of(synth, timer_id)):
        problems.append(f"the scheduler role may not invoke {name}")
    passes = [
        s
        for s in role_statements(synth, function_role(synth, edge.target))
        if "iam:PassRole" in as_list(s["Action"]) and arn_of(synth, edge.source) in as_list(s["Resource"])
    ]
    if not any(condition_keys(s).get("iam:PassedToService") == ["scheduler.amazonaws.com"] for s in passes):
        problems.append("the function may not pass the scheduler role to scheduler.amazonaws.com (only)")
    return problems


def check_topic_key(synth: Synthesized, edge: Edge) -> list[str]:
    """Whoever may publish to an encrypted topic may use its key: roles (IAM, with the key policy
    delegating to the account) and service principals (the key policy)."""
    key_policy = rendered_policy(synth.resources[edge.target]["Properties"]["KeyPolicy"])
    delegates = any(
        ACCOUNT_ROOT in principals(s, "AWS") and "kms:*" in as_list(s["Action"])
        for s in key_policy["Statement"]
    )
    problems = []
    topic = "${" + edge.source + "}"
    for role_id in synth.of_type("AWS::IAM::Role"):
        if role_allows(synth, role_id, "sns:Publish", topic):
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                if not (delegates and role_allows(synth, role_id, action, arn_of(synth, edge.target))):
                    problems.append(f"{role_id} publishes to the topic but may not {action} with its key")
    for policy in synth.of_type("AWS::SNS::TopicPolicy").values():
        if {"Ref": edge.source} not in policy["Properties"]["Topics"]:
            continue
        for statement in rendered_policy(policy["Properties"]["PolicyDocument"])["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for service in principals(statement, "Service"):
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    if not service_grants(key_policy, service, action, "*"):
                        problems.append(f"{service} publishes to the topic but may not {action} with its key")
    return problems


def check_provider_handler(synth: Synthesized, edge: Edge) -> list[str]:
    role = function_role(synth, edge.source)
    if role_allows(synth, role, "lambda:InvokeFunction", arn_of(synth, edge.target)):
        return []
    return ["the Provider framework's role may not invoke the handler"]


def check_custom_resource(synth: Synthesized, edge: Edge) -> list[str]:
    # CloudFormation invokes the service token with the deploying identity: no resource policy needed,
    # as long as the token is a function of this stack.
    kind = resource_type(synth, edge.target)
    return [] if kind == "AWS::Lambda::Function" else [f"a service token of type {kind}"]


def check_archive(synth: Synthesized, edge: Edge) -> list[str]:
    source = render(synth.resources[edge.source]["Properties"]["SourceArn"])
    expected = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    return [] if source == expected else [f"an archive of another bus ({source}) needs that bus's policy"]


CHECKS: dict[str, Callable[[Synthesized, Edge], list[str]]] = {
    "rule->lambda": check_rule_to_lambda,
    "rule->dead-letter-queue": check_rule_to_queue,
    "rule->log-group": check_rule_to_log_group,
    "alarm->topic": check_alarm_to_topic,
    "lambda->destination-queue": check_destination_queue,
    "lambda->log-group": check_log_group,
    "lambda->layer": check_layer,
    "env->resource": check_env_resource,
    "scheduler->timer": check_scheduler_to_timer,
    "topic->key": check_topic_key,
    "provider->handler": check_provider_handler,
    "custom-resource->lambda": check_custom_resource,
    "archive->bus": check_archive,
}
# Kinds each synthesis must show (the walk must not silently find nothing).
EXPECTED = {
    "synth": set(CHECKS) - {"rule->log-group"},
    "variant": set(CHECKS),  # capture_events: true
}


@pytest.mark.parametrize("which", ["synth", "variant"])
@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_every_delivery_edge_is_allowed(request: pytest.FixtureRequest, which: str, kind: str) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    found = [edge for edge in edges(synth) if edge.kind == kind]
    if kind in EXPECTED[which]:
        assert found, f"the walk found no {kind} edge"
    problems = [f"{edge}: {problem}" for edge in found for problem in CHECKS[kind](synth, edge)]
    assert problems == []


def test_the_walk_knows_every_edge_of_the_stack(synth: Synthesized, variant: Synthesized) -> None:
    for synthesized in (synth, variant):
        assert {edge.kind for edge in edges(synthesized)} <= set(CHECKS)  # raises UnknownEdgeError otherwise


def test_a_condition_key_the_service_does_not_send_is_caught() -> None:
    """The check itself: EventBridge's CreateLogStream with aws:SourceArn (it is not sent: denied)."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["logs:CreateLogStream"],
        "Resource": "arn:log-group",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:rule"}},
    }
    assert condition_problems(statement, "events.amazonaws.com", "logs:CreateLogStream", "arn:rule") == [
        "events.amazonaws.com does not send aws:SourceArn with logs:CreateLogStream"
    ]
