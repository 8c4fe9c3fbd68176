"""Exactly once and in order: Powertools Idempotency for side effects, a conditional write for status order.

`PowertoolsIdempotency.run(key, action)` runs `action` at most once per key (until the record expires):
Powertools' `idempotent_function` over `DynamoDBPersistenceLayer` (the idempotency table, key `id`, TTL
`expiration`). A repeat returns the stored result without running the action; a concurrent duplicate
(the record is still in progress) raises Powertools' `IdempotencyAlreadyInProgressError` — retryable:
the delivery is retried later and then finds the completed record. If the action raises, the record is
deleted and the error propagates, so the retry runs it again.

- Records expire after 3 days: longer than any redelivery (EventBridge retries for up to 24 h, Lambda
  async invocation for up to 6 h) plus time to redrive a dead-letter queue by hand.
- Keys are prefixed `casewatch` (not the Lambda function's name): the same SLA signal may be emitted by
  several functions (timer, reconciler, event handlers) and must still notify once.
- An in-progress record blocks duplicates only until the invocation that wrote it would have timed out.
  Handlers register the Lambda context on every invocation — `register_lambda_context(context)` (this
  module; it covers every guard in the process) or `NotificationSink.register_lambda_context(context)`.
  Without one (local pipeline, tests) the guard assumes Lambda's 15-minute maximum.
- Powertools Idempotency is imported on first use, not at import time (cold start).

`DynamoDbStatusOrder` keeps, per case, the latest status notification sent (state table item
`pk=CASE#<caseId>, sk=NOTIFY#STATUS`, or `NOTIFY#STATUS#REPLAY#<name>` for a replay, with `latest_at`
(epoch ms of approximateChangeTime), `latest_status` (a hash of the status value), `notification_id`,
`expires_at`), updated by a conditional write that never moves it back in time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

DEFAULT_EXPIRES_AFTER_SECONDS: Final = 3 * 24 * 60 * 60
KEY_PREFIX: Final = "casewatch"
LAMBDA_MAX_REMAINING_MS: Final = 15 * 60 * 1000
STATUS_ORDER_RETENTION_DAYS: Final = 90


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


_process_context: LambdaContextLike | None = None


def register_lambda_context(context: LambdaContextLike | None) -> None:
    """Register this invocation's Lambda context with every idempotency guard of the process."""
    global _process_context  # noqa: PLW0603 - one Lambda invocation at a time per process
    _process_context = context


class _Deadline:
    """Stands in as Powertools' `lambda_context`: the registered context's remaining time, else 15 min."""

    def __init__(self) -> None:
        self.context: LambdaContextLike | None = None

    def get_remaining_time_in_millis(self) -> int:
        for context in (self.context, _process_context):
            if context is not None:
                remaining = int(context.get_remaining_time_in_millis())
                if remaining > 0:  # a context left over from an earlier invocation reads <= 0
                    return remaining
        return LAMBDA_MAX_REMAINING_MS


class IdempotentRun(NamedTuple):
    result: dict[str, Any]
    executed: bool  # False: a repeat, the stored result of the first run


class PowertoolsIdempotency:
    """Run side effects once per key, persisted in the idempotency table."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        expires_after_seconds: int = DEFAULT_EXPIRES_AFTER_SECONDS,
        key_prefix: str = KEY_PREFIX,
        local_cache_max_items: int = 1024,
        persistence: Any = None,
    ) -> None:
        """`persistence`: a Powertools `BasePersistenceLayer` to use instead of the DynamoDB one on
        `table_name` (the local pipeline's in-memory backend)."""
        self.table_name = table_name
        self._persistence = persistence
        self.expires_after_seconds = expires_after_seconds
        self.key_prefix = key_prefix
        self._client = client
        self._local_cache_max_items = local_cache_max_items
        self._deadline = _Deadline()
        self._function: Callable[..., Any] | None = None

    def register_lambda_context(self, context: LambdaContextLike | None) -> None:
        self._deadline.context = context

    def _once(self) -> Callable[..., Any]:
        if self._function is None:
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            from casewatch.aws import dynamodb_client

            config = IdempotencyConfig(
                event_key_jmespath="key",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=self.expires_after_seconds,
                use_local_cache=self._local_cache_max_items > 0,
                local_cache_max_items=max(1, self._local_cache_max_items),
            )
            config.register_lambda_context(self._deadline)  # type: ignore[arg-type]
            persistence = self._persistence
            if persistence is None:
                persistence = DynamoDBPersistenceLayer(
                    table_name=self.table_name,
                    boto3_client=self._client or dynamodb_client(),
                )

            def side_effect(
                *, request: dict[str, str], action: Callable[[], dict[str, Any]]
            ) -> dict[str, Any]:
                return action()

            self._function = idempotent_function(
                side_effect,
                data_keyword_argument="request",
                persistence_store=persistence,
                config=config,
                key_prefix=self.key_prefix,
            )
        return self._function

    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> IdempotentRun:
        """Run `action` unless `key` already ran; raises `IdempotencyAlreadyInProgressError` if running."""
        executed = False

        def tracked() -> dict[str, Any]:
            nonlocal executed
            executed = True
            return action()

        result = self._once()(request={"key": key}, action=tracked)
        return IdempotentRun(result if isinstance(result, dict) else {}, executed)


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
            from casewatch.aws import dynamodb_client

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
        from botocore.exceptions import ClientError

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
