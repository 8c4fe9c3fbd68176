"""Reconciliation and SLA timers end to end: events from the Cases emulator through the real event
processing (enrichment included) into SLA tracking on moto; dropped events repaired from Cases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore
from casewatch.app.sla.reconcile import MIN_RESERVE_S

from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.scheduler_timers import SchedulerTimers, schedule_name
from casewatch.app.process_event import EventProcessor
from casewatch.domain.sla.model import SlaStatus
from casewatch.domain.sla.timers import TimerKind
from casewatch.handlers import reconcile, sla_timer
from casewatch.models.signals import SlaSignalKind
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import CasesEmulator
from casewatch_dev.fakes.ports import CountingMetrics, InMemorySnapshotStore, ListDeadLetters
from tests.apps import SCHEDULE_GROUP as GROUP
from tests.apps import SCHEDULER_ROLE_ARN as ROLE_ARN
from tests.apps import SLA_TIMER_ARN as TIMER_ARN
from tests.apps import LambdaContext, SlaSystem, event_app
from tests.builders import DOMAIN, FIRST, PRIORITY, RESOLVE, SLA_SETTINGS, T0


@dataclass
class World:
    """Cases (the emulator) -> events -> the event processors -> SLA tracking (moto DynamoDB + Scheduler)."""

    emu: CasesEmulator
    clock: VirtualClock
    sla: SlaSystem
    processors: dict[str, EventProcessor]
    template_id: str
    delivered: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cases(self) -> Any:
        return self.emu.client()

    @property
    def signals(self) -> Any:
        return self.sla.signals

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
            outcome = self.process(event)
            assert outcome.kind == "handled", outcome.reason
        self.delivered += kept
        return pending[len(kept) :]

    def process(self, event: dict[str, Any]) -> Any:
        related = event["detail"]["eventType"].startswith("RELATED")
        return self.processors[RELATED_ITEM_CREATED_FN.name if related else CASE_CHANGED.name].process(event)

    def state(self, case_id: str, key: str) -> Any:
        return self.sla.store.load(DOMAIN, case_id).slas[key].state


@pytest.fixture
def world(tables: Any) -> Iterator[World]:
    scheduler_client().create_schedule_group(Name=GROUP)
    clock = VirtualClock(T0)
    with CasesEmulator(clock=clock, seed=11) as emu:
        emu.seed_domain(domain_id=DOMAIN)
        emu.seed_field(DOMAIN, "Priority", "SingleSelect", field_id=PRIORITY)
        template_id = emu.seed_template(DOMAIN, "Default")
        emu.set_event_configuration(DOMAIN, fields=["status", PRIORITY, "title"], include_content=True)
        cases = CasesApi(emu.client())
        snapshots = InMemorySnapshotStore()
        sla = SlaSystem(
            SLA_SETTINGS,
            store=DynamoDbSlaStore(tables.state, dynamodb_client()),
            timers=SchedulerTimers(
                scheduler_client(), group_name=GROUP, target_arn=TIMER_ARN, role_arn=ROLE_ARN
            ),
            clock=clock,
            cases_slas=cases,
            cases_reader=cases,
            snapshots=snapshots,
        )
        processors = {
            spec.name: event_app(
                spec,
                SLA_SETTINGS,
                cases=cases,
                snapshots=snapshots,
                dead_letters=ListDeadLetters(),
                sinks=[sla.case_events],
                clock=clock,
                metrics=CountingMetrics(),
            ).processor
            for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN)
        }
        yield World(emu, clock, sla, processors, template_id)


def schedules() -> dict[str, dict[str, Any]]:
    client = scheduler_client()
    names = [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: dict(client.get_schedule(Name=name, GroupName=GROUP)) for name in names}


def _reconcile(world: World) -> dict[str, Any]:
    response: dict[str, Any] = reconcile.handler(
        {"id": "rec-1", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}},
        LambdaContext("casewatch-reconcile"),
        app=world.sla.reconcile_app(),
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
        world.process(event)
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
    response = sla_timer.handler(payload, LambdaContext("casewatch-sla-timer"), app=world.sla.timer_app())
    assert world.emu.calls["SearchRelatedItems"] == calls + 1
    assert [c["status"] for c in response["slaChanges"]] == ["Met"]
    assert world.state(case_id, FIRST).completion_time == T0 + timedelta(minutes=10)
    assert [s.kind for s, _ in world.signals.signals] == [SlaSignalKind.MET]


def test_a_breach_timer_breaches_when_cases_agrees(world: World) -> None:
    case_id = world.create_case("high")
    world.deliver_all()
    payload = json.loads(schedules()[schedule_name(case_id, FIRST, TimerKind.BREACH)]["Target"]["Input"])
    world.clock.set(T0 + timedelta(minutes=31))
    response = sla_timer.handler(payload, LambdaContext("casewatch-sla-timer"), app=world.sla.timer_app())
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


def test_reconciliation_keeps_to_the_time_the_invocation_has(world: World) -> None:
    for _ in range(3):
        world.create_case()
    world.deliver_all()
    world.clock.set(T0 + timedelta(hours=9))
    # The time left before each case: exactly the reserve still goes, a millisecond less stops.
    left = iter([60.0, MIN_RESERVE_S, MIN_RESERVE_S - 0.001])
    report = world.sla.reconcile(remaining_s=lambda: next(left))
    assert (report.due, report.cases_checked, report.cases_left) == (3, 2, 1)
    assert report.cases_calls == 2  # one GetCase per case
    assert [t.status for t in report.transitions] == [SlaStatus.OVERDUE] * 2
    again = world.sla.reconcile()
    assert (again.due, again.cases_checked, again.cases_left) == (1, 1, 0)  # the other two are deferred


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
