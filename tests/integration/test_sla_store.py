"""The SLA store on moto DynamoDB (conditional writes, races, the due index), timers on moto Scheduler,
and the sla-timer handler end to end."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore, due_shard
from casewatch.domain.sla.records import SlaCaseRecord

from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.scheduler_timers import SchedulerTimers, at_expression, schedule_name
from casewatch.domain.sla.fold import evaluate
from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import SlaConflictError, SlaStatus
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.handlers import sla_timer
from casewatch.models.signals import SlaSignalKind
from casewatch.tables import DUE_SHARDS
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import RecordingSignalSink
from casewatch_dev.sla_cli import render_slas
from tests.apps import SCHEDULE_GROUP as GROUP
from tests.apps import SCHEDULER_ROLE_ARN as ROLE_ARN
from tests.apps import SLA_TIMER_ARN as TIMER_ARN
from tests.apps import LambdaContext, SlaSystem
from tests.builders import DOMAIN, FIRST, RESOLVE, SLA_SETTINGS, at, comment, created, updated

TABLE = "casewatch-state"


@pytest.fixture(autouse=True)
def aws(tables: Any) -> None:
    """The state table (moto) and the timers' schedule group."""
    assert tables.state == TABLE
    scheduler_client().create_schedule_group(Name=GROUP)


class HookedStore(DynamoDbSlaStore):
    """The real store, with a hook run once just before a save (to interleave a competing writer)."""

    before_save: Any = None
    saves = 0
    conflicts = 0

    def save(
        self,
        old: SlaCaseRecord,
        log: CaseSlaLog,
        changed: Any,
        *,
        next_checks: Mapping[str, datetime] | None = None,
    ) -> SlaCaseRecord:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        try:
            record = super().save(old, log, changed, next_checks=next_checks)
        except SlaConflictError:
            self.conflicts += 1
            raise
        self.saves += 1
        return record


def make_system(
    clock: VirtualClock, signals: RecordingSignalSink | None = None, client: Any = None
) -> SlaSystem:
    return SlaSystem(
        SLA_SETTINGS,
        store=HookedStore(TABLE, client or dynamodb_client()),
        signals=signals or RecordingSignalSink(),
        timers=SchedulerTimers(scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN),
        clock=clock,
    )


def raw_item(case_id: str, sla_key: str) -> dict[str, Any]:
    item = dynamodb_client().get_item(
        TableName=TABLE, Key={"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": f"SLA#{sla_key}"}}
    )
    return dict(item.get("Item", {}))


def schedules() -> dict[str, dict[str, Any]]:
    client = scheduler_client()
    names = [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: dict(client.get_schedule(Name=name, GroupName=GROUP)) for name in names}


# --- the store -----------------------------------------------------------------------------------


def test_items_round_trip_and_carry_the_due_index_while_open() -> None:
    system = make_system(VirtualClock(at(-1)))
    system.deliver(created("c1", 0, "high"))
    system.deliver(comment("c1", 10))
    record = system.store.load(DOMAIN, "c1")
    assert record.revision == 2
    assert {k: s.state for k, s in record.slas.items()} == evaluate(record.log, system.policies)

    active = raw_item("c1", RESOLVE)
    assert active["status"] == {"S": "Active"}
    assert active["due_shard"] == {"S": due_shard("c1")}
    assert active["due_at"] == {"S": "2026-11-23T17:00:00.000000Z"}
    assert active["version"] == {"S": "2026-11-23T09:00:00.000000Z"}  # unchanged by the comment
    assert "expires_at" in active
    met = raw_item("c1", FIRST)
    assert met["status"] == {"S": "Met"}
    assert met["completion_time"] == {"S": "2026-11-23T09:10:00.000000Z"}
    assert met["version"] == {"S": "2026-11-23T09:10:00.000000Z"}
    assert "due_at" not in met and "due_shard" not in met  # out of the sparse index
    assert [h["status"] for h in json.loads(met["history"]["S"])] == ["Active", "Met"]
    log = dynamodb_client().get_item(TableName=TABLE, Key={"pk": {"S": "CASE#c1"}, "sk": {"S": "SLALOG"}})[
        "Item"
    ]
    assert len(json.loads(log["observations"]["S"])) == 2
    assert log["revision"] == {"N": "2"}


