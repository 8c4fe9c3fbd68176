"""The use cases composed over test doubles, the way `casewatch.bootstrap` composes them over AWS.

- `LambdaContext` (from `tests/lambda_context.py`): the tests' one fake Lambda context;
- `FixedClock` (a clock that never moves; `casewatch_dev.clock.VirtualClock` is the one that does);
- `FakeCasesSlas`: a `CasesSlaSource` over a dict;
- `memory_adapters(...)`: every port of `bootstrap.Adapters` in memory — the fakes of the ports
  (`casewatch_dev.fakes.ports`: the case store, GetCase, search) and the real sending adapters (SNS,
  EventBridge, SQS, Scheduler) on fake clients (`casewatch_dev.fakes.clients`);
- `World`: the four functions (case-changed, related-item-created, sla-timer, reconcile) built by
  `bootstrap.build_*` over `memory_adapters`, invoked through their handlers as Lambda invokes them, with
  what they sent read back (notifications, bus events, parked events, timers, SLA states).

The fakes of the ports themselves are `casewatch_dev.fakes` (one set, shared with the local pipeline).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.app.process_event import EventProcessor, Outcome
from casewatch.bootstrap import (
    Adapters,
    EventApp,
    ReconcileApp,
    SlaTimerApp,
    build_event_app,
    build_reconcile_app,
    build_sla_timer_app,
    policies,
)
from casewatch.domain.sla.model import SlaState
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.domain.sla.timers import TimerKind
from casewatch.models.enriched import EnrichedCase
from casewatch.models.signals import SlaSignalKind, SlaTimerPayload
from casewatch.ports import (
    CasesReader,
    CasesSearch,
    CasesSlaSource,
    CaseStore,
    Clock,
    DeadLetters,
    MetricsRecorder,
    SlaTimers,
)
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN, function_named
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.clients import FakeEventBridge, FakeScheduler, FakeSns, FakeSqs
from casewatch_dev.fakes.ports import (
    CountingMetrics,
    DictCasesReader,
    DictCasesSearch,
    InMemoryCaseStore,
)
from tests.builders import ACCOUNT, REGION, T0
from tests.lambda_context import LambdaContext


@dataclass(frozen=True)
class FixedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


@dataclass
class FakeCasesSlas:
    """`CasesSlaSource` over a dict of case id -> reports; `calls` counts the requests."""

    slas: dict[str, list[CasesSlaReport]] = field(default_factory=dict)
    calls: int = 0

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        self.calls += 1
        return self.slas.get(case_id, [])


DEAD_LETTER_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/casewatch-invalid-events"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:casewatch"
SCHEDULE_GROUP = "casewatch-sla"
SLA_TIMER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:casewatch-sla-timer"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/casewatch-scheduler"


@dataclass
class MemoryAws:
    """`bootstrap.Adapters` in memory, the fakes under them, and the fake clients of the sending adapters."""

    adapters: Adapters
    store: CaseStore
    sns: FakeSns
    events: FakeEventBridge
    sqs: FakeSqs
    scheduler: FakeScheduler

    def parked(self) -> list[dict[str, Any]]:
        """The dead-letter queue's message bodies, taken."""
        return [json.loads(m["Body"]) for m in self.sqs.take(DEAD_LETTER_QUEUE)]


def memory_adapters(
    clock: Clock,
    settings: Settings,
    *,
    cases: CasesReader | None = None,
    cases_slas: CasesSlaSource | None = None,
    search: CasesSearch | None = None,
    store: CaseStore | None = None,
    metrics: MetricsRecorder | None = None,
    dead_letters: DeadLetters | None = None,
) -> MemoryAws:
    sns, events, sqs, scheduler = FakeSns(), FakeEventBridge(clock), FakeSqs(), FakeScheduler(SCHEDULE_GROUP)
    store = store if store is not None else InMemoryCaseStore(policies(settings))
    adapters = Adapters(
        clock=clock,
        metrics=metrics if metrics is not None else CountingMetrics(),
        cases=cases if cases is not None else DictCasesReader(),
        cases_slas=cases_slas if cases_slas is not None else FakeCasesSlas(),
        search=search if search is not None else DictCasesSearch(clock),
        store=store,
        feed=store,  # type: ignore[arg-type]
        notifier=SnsNotifier(TOPIC_ARN, client=sns),  # type: ignore[arg-type]
        bus=EventBridgeEnrichedBus("casewatch-enriched", client=events, sleep=lambda _: None),  # type: ignore[arg-type]
        timers=SchedulerTimers(
            scheduler,  # type: ignore[arg-type]
            group_name=SCHEDULE_GROUP,
            target_arn=SLA_TIMER_ARN,
            role_arn=SCHEDULER_ROLE_ARN,
        ),
        dead_letters=dead_letters or SqsDeadLetters(DEAD_LETTER_QUEUE, client=sqs),  # type: ignore[arg-type]
    )
    return MemoryAws(adapters, store, sns, events, sqs, scheduler)


