"""`PowertoolsIdempotency`: the `ExactlyOnce` port on Powertools Idempotency (the idempotency table).

`run(key, action)` runs `action` at most once per key until the record expires: Powertools'
`idempotent_function` over `DynamoDBPersistenceLayer` (key `id`, TTL `expiration`). A repeat returns
the stored result (Powertools' `response_hook` marks it as a repeat); a concurrent duplicate (the record
still in progress) raises `DuplicateInProgressError` — retryable: the delivery is retried later and
finds the completed record. If the action raises, the record is deleted and the error
propagates, so the retry runs it again.

- Keys are prefixed `casewatch` (not the function's name): the same SLA signal may be emitted by
  several functions (timer, reconciler, event handlers) and must still notify once.
- An in-progress record blocks duplicates only until the invocation that wrote it would time out: the
  handler registers each invocation's Lambda context (`register_lambda_context`, Powertools' own).
- Powertools Idempotency is imported on first use, not at import time (cold start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from casewatch.constants import IDEMPOTENCY_EXPIRY_DAYS
from casewatch.errors import DuplicateInProgressError
from casewatch.ports import LambdaContextLike, OnceResult

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than the dead-letter queues keep an event: a late redrive finds the side effect done.
DEFAULT_EXPIRES_AFTER_SECONDS: Final = IDEMPOTENCY_EXPIRY_DAYS * 24 * 60 * 60
KEY_PREFIX: Final = "casewatch"
_REPEAT: Final = "__casewatch_repeat__"


def _mark_repeat(response: Any, idempotent_data: Any) -> dict[str, Any]:
    """Powertools' `response_hook`: called only when a stored result is returned instead of running."""
    return {_REPEAT: True, "result": response if isinstance(response, dict) else {}}


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
        persistence: BasePersistenceLayer | None = None,
    ) -> None:
        """`persistence`: a Powertools persistence layer to use instead of DynamoDB's on `table_name`
        (the local pipeline's memory backend)."""
        self.table_name = table_name
        self.expires_after_seconds = expires_after_seconds
        self.key_prefix = key_prefix
        self._client = client
        self._local_cache_max_items = local_cache_max_items
        self._persistence = persistence
        self._config: IdempotencyConfig | None = None
        self._function: Callable[..., Any] | None = None

    @property
    def config(self) -> IdempotencyConfig:
        if self._config is None:
            from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

            self._config = IdempotencyConfig(
                event_key_jmespath="key",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=self.expires_after_seconds,
                use_local_cache=self._local_cache_max_items > 0,
                local_cache_max_items=max(1, self._local_cache_max_items),
                response_hook=_mark_repeat,
            )
        return self._config

    def register_lambda_context(self, context: LambdaContextLike | None) -> None:
        self.config.register_lambda_context(context)  # type: ignore[arg-type]

    def _once(self) -> Callable[..., Any]:
        if self._function is None:
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                idempotent_function,
            )

            persistence = self._persistence
            if persistence is None:
                from casewatch.adapters.clients import dynamodb_client

                persistence = DynamoDBPersistenceLayer(
                    table_name=self.table_name, boto3_client=self._client or dynamodb_client()
                )

            def side_effect(
                *, request: dict[str, str], action: Callable[[], dict[str, Any]]
            ) -> dict[str, Any]:
                return action()

            self._function = idempotent_function(
                side_effect,
                data_keyword_argument="request",
                persistence_store=persistence,
                config=self.config,
                key_prefix=self.key_prefix,
            )
        return self._function

    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> OnceResult:
        """Run `action` unless `key` already ran; `DuplicateInProgressError` if it is running elsewhere."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        try:
            result = self._once()(request={"key": key}, action=action)
        except IdempotencyAlreadyInProgressError as exc:
            raise DuplicateInProgressError(f"{key.split(':', 1)[0]} in progress elsewhere") from exc
        if isinstance(result, dict) and result.get(_REPEAT) is True:
            return OnceResult(result["result"], executed=False)
        return OnceResult(result if isinstance(result, dict) else {}, executed=True)


__all__ = ["DEFAULT_EXPIRES_AFTER_SECONDS", "KEY_PREFIX", "PowertoolsIdempotency"]
