"""The composition root: what each function is made of, written out as plain constructor calls.

`event_app(name)`, `sla_timer_app()` and `reconcile_app()` build a function's use case once per
container (on the first invocation, never at import time) from the settings and the resource names
the stack sets (`Resources.from_env`). Each function gets only what it uses: the timer and the
change feed park no events, so they need no dead-letter queue. The `build_*` functions take the
adapters as arguments, so tests and the local pipeline compose the same use cases over their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.event_configuration import CasesEventConfiguration
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.adapters.system_clock import SystemClock
from casewatch.app.case_update import CaseUpdater
from casewatch.app.enrich import Enricher
from casewatch.app.process_event import EventProcessor
from casewatch.app.sla.feed import ChangeFeed
from casewatch.app.sla.timer import SlaTimer
from casewatch.constants import (
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.domain.sla.model import PolicySpec, compile_policies
from casewatch.errors import SettingsError
from casewatch.observability import PowertoolsMetrics, logger
from casewatch.ports import (
    CasesReader,
    CasesSearch,
    CasesSlaSource,
    CaseStore,
    Clock,
    DeadLetters,
    EnrichedBus,
    FeedState,
    MetricsRecorder,
    Notifier,
    SlaTimers,
)
from casewatch.settings import Settings, get_settings
from casewatch.topology import RELATED_ITEM_CREATED_FN, FunctionSpec, function_named


@dataclass(frozen=True, slots=True)
class Resources:
    """The resource names the stack gives a function (environment variables)."""

    state_table: str
    topic_arn: str
    event_bus: str
    schedule_group: str | None = None
    sla_timer_arn: str | None = None
    scheduler_role_arn: str | None = None
    dead_letter_queue_url: str | None = None  # event-routed functions only

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Resources:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: the stack sets it")
            return value

        return cls(
            state_table=required(ENV_SLA_TABLE),
            topic_arn=required(ENV_TOPIC_ARN),
            event_bus=required(ENV_EVENT_BUS),
            schedule_group=env.get(ENV_SCHEDULE_GROUP) or None,
            sla_timer_arn=env.get(ENV_SLA_TIMER_ARN) or None,
            scheduler_role_arn=env.get(ENV_SCHEDULER_ROLE_ARN) or None,
            dead_letter_queue_url=env.get(ENV_DEAD_LETTER_QUEUE_URL) or None,
        )


@dataclass(frozen=True, slots=True)
class Adapters:
    """Everything a use case talks to. `aws_adapters` builds the real ones."""

    clock: Clock
    metrics: MetricsRecorder
    cases: CasesReader
    cases_slas: CasesSlaSource
    search: CasesSearch
    store: CaseStore
    feed: FeedState
    notifier: Notifier
    bus: EnrichedBus
    timers: SlaTimers | None = None  # None: no timers (the change feed's due sweep catches breaches)
    dead_letters: DeadLetters | None = None  # event-routed functions only


# --- the functions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventApp:
    """case-changed and related-item-created."""

    processor: EventProcessor


@dataclass(frozen=True, slots=True)
class SlaTimerApp:
    timer: SlaTimer


@dataclass(frozen=True, slots=True)
class ReconcileApp:
    feed: ChangeFeed


def policies(settings: Settings) -> tuple[PolicySpec, ...]:
    """The configured SLA policies, field names resolved."""
    return compile_policies(settings.sla_policies, settings.field_id)


def _updater(settings: Settings, adapters: Adapters) -> CaseUpdater:
    return CaseUpdater(
        settings=settings,
        store=adapters.store,
        notifier=adapters.notifier,
        bus=adapters.bus,
        clock=adapters.clock,
        metrics=adapters.metrics,
        policies=policies(settings),
        timers=adapters.timers,
        breach_grace=settings.breach_grace,
    )


def build_event_app(spec: FunctionSpec, settings: Settings, adapters: Adapters) -> EventApp:
    if adapters.dead_letters is None:
        raise SettingsError(f"{spec.name} parks invalid events: it needs a dead-letter queue")
    enricher = Enricher(
        settings=settings, cases=adapters.cases, clock=adapters.clock, metrics=adapters.metrics
    )
    processor = EventProcessor(
        function=spec.name,
        event_types=spec.event_types,
        settings=settings,
        enricher=enricher,
        updater=_updater(settings, adapters),
        dead_letters=adapters.dead_letters,
        metrics=adapters.metrics,
        # Only related-item events can need an SLA's definition from Cases (an Sla item without content).
        cases_slas=adapters.cases_slas if spec == RELATED_ITEM_CREATED_FN else None,
    )
    return EventApp(processor)


def build_sla_timer_app(settings: Settings, adapters: Adapters) -> SlaTimerApp:
    timer = SlaTimer(
        updater=_updater(settings, adapters),
        metrics=adapters.metrics,
        feed=adapters.feed,
        feed_period=settings.feed_period,
    )
    return SlaTimerApp(timer)


def build_reconcile_app(settings: Settings, adapters: Adapters) -> ReconcileApp:
    feed = ChangeFeed(
        domain_id=settings.domain_id,
        updater=_updater(settings, adapters),
        store=adapters.store,
        search=adapters.search,
        feed=adapters.feed,
        metrics=adapters.metrics,
        index_lag=settings.index_lag,
        first_lookback=settings.feed_period,
    )
    return ReconcileApp(feed)


# --- the real adapters, once per container ------------------------------------------------------------


def aws_adapters(settings: Settings, resources: Resources, *, parks_events: bool) -> Adapters:
    """The AWS adapters for the resources (boto3 clients are created on first use)."""
    cases = CasesApi(max_attempts=settings.getcase_max_attempts)
    store = DynamoDbCaseStore(resources.state_table, dynamodb_client(), policies(settings))
    dead_letters = None
    if parks_events:
        if resources.dead_letter_queue_url is None:
            raise SettingsError(f"{ENV_DEAD_LETTER_QUEUE_URL} is not set: the stack sets it")
        dead_letters = SqsDeadLetters(resources.dead_letter_queue_url)
    return Adapters(
        clock=SystemClock(),
        metrics=PowertoolsMetrics(),
        cases=cases,
        cases_slas=cases,
        search=cases,
        store=store,
        feed=store,
        notifier=SnsNotifier(resources.topic_arn),
        bus=EventBridgeEnrichedBus(resources.event_bus),
        timers=_timers(resources),
        dead_letters=dead_letters,
    )


def _timers(resources: Resources) -> SchedulerTimers | None:
    group, target, role = resources.schedule_group, resources.sla_timer_arn, resources.scheduler_role_arn
    if not (group and target and role):
        logger.warning("SLA timers disabled: schedule group, timer function or scheduler role not set")
        return None
    return SchedulerTimers(scheduler_client(), group_name=group, target_arn=target, role_arn=role)


@cache
def event_app(function: str) -> EventApp:
    """The container's app of an event-routed function (`case-changed`, `related-item-created`)."""
    settings = get_settings()
    adapters = aws_adapters(settings, Resources.from_env(os.environ), parks_events=True)
    return build_event_app(function_named(function), settings, adapters)


@cache
def sla_timer_app() -> SlaTimerApp:
    settings = get_settings()
    return build_sla_timer_app(
        settings, aws_adapters(settings, Resources.from_env(os.environ), parks_events=False)
    )


@cache
def reconcile_app() -> ReconcileApp:
    settings = get_settings()
    return build_reconcile_app(
        settings, aws_adapters(settings, Resources.from_env(os.environ), parks_events=False)
    )


def event_configuration_store() -> CasesEventConfiguration:
    """The custom resource's Cases adapter (deploy time: no settings, no other resource)."""
    return CasesEventConfiguration()


def forget_apps() -> None:
    """Build afresh on the next invocation (tests and the local pipeline switch environments)."""
    for cached in (event_app, sla_timer_app, reconcile_app):
        cached.cache_clear()


__all__ = [
    "Adapters",
    "EventApp",
    "ReconcileApp",
    "Resources",
    "SlaTimerApp",
    "aws_adapters",
    "build_event_app",
    "build_reconcile_app",
    "build_sla_timer_app",
    "event_app",
    "event_configuration_store",
    "forget_apps",
    "policies",
    "reconcile_app",
    "sla_timer_app",
]
