"""The dependencies of the event-processing use case, and the real ones a Lambda container builds.

`default_dependencies()` runs once per container, on the first event (never at import time): it
reads the settings (`CASEWATCH_CONFIG`) and the resource names the stack sets, and builds adapters
whose boto3 clients are created on first use.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from casewatch.constants import ENV_DEAD_LETTER_QUEUE_URL, ENV_SLA_TABLE
from casewatch.errors import SettingsError
from casewatch.observability import PowertoolsMetrics, logger

if TYPE_CHECKING:
    from casewatch.observability import MetricsRecorder
    from casewatch.ports import CaseSink, CasesReader, Clock, DeadLetters, SlaSignalSink, SnapshotStore
    from casewatch.settings import Settings

SLA_WIRING = "casewatch.adapters.sla_wiring"
NOTIFICATION_WIRING = "casewatch.adapters.notification_wiring"


class UtcClock:
    """The wall clock, timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Dependencies:
    """Everything `casewatch.service.process_event` talks to."""

    cases: CasesReader
    snapshots: SnapshotStore
    dead_letters: DeadLetters
    sinks: list[CaseSink]
    settings: Settings
    clock: Clock
    metrics: MetricsRecorder = field(default_factory=PowertoolsMetrics)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: the stack sets it")
    return value


def _optional_factory(module_name: str, attribute: str) -> Any:
    """A sink factory from another module, or None while that module does not exist yet."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # a broken import inside an existing module is a bug: raise it
            raise
        return None
    return getattr(module, attribute)


def build_sinks(
    settings: Settings,
    *,
    cases: CasesReader | None = None,
    snapshots: SnapshotStore | None = None,
    clock: Clock | None = None,
) -> list[CaseSink]:
    """SLA tracking then notifications when their wiring exists; else a recording sink.

    The SLA tracker shares this container's GetCase reader, snapshot store and clock when its
    factory takes them (`cases_reader`, `snapshots`, `clock`).
    """
    from casewatch.adapters.memory import RecordingSignalSink, RecordingSink

    sinks: list[CaseSink] = []
    build_notification_sink = _optional_factory(NOTIFICATION_WIRING, "build_notification_sink")
    build_sla_sink = _optional_factory(SLA_WIRING, "build_sla_sink")
    notifications = build_notification_sink(settings) if build_notification_sink is not None else None
    if build_sla_sink is not None:
        signal_sink: SlaSignalSink = notifications if notifications is not None else RecordingSignalSink()
        shared = {"cases_reader": cases, "snapshots": snapshots, "clock": clock}
        accepted = inspect.signature(build_sla_sink).parameters
        extra = {name: value for name, value in shared.items() if value is not None and name in accepted}
        sinks.append(build_sla_sink(settings, signal_sink, **extra))
    if notifications is not None:
        sinks.append(notifications)
    if not sinks:
        logger.warning("no SLA or notification sink is wired: recording events in memory only")
        sinks.append(RecordingSink())
    return sinks


def build_dependencies(settings: Settings, env: Mapping[str, str], clock: Clock) -> Dependencies:
    """The real adapters for `settings`, the resource names in `env`, and `clock` (clients lazy)."""
    from casewatch.adapters.cases_api import CasesApiReader
    from casewatch.adapters.dynamodb_snapshots import DynamoDbSnapshotStore
    from casewatch.adapters.sqs_dead_letters import SqsDeadLetters

    cases = CasesApiReader(max_attempts=settings.getcase_max_attempts)
    snapshots = DynamoDbSnapshotStore(_required(env, ENV_SLA_TABLE), cache_size=settings.snapshot_cache_size)
    dead_letters = SqsDeadLetters(_required(env, ENV_DEAD_LETTER_QUEUE_URL))
    return Dependencies(
        cases=cases,
        snapshots=snapshots,
        dead_letters=dead_letters,
        sinks=build_sinks(settings, cases=cases, snapshots=snapshots, clock=clock),
        settings=settings,
        clock=clock,
    )


@cache
def default_dependencies() -> Dependencies:
    """The real adapters, built once per container from the settings and the environment."""
    from casewatch.settings import get_settings

    return build_dependencies(get_settings(), os.environ, UtcClock())


__all__ = ["Dependencies", "UtcClock", "build_dependencies", "build_sinks", "default_dependencies"]