def test_a_write_from_a_stale_read_is_a_conflict() -> None:
    system = make_system(VirtualClock(at(-1)))
    system.deliver(created("c1", 0))
    store = system.store
    stale = store.load(DOMAIN, "c1")
    system.deliver(updated("c1", 100, "closed"))
    log = stale.log.merge([])
    with pytest.raises(SlaConflictError):
        store.save(stale, log, list(evaluate(log, system.policies).values()))
    assert store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.MET


def test_an_older_state_never_overwrites_a_newer_item() -> None:
    system = make_system(VirtualClock(at(-1)))
    system.deliver(created("c1", 0))
    system.deliver(updated("c1", 100, "closed"))
    current = system.store.load(DOMAIN, "c1")
    older_log = current.log.merge([])
    older_log = type(older_log)(
        older_log.domain_id, older_log.case_id, older_log.observations[:1]
    )  # version 09:00
    states = list(evaluate(older_log, system.policies).values())
    with pytest.raises(SlaConflictError):  # the log revision matches, the item's version guard does not
        system.store.save(current, older_log, states)
    assert system.store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.MET


def test_two_writers_race_one_wins_the_loser_reloads_and_reapplies() -> None:
    clock = VirtualClock(at(-1))
    a, b = make_system(clock), make_system(clock)
    a.deliver(created("c1", 0, "high"))
    assert isinstance(a.store, HookedStore)
    a.store.before_save = lambda: b.deliver(comment("c1", 10))  # B writes between A's read and write
    a.deliver(updated("c1", 100, "closed", "high"))
    assert a.store.conflicts == 1
    record = a.store.load(DOMAIN, "c1")
    assert record.revision == 3
    assert record.slas[FIRST].state.status is SlaStatus.MET  # B's comment
    assert record.slas[RESOLVE].state.status is SlaStatus.MET  # A's closing, applied after reloading
    assert len(record.log.observations) == 3


class AtomicClient:
    """The moto client with one lock around each call: like DynamoDB, every request is atomic (moto
    itself does not lock, so its conditional writes could interleave across threads)."""

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


def test_concurrent_writers_lose_nothing() -> None:
    clock = VirtualClock(at(-1))
    make_system(clock).deliver(created("c1", 0, "high"))
    systems = [make_system(clock, client=AtomicClient(dynamodb_client())) for _ in range(6)]
    barrier = threading.Barrier(len(systems))
    errors: list[BaseException] = []

    def run(n: int, system: SlaSystem) -> None:
        try:
            barrier.wait()
            system.deliver(updated("c1", 10 + n, "open" if n % 2 else "pending-customer", "high"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, t)) for n, t in enumerate(systems)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    record = systems[0].store.load(DOMAIN, "c1")
    assert len(record.log.observations) == 1 + len(systems)
    conflicts = sum(t.store.conflicts for t in systems)
    saves = sum(t.store.saves for t in systems)
    assert saves == len(systems)  # every writer's event is in, each after its conflicts
    print(f"{len(systems)} concurrent writers: {conflicts} conflicts, all retried")
    assert {k: s.state for k, s in record.slas.items()} == evaluate(record.log, systems[0].policies)


