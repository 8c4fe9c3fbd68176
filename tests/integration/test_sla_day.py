"""Done when: a day of sample events replayed in any order, with duplicates, ends with the same SLAs as
in-order delivery — the four functions over the case store (DynamoDB) and SchedulerTimers on moto, timers
fired by calling the sla-timer handler as Scheduler would (moto never fires them), the change feed polled
as its schedule would."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from moto.scheduler.models import scheduler_backends

from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.bootstrap import policies
from casewatch.tables import STATE_TABLE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.sla_cli import render_slas
from tests.apps import SCHEDULER_ROLE_ARN as ROLE_ARN
from tests.apps import SLA_TIMER_ARN as TIMER_ARN
from tests.apps import World
from tests.builders import (
    ACCOUNT,
    DOMAIN,
    PRIORITY,
    REGION,
    SLA_SETTINGS,
    T0,
    case_event_raw,
    related_raw,
    sla_item_raw,
)

pytestmark = pytest.mark.usefixtures("moto")


# --- a working day ---------------------------------------------------------------------------------


@dataclass
class _Case:
    """One case's script: times advance with every action."""

    rng: random.Random
    n: int
    created: datetime
    priority: str
    events: list[dict[str, Any]]

    def __post_init__(self) -> None:
        self.case_id = f"case-{self.n:02d}"
        self.t = self.created

    def later(self, lo: int, hi: int) -> datetime:
        self.t += timedelta(minutes=self.rng.randint(lo, hi), milliseconds=self.rng.randint(0, 999))
        return self.t

    def fields(self, status: str) -> dict[str, Any]:
        return {"status": status, PRIORITY: self.priority, "title": f"Case {self.n}"}

    def update(self, status: str) -> None:
        self.events.append(
            case_event_raw(
                "CASE.UPDATED",
                self.case_id,
                self.later(3, 90),
                self.fields(status),
                changed=["status"],
                created=self.created,
            )
        )

    def play(self) -> None:
        rng, case_id = self.rng, self.case_id
        self.events.append(
            case_event_raw("CASE.CREATED", case_id, self.created, self.fields("open"), created=self.created)
        )
        if rng.random() < 0.3:
            self.events.append(
                sla_item_raw(
                    case_id,
                    self.later(0, 2),
                    f"sla-{self.n}",
                    name="Customer callback",
                    values=("closed",),
                    minutes=rng.choice((60, 120, 240)),
                )
            )
        for c in range(rng.choice((0, 1, 1, 2, 3))):
            comment = {"comment": {"body": "noted"}}
            self.events.append(
                related_raw(case_id, self.later(2, 50), "Comment", f"cm-{self.n}-{c}", comment)
            )
        if rng.random() < 0.3:
            self.update("pending-customer")
            self.update("open")
        if rng.random() < 0.1:
            contact = {
                "contact": {"contactArn": "arn:aws:connect:us-east-1:123456789012:instance/i/contact/c"}
            }
            self.events.append(related_raw(case_id, self.later(1, 20), "Contact", f"ct-{self.n}", contact))
        if rng.random() < 0.75:
            self.update("closed")
            if rng.random() < 0.2:
                self.update("open")
                if rng.random() < 0.5:
                    self.update("closed")


