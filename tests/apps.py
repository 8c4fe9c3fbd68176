"""The use cases composed over test doubles, the way `casewatch.bootstrap` composes them over AWS.

- `LambdaContext` (from `tests/lambda_context.py`): the tests' one fake Lambda context;
- `FixedClock`, `memory_once` (the real `PowertoolsIdempotency` on an in-memory persistence layer);
- `event_app(...)`: an event-routed function's app with the sinks a test chooses, for
  `handler(event, context, app=...)`; `EventPath`: the two event handlers over given adapters, every
  enriched view recorded (`sink`), invoked as Lambda invokes them (`invoke`);
- `SlaSystem`: the SLA use cases (case events, timers, reconciliation) over one applier, with the apps
  the sla-timer and reconcile handlers take;
- `FakeCasesSlas`: a `CasesSlaSource` over dicts;
- `memory_adapters(...)`: every port of `bootstrap.Adapters` in memory — the fakes, and the real sending
  adapters (SNS, EventBridge, SQS, Scheduler) on fake clients — for the `bootstrap.build_*` functions.

The fakes of the ports themselves are `casewatch_dev.fakes` (one set, shared with the local pipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.idempotency import PowertoolsIdempotency
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.app.enrich import Enricher
from casewatch.app.process_event import EventProcessor
from casewatch.app.sla.apply import SlaApplier
from casewatch.app.sla.case_event import SlaCaseEvents
from casewatch.app.sla.cases_check import CasesCheck
from casewatch.app.sla.reconcile import ReconcileReport, Reconciliation
from casewatch.app.sla.timer import SlaTimer
from casewatch.bootstrap import Adapters, EventApp, ReconcileApp, SlaTimerApp
from casewatch.domain.sla.model import SlaOutcome, compile_policies
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.models.enriched import EnrichedCase
from casewatch.models.signals import SlaTimerPayload
from casewatch.ports import (
    CaseSink,
    CasesReader,
    CasesSlaSource,
    Clock,
    DeadLetters,
    ExactlyOnce,
    MetricsRecorder,
    SlaSignalSink,
    SlaStore,
    SlaTimers,
    SnapshotStore,
)
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN, FunctionSpec, function_named
from casewatch_dev.fakes.clients import FakeEventBridge, FakeScheduler, FakeSns, FakeSqs
from casewatch_dev.fakes.ports import (
    CountingMetrics,
    DictCasesReader,
    InMemorySlaStore,
    InMemorySnapshotStore,
    InMemoryStatusOrder,
    ListDeadLetters,
    RecordingSignalSink,
    RecordingSink,
)
from casewatch_dev.fakes.powertools import InMemoryPersistenceLayer
from tests.builders import ACCOUNT, REGION, T0, enriched, parsed
from tests.lambda_context import LambdaContext


@dataclass(frozen=True)
class FixedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


def memory_once(clock: Clock) -> PowertoolsIdempotency:
    """The real `ExactlyOnce` adapter (Powertools Idempotency) with its records in memory."""
    return PowertoolsIdempotency("casewatch-idempotency", persistence=InMemoryPersistenceLayer(clock))


def event_app(
    spec: FunctionSpec,
    settings: Settings,
    *,
    cases: CasesReader,
    snapshots: SnapshotStore,
    dead_letters: DeadLetters,
    sinks: Sequence[CaseSink],
    clock: Clock,
    metrics: MetricsRecorder,
    once: ExactlyOnce | None = None,
) -> EventApp:
    """The app of an event-routed function, built like `bootstrap.build_event_app` but with `sinks`."""
    enricher = Enricher(settings=settings, cases=cases, snapshots=snapshots, clock=clock, metrics=metrics)
    processor = EventProcessor(
        function=spec.name,
        event_types=spec.event_types,
        settings=settings,
        enricher=enricher,
        sinks=sinks,
        dead_letters=dead_letters,
        metrics=metrics,
    )
    return EventApp(processor, once or memory_once(clock))


@dataclass
class EventPath:
    """The event-routed functions over the given ports (fakes unless a test passes real adapters), the
    sinks a `RecordingSink` (`sink`) or the test's own; `invoke` runs the function's handler with its app
    (the function routed by the event's type when not named)."""

    settings: Settings
    cases: CasesReader = field(default_factory=DictCasesReader)
    snapshots: SnapshotStore = field(default_factory=InMemorySnapshotStore)
    dead_letters: DeadLetters = field(default_factory=ListDeadLetters)
    clock: Clock = field(default_factory=lambda: FixedClock(T0))
    metrics: MetricsRecorder = field(default_factory=CountingMetrics)
    sink: RecordingSink = field(default_factory=RecordingSink)
    sinks: list[CaseSink] | None = None  # instead of `sink`

    def app(self, function: str) -> EventApp:
        return event_app(
            function_named(function),
            self.settings,
            cases=self.cases,
            snapshots=self.snapshots,
            dead_letters=self.dead_letters,
            sinks=self.sinks if self.sinks is not None else [self.sink],
            clock=self.clock,
            metrics=self.metrics,
        )

    def invoke(self, raw: Any, function: str | None = None) -> dict[str, Any]:
        from casewatch.handlers import case_changed, related_item_created

        if function is None:
            function = _ROUTE.get(raw["detail"]["eventType"], RELATED_ITEM_CREATED_FN.name)
        handler = case_changed.handler if function == CASE_CHANGED.name else related_item_created.handler
        result: dict[str, Any] = handler(raw, LambdaContext(function), app=self.app(function))
        return result

    @property
    def counts(self) -> Any:
        """What was counted (the metrics recorder must be a `CountingMetrics`)."""
        assert isinstance(self.metrics, CountingMetrics)
        return self.metrics.counts

    @property
    def cases_seen(self) -> list[EnrichedCase]:
        return self.sink.cases


_ROUTE = {t: spec.name for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN) for t in spec.event_types}


