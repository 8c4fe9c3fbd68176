"""`SchedulerTimers` on the fake Scheduler client (`casewatch_dev.fakes.clients.FakeScheduler`, which
answers like Scheduler: a conflict for an existing name, not-found for a missing one)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from casewatch.adapters.scheduler_timers import SchedulerTimers, at_expression, schedule_name
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch_dev.fakes.clients import FakeScheduler
from tests.apps import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN, SLA_TIMER_ARN
from tests.builders import DOMAIN, RESOLVE, at

BREACH = TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(480), at(480))
NAME = schedule_name("c1", RESOLVE, TimerKind.BREACH)


def timers(client: Any) -> SchedulerTimers:
    return SchedulerTimers(
        client, group_name=SCHEDULE_GROUP, target_arn=SLA_TIMER_ARN, role_arn=SCHEDULER_ROLE_ARN
    )


def test_set_creates_then_moves_and_cancel_deletes() -> None:
    scheduler = FakeScheduler(SCHEDULE_GROUP)
    timers(scheduler).set(BREACH)
    moved = TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(500), at(500))
    timers(scheduler).set(moved)
    [(fire_at, name, payload)] = scheduler.pending()
    assert (fire_at, name, payload["targetTime"]) == (at(500), NAME, "2026-11-23T17:20:00Z")
    timers(scheduler).cancel("c1", RESOLVE, TimerKind.BREACH)
    timers(scheduler).cancel("c1", RESOLVE, TimerKind.BREACH)  # already gone: fine
    assert scheduler.pending() == []
    assert at_expression(at(0)) == "at(2026-11-23T09:00:00)"


class DeletedBetween(FakeScheduler):
    """A concurrent writer cancels the timer between this writer's create (conflict) and its update."""

    def update_schedule(self, **request: Any) -> dict[str, Any]:
        if not getattr(self, "_raced", False):
            self._raced = True
            self.delete_schedule(Name=request["Name"], GroupName=request["GroupName"])
        return super().update_schedule(**request)


def test_set_survives_a_concurrent_cancel() -> None:
    """Found by tests/integration/test_sla_store.py (six concurrent writers, pausing and resuming one
    case): a set that met a conflict and then a not-found (cancelled meanwhile) failed the invocation."""
    scheduler = DeletedBetween(SCHEDULE_GROUP)
    scheduler.create_schedule(**timers(scheduler)._request(BREACH))  # another writer's timer exists
    timers(scheduler).set(BREACH)
    assert [name for _, name, _ in scheduler.pending()] == [NAME]


def test_other_errors_propagate() -> None:
    class Refusing(FakeScheduler):
        def create_schedule(self, **request: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateSchedule")

    with pytest.raises(ClientError, match="AccessDenied"):
        timers(Refusing(SCHEDULE_GROUP)).set(BREACH)
