"""Done when: a day of sample events replayed in any order, with duplicates, ends with the same SLA
table as in-order delivery — SLA tracking + DynamoDbSlaStore + SchedulerTimers on moto, timers fired by
calling the sla-timer handler as Scheduler would (moto never fires them)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore
from moto.scheduler.models import scheduler_backends

from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.handlers import sla_timer
from casewatch.tables import STATE_TABLE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.sla_cli import render_slas
from tests.apps import SCHEDULER_ROLE_ARN as ROLE_ARN
from tests.apps import SLA_TIMER_ARN as TIMER_ARN
from tests.apps import LambdaContext, SlaSystem
from tests.builders import (
    ACCOUNT,
    PRIORITY,
    REGION,
    SLA_SETTINGS,
    T0,
    case_event_raw,
    related_raw,
    sla_item_raw,
)

pytestmark = pytest.mark.usefixtures("moto")
STATE_FIELDS = (
    "name",
    "origin",
    "status",
    "cycle",
    "started_at",
    "target_time",
    "duration_s",
    "paused_s",
    "paused_since",
    "completion_time",
    "history",
    "complete_field",
    "complete_values",
    "complete_item",
)


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
    sla: SlaSystem = field(init=False)
    latest_status: dict[str, Any] = field(default_factory=dict)
    timers_fired: int = 0

    def __post_init__(self) -> None:
        dynamodb_client().create_table(**STATE_TABLE.create_table_args(self.table))
        scheduler_client().create_schedule_group(Name=self.group)
        self.sla = SlaSystem(
            SLA_SETTINGS,
            store=DynamoDbSlaStore(self.table, dynamodb_client()),
            timers=SchedulerTimers(
                scheduler_client(), group_name=self.group, target_arn=TIMER_ARN, role_arn=ROLE_ARN
            ),
            clock=self.clock,
        )

    @property
    def table(self) -> str:
        return f"state-{self.name}"

    @property
    def group(self) -> str:
        return f"timers-{self.name}"

    def deliver(self, raw: dict[str, Any]) -> None:
        detail = raw["detail"]
        case_id = (detail.get("case") or detail.get("relatedItem"))["caseId"]
        status = detail.get("case", {}).get("fields", {}).get("status")
        extra = {}
        if "relatedItem" in detail and case_id in self.latest_status:
            extra = {"status": self.latest_status[case_id]}  # a snapshot as of delivery order
        elif status is not None:
            self.latest_status[case_id] = status["value"]["stringValue"]
        self.sla.deliver(raw, extra)

    def pending(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        group = scheduler_backends[ACCOUNT][REGION].schedule_groups[self.group]
        found = []
        for name, schedule in group.schedules.items():
            moment = datetime.fromisoformat(schedule.schedule_expression[3:-1]).replace(tzinfo=T0.tzinfo)
            found.append((moment, name, json.loads(schedule.target["Input"])))
        return sorted(found, key=lambda p: (p[0], p[1]))

    def run_clock(self, until: datetime) -> None:
        """Fire every schedule due by `until`, in time order (ActionAfterCompletion: DELETE)."""
        while (due := self.pending()) and due[0][0] <= until:
            moment, name, payload = due[0]
            self.clock.set(max(moment, self.clock.now()))
            sla_timer.handler(payload, LambdaContext("casewatch-sla-timer"), app=self.sla.timer_app())
            scheduler_backends[ACCOUNT][REGION].schedule_groups[self.group].schedules.pop(name, None)
            self.timers_fired += 1
        if until > self.clock.now():
            self.clock.set(until)

    def table_state(self) -> dict[tuple[str, str], dict[str, Any]]:
        items = dynamodb_client().scan(TableName=self.table)["Items"]
        return {
            (i["pk"]["S"], i["sk"]["S"]): {k: i.get(k) for k in STATE_FIELDS}
            for i in items
            if i["sk"]["S"].startswith("SLA#")
        }

    def logs(self) -> dict[str, list[str]]:
        items = dynamodb_client().scan(TableName=self.table)["Items"]
        return {i["pk"]["S"]: json.loads(i["observations"]["S"]) for i in items if i["sk"]["S"] == "SLALOG"}


def test_a_day_in_any_order_with_duplicates_ends_with_the_in_order_sla_table() -> None:
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
    # C: a late replay of the day (every target already passed: no timers, breaches judged on arrival)
    c = Replay("late", VirtualClock(end))
    for raw in reversed(chaos):
        c.deliver(raw)

    table = a.table_state()
    statuses = sorted(item["status"]["S"] for item in table.values())
    origins = {item["origin"]["S"] for item in table.values()}
    print(f"\n{len(day)} events, {len(chaos)} delivered shuffled; {len(table)} SLAs: ", end="")
    print(
        {s: statuses.count(s) for s in sorted(set(statuses))},
        f"timers fired: A={a.timers_fired} B={b.timers_fired}",
    )
    assert len(day) >= 60
    assert {"Met", "NotMet", "Overdue", "Cancelled"} <= set(statuses)  # some breach, some are met
    assert origins == {"policy", "cases"}
    assert any(item["cycle"]["N"] == "2" for item in table.values())  # a reopened case re-armed

    assert b.table_state() == table
    assert c.table_state() == table
    assert b.logs() == a.logs() == c.logs()  # the observation logs are the same sets
    assert not b.pending() and not a.pending()
    one = next(k for k in table if k[0] == "CASE#case-00")[0].removeprefix("CASE#")
    print(render_slas(a.sla.store.case_slas(one), end))
