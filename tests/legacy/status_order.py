"""[Vendored from main@22fc270, `functions/casewatch/adapters/status_order.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

`DynamoDbStatusOrder`: per case, the latest status notification sent, so "closed" is never followed
by a stale "open".

State table item `pk=CASE#<caseId>, sk=NOTIFY#STATUS` (or `NOTIFY#STATUS#REPLAY#<name>` for a replay)
with `latest_at` (epoch ms of approximateChangeTime), `latest_status` (a hash of the status value),
`notification_id` and `expires_at`, updated by a conditional write that never moves it back in time.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATUS_ORDER_RETENTION_DAYS: Final = 90


def _status_hash(status: str) -> str:
    return hashlib.sha256(status.encode()).hexdigest()[:16]


class DynamoDbStatusOrder:
    """Per case, the latest status notification sent: "closed" is never followed by a stale "open"."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        retention_days: int = STATUS_ORDER_RETENTION_DAYS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.retention_s = retention_days * 24 * 60 * 60

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            from casewatch.adapters.clients import dynamodb_client

            self._client = dynamodb_client()
        return self._client

    @staticmethod
    def key(case_id: str, replay_name: str | None = None) -> dict[str, Any]:
        sk = "NOTIFY#STATUS" if replay_name is None else f"NOTIFY#STATUS#REPLAY#{replay_name}"
        return {"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": sk}}

    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        """True if a status notification at `changed_at` may be sent (not contradicted by a newer one).

        Records it as the latest when it is the newest. A newer stored notification of the *same* status
        does not block it (it says the same thing); a newer one of another status does.
        """
        at_ms = int(changed_at.timestamp() * 1000)
        status_hash = _status_hash(status)
        key = self.key(case_id, replay_name)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=(
                    "SET latest_at = :t, latest_status = :s, notification_id = :n, expires_at = :x"
                ),
                ConditionExpression="attribute_not_exists(latest_at) OR latest_at <= :t",
                ExpressionAttributeValues={
                    ":t": {"N": str(at_ms)},
                    ":s": {"S": status_hash},
                    ":n": {"S": notification_id},
                    ":x": {"N": str(int(max(changed_at.timestamp(), time.time())) + self.retention_s)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if old is None:
                old = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get(
                    "Item"
                )
            stored = (old or {}).get("latest_status", {}).get("S")
            return stored == status_hash
        return True


__all__ = ["DynamoDbStatusOrder"]
