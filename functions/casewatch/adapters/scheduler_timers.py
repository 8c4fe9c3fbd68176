"""`SchedulerTimers`: SLA breach and warning timers as one-time EventBridge Scheduler schedules.

One schedule per (case, SLA, kind) in casewatch's own schedule group, named deterministically (a
hash: <= 64 characters, the same on every retry), `at(<time>)` in UTC, rounded up to the second so
it never fires before the target, targeting the sla-timer function with the scheduler role, and
deleted by Scheduler after it ran (`ActionAfterCompletion: DELETE`). Creating is idempotent (an
existing schedule is updated: the target may have moved); cancelling a schedule that is gone (it
ran, or was never made) is fine.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.models.signals import SlaTimerPayload

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

NAME_PREFIX: Final = "cw-sla-"
# Scheduler retries a failed invocation; a timer that could not be delivered within a day is moot
# (reconciliation has repaired the SLA by then).
RETRY_POLICY: Final = {"MaximumEventAgeInSeconds": 86_400, "MaximumRetryAttempts": 20}


def schedule_name(case_id: str, sla_key: str, kind: TimerKind) -> str:
    """`cw-sla-b-<40 hex>`: deterministic per (case, SLA, kind), 49 characters."""
    digest = hashlib.sha256(f"{case_id}\n{sla_key}\n{kind.value}".encode()).hexdigest()[:40]
    return f"{NAME_PREFIX}{kind.value[0]}-{digest}"


def at_expression(moment: datetime) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` (UTC), rounded up to the whole second."""
    whole = moment.replace(microsecond=0)
    if whole < moment:
        whole += timedelta(seconds=1)
    return f"at({whole.strftime('%Y-%m-%dT%H:%M:%S')})"


def timer_payload(timer: TimerSpec) -> SlaTimerPayload:
    return SlaTimerPayload(
        kind=timer.kind.value,
        domain_id=timer.domain_id,
        case_id=timer.case_id,
        sla_name=timer.sla_name,
        sla_key=timer.sla_key,
        target_time=timer.target_time,
    )


class SchedulerTimers:
    """`SlaTimers` on EventBridge Scheduler."""

    def __init__(
        self, client: EventBridgeSchedulerClient, *, group_name: str, target_arn: str, role_arn: str
    ) -> None:
        self._client = client
        self.group_name = group_name
        self.target_arn = target_arn
        self.role_arn = role_arn

    def _request(self, timer: TimerSpec) -> dict[str, Any]:
        return {
            "Name": schedule_name(timer.case_id, timer.sla_key, timer.kind),
            "GroupName": self.group_name,
            "ScheduleExpression": at_expression(timer.fire_at),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps(timer_payload(timer).wire(), sort_keys=True),
                "RetryPolicy": RETRY_POLICY,
            },
            "ActionAfterCompletion": "DELETE",
            "State": "ENABLED",
            "Description": f"casewatch SLA {timer.kind.value} timer",  # ids only: no case data
        }

    def set(self, timer: TimerSpec) -> None:
        request = self._request(timer)
        try:
            self._client.create_schedule(**request)
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            try:
                self._client.update_schedule(**request)
            except ClientError as gone:  # a concurrent cancel deleted it in between: create it again
                if _code(gone) != "ResourceNotFoundException":
                    raise
                self._client.create_schedule(**request)

    def cancel(self, case_id: str, sla_key: str, kind: TimerKind) -> None:
        try:
            self._client.delete_schedule(
                Name=schedule_name(case_id, sla_key, kind), GroupName=self.group_name
            )
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


__all__ = ["SchedulerTimers", "at_expression", "schedule_name", "timer_payload"]
