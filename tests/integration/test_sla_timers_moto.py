"""SLA timers on moto Scheduler and the case store on moto DynamoDB: schedules made, moved and deleted as
the SLAs change (a breach timer `breach_grace` after the target), and the sla-timer handler end to end
(moto never fires a schedule: the tests call the handler with its input, as Scheduler would)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.adapters.scheduler_timers import SchedulerTimers, at_expression, schedule_name
from casewatch.domain.sla.model import SlaStatus
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.models.signals import SlaSignalKind
from casewatch_dev.clock import VirtualClock
from tests.apps import SCHEDULE_GROUP as GROUP
from tests.apps import SCHEDULER_ROLE_ARN as ROLE_ARN
from tests.apps import SLA_TIMER_ARN as TIMER_ARN
from tests.apps import World
from tests.builders import DOMAIN, FIRST, POLICIES, RESOLVE, SLA_SETTINGS, at, comment, created, updated

GRACE = SLA_SETTINGS.breach_grace


@pytest.fixture
def world(state_table: str) -> World:
    """The functions over the state table and the schedule group on moto."""
    scheduler_client().create_schedule_group(Name=GROUP)
    return World(
        SLA_SETTINGS,
        clock=VirtualClock(at(-1)),
        store=DynamoDbCaseStore(state_table, dynamodb_client(), POLICIES),
        timers=SchedulerTimers(scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN),
    )


def schedules() -> dict[str, dict[str, Any]]:
    client = scheduler_client()
    names = [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: dict(client.get_schedule(Name=name, GroupName=GROUP)) for name in names}


def test_timers_are_scheduled_moved_and_deleted(world: World) -> None:
    world.deliver(created("c1", 0, "high"))
    found = schedules()
    assert set(found) == {schedule_name("c1", k, kind) for k in (FIRST, RESOLVE) for kind in TimerKind}
    breach = found[schedule_name("c1", FIRST, TimerKind.BREACH)]
    assert breach["ScheduleExpression"] == "at(2026-11-23T09:31:25)"  # the target and the grace
    assert breach["ScheduleExpressionTimezone"] == "UTC"
    assert breach["ActionAfterCompletion"] == "DELETE"
    assert breach["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert breach["Target"]["Arn"] == TIMER_ARN
    assert breach["Target"]["RoleArn"] == ROLE_ARN
    assert json.loads(breach["Target"]["Input"]) == {
        "kind": "breach",
        "domainId": DOMAIN,
        "caseId": "c1",
        "slaName": "first-response-high",
        "slaKey": FIRST,
        "targetTime": "2026-11-23T09:30:00Z",  # the SLA's target, not the timer's time
    }
    assert len(breach["Name"]) <= 64
    warning = found[schedule_name("c1", FIRST, TimerKind.WARNING)]
    assert warning["ScheduleExpression"] == "at(2026-11-23T09:24:00)"  # no grace for a warning

    world.deliver(comment("c1", 10))  # met: its timers go
    assert set(schedules()) == {schedule_name("c1", RESOLVE, kind) for kind in TimerKind}
    world.deliver(updated("c1", 60, "pending-customer", "high"))  # paused: no timers
    assert schedules() == {}
    world.deliver(updated("c1", 90, "open", "high"))  # resumed: the target moved by 30 minutes
    moved = schedules()[schedule_name("c1", RESOLVE, TimerKind.BREACH)]
    assert moved["ScheduleExpression"] == "at(2026-11-23T17:31:25)"


def test_setting_a_timer_twice_updates_it(world: World) -> None:
    timers = SchedulerTimers(scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN)
    spec = TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(480), at(480))
    timers.set(spec)
    moved = at(500) + timedelta(milliseconds=250)
    timers.set(TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", moved, moved))
    found = schedules()
    assert len(found) == 1
    assert next(iter(found.values()))["ScheduleExpression"] == "at(2026-11-23T17:20:01)"  # rounded up
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)  # already gone: fine
    assert schedules() == {}
    assert at_expression(at(0)) == "at(2026-11-23T09:00:00)"


def test_the_sla_timer_handler_declares_a_breach_once_the_feed_passed_the_target(world: World) -> None:
    world.deliver(created("c1", 0, "high"))
    payload = json.loads(schedules()[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    world.clock.set(at(30) + GRACE)
    deferred = world.fire(payload)  # the feed has not polled yet
    assert (deferred["slaChanges"], deferred["deferred"]) == ([], True)
    rearmed = schedules()[schedule_name("c1", FIRST, TimerKind.BREACH)]
    assert rearmed["ScheduleExpression"] == "at(2026-11-23T09:32:25)"  # one feed period later
    assert json.loads(rearmed["Target"]["Input"]) == payload  # for the same target
    world.clock.set(at(30) + GRACE + SLA_SETTINGS.feed_period)
    world.catch_up()
    response = world.fire(payload)
    assert response["outcome"] == "handled"
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert world.state("c1", FIRST).status is SlaStatus.OVERDUE
    assert world.signals() == [("first-response-high", SlaSignalKind.BREACHED)]
    assert schedule_name("c1", FIRST, TimerKind.WARNING) in schedules()  # not fired yet: not ours to delete
    again = world.fire(payload)  # Scheduler retried: nothing new
    assert again["slaChanges"] == []
    assert world.signals() == [("first-response-high", SlaSignalKind.BREACHED)]


def test_the_sla_timer_handler_warns_and_ignores_stale_timers(world: World) -> None:
    world.deliver(created("c1", 0, "high"))
    found = schedules()
    warning = json.loads(found[schedule_name("c1", FIRST, TimerKind.WARNING)]["Target"]["Input"])
    breach = json.loads(found[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    world.clock.set(at(24))
    world.fire(warning)
    assert world.signals() == [("first-response-high", SlaSignalKind.AT_RISK)]
    world.deliver(comment("c1", 25))
    world.clock.set(at(30) + GRACE)
    world.catch_up()
    stale = world.fire(breach)
    assert (stale["slaChanges"], stale["deferred"]) == ([], False)
    assert world.state("c1", FIRST).status is SlaStatus.MET
    assert world.signals() == [
        ("first-response-high", SlaSignalKind.AT_RISK),
        ("first-response-high", SlaSignalKind.MET),
    ]


def test_the_sla_timer_handler_rejects_an_invalid_payload(world: World) -> None:
    response = world.fire({"kind": "explode", "caseId": "c1"})
    assert response["outcome"] == "invalid"
    assert "kind" in response["reason"]


def test_unknown_case_timers_are_noops(world: World) -> None:
    world.clock.set(at(60))
    world.catch_up()
    payload = {
        "kind": "breach",
        "domainId": DOMAIN,
        "caseId": str(uuid.uuid4()),
        "slaName": "x",
        "targetTime": "2026-11-23T09:30:00Z",
    }
    assert world.fire(payload)["slaChanges"] == []
    items = dynamodb_client().scan(TableName="casewatch-state")["Items"]
    assert [i["pk"]["S"] for i in items] == [f"FEED#{DOMAIN}"]  # the feed's watermark only: no case written
