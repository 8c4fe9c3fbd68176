"""What a request must be allowed (the AWS services' and Cases' rules), and taking grants out of a role:
the pure parts of the local pipeline's IAM (`casewatch_dev.iam`, `casewatch_dev.emulator._access`)."""

from __future__ import annotations

from typing import Any

from casewatch.topology import CASE_CHANGED, SLA_TIMER
from casewatch_dev.emulator._access import cases_authorization, signer
from casewatch_dev.iam.aws_requests import Authorization, aws_authorizations
from casewatch_dev.iam.policy import Decision, evaluate
from casewatch_dev.iam.roles import FunctionRole, FunctionRoles
from casewatch_dev.pipeline import LocalResources

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/state"


def rules(service: str, operation: str, params: dict[str, Any], **kwargs: Any) -> list[Authorization]:
    return aws_authorizations(service, operation, params, account=ACCOUNT, region=REGION, **kwargs)


def test_dynamodb_items_and_indexes() -> None:
    assert rules("dynamodb", "PutItem", {"TableName": "state"}) == [Authorization("dynamodb:PutItem", TABLE)]
    assert rules("dynamodb", "Query", {"TableName": "state", "IndexName": "due"}) == [
        Authorization("dynamodb:Query", f"{TABLE}/index/due")
    ]
    assert rules("dynamodb", "GetItem", {"TableName": TABLE}) == [Authorization("dynamodb:GetItem", TABLE)]
    assert rules("dynamodb", "ListTables", {}) == [Authorization("dynamodb:ListTables", "*")]


def test_a_transaction_authorizes_each_item_as_its_own_action() -> None:
    items = [
        {"Put": {"TableName": "state"}},
        {"Update": {"TableName": "state"}},
        {"ConditionCheck": {"TableName": "other"}},
        {"Delete": {"TableName": "state"}},
    ]
    assert rules("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        Authorization("dynamodb:PutItem", TABLE),
        Authorization("dynamodb:UpdateItem", TABLE),
        Authorization("dynamodb:ConditionCheckItem", TABLE.replace("state", "other")),
        Authorization("dynamodb:DeleteItem", TABLE),
    ]


def test_sns_events_and_sqs() -> None:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    assert rules("sns", "Publish", {"TopicArn": topic}) == [Authorization("sns:Publish", topic)]
    entries = [{"EventBusName": "bus"}, {"EventBusName": "bus"}, {}]
    assert rules("events", "PutEvents", {"Entries": entries}) == [
        Authorization("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/bus"),
        Authorization("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
    ]
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"  # moto determines the queue itself
    assert rules("sqs", "SendMessage", {"QueueUrl": "u"}, resource=queue) == [
        Authorization("sqs:SendMessage", queue)
    ]


def test_a_schedule_and_the_role_it_passes_to_scheduler() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
    create = {"GroupName": "g", "Target": {"Arn": "arn:aws:lambda:...", "RoleArn": role}}
    assert rules("scheduler", "CreateSchedule", create, path="/schedules/s-1") == [
        Authorization("scheduler:CreateSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/g/s-1"),
        Authorization("iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"}),
    ]
    assert rules("scheduler", "DeleteSchedule", {"groupName": "g"}, path="/schedules/s-1") == [
        Authorization("scheduler:DeleteSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/g/s-1")
    ]


def test_what_cases_authorizes() -> None:
    domain = f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/d"
    get_case = {"domainId": "d", "caseId": "c", "fields": [{"id": "status"}, {"id": "title"}]}
    assert cases_authorization("GetCase", get_case, account=ACCOUNT, region=REGION) == [
        domain,
        f"{domain}/case/c",
        f"{domain}/field/status",
        f"{domain}/field/title",
    ]
    search = {"domainId": "d", "caseId": "c", "filters": [{"sla": {}}]}
    assert cases_authorization("SearchRelatedItems", search, account=ACCOUNT, region=REGION) == [
        domain,
        f"{domain}/case/c",
    ]
    config = {"domainId": "d", "eventBridge": {"includedData": {"caseData": {"fields": [{"id": "x"}]}}}}
    assert cases_authorization("PutCaseEventConfiguration", config, account=ACCOUNT, region=REGION) == [
        domain
    ]
    assert cases_authorization("ListDomains", {}, account=ACCOUNT, region=REGION) == ["*"]


def test_the_signer_is_the_credential_scopes_access_key() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261123/us-east-1/cases/aws4_request, SignedHeaders=host"
    )
    assert signer({"authorization": header}) == "ASIAEXAMPLE"
    assert signer({}) is None


def role(function: str, *statements: dict[str, Any]) -> FunctionRole:
    return FunctionRole(function, f"r-{function}", {}, {"p": {"Statement": list(statements)}})


def test_a_grant_taken_out_of_a_role() -> None:
    queue, other = "arn:aws:sqs:r:1:invalid", "arn:aws:sqs:r:1:failures"
    roles = FunctionRoles(
        {
            CASE_CHANGED.name: role(
                CASE_CHANGED.name,
                {
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                    "Resource": [queue, other],
                },
                {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"},
            ),
            SLA_TIMER.name: role(
                SLA_TIMER.name, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue}
            ),
        },
        LocalResources(),
    )
    cut = roles.without("case-changed", "sqs:SendMessage", queue)
    policies = cut["case-changed"].policies
    assert evaluate(policies, "sqs:SendMessage", queue) is Decision.IMPLICIT_DENY
    assert evaluate(policies, "sqs:SendMessage", other) is Decision.ALLOWED  # its other resource keeps it
    assert evaluate(policies, "sqs:GetQueueUrl", queue) is Decision.ALLOWED
    assert evaluate(policies, "sns:Publish", "t") is Decision.ALLOWED
    assert cut["sla-timer"] == roles["sla-timer"]  # other functions keep theirs
    gone = roles.without("case-changed", "sns:publish")  # actions compare without case
    assert evaluate(gone["case-changed"].policies, "sns:Publish", "t") is Decision.IMPLICIT_DENY
    assert ("sqs:SendMessage", other) in set(cut["case-changed"].grants())


def test_the_cases_domain_is_rebound_and_nothing_else() -> None:
    old = "arn:aws:cases:us-east-1:1:domain/d-old"
    roles = FunctionRoles(
        {
            "case-changed": role(
                "case-changed",
                {"Effect": "Allow", "Action": "cases:GetCase", "Resource": [old, f"{old}/case/*"]},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:r:1:d-old"},
                {"Effect": "Allow", "Action": "cases:GetCase", "Resource": f"{old}-other/case/*"},
            )
        },
        LocalResources(),
    )
    rebound = roles.for_domain("d-old", "d-new")
    statements = rebound["case-changed"].documents["p"]["Statement"]
    new = "arn:aws:cases:us-east-1:1:domain/d-new"
    assert statements[0]["Resource"] == [new, f"{new}/case/*"]
    assert statements[1]["Resource"] == "arn:aws:sqs:r:1:d-old"  # not a Cases ARN
    assert statements[2]["Resource"] == f"{old}-other/case/*"  # another domain
    assert roles["case-changed"].documents["p"]["Statement"][0]["Resource"][0] == old  # a copy
