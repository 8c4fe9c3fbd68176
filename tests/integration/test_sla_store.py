"""The SLA store on moto DynamoDB (conditional writes, races, the due index), timers on moto Scheduler,
and the sla-timer handler end to end."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws

from casewatch import aws
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore, due_shard
from casewatch.adapters.memory import RecordingSignalSink
from casewatch.adapters.scheduler_timers import SchedulerTimers, at_expression, schedule_name
from casewatch.domain.sla import SlaConflictError, SlaStatus, TimerKind, TimerSpec, evaluate
from casewatch.domain.sla_ports import SlaCaseRecord
from casewatch.handlers import sla_timer
from casewatch.models.signals import SlaSignalKind
from casewatch.sla_service import SlaTracker
from casewatch.tables import DUE_SHARDS, STATE_TABLE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.sla_cli import render_slas
from tests.unit.test_sla_fakes import DOMAIN, at, enriched, parsed
from tests.unit.test_sla_state_machine import FIRST, RESOLVE, SETTINGS, comment, created, updated

TABLE = "casewatch-state"
GROUP = "casewatch-sla-timers"
TIMER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:casewatch-sla-timer"
ROLE_ARN = "arn:aws:iam::123456789012:role/casewatch-scheduler"


@dataclass
class LambdaContext:
    function_name: str = "casewatch-sla-timer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = TIMER_ARN
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Casewatch",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        aws.reset_clients()
        aws.dynamodb_client().create_table(**STATE_TABLE.create_table_args(TABLE))
        aws.scheduler_client().create_schedule_group(Name=GROUP)
        yield
    aws.reset_clients()


class HookedStore(DynamoDbSlaStore):
    """The real store, with a hook run once just before a save (to interleave a competing writer)."""

    before_save: Any = None
    saves = 0
    conflicts = 0

    def save(self, old: SlaCaseRecord, log: Any, changed: Any) -> SlaCaseRecord:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        try:
            record = super().save(old, log, changed)
        except SlaConflictError:
            self.conflicts += 1
            raise
        self.saves += 1
        return record


def make_tracker(clock: VirtualClock, signals: RecordingSignalSink | None = None) -> SlaTracker:
    return SlaTracker.from_settings(
        SETTINGS,
        store=HookedStore(TABLE, aws.dynamodb_client()),
        signals=signals or RecordingSignalSink(),
        timers=SchedulerTimers(
            aws.scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN
        ),
        clock=clock,
    )


def deliver(tracker: SlaTracker, raw: dict[str, Any]) -> None:
    event = parsed(raw)
    tracker.on_case_event(event, enriched(event))


def raw_item(case_id: str, sla_key: str) -> dict[str, Any]:
    item = aws.dynamodb_client().get_item(
        TableName=TABLE, Key={"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": f"SLA#{sla_key}"}}
    )
    return dict(item.get("Item", {}))


def schedules() -> dict[str, dict[str, Any]]:
    client = aws.scheduler_client()
    names = [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: dict(client.get_schedule(Name=name, GroupName=GROUP)) for name in names}


# --- the store -----------------------------------------------------------------------------------


def test_items_round_trip_and_carry_the_due_index_while_open(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    deliver(tracker, created("c1", 0, "high"))
    deliver(tracker, comment("c1", 10))
    record = tracker.store.load(DOMAIN, "c1")
    assert record.revision == 2
    assert {k: s.state for k, s in record.slas.items()} == evaluate(record.log, tracker.policies)

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
    log = aws.dynamodb_client().get_item(
        TableName=TABLE, Key={"pk": {"S": "CASE#c1"}, "sk": {"S": "SLALOG"}}
    )["Item"]
    assert len(json.loads(log["observations"]["S"])) == 2
    assert log["revision"] == {"N": "2"}


def test_a_write_from_a_stale_read_is_a_conflict(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    deliver(tracker, created("c1", 0))
    store = tracker.store
    stale = store.load(DOMAIN, "c1")
    deliver(tracker, updated("c1", 100, "closed"))
    log = stale.log.merge([])
    with pytest.raises(SlaConflictError):
        store.save(stale, log, list(evaluate(log, tracker.policies).values()))
    assert store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.MET


def test_an_older_state_never_overwrites_a_newer_item(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    deliver(tracker, created("c1", 0))
    deliver(tracker, updated("c1", 100, "closed"))
    current = tracker.store.load(DOMAIN, "c1")
    older_log = current.log.merge([])
    older_log = type(older_log)(
        older_log.domain_id, older_log.case_id, older_log.observations[:1]
    )  # version 09:00
    states = list(evaluate(older_log, tracker.policies).values())
    with pytest.raises(SlaConflictError):  # the log revision matches, the item's version guard does not
        tracker.store.save(current, older_log, states)
    assert tracker.store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.MET


def test_two_writers_race_one_wins_the_loser_reloads_and_reapplies(aws_env: None) -> None:
    clock = VirtualClock(at(-1))
    a, b = make_tracker(clock), make_tracker(clock)
    deliver(a, created("c1", 0, "high"))
    assert isinstance(a.store, HookedStore)
    a.store.before_save = lambda: deliver(b, comment("c1", 10))  # B writes between A's read and write
    deliver(a, updated("c1", 100, "closed", "high"))
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


def test_concurrent_writers_lose_nothing(aws_env: None) -> None:
    clock = VirtualClock(at(-1))
    deliver(make_tracker(clock), created("c1", 0, "high"))
    trackers = [make_tracker(clock) for _ in range(6)]
    for tracker in trackers:
        tracker.store = HookedStore(TABLE, AtomicClient(aws.dynamodb_client()))  # type: ignore[arg-type]
    barrier = threading.Barrier(len(trackers))
    errors: list[BaseException] = []

    def run(n: int, tracker: SlaTracker) -> None:
        try:
            barrier.wait()
            deliver(tracker, updated("c1", 10 + n, "open" if n % 2 else "pending-customer", "high"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, t)) for n, t in enumerate(trackers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    record = trackers[0].store.load(DOMAIN, "c1")
    assert len(record.log.observations) == 1 + len(trackers)
    conflicts = sum(t.store.conflicts for t in trackers if isinstance(t.store, HookedStore))
    print(f"{len(trackers)} concurrent writers: {conflicts} conflicts, all retried")
    assert {k: s.state for k, s in record.slas.items()} == evaluate(record.log, trackers[0].policies)


def test_due_before_reads_every_shard_oldest_first(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    cases = [f"case-{n}" for n in range(12)]
    assert len({due_shard(c) for c in cases}) == DUE_SHARDS
    for n, case_id in enumerate(cases):
        deliver(tracker, created(case_id, n, "high"))  # first response due at n + 30
    deliver(tracker, comment("case-0", 5))  # met: leaves the index
    due = tracker.store.due_before(at(36))
    assert [(s.case_id, s.state.key) for s in due] == [(f"case-{n}", FIRST) for n in range(1, 6)]
    tracker.store.defer_check("case-1", FIRST, at(100))
    assert [s.case_id for s in tracker.store.due_before(at(36))] == [f"case-{n}" for n in range(2, 6)]
    assert "case-1" in [s.case_id for s in tracker.store.due_before(at(101))]


def test_render_slas_prints_state_and_time_left(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    deliver(tracker, created("c1", 0, "high"))
    deliver(tracker, updated("c1", 20, "pending-customer", "high"))
    text = render_slas(tracker.store.case_slas("c1"), at(40))
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


def test_timers_are_scheduled_moved_and_deleted(aws_env: None) -> None:
    clock = VirtualClock(at(-1))
    tracker = make_tracker(clock)
    deliver(tracker, created("c1", 0, "high"))
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

    deliver(tracker, comment("c1", 10))  # met: its timers go
    assert set(schedules()) == {schedule_name("c1", RESOLVE, kind) for kind in TimerKind}
    deliver(tracker, updated("c1", 60, "pending-customer", "high"))  # paused: no timers
    assert schedules() == {}
    deliver(tracker, updated("c1", 90, "open", "high"))  # resumed: the target moved by 30 minutes
    moved = schedules()[schedule_name("c1", RESOLVE, TimerKind.BREACH)]
    assert moved["ScheduleExpression"] == "at(2026-11-23T17:30:00)"


def test_setting_a_timer_twice_updates_it(aws_env: None) -> None:
    timers = SchedulerTimers(
        aws.scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN
    )
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


def test_the_sla_timer_handler_marks_overdue_and_signals_a_breach(aws_env: None) -> None:
    clock = VirtualClock(at(-1))
    signals = RecordingSignalSink()
    tracker = make_tracker(clock, signals)
    deliver(tracker, created("c1", 0, "high"))
    payload = json.loads(schedules()[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    clock.set(
        at(30) + timedelta(seconds=1)
    )  # moto never fires schedules: call the handler as Scheduler would
    response = sla_timer.handler(payload, LambdaContext(), deps=tracker)
    assert response["outcome"] == "handled"
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert tracker.store.load(DOMAIN, "c1").slas[FIRST].state.status is SlaStatus.OVERDUE
    assert [(s.kind, s.sla_name, s.target_time) for s, _ in signals.signals] == [
        (SlaSignalKind.BREACHED, "first-response-high", at(30))
    ]
    assert schedule_name("c1", FIRST, TimerKind.WARNING) not in schedules()
    again = sla_timer.handler(payload, LambdaContext(), deps=tracker)  # Scheduler retried: nothing new
    assert again["slaChanges"] == []
    assert len(signals.signals) == 1


def test_the_sla_timer_handler_warns_and_ignores_stale_timers(aws_env: None) -> None:
    clock = VirtualClock(at(-1))
    signals = RecordingSignalSink()
    tracker = make_tracker(clock, signals)
    deliver(tracker, created("c1", 0, "high"))
    found = schedules()
    warning = json.loads(found[schedule_name("c1", FIRST, TimerKind.WARNING)]["Target"]["Input"])
    breach = json.loads(found[schedule_name("c1", FIRST, TimerKind.BREACH)]["Target"]["Input"])
    clock.set(at(24))
    sla_timer.handler(warning, LambdaContext(), deps=tracker)
    assert [s.kind for s, _ in signals.signals] == [SlaSignalKind.AT_RISK]
    deliver(tracker, comment("c1", 25))
    clock.set(at(30))
    stale = sla_timer.handler(breach, LambdaContext(), deps=tracker)
    assert stale["slaChanges"] == []
    assert tracker.store.load(DOMAIN, "c1").slas[FIRST].state.status is SlaStatus.MET
    assert [s.kind for s, _ in signals.signals] == [SlaSignalKind.AT_RISK, SlaSignalKind.MET]


def test_the_sla_timer_handler_rejects_an_invalid_payload(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(-1)))
    response = sla_timer.handler({"kind": "explode", "caseId": "c1"}, LambdaContext(), deps=tracker)
    assert response["outcome"] == "invalid"
    assert "kind" in response["reason"]


def test_unknown_case_timers_are_noops(aws_env: None) -> None:
    tracker = make_tracker(VirtualClock(at(60)))
    payload = {
        "kind": "breach",
        "domainId": DOMAIN,
        "caseId": str(uuid.uuid4()),
        "slaName": "x",
        "targetTime": "2026-11-23T09:30:00Z",
    }
    assert sla_timer.handler(payload, LambdaContext(), deps=tracker)["slaChanges"] == []
    assert aws.dynamodb_client().scan(TableName=TABLE)["Count"] == 0


def test_build_sla_sink_from_the_environment(aws_env: None) -> None:
    from casewatch.adapters.sla_wiring import build_sla_sink
    from casewatch.constants import (
        ENV_SCHEDULE_GROUP,
        ENV_SCHEDULER_ROLE_ARN,
        ENV_SLA_TABLE,
        ENV_SLA_TIMER_ARN,
    )
    from casewatch.errors import SettingsError

    env = {
        ENV_SLA_TABLE: TABLE,
        ENV_SCHEDULE_GROUP: GROUP,
        ENV_SLA_TIMER_ARN: TIMER_ARN,
        ENV_SCHEDULER_ROLE_ARN: ROLE_ARN,
    }
    tracker = build_sla_sink(SETTINGS, RecordingSignalSink(), env=env, clock=VirtualClock(at(-1)))
    assert isinstance(tracker.store, DynamoDbSlaStore)
    assert isinstance(tracker.timers, SchedulerTimers)
    assert tracker.warning_fraction == SETTINGS.sla_warning_fraction
    deliver(tracker, created("c1", 0, "high"))
    assert len(schedules()) == 4
    assert build_sla_sink(SETTINGS, RecordingSignalSink(), env={ENV_SLA_TABLE: TABLE}).timers is None
    with pytest.raises(SettingsError):
        build_sla_sink(SETTINGS, RecordingSignalSink(), env={})