def test_due_before_reads_every_shard_oldest_first() -> None:
    system = make_system(VirtualClock(at(-1)))
    cases = [f"case-{n}" for n in range(12)]
    assert len({due_shard(c) for c in cases}) == DUE_SHARDS
    for n, case_id in enumerate(cases):
        system.deliver(created(case_id, n, "high"))  # first response due at n + 30
    system.deliver(comment("case-0", 5))  # met: leaves the index
    due = system.store.due_before(at(36))
    assert [(s.case_id, s.state.key) for s in due] == [(f"case-{n}", FIRST) for n in range(1, 6)]
    assert [s.case_id for s in system.store.due_before(at(36), limit=2)] == ["case-1", "case-2"]
    assert [s.case_id for s in system.store.due_before(at(31))] == []  # case-1's target is 09:31: not before
    record = system.store.load(DOMAIN, "case-1")
    system.store.save(record, record.log, [], next_checks={FIRST: at(100)})  # reconciliation looks later
    assert [s.case_id for s in system.store.due_before(at(36))] == [f"case-{n}" for n in range(2, 6)]
    assert "case-1" not in [s.case_id for s in system.store.due_before(at(100))]  # exactly at: not yet
    assert "case-1" in [s.case_id for s in system.store.due_before(at(100) + timedelta(microseconds=1))]


def test_an_sla_deferred_by_reconciliation_stays_deferred_after_later_saves() -> None:
    """The deferral is written with the save that carries it and kept by later saves (it used to be a
    separate write that the next save of the case undid); the same scenario as on the fake store."""
    clock = VirtualClock(at(-1))
    system = make_system(clock)
    system.deliver(created("c1", 0, "high"))
    clock.set(at(45))
    assert system.reconcile().repairs == 1  # first response overdue since 09:30; next look at 10:15
    deferred = at(75)
    assert raw_item("c1", FIRST)["next_check_at"] == {"S": "2026-11-23T10:15:00.000000Z"}
    system.deliver(updated("c1", 50, "pending-customer", "high"))  # a later save: resolve pauses
    record = system.store.load(DOMAIN, "c1")
    assert record.revision == 3 and record.slas[RESOLVE].state.paused_since == at(50)
    assert record.slas[FIRST].next_check_at == deferred  # in the log's copy of the SLAs
    assert raw_item("c1", FIRST)["due_at"] == {"S": "2026-11-23T10:15:00.000000Z"}  # and in the index
    assert system.store.due_before(deferred) == []
    assert [s.state.key for s in system.store.due_before(deferred + timedelta(microseconds=1))] == [FIRST]
    clock.set(at(60))
    assert system.reconcile().due == 0  # the next run leaves it alone


def test_render_slas_prints_state_and_time_left() -> None:
    system = make_system(VirtualClock(at(-1)))
    system.deliver(created("c1", 0, "high"))
    system.deliver(updated("c1", 20, "pending-customer", "high"))
    text = render_slas(system.store.case_slas("c1"), at(40))
    lines = text.splitlines()
    assert lines[0].split() == [
        "SLA",
        "ORIGIN",
        "STATUS",
        "TARGET",
        "(UTC)",
        "TIME",
        "LEFT",
        "COMPLETED",
        "(UTC)",
    ]
    assert "first-response-high  policy  Active" in text
    assert "due 10m 00s ago" in text  # Active, no timer fired yet, 10 minutes past its target
    assert "7h 40m left (paused)" in text  # resolve: paused at 09:20 with 7h 40m to go
    assert render_slas([], at(0)) == "no SLAs tracked"


# --- timers on moto Scheduler ----------------------------------------------------------------------