@dataclass
class FakeCasesSlas:
    """`CasesSlaSource` over dicts; `calls` counts the requests."""

    slas: dict[str, list[CasesSlaReport]] = field(default_factory=dict)
    items: dict[tuple[str, str], list[tuple[str, datetime]]] = field(default_factory=dict)
    calls: int = 0

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        self.calls += 1
        return self.slas.get(case_id, [])

    def related_items(self, domain_id: str, case_id: str, item_type: str) -> list[tuple[str, datetime]]:
        self.calls += 1
        return self.items.get((case_id, item_type), [])


DEAD_LETTER_QUEUE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/casewatch-invalid-events"
SCHEDULE_GROUP = "casewatch-sla"
SLA_TIMER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:casewatch-sla-timer"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/casewatch-scheduler"


@dataclass
class MemoryAws:
    """`bootstrap.Adapters` in memory, and the fake clients under the sending adapters."""

    adapters: Adapters
    sns: FakeSns
    events: FakeEventBridge
    sqs: FakeSqs
    scheduler: FakeScheduler
    idempotency: InMemoryPersistenceLayer  # the records of `adapters.once`

    def parked(self) -> list[dict[str, Any]]:
        """The dead-letter queue's message bodies, taken."""
        import json

        return [json.loads(m["Body"]) for m in self.sqs.take(DEAD_LETTER_QUEUE)]


