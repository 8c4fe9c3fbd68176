"""What AWS authorizes for a request: the IAM actions, resources and context keys of one API call.

moto authorizes a request as `<service>:<Operation>` on one resource, and it knows the resource only for
SQS (the queue), IAM and STS; for every other service the resource is `*`, so a least-privilege policy
(exact actions on exact ARNs) would deny everything. These are the rules AWS documents for the calls of
the services casewatch uses (the Service Authorization Reference and the services' guides):

- DynamoDB: the table ARN (`.../table/<name>/index/<index>` for a Query or Scan of an index); a
  transaction authorizes each of its items as the item's own action (`Put` -> `dynamodb:PutItem`, `Update`
  -> `UpdateItem`, `Delete` -> `DeleteItem`, `ConditionCheck` -> `ConditionCheckItem`, `Get` -> `GetItem`),
  never `dynamodb:TransactWriteItems`; a batch authorizes its action on each table;
- SNS: the topic (`TopicArn`, or `TargetArn`); EventBridge PutEvents: each entry's event bus;
- EventBridge Scheduler: the schedule (`schedule/<group>/<name>`), and Create/UpdateSchedule also
  `iam:PassRole` on the target's role with `iam:PassedToService` = `scheduler.amazonaws.com`;
- SQS: the queue (moto's own resource).
Any other call: `<service>:<Operation>` on what moto determined (`*` for most).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Authorization(NamedTuple):
    """One thing a request must be allowed: an action on a resource, with these request context keys."""

    action: str
    resource: str
    context: Mapping[str, str] = {}


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def aws_authorizations(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    account: str,
    region: str,
    path: str = "",
    resource: str = "*",
) -> list[Authorization]:
    """The authorizations of one request to `service` (moto's service name) `operation` with `params` (the
    request's parameters as the API names them), `path` (REST APIs) and moto's `resource`."""
    if service == "dynamodb":
        return _dynamodb(operation, params, f"arn:aws:dynamodb:{region}:{account}:table/")
    if service == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn")
        return [Authorization(f"sns:{operation}", str(topic) if topic else resource)]
    if service == "events" and operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []}
        return [
            Authorization("events:PutEvents", _arn(bus, f"arn:aws:events:{region}:{account}:event-bus/"))
            for bus in sorted(buses or {"default"})
        ]
    if service == "scheduler" and path.startswith("/schedules/"):
        group = params.get("GroupName") or params.get("groupName") or "default"
        name = path.removeprefix("/schedules/").split("/", 1)[0]
        found = [
            Authorization(
                f"scheduler:{operation}", f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}"
            )
        ]
        role = (params.get("Target") or {}).get("RoleArn")
        if operation in ("CreateSchedule", "UpdateSchedule") and role:
            found.append(
                Authorization("iam:PassRole", str(role), {"iam:PassedToService": "scheduler.amazonaws.com"})
            )
        return found
    return [Authorization(f"{service}:{operation}", resource)]


def _arn(name_or_arn: str, prefix: str) -> str:
    return name_or_arn if name_or_arn.startswith("arn:") else prefix + name_or_arn


def _dynamodb(operation: str, params: Mapping[str, Any], prefix: str) -> list[Authorization]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in params.get("TransactItems") or []:
            for kind, request in item.items():
                action = _TRANSACT_ACTIONS.get(kind, kind)
                found.append(Authorization(f"dynamodb:{action}", _arn(str(request["TableName"]), prefix)))
        return found
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [
            Authorization(f"dynamodb:{operation}", _arn(str(table), prefix))
            for table in sorted(params.get("RequestItems") or {})
        ]
    table = params.get("TableName")
    if not table:
        return [Authorization(f"dynamodb:{operation}", "*")]
    resource = _arn(str(table), prefix)
    index = params.get("IndexName")
    if index and operation in ("Query", "Scan"):
        resource += f"/index/{index}"
    return [Authorization(f"dynamodb:{operation}", resource)]


__all__ = ["Authorization", "aws_authorizations"]
