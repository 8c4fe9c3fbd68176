"""`build_sla_sink(settings, signal_sink)`: the SLA tracker with its real adapters, from the environment.

- `CASEWATCH_SLA_TABLE`: the state table (required);
- `CASEWATCH_SCHEDULE_GROUP`, `CASEWATCH_SLA_TIMER_ARN`, `CASEWATCH_SCHEDULER_ROLE_ARN`: breach and
  warning timers (all three, or no timers: reconciliation alone then catches breaches);
- `CASEWATCH_CASES_ENDPOINT`: the local Cases emulator (read by `casewatch.aws.cases_client`).

Clients come from `casewatch.aws` (lazy, cached, with timeouts and retries).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from casewatch import aws
from casewatch.adapters.cases_sla_source import CasesApiSlaSource
from casewatch.adapters.dynamodb_sla_store import DynamoDbSlaStore
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.constants import ENV_SCHEDULE_GROUP, ENV_SCHEDULER_ROLE_ARN, ENV_SLA_TABLE, ENV_SLA_TIMER_ARN
from casewatch.errors import SettingsError
from casewatch.observability import logger
from casewatch.ports import CasesReader, Clock, SlaSignalSink, SnapshotStore
from casewatch.settings import Settings
from casewatch.sla_service import SlaTracker


def build_sla_store(env: Mapping[str, str] | None = None) -> DynamoDbSlaStore:
    env = os.environ if env is None else env
    table = env.get(ENV_SLA_TABLE)
    if not table:
        raise SettingsError(f"{ENV_SLA_TABLE} is not set: the stack sets it to the state table")
    return DynamoDbSlaStore(table, aws.dynamodb_client())


def build_sla_timers(env: Mapping[str, str] | None = None) -> SchedulerTimers | None:
    """The Scheduler timers, or None when the environment names none (logged once per build)."""
    env = os.environ if env is None else env
    group, target, role = (
        env.get(n) for n in (ENV_SCHEDULE_GROUP, ENV_SLA_TIMER_ARN, ENV_SCHEDULER_ROLE_ARN)
    )
    if not (group and target and role):
        logger.warning(
            "SLA timers disabled: schedule group, timer function or scheduler role not set",
            missing=[
                n
                for n, v in (
                    (ENV_SCHEDULE_GROUP, group),
                    (ENV_SLA_TIMER_ARN, target),
                    (ENV_SCHEDULER_ROLE_ARN, role),
                )
                if not v
            ],
        )
        return None
    return SchedulerTimers(aws.scheduler_client(), group_name=group, target_arn=target, role_arn=role)


def build_sla_sink(
    settings: Settings,
    signal_sink: SlaSignalSink,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    cases_reader: CasesReader | None = None,
    snapshots: SnapshotStore | None = None,
) -> SlaTracker:
    """The `SlaTracker` (a `CaseSink`) on DynamoDB, Scheduler and Cases, emitting to `signal_sink`.

    `cases_reader` (GetCase, e.g. the enrichment's `CasesApiReader`) lets reconciliation check policy
    SLAs; `snapshots` gives signals raised outside an event (timers, reconciliation) the case view.
    """
    return SlaTracker.from_settings(
        settings,
        store=build_sla_store(env),
        signals=signal_sink,
        timers=build_sla_timers(env),
        clock=clock,
        cases_slas=CasesApiSlaSource(aws.cases_client(settings.getcase_max_attempts)),
        cases_reader=cases_reader,
        snapshots=snapshots,
    )


def default_sla_tracker() -> SlaTracker:
    """The container's SLA tracker: the one `casewatch.wiring.default_dependencies()` wired as a sink
    (sharing its GetCase reader, snapshot store, clock and notification sink)."""
    from casewatch.wiring import default_dependencies

    for sink in default_dependencies().sinks:
        if isinstance(sink, SlaTracker):
            return sink
    raise SettingsError("the SLA tracker is not among the wired sinks")


__all__ = ["build_sla_sink", "build_sla_store", "build_sla_timers", "default_sla_tracker"]