class RecordingProcessor:
    """An `EventProcessor` that keeps every outcome (the enriched view of each handled event)."""

    def __init__(self, inner: EventProcessor) -> None:
        self.inner = inner
        self.outcomes: list[Outcome] = []

    def process(self, raw: object, *, remaining_ms: int | None = None) -> Outcome:
        outcome = self.inner.process(raw, remaining_ms=remaining_ms)
        self.outcomes.append(outcome)
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_ROUTE = {t: spec.name for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN) for t in spec.event_types}


class World:
    """casewatch's four functions over `memory_adapters`, on a virtual clock.

    `deliver` invokes the event-routed function the event's type routes to (as EventBridge and Lambda
    would); `fire_timers` lets time run and fires the pending Scheduler timers in time order
    (`ActionAfterCompletion: DELETE`: a schedule is gone once it fired); `poll` runs the change feed.
    Read back: `notifications()`, `bus_events()` (both taken), `parked()`, `states()`, `timer(...)`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: VirtualClock | None = None,
        cases: CasesReader | None = None,
        cases_slas: CasesSlaSource | None = None,
        search: CasesSearch | None = None,
        store: CaseStore | None = None,
        metrics: MetricsRecorder | None = None,
        dead_letters: DeadLetters | None = None,
        timers: SlaTimers | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or VirtualClock(T0)
        self.cases = cases if cases is not None else DictCasesReader()
        self.cases_slas = cases_slas if cases_slas is not None else FakeCasesSlas()
        self.search = search if search is not None else DictCasesSearch(self.clock)
        self.metrics = metrics if metrics is not None else CountingMetrics()
        self.aws = memory_adapters(
            self.clock,
            settings,
            cases=self.cases,
            cases_slas=self.cases_slas,
            search=self.search,
            store=store,
            metrics=self.metrics,
            dead_letters=dead_letters,
        )
        self.adapters = self.aws.adapters
        if timers is not None:  # another Scheduler than the fake (moto's): `fire_timers` cannot see it
            self.adapters = replace(self.adapters, timers=timers)
        self.store: Any = self.aws.store
        self.scheduler = self.aws.scheduler
        self._apps: dict[str, Any] = {}
        self.processors: dict[str, RecordingProcessor] = {}
        self.sent_notifications: list[dict[str, Any]] = []
        self.sent_bus_events: list[dict[str, Any]] = []

    # -- the functions' apps (built once, like once per container) ----------------------------------------
    def event_app(self, function: str) -> EventApp:
        if function not in self._apps:
            app = build_event_app(function_named(function), self.settings, self.adapters)
            recorder = RecordingProcessor(app.processor)
            self.processors[function] = recorder
            self._apps[function] = EventApp(recorder)  # type: ignore[arg-type]
        app: EventApp = self._apps[function]
        return app

    def timer_app(self) -> SlaTimerApp:
        if "sla-timer" not in self._apps:
            self._apps["sla-timer"] = build_sla_timer_app(
                self.settings, replace(self.adapters, dead_letters=None)
            )
        app: SlaTimerApp = self._apps["sla-timer"]
        return app

    def reconcile_app(self) -> ReconcileApp:
        if "reconcile" not in self._apps:
            self._apps["reconcile"] = build_reconcile_app(
                self.settings, replace(self.adapters, dead_letters=None)
            )
        app: ReconcileApp = self._apps["reconcile"]
        return app

    # -- invoking -----------------------------------------------------------------------------------
    def deliver(self, raw: Any, function: str | None = None, *, remaining_ms: int = 30_000) -> dict[str, Any]:
        """The event through the handler of `function` (default: the one its type is routed to)."""
        from casewatch.handlers import case_changed, related_item_created

        if function is None:
            detail = raw.get("detail") if isinstance(raw, dict) else None
            event_type = detail.get("eventType") if isinstance(detail, dict) else None
            function = _ROUTE.get(str(event_type), RELATED_ITEM_CREATED_FN.name)
        handler = case_changed.handler if function == CASE_CHANGED.name else related_item_created.handler
        result: dict[str, Any] = handler(
            raw, LambdaContext(function, remaining_ms), app=self.event_app(function)
        )
        return result

    def fire(self, payload: SlaTimerPayload | dict[str, Any]) -> dict[str, Any]:
        """The sla-timer handler with a timer's payload."""
        from casewatch.handlers import sla_timer

        body = payload.wire() if isinstance(payload, SlaTimerPayload) else payload
        result: dict[str, Any] = sla_timer.handler(
            body, LambdaContext("casewatch-sla-timer"), app=self.timer_app()
        )
        return result

    def poll(self, poll_id: str | None = None, *, remaining_ms: int = 60_000) -> dict[str, Any]:
        """One run of the reconcile function (a change-feed poll)."""
        from casewatch.handlers import reconcile

        event = {"id": poll_id or f"poll-{self.clock.now().isoformat()}", "detail": {}}
        result: dict[str, Any] = reconcile.handler(
            event, LambdaContext("casewatch-reconcile", remaining_ms), app=self.reconcile_app()
        )
        return result

    def catch_up(self) -> None:
        """The change feed is up to date: its watermark at now - the index lag (as a poll leaves it)."""
        feed = self.adapters.feed
        domain = self.settings.domain_id
        watermark = self.clock.now() - self.settings.index_lag
        previous = feed.watermark(domain)
        if previous is None or previous < watermark:
            feed.advance(domain, watermark, previous)

    def fire_timers(self, until: datetime | None = None, *, feed: bool = True) -> int:
        """Let time run to `until` (default: until no timer is left), firing every pending timer in time
        order; with `feed`, the change feed keeps up (`catch_up` before each). The number fired."""
        fired = 0
        while (earliest := self.scheduler.earliest()) is not None:
            fire_at, name, payload = earliest
            if until is not None and fire_at > until:
                break
            if fire_at > self.clock.now():
                self.clock.set(fire_at)
            self.scheduler.remove(name)
            if feed:
                self.catch_up()
            self.fire(payload)
            fired += 1
            if fired > 10_000:
                raise AssertionError("timers keep firing")
        if until is not None and until > self.clock.now():
            self.clock.set(until)
        return fired

    # -- reading back -------------------------------------------------------------------------------
    def outcomes(self) -> list[Outcome]:
        return [o for p in self.processors.values() for o in p.outcomes]

    def views(self) -> list[EnrichedCase]:
        """The enriched view of every event handled so far (applied or a duplicate), in order."""
        return [o.case for o in self.outcomes() if o.case is not None]

    def notifications(self) -> list[dict[str, Any]]:
        """Notifications published since the last call: {rule, id, case, attributes, body}."""
        taken = []
        for message in self.aws.sns.take():
            attributes = {k: v.get("StringValue", "") for k, v in message["MessageAttributes"].items()}
            taken.append({"rule": attributes.get("rule"), "attributes": attributes, "body": message["Body"]})
        self.sent_notifications += taken
        return taken

    def bus_events(self) -> list[dict[str, Any]]:
        """Enriched events put since the last call (the bus subscriber's view)."""
        taken = [json.loads(m["Body"]) for m in self.aws.events.take()]
        self.sent_bus_events += taken
        return taken

    def signals(self) -> list[tuple[str, SlaSignalKind]]:
        """(SLA name, kind) of every SLA bus event put so far (one per SLA signal), in order."""
        self.bus_events()
        return [
            (e["detail"]["signal"]["slaName"], SlaSignalKind(e["detail"]["signal"]["kind"]))
            for e in self.sent_bus_events
            if "signal" in e["detail"]
        ]

    def parked(self) -> list[dict[str, Any]]:
        return self.aws.parked()

    def states(self) -> dict[tuple[str, str], SlaState]:
        """Every SLA's state by (case, SLA key), as stored."""
        found = {}
        for domain_id, case_id in self.store.case_ids():
            for key, state in self.store.load(domain_id, case_id).states().items():
                found[(case_id, key)] = state
        return found

    def state(self, case_id: str, key: str) -> SlaState:
        return self.store.load(self.settings.domain_id, case_id).states()[key]

    def timers(self) -> dict[tuple[str, str, TimerKind], datetime]:
        """Pending timers: (case, SLA key, kind) -> when they fire."""
        return {
            (p["caseId"], p.get("slaKey", ""), TimerKind(p["kind"])): at
            for at, _, p in self.scheduler.pending()
        }

    def timer(self, case_id: str, key: str, kind: TimerKind) -> datetime | None:
        return self.timers().get((case_id, key, kind))

    @property
    def counts(self) -> Any:
        assert isinstance(self.metrics, CountingMetrics)
        return self.metrics.counts

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once, just before the next commit (a concurrent writer, a crash)."""
        self.store.before_commit = hook


__all__ = [
    "DEAD_LETTER_QUEUE",
    "SCHEDULER_ROLE_ARN",
    "SCHEDULE_GROUP",
    "SLA_TIMER_ARN",
    "TOPIC_ARN",
    "FakeCasesSlas",
    "FixedClock",
    "LambdaContext",
    "MemoryAws",
    "RecordingProcessor",
    "World",
    "memory_adapters",
]