def working_day(seed: int = 2026, cases: int = 18) -> list[dict[str, Any]]:
    """A contact centre's day: cases opened 09:00-16:00 (a third high priority), first responses by
    comment (some late), holds waiting for the customer, closings (some after the 8 h target), a few
    reopened, a few Cases SLA items (some met, some breached), two cases deleted."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(cases):
        created = T0 + timedelta(minutes=rng.randint(0, 7 * 60), seconds=rng.randint(0, 59))
        script = _Case(rng, n, created, "high" if rng.random() < 0.35 else "low", events)
        script.play()
        if n in (5, 17):
            events.append(case_event_raw("CASE.DELETED", script.case_id, script.later(10, 60)))
    return events


def _time(event: dict[str, Any]) -> str:
    return str(event["detail"]["approximateChangeTime"])


# --- one replay on its own table and schedule group ----------------------------------------------------


@dataclass
class Replay:
    name: str
    clock: VirtualClock
    world: World = field(init=False)
    timers_fired: int = 0

    def __post_init__(self) -> None:
        dynamodb_client().create_table(**STATE_TABLE.create_table_args(self.table))
        scheduler_client().create_schedule_group(Name=self.group)
        self.store = DynamoDbCaseStore(self.table, dynamodb_client(), policies(SLA_SETTINGS))
        self.world = World(
            SLA_SETTINGS,
            clock=self.clock,
            store=self.store,
            timers=SchedulerTimers(
                scheduler_client(), group_name=self.group, target_arn=TIMER_ARN, role_arn=ROLE_ARN
            ),
        )

    @property
    def table(self) -> str:
        return f"state-{self.name}"

    @property
    def group(self) -> str:
        return f"timers-{self.name}"

    def deliver(self, raw: dict[str, Any]) -> None:
        assert self.world.deliver(raw)["outcome"] == "handled"

    def pending(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        group = scheduler_backends[ACCOUNT][REGION].schedule_groups[self.group]
        found = []
        for name, schedule in group.schedules.items():
            moment = datetime.fromisoformat(schedule.schedule_expression[3:-1]).replace(tzinfo=T0.tzinfo)
            found.append((moment, name, json.loads(schedule.target["Input"])))
        return sorted(found, key=lambda p: (p[0], p[1]))

    def run_clock(self, until: datetime) -> None:
        """Fire every schedule due by `until`, in time order (ActionAfterCompletion: DELETE), the change
        feed keeping up (its watermark at now - the index lag, as its polls leave it)."""
        while (due := self.pending()) and due[0][0] <= until:
            moment, name, payload = due[0]
            self.clock.set(max(moment, self.clock.now()))
            scheduler_backends[ACCOUNT][REGION].schedule_groups[self.group].schedules.pop(name, None)
            self.world.catch_up()
            self.world.fire(payload)
            self.timers_fired += 1
        if until > self.clock.now():
            self.clock.set(until)

    def slas(self) -> dict[tuple[str, str], Any]:
        return self.world.states()

    def logs(self) -> dict[str, frozenset[str]]:
        """Each case's observation log, as the set of its observations' JSON."""
        return {
            case_id: frozenset(o.to_json() for o in self.store.load(DOMAIN, case_id, with_log=True).log or ())
            for _, case_id in self.store.case_ids()
        }


def test_a_day_in_any_order_with_duplicates_ends_with_the_in_order_slas() -> None:
    day = working_day()
    in_order = sorted(day, key=_time)
    end = datetime.fromisoformat(_time(in_order[-1]).replace("Z", "+00:00")) + timedelta(days=1)

    # A: as it happened — each event shortly after its change, timers firing as the clock passes them
    a = Replay("inorder", VirtualClock(T0 - timedelta(minutes=1)))
    for raw in in_order:
        moment = datetime.fromisoformat(_time(raw).replace("Z", "+00:00")) + timedelta(seconds=2)
        a.run_clock(moment)
        a.deliver(raw)
    a.run_clock(end)

    rng = random.Random(7)
    chaos = [*day, *rng.sample(day, len(day) // 4)]  # a quarter delivered twice
    rng.shuffle(chaos)
    # B: everything out of order with duplicates, before any target passed; timers fire at the end
    b = Replay("shuffled", VirtualClock(T0 - timedelta(minutes=1)))
    for raw in chaos:
        b.deliver(raw)
    b.run_clock(end)
    # C: a late replay of the day (every target already passed: no timer is set, the change feed's due
    # sweep declares the breaches on its next poll)
    c = Replay("late", VirtualClock(end))
    for raw in reversed(chaos):
        c.deliver(raw)
    assert not c.pending()
    c.world.poll("after-the-late-replay")

    slas = a.slas()
    statuses = sorted(s.status.value for s in slas.values())
    origins = {s.origin.value for s in slas.values()}
    print(f"\n{len(day)} events, {len(chaos)} delivered shuffled; {len(slas)} SLAs: ", end="")
    print(
        {s: statuses.count(s) for s in sorted(set(statuses))},
        f"timers fired: A={a.timers_fired} B={b.timers_fired}",
    )
    assert len(day) >= 60
    assert {"Met", "NotMet", "Overdue", "Cancelled"} <= set(statuses)  # some breach, some are met
    assert origins == {"policy", "cases"}
    assert any(s.cycle == 2 for s in slas.values())  # a reopened case re-armed

    assert b.slas() == slas
    assert c.slas() == slas
    assert b.logs() == a.logs() == c.logs()  # the observation logs are the same sets
    assert not b.pending() and not a.pending()
    case_00 = sorted((s for (case_id, _), s in slas.items() if case_id == "case-00"), key=lambda s: s.key)
    assert case_00
    print(render_slas(case_00, end))
