"""moto authorizes a function's AWS requests under its role: what AWS authorizes (the resource, each item of
a transaction, the role passed to Scheduler), the error each service answers, and every denial recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from casewatch.tables import STATE_TABLE
from casewatch_dev.iam import AccessControl, Decision, FunctionRole, FunctionRoles
from casewatch_dev.iam.moto_enforcement import MotoIam
from casewatch_dev.pipeline import LocalResources

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE, OTHER = "casewatch-state", "someone-elses"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
STATEMENTS: list[dict[str, Any]] = [
    {
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"],
        "Resource": TABLE_ARN,
    },
    {"Effect": "Allow", "Action": "sns:Publish", "Resource": f"arn:aws:sns:{REGION}:{ACCOUNT}:topic"},
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue"},
    {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/bus",
    },
    {
        "Effect": "Allow",
        "Action": ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
        "Resource": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/timers/*",
    },
    {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": SCHEDULER_ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
    },
]


@pytest.fixture
def aws(moto: None) -> Iterator[tuple[Any, AccessControl, MotoIam, dict[str, str]]]:
    """Resources, one function's role in moto, its session, and moto's access control installed."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    for name in (TABLE, OTHER):
        ddb.create_table(**STATE_TABLE.create_table_args(name))
    urls = {
        "queue": boto3.client("sqs", region_name=REGION).create_queue(QueueName="queue")["QueueUrl"],
        "elsewhere": boto3.client("sqs", region_name=REGION).create_queue(QueueName="elsewhere")["QueueUrl"],
        "topic": boto3.client("sns", region_name=REGION).create_topic(Name="topic")["TopicArn"],
    }
    boto3.client("events", region_name=REGION).create_event_bus(Name="bus")
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name="timers")
    role = FunctionRole(
        "case-changed",
        "local-case-changed",
        TRUST,
        {"grants": {"Version": "2012-10-17", "Statement": STATEMENTS}},
    )
    access = AccessControl()
    iam = MotoIam(FunctionRoles({"case-changed": role}, LocalResources()), access)
    ((_, session),) = iam.identities().values()
    with iam.installed():
        yield session, access, iam, urls


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as denied:
        call()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(denied.value.response["Error"]["Code"])


def _item(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}}


def test_a_function_may_do_what_its_role_grants_and_nothing_else(aws: Any) -> None:
    session, access, iam, urls = aws
    ddb, sns, sqs = session.client("dynamodb"), session.client("sns"), session.client("sqs")
    with iam.enforcing():
        ddb.put_item(TableName=TABLE, Item=_item("a"))
        sns.publish(TopicArn=urls["topic"], Message="m")
        sqs.send_message(QueueUrl=urls["queue"], MessageBody="m")
        session.client("events").put_events(
            Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "bus"}]
        )
        assert access.denials == []
        assert _code(lambda: ddb.put_item(TableName=OTHER, Item=_item("a"))) == "AccessDeniedException"
        assert _code(lambda: ddb.delete_item(TableName=TABLE, Key=_item("a"))) == "AccessDeniedException"
        assert _code(lambda: sqs.send_message(QueueUrl=urls["elsewhere"], MessageBody="m")) == "AccessDenied"
        topic = urls["topic"].replace(":topic", ":other")
        assert _code(lambda: sns.publish(TopicArn=topic, Message="m")) == "AuthorizationError"
    assert [(d.caller, d.action, d.decision) for d in access.denials] == [
        ("case-changed", "dynamodb:PutItem", Decision.IMPLICIT_DENY),
        ("case-changed", "dynamodb:DeleteItem", Decision.IMPLICIT_DENY),
        ("case-changed", "sqs:SendMessage", Decision.IMPLICIT_DENY),
        ("case-changed", "sns:Publish", Decision.IMPLICIT_DENY),
    ]
    assert access.denials[0].resource == TABLE_ARN.replace(TABLE, OTHER)
    ddb.delete_item(TableName=TABLE, Key=_item("a"))  # IAM mode off again: not checked


def test_a_transaction_needs_each_items_own_action(aws: Any) -> None:
    session, access, iam, _ = aws
    ddb = session.client("dynamodb")
    put = {"Put": {"TableName": TABLE, "Item": _item("b")}}
    with iam.enforcing():
        ddb.transact_write_items(
            TransactItems=[
                put,
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": _item("a"),
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "1"}},
                    }
                },
            ]
        )
        check = {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": _item("a"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        assert _code(
            lambda: ddb.transact_write_items(
                TransactItems=[{"Put": {"TableName": TABLE, "Item": _item("c")}}, check]
            )
        ) == ("AccessDeniedException")
    (denial,) = access.denials
    assert (denial.action, denial.resource) == ("dynamodb:ConditionCheckItem", TABLE_ARN)


def test_scheduler_needs_the_schedule_and_passing_its_role(aws: Any) -> None:
    session, access, iam, _ = aws
    scheduler = session.client("scheduler")

    def create(name: str, group: str = "timers", role: str = SCHEDULER_ROLE) -> Any:
        return scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression="at(2030-01-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sla-timer", "RoleArn": role},
        )

    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name="other")
    with iam.enforcing():
        create("t-1")
        scheduler.delete_schedule(Name="t-1", GroupName="timers")  # a DELETE with a query string
        assert (
            _code(lambda: create("t-2", role=f"arn:aws:iam::{ACCOUNT}:role/admin")) == "AccessDeniedException"
        )
        assert _code(lambda: create("t-3", group="other")) == "AccessDeniedException"
    assert [(d.action, d.resource.rsplit(":", 1)[1]) for d in access.denials] == [
        ("iam:PassRole", "role/admin"),
        ("scheduler:CreateSchedule", "schedule/other/t-3"),
    ]


def test_requests_not_signed_by_a_role_are_refused(aws: Any) -> None:
    _, access, iam, _ = aws
    with iam.enforcing():  # the environment's dummy credentials are nobody's in moto
        assert _code(
            lambda: boto3.client("dynamodb", region_name=REGION).get_item(TableName=TABLE, Key=_item("a"))
        )
    (denial,) = access.denials
    assert denial.caller.startswith("unknown caller (")  # mock_aws's dummy key