def memory_adapters(
    clock: Clock,
    *,
    cases: CasesReader | None = None,
    cases_slas: CasesSlaSource | None = None,
    metrics: MetricsRecorder | None = None,
) -> MemoryAws:
    sns, events, sqs, scheduler = FakeSns(), FakeEventBridge(clock), FakeSqs(), FakeScheduler(SCHEDULE_GROUP)
    idempotency = InMemoryPersistenceLayer(clock)
    adapters = Adapters(
        clock=clock,
        metrics=metrics if metrics is not None else CountingMetrics(),
        cases=cases if cases is not None else DictCasesReader(),
        cases_slas=cases_slas if cases_slas is not None else FakeCasesSlas(),
        snapshots=InMemorySnapshotStore(),
        sla_store=InMemorySlaStore(),
        notifier=SnsNotifier(f"arn:aws:sns:{REGION}:{ACCOUNT}:casewatch", client=sns),  # type: ignore[arg-type]
        bus=EventBridgeEnrichedBus("casewatch-enriched", client=events, sleep=lambda _: None),  # type: ignore[arg-type]
        once=PowertoolsIdempotency("casewatch-idempotency", persistence=idempotency),
        status_order=InMemoryStatusOrder(),
        timers=SchedulerTimers(
            scheduler,  # type: ignore[arg-type]
            group_name=SCHEDULE_GROUP,
            target_arn=SLA_TIMER_ARN,
            role_arn=SCHEDULER_ROLE_ARN,
        ),
        dead_letters=SqsDeadLetters(DEAD_LETTER_QUEUE, client=sqs),  # type: ignore[arg-type]
    )
    return MemoryAws(adapters, sns, events, sqs, scheduler, idempotency)


class SlaSystem:
    """The SLA use cases of `settings` over one `SlaApplier`, as bootstrap wires them (with the Cases
    SLA source on case events, as related-item-created has it), signals into `signals`."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: SlaStore,
        clock: Clock,
        signals: SlaSignalSink | None = None,
        timers: SlaTimers | None = None,
        cases_reader: CasesReader | None = None,
        cases_slas: CasesSlaSource | None = None,
        snapshots: SnapshotStore | None = None,
        metrics: CountingMetrics | None = None,
        verify_breaches: bool = True,
    ) -> None:
        self.signals: Any = signals if signals is not None else RecordingSignalSink()
        self.metrics = metrics if metrics is not None else CountingMetrics()
        self.applier = SlaApplier(
            store=store,
            signals=self.signals,
            policies=compile_policies(settings.sla_policies, settings.field_id),
            clock=clock,
            metrics=self.metrics,
            timers=timers,
            warning_fraction=settings.sla_warning_fraction,
            snapshots=snapshots,
            sleep=lambda _: None,
        )
        self.case_events = SlaCaseEvents(applier=self.applier, cases_slas=cases_slas)
        self.check = CasesCheck(
            policies=self.applier.policies, cases_slas=cases_slas, cases_reader=cases_reader
        )
        self.timer = SlaTimer(
            applier=self.applier, metrics=self.metrics, check=self.check, verify_breaches=verify_breaches
        )
        self.reconciliation = Reconciliation(applier=self.applier, check=self.check, metrics=self.metrics)
        self.once = memory_once(clock)

    @property
    def store(self) -> Any:
        return self.applier.store

    @property
    def policies(self) -> Any:
        return self.applier.policies

    @property
    def clock(self) -> Any:
        return self.applier.clock

    def deliver(self, raw: dict[str, Any], extra: dict[str, Any] | None = None) -> SlaOutcome:
        """A case event, enriched from itself (plus `extra` snapshot values), through SLA tracking."""
        event = parsed(raw)
        return self.case_events.apply_event(event, enriched(event, extra))

    def on_timer(self, payload: SlaTimerPayload) -> SlaOutcome:
        return self.timer.on_timer(payload)

    def reconcile(self, *, remaining_s: Callable[[], float] | None = None) -> ReconcileReport:
        return self.reconciliation.run(remaining_s=remaining_s)

    def timer_app(self) -> SlaTimerApp:
        return SlaTimerApp(self.timer, self.once)

    def reconcile_app(self) -> ReconcileApp:
        return ReconcileApp(self.reconciliation, self.once)


__all__ = [
    "DEAD_LETTER_QUEUE",
    "EventPath",
    "FakeCasesSlas",
    "FixedClock",
    "LambdaContext",
    "MemoryAws",
    "SlaSystem",
    "event_app",
    "memory_adapters",
    "memory_once",
]
