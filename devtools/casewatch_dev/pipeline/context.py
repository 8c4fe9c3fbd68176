"""What the local pipeline stands in for: the stack's resource names, and the Lambda context."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from casewatch.ports import Clock
from casewatch.topology import FunctionSpec

ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"
STACK: Final = "casewatch-local"
FUNCTION_TIMEOUT: Final = timedelta(seconds=30)  # the stack's timeout of the event-routed functions


class FakeLambdaContext:
    """Enough of the Lambda context for Powertools, with the remaining time on `clock` (else the wall)."""

    memory_limit_in_mb = 256

    def __init__(
        self, function: str, clock: Clock | None = None, timeout: timedelta = FUNCTION_TIMEOUT
    ) -> None:
        self.function_name = f"{STACK}-{function}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._clock = clock
        self._deadline_at: datetime | None = clock.now() + timeout if clock is not None else None
        self._deadline = time.monotonic() + timeout.total_seconds()

    def get_remaining_time_in_millis(self) -> int:
        if self._clock is not None and self._deadline_at is not None:
            return max(0, int((self._deadline_at - self._clock.now()).total_seconds() * 1000))
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class LocalResources:
    """The local stand-ins of the stack's resources (names as the stack would give them)."""

    state_table: str = f"{STACK}-state"
    topic_name: str = f"{STACK}-notifications"
    bus_name: str = f"{STACK}-enriched"
    schedule_group: str = f"{STACK}-sla"
    invalid_queue: str = f"{STACK}-invalid-events"
    failure_queue: str = f"{STACK}-failures"
    subscriber_queue: str = f"{STACK}-notifications-subscriber"
    bus_queue: str = f"{STACK}-enriched-subscriber"
    topic_key: str = f"{STACK}-notifications-key"  # the topic's KMS key: named in policies, never created

    def role_name(self, spec: FunctionSpec) -> str:
        """The local stand-in of a function's execution role."""
        return f"{STACK}-{spec.name}"

    @property
    def scheduler_role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-scheduler"

    @property
    def topic_arn(self) -> str:
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.topic_name}"

    def function_arn(self, spec: FunctionSpec) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-{spec.name}"

    def queue_url(self, name: str) -> str:
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"

    def domain_arn(self, domain_id: str) -> str:
        return f"arn:aws:cases:{REGION}:{ACCOUNT}:domain/{domain_id}"


__all__ = ["ACCOUNT", "FUNCTION_TIMEOUT", "REGION", "STACK", "FakeLambdaContext", "LocalResources"]
