"""Lambda's size limits, checked at synth with the values AWS will really hold.

At synth, a table name or a queue URL is a CDK token (`${Token[TOKEN.21]}`, ~18 characters); the
deployed value is a CloudFormation-generated name of up to 255 characters. So the environment is
measured with upper bounds of the *resolved* values: each reference is bounded by what AWS allows
for that resource type and attribute (a table name <= 255, a queue name <= 80, a role name <= 64,
...), each pseudo parameter by its longest value, literals by their length. A value this module
cannot bound fails the synth: add its bound here rather than guess.

Lambda's limit on the environment is 4 KB for all variables together; they are counted here as the
compact JSON of the map (names, values, quotes and separators), which over-estimates at worst.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnResource, Reference, Stack, Tokenization
from constructs import IConstruct

# Lambda's limit on the total size of a function's environment variables.
ENVIRONMENT_LIMIT_BYTES = 4096

# Longest values of the pseudo parameters (partition `aws-us-gov`; Region codes are <= 15 characters
# today, e.g. `us-isof-south-1`; URL suffix `amazonaws.com.cn`), with headroom for new Regions.
PSEUDO_MAX: dict[str, int] = {
    "AWS::Partition": 10,
    "AWS::Region": 20,
    "AWS::AccountId": 12,
    "AWS::URLSuffix": 20,
    "AWS::StackName": 128,
}


def _arn(service: str, resource: str, name_max: int) -> int:
    """`arn:<partition>:<service>:<region>:<account>:<resource><name>` at its longest."""
    fixed = len(f"arn::{service}:::{resource}")
    return (
        fixed
        + PSEUDO_MAX["AWS::Partition"]
        + PSEUDO_MAX["AWS::Region"]
        + PSEUDO_MAX["AWS::AccountId"]
        + name_max
    )


# Name limits of AWS (the longest name CloudFormation may generate or a user may give).
TABLE_NAME_MAX = 255  # DynamoDB
TOPIC_NAME_MAX = 256  # SNS
QUEUE_NAME_MAX = 80  # SQS
BUS_NAME_MAX = 256  # EventBridge
FUNCTION_NAME_MAX = 64  # Lambda
ROLE_NAME_MAX = 64  # IAM
ROLE_PATH_MAX = 512  # IAM (a role without a path has "/")
SCHEDULE_GROUP_NAME_MAX = 64  # EventBridge Scheduler
LOG_GROUP_NAME_MAX = 512  # CloudWatch Logs
KEY_ID_LENGTH = 36  # KMS (a UUID)
# https://sqs.<region>.<url suffix>/<account>/<queue name>
QUEUE_URL_MAX = (
    len("https://sqs../") + PSEUDO_MAX["AWS::Region"] + PSEUDO_MAX["AWS::URLSuffix"] + 1 + 12 + QUEUE_NAME_MAX
)

# What `Ref` returns, by resource type.
REF_MAX: dict[str, int] = {
    "AWS::DynamoDB::Table": TABLE_NAME_MAX,
    "AWS::SNS::Topic": _arn("sns", "", TOPIC_NAME_MAX),
    "AWS::SQS::Queue": QUEUE_URL_MAX,
    "AWS::Events::EventBus": BUS_NAME_MAX,
    "AWS::Lambda::Function": FUNCTION_NAME_MAX,
    "AWS::IAM::Role": ROLE_NAME_MAX,
    "AWS::Scheduler::ScheduleGroup": SCHEDULE_GROUP_NAME_MAX,
    "AWS::Logs::LogGroup": LOG_GROUP_NAME_MAX,
    "AWS::KMS::Key": KEY_ID_LENGTH,
}
# What `Fn::GetAtt` returns, by resource type and attribute (IAM role ARNs: see `_role_arn_max`).
GETATT_MAX: dict[tuple[str, str], int] = {
    ("AWS::DynamoDB::Table", "Arn"): _arn("dynamodb", "table/", TABLE_NAME_MAX),
    ("AWS::SNS::Topic", "TopicArn"): _arn("sns", "", TOPIC_NAME_MAX),
    ("AWS::SNS::Topic", "TopicName"): TOPIC_NAME_MAX,
    ("AWS::SQS::Queue", "Arn"): _arn("sqs", "", QUEUE_NAME_MAX),
    ("AWS::SQS::Queue", "QueueName"): QUEUE_NAME_MAX,
    ("AWS::SQS::Queue", "QueueUrl"): QUEUE_URL_MAX,
    ("AWS::Events::EventBus", "Arn"): _arn("events", "event-bus/", BUS_NAME_MAX),
    ("AWS::Events::EventBus", "Name"): BUS_NAME_MAX,
    ("AWS::Lambda::Function", "Arn"): _arn("lambda", "function:", FUNCTION_NAME_MAX),
    ("AWS::Scheduler::ScheduleGroup", "Arn"): _arn("scheduler", "schedule-group/", SCHEDULE_GROUP_NAME_MAX),
    ("AWS::Logs::LogGroup", "Arn"): _arn("logs", "log-group:", LOG_GROUP_NAME_MAX) + len(":*"),
    ("AWS::KMS::Key", "Arn"): _arn("kms", "key/", KEY_ID_LENGTH),
}


class LambdaLimitError(ValueError):
    """The synthesized deployment would exceed a Lambda limit; the message says which and what to do."""


def _role_arn_max(role: CfnResource) -> int:
    path = Stack.of(role).resolve(getattr(role, "path", None)) or "/"
    path_max = len(path) if isinstance(path, str) else ROLE_PATH_MAX
    return _arn("iam", "role", ROLE_NAME_MAX) - PSEUDO_MAX["AWS::Region"] + path_max


def max_resolved_length(scope: IConstruct, value: str) -> int:
    """The longest the value can be once CloudFormation resolves it."""
    stack = Stack.of(scope)
    targets: dict[str, CfnResource] = {}
    for token in Tokenization.reverse_string(value).tokens:
        target = token.target if isinstance(token, Reference) else None
        if isinstance(target, CfnResource):
            targets[stack.resolve(target.logical_id)] = target

    def bound(node: Any) -> int:
        if isinstance(node, str):
            return len(node.encode())
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Fn::Join":
                separator, parts = argument
                return len(separator) * max(len(parts) - 1, 0) + sum(bound(p) for p in parts)
            if function == "Ref" and argument in PSEUDO_MAX:
                return PSEUDO_MAX[argument]
            if function == "Ref" and argument in targets and targets[argument].cfn_resource_type in REF_MAX:
                return REF_MAX[targets[argument].cfn_resource_type]
            if function == "Fn::GetAtt" and argument[0] in targets:
                resource = targets[argument[0]]
                if (resource.cfn_resource_type, argument[1]) == ("AWS::IAM::Role", "Arn"):
                    return _role_arn_max(resource)
                key = (resource.cfn_resource_type, argument[1])
                if key in GETATT_MAX:
                    return GETATT_MAX[key]
        raise LambdaLimitError(
            f"casewatch: cannot bound the deployed length of {json.dumps(node)} (in {scope.node.path}); "
            "add the resource type and attribute to infra/constructs/lambda_limits.py"
        )

    return bound(stack.resolve(value))


def environment_size_bound(scope: IConstruct, variables: Mapping[str, str]) -> int:
    """The largest size of the environment once deployed: the compact JSON of the map, values bounded."""
    if not variables:
        return 2
    # {"k":"v","k2":"v2"}: braces, and per variable 4 quotes, a colon and a comma (one comma less).
    overhead = 2 + 6 * len(variables) - 1
    return overhead + sum(len(k.encode()) + max_resolved_length(scope, v) for k, v in variables.items())


def check_environment_size(scope: IConstruct, variables: Mapping[str, str], *, owner: str = "") -> int:
    """The bound of the environment, or LambdaLimitError if it may exceed Lambda's 4 KB."""
    size = environment_size_bound(scope, variables)
    if size > ENVIRONMENT_LIMIT_BYTES:
        largest = sorted(variables, key=lambda k: max_resolved_length(scope, variables[k]), reverse=True)
        raise LambdaLimitError(
            f"casewatch: the environment of {owner or scope.node.path} may reach {size} bytes once deployed "
            f"(names, ARNs and URLs at the lengths AWS allows), over Lambda's {ENVIRONMENT_LIMIT_BYTES}; "
            f"largest variables: {', '.join(largest[:3])}. Keep configuration in the settings file."
        )
    return size