def test_timers_are_scheduled_moved_and_deleted() -> None:
    clock = VirtualClock(at(-1))
    system = make_system(clock)
    system.deliver(created("c1", 0, "high"))
    found = schedules()
    breach = found[schedule_name("c1", FIRST, TimerKind.BREACH)]
    assert set(found) == {schedule_name("c1", k, kind) for k in (FIRST, RESOLVE) for kind in TimerKind}
    assert breach["ScheduleExpression"] == "at(2026-11-23T09:30:00)"
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
        "targetTime": "2026-11-23T09:30:00Z",
    }
    assert len(breach["Name"]) <= 64
    assert (
        found[schedule_name("c1", FIRST, TimerKind.WARNING)]["ScheduleExpression"]
        == "at(2026-11-23T09:24:00)"
    )

    system.deliver(comment("c1", 10))  # met: its timers go
    assert set(schedules()) == {schedule_name("c1", RESOLVE, kind) for kind in TimerKind}
    system.deliver(updated("c1", 60, "pending-customer", "high"))  # paused: no timers
    assert schedules() == {}
    system.deliver(updated("c1", 90, "open", "high"))  # resumed: the target moved by 30 minutes
    moved = schedules()[schedule_name("c1", RESOLVE, TimerKind.BREACH)]
    assert moved["ScheduleExpression"] == "at(2026-11-23T17:30:00)"


def test_setting_a_timer_twice_updates_it() -> None:
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


def test_the_sla_timer_handler_marks_overdue_and_signals_a_breach(lambda_context: LambdaContext) -> None:
    clock = VirtualClock(at(-1))
    signals = RecordingSignalSink()
    system = make_system(clock, signals)
    system.deliver(created("c1", 0, "high"))
    payload = json.loads(schedules()[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    clock.set(
        at(30) + timedelta(seconds=1)
    )  # moto never fires schedules: call the handler as Scheduler would
    response = sla_timer.handler(payload, lambda_context, app=system.timer_app())
    assert response["outcome"] == "handled"
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert system.store.load(DOMAIN, "c1").slas[FIRST].state.status is SlaStatus.OVERDUE
    assert [(s.kind, s.sla_name, s.target_time) for s, _ in signals.signals] == [
        (SlaSignalKind.BREACHED, "first-response-high", at(30))
    ]
    assert schedule_name("c1", FIRST, TimerKind.WARNING) not in schedules()
    again = sla_timer.handler(
        payload, lambda_context, app=system.timer_app()
    )  # Scheduler retried: nothing new
    assert again["slaChanges"] == []
    assert len(signals.signals) == 1


def test_the_sla_timer_handler_warns_and_ignores_stale_timers(lambda_context: LambdaContext) -> None:
    clock = VirtualClock(at(-1))
    signals = RecordingSignalSink()
    system = make_system(clock, signals)
    system.deliver(created("c1", 0, "high"))
    found = schedules()
    warning = json.loads(found[schedule_name("c1", FIRST, TimerKind.WARNING)]["Target"]["Input"])
    breach = json.loads(found[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    clock.set(at(24))
    sla_timer.handler(warning, lambda_context, app=system.timer_app())
    assert [s.kind for s, _ in signals.signals] == [SlaSignalKind.AT_RISK]
    system.deliver(comment("c1", 25))
    clock.set(at(30))
    stale = sla_timer.handler(breach, lambda_context, app=system.timer_app())
    assert stale["slaChanges"] == []
    assert system.store.load(DOMAIN, "c1").slas[FIRST].state.status is SlaStatus.MET
    assert [s.kind for s, _ in signals.signals] == [SlaSignalKind.AT_RISK, SlaSignalKind.MET]


def test_the_sla_timer_handler_rejects_an_invalid_payload(lambda_context: LambdaContext) -> None:
    system = make_system(VirtualClock(at(-1)))
    response = sla_timer.handler({"kind": "explode", "caseId": "c1"}, lambda_context, app=system.timer_app())
    assert response["outcome"] == "invalid"
    assert "kind" in response["reason"]


def test_unknown_case_timers_are_noops(lambda_context: LambdaContext) -> None:
    system = make_system(VirtualClock(at(60)))
    payload = {
        "kind": "breach",
        "domainId": DOMAIN,
        "caseId": str(uuid.uuid4()),
        "slaName": "x",
        "targetTime": "2026-11-23T09:30:00Z",
    }
    assert sla_timer.handler(payload, lambda_context, app=system.timer_app())["slaChanges"] == []
    assert dynamodb_client().scan(TableName=TABLE)["Count"] == 0
