"""Reconciliation and SLA timers end to end: events from the Cases emulator through the real event
processing (enrichment included) into the tracker on moto; dropped events repaired from Cases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from casewatch import aws
from casewatch.adapters.cases_api import CasesApiReader
from casewatch.adapters.cases_sla_source import CasesApiSlaSource
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore
from casewatch.adapters.memory import (
    CountingMetrics,
    InMemorySnapshotStore,
    ListDeadLetters,
    RecordingSignalSink,
)
from casewatch.adapters.scheduler_timers import SchedulerTimers, schedule_name
from casewatch.domain.sla import SlaStatus, TimerKind
from casewatch.handlers import reconcile, sla_timer
from casewatch.models.signals import SlaSignalKind
from casewatch.service import process_event
from casewatch.sla_service import SlaTracker
from casewatch.wiring import Dependencies
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import CasesEmulator
from tests.integration.test_sla_store import (
    GROUP,
    ROLE_ARN,
    TABLE,
    TIMER_ARN,
    LambdaContext,
    aws_env,
    schedules,
)
from tests.unit.test_sla_fakes import DOMAIN, PRIORITY, T0
from tests.unit.test_sla_state_machine import FIRST, RESOLVE, SETTINGS

__all__ = ["aws_env"]  # the moto fixture, shared with test_sla_store


@dataclass
class World:
    """Cases (the emulator) -> events -> process_event -> SlaTracker (moto DynamoDB + Scheduler)."""

    emu: CasesEmulator
    clock: VirtualClock
    tracker: SlaTracker
    signals: RecordingSignalSink
    deps: Dependencies
    template_id: str
    delivered: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cases(self) -> Any:
        return self.emu.client()

    def create_case(self, priority: str = "low") -> str:
        case_id: str = self.cases.create_case(
            domainId=DOMAIN,
            templateId=self.template_id,
            fields=[{"id": PRIORITY, "value": {"stringValue": priority}}],
        )["caseId"]
        return case_id

    def set_status(self, case_id: str, status: str) -> None:
        self.cases.update_case(
            domainId=DOMAIN, caseId=case_id, fields=[{"id": "status", "value": {"stringValue": status}}]
        )

    def comment(self, case_id: str) -> None:
        self.cases.create_related_item(
            domainId=DOMAIN,
            caseId=case_id,
            type="Comment",
            content={"comment": {"body": "hi", "contentType": "Text/Plain"}},
        )

    def cases_sla(self, case_id: str, minutes: int = 30, target: str = "closed") -> str:
        item_id: str = self.cases.create_related_item(
            domainId=DOMAIN,
            caseId=case_id,
            type="Sla",
            content={
                "sla": {
                    "slaInputConfiguration": {
                        "name": "Resolve",
                        "type": "CaseField",
                        "fieldId": "status",
                        "targetFieldValues": [{"stringValue": target}],
                        "targetSlaMinutes": minutes,
                    }
                }
            },
        )["relatedItemId"]
        return item_id

    def deliver_all(self, *, drop: int = 0) -> list[dict[str, Any]]:
        """Deliver what Cases emitted so far, except the last `drop` events (lost on the way)."""
        pending, self.emu.emitted[:] = list(self.emu.emitted), []
        kept = pending[: len(pending) - drop] if drop else pending
        for event in kept:
            function = (
                "related-item-created"
                if event["detail"]["eventType"].startswith("RELATED")
                else "case-changed"
            )
            outcome = process_event(event, self.deps, function=function)
            assert outcome.kind == "handled", outcome.reason
        self.delivered += kept
        return pending[len(kept) :]

    def state(self, case_id: str, key: str) -> Any:
        return self.tracker.store.load(DOMAIN, case_id).slas[key].state

    def state_named(self, case_id: str, name: str) -> Any:
        return next(
            s.state for s in self.tracker.store.load(DOMAIN, case_id).slas.values() if s.state.name == name
        )


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    clock = VirtualClock(T0)
    with CasesEmulator(clock=clock, seed=11) as emu:
        emu.seed_domain(domain_id=DOMAIN)
        emu.seed_field(DOMAIN, "Priority", "SingleSelect", field_id=PRIORITY)
        template_id = emu.seed_template(DOMAIN, "Default")
        emu.set_event_configuration(DOMAIN, fields=["status", PRIORITY, "title"], include_content=True)
        client = emu.client()
        reader = CasesApiReader(client)
        signals = RecordingSignalSink()
        snapshots = InMemorySnapshotStore()
        tracker = SlaTracker.from_settings(
            SETTINGS,
            store=DynamoDbSlaStore(TABLE, aws.dynamodb_client()),
            signals=signals,
            timers=SchedulerTimers(
                aws.scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN
            ),
            clock=clock,
            cases_slas=CasesApiSlaSource(client),
            cases_reader=reader,
            snapshots=snapshots,
        )
        deps = Dependencies(
            cases=reader,
            snapshots=snapshots,
            dead_letters=ListDeadLetters(),
            sinks=[tracker],
            settings=SETTINGS,
            clock=clock,
            metrics=CountingMetrics(),
        )
        yield World(emu, clock, tracker, signals, deps, template_id)


def _reconcile(world: World, capsys: pytest.CaptureFixture[str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = reconcile.handler(
        {"id": "rec-1", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}},
        LambdaContext(function_name="casewatch-reconcile"),
        deps=world.tracker,
    )
    return response


def _metric(capsys: pytest.CaptureFixture[str], name: str) -> float | None:
    """The value of an EMF metric the handler flushed to stdout (Powertools Metrics)."""
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document and name in document:
            return float(document[name] if not isinstance(document[name], list) else sum(document[name]))
    return None


def test_a_dropped_closing_update_is_repaired_by_reconciliation(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = world.create_case()
    world.deliver_all()
    assert world.state(case_id, RESOLVE).status is SlaStatus.ACTIVE

    world.clock.advance(timedelta(minutes=100))
    world.set_status(case_id, "closed")
    lost = world.deliver_all(drop=1)  # the CASE.UPDATED that closes the case never arrives
    assert [e["detail"]["eventType"] for e in lost] == ["CASE.UPDATED"]
    assert world.state(case_id, RESOLVE).status is SlaStatus.ACTIVE

    world.clock.set(T0 + timedelta(hours=8, minutes=15))  # the next run after the target
    capsys.readouterr()
    response = _reconcile(world)
    assert (response["due"], response["casesChecked"], response["repairs"]) == (1, 1, 1)
    assert _metric(capsys, "SlaRepairs") == 1
    repaired = world.state(case_id, RESOLVE)
    assert repaired.status is SlaStatus.MET
    assert repaired.completion_time == T0 + timedelta(minutes=100)  # dated by last_closed_datetime
    assert [s.kind for s, _ in world.signals.signals] == [SlaSignalKind.MET]
    assert schedules() == {}  # its timers are gone

    # the lost event turns up after all: nothing changes
    for event in lost:
        process_event(event, world.deps, function="case-changed")
    assert world.state(case_id, RESOLVE) == repaired
    assert _reconcile(world)["due"] == 0


def test_a_breach_timer_asks_cases_before_breaching(world: World) -> None:
    case_id = world.create_case("high")
    world.deliver_all()
    world.clock.advance(timedelta(minutes=10))
    world.comment(case_id)
    world.deliver_all(drop=1)  # the comment event is lost
    payload = json.loads(schedules()[schedule_name(case_id, FIRST, TimerKind.BREACH)]["Target"]["Input"])
    world.clock.set(T0 + timedelta(minutes=30, seconds=1))
    calls = world.emu.calls["SearchRelatedItems"]
    response = sla_timer.handler(payload, LambdaContext(), deps=world.tracker)
    assert world.emu.calls["SearchRelatedItems"] == calls + 1
    assert [c["status"] for c in response["slaChanges"]] == ["Met"]
    assert world.state(case_id, FIRST).completion_time == T0 + timedelta(minutes=10)
    assert [s.kind for s, _ in world.signals.signals] == [SlaSignalKind.MET]


def test_a_breach_timer_breaches_when_cases_agrees(world: World) -> None:
    case_id = world.create_case("high")
    world.deliver_all()
    payload = json.loads(schedules()[schedule_name(case_id, FIRST, TimerKind.BREACH)]["Target"]["Input"])
    world.clock.set(T0 + timedelta(minutes=31))
    response = sla_timer.handler(payload, LambdaContext(), deps=world.tracker)
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert [(s.kind, s.case_id) for s, _ in world.signals.signals] == [(SlaSignalKind.BREACHED, case_id)]
    world.clock.advance(timedelta(minutes=10))
    world.comment(case_id)
    world.deliver_all()
    assert world.state(case_id, FIRST).status is SlaStatus.NOT_MET


def test_a_cases_sla_met_by_a_dropped_update_is_repaired_from_search_related_items(world: World) -> None:
    case_id = world.create_case()
    world.clock.advance(timedelta(seconds=5))
    item_id = world.cases_sla(case_id, minutes=60)
    world.deliver_all()
    key = f"cases#{item_id}"
    assert world.state(case_id, key).target_time == T0 + timedelta(minutes=60, seconds=5)
    world.clock.advance(timedelta(minutes=20))
    world.set_status(case_id, "closed")
    world.deliver_all(drop=1)
    world.clock.set(T0 + timedelta(minutes=75))
    response = _reconcile(world)
    assert (response["repairs"], response["casesCalls"]) == (1, 1)  # one SearchRelatedItems
    state = world.state(case_id, key)
    assert (state.status, state.completion_time) == (SlaStatus.MET, T0 + timedelta(minutes=20, seconds=5))
    assert world.state(case_id, RESOLVE).status is SlaStatus.ACTIVE  # not due yet: checked at its target


def test_reconciliation_breaches_what_is_overdue_and_looks_again_later(world: World) -> None:
    case_id = world.create_case("high")
    world.deliver_all()
    world.clock.set(T0 + timedelta(minutes=45))  # the breach timer was lost: reconciliation notices
    first = _reconcile(world)
    assert first["repairs"] == 1
    assert world.state(case_id, FIRST).status is SlaStatus.OVERDUE
    assert [s.kind for s, _ in world.signals.signals] == [SlaSignalKind.BREACHED]
    assert _reconcile(world)["due"] == 0  # deferred: not checked again on every run
    world.clock.advance(timedelta(minutes=31))
    assert _reconcile(world)["casesChecked"] == 1


def test_reconciliation_cancels_the_slas_of_a_deleted_case(world: World) -> None:
    case_id = world.create_case()
    world.deliver_all()
    world.cases.delete_case(domainId=DOMAIN, caseId=case_id)
    world.deliver_all(drop=1)
    world.clock.set(T0 + timedelta(hours=9))
    _reconcile(world)
    assert world.state(case_id, RESOLVE).status is SlaStatus.CANCELLED


def test_reconciliation_keeps_to_its_budget(world: World) -> None:
    for _ in range(3):
        world.create_case()
    world.deliver_all()
    world.clock.set(T0 + timedelta(hours=9))
    report = world.tracker.reconcile(max_cases=2)
    assert (report.due, report.cases_checked, report.cases_left) == (3, 2, 1)
    assert report.cases_calls == 2  # one GetCase per case
    assert world.tracker.reconcile(max_cases=2).cases_checked == 1


def test_an_sla_item_without_content_is_read_from_cases(world: World) -> None:
    world.emu.set_event_configuration(DOMAIN, fields=["status", PRIORITY], include_content=False)
    case_id = world.create_case()
    world.clock.advance(timedelta(seconds=5))
    item_id = world.cases_sla(case_id, minutes=30, target="pending-customer")
    world.deliver_all()
    state = world.state(case_id, f"cases#{item_id}")
    assert (state.name, state.target_time, state.complete_field) == (
        "Resolve",
        T0 + timedelta(minutes=30, seconds=5),
        "status",
    )
