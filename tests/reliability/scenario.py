"""A generated day replayed through the local pipeline, clean or with faults, and what came out of it.

Shared by the invariant suite and the backend contract tests: `generate_day(events)` plays a contact
centre's day on the Cases emulator (`casewatch_dev.generate.run_day`) with enough cases for about
`events` events; `replay_day(...)` delivers them (in order, or through `arrange_deliveries`), lets the
clock run until every timer has fired (`drain`), and collects the outcome: each delivery's
invocations, the SLA table, every SNS message, dead letter and failure-queue message, and, when asked,
every log line the functions wrote at INFO.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from casewatch.settings import Settings, load_cdk_context
from casewatch_dev.clock import VirtualClock
from casewatch_dev.event_files import RawEvent
from casewatch_dev.fakes.ports import InMemoryCaseStore
from casewatch_dev.faults import DeliveryPlan, Faults, arrange_deliveries
from casewatch_dev.generate import run_day
from casewatch_dev.pipeline import LocalPipeline
from casewatch_dev.replay import ReplayOptions, ReplayReport, replay
from tests.builders import ROOT

SETTINGS: Settings = load_cdk_context(ROOT / "cdk.json")
SETTLE = timedelta(hours=25)  # after the drain: the change feed polls on (every reconcile_every_minutes)
EVENTS_PER_CASE = 6.1  # what `run_day` produces on average (measured: 1196 events for 200 cases)

# The faults of issue 8's invariant suite.
ISSUE_FAULTS = Faults(duplicates=0.2, reorder=0.1, throttle=0.05, malformed=0.01, drop=0.005, seed=8)
# A small day (the moto run: ~150 events) would see no drop or malformed event at 0.5% and 1%: the
# same faults with those two raised, and a seed with which each fault happens at that size (seed 8
# happens to corrupt none of the 138 events; `test_the_faults_were_really_injected` checks).
SMALL_DAY_FAULTS = Faults(duplicates=0.2, reorder=0.1, throttle=0.05, malformed=0.03, drop=0.02, seed=3)


def size_from_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Day:
    events: tuple[dict[str, Any], ...]  # unique events, in the order Cases emitted them
    state: dict[str, Any]  # the emulator's state before the day + the ground-truth timeline

    @property
    def raws(self) -> list[RawEvent]:
        return [RawEvent(f"day:{n}", event) for n, event in enumerate(self.events)]


@cache
def generate_day(events: int, seed: int = 8) -> Day:
    """A day of about `events` events (`run_day` with `events / EVENTS_PER_CASE` cases)."""
    cases = max(4, round(events / EVENTS_PER_CASE))
    generated = run_day(SETTINGS, cases, seed)
    unique: dict[str, dict[str, Any]] = {}
    for event in generated.events:  # as delivered: a few duplicates and late ones; keep the first
        unique.setdefault(event["id"], event)
    ordered = sorted(unique.values(), key=lambda e: (e["detail"]["approximateChangeTime"], e["time"]))
    return Day(tuple(ordered), generated.state)


@dataclass
class Run:
    report: ReplayReport
    plan: DeliveryPlan
    sla: dict[tuple[str, str], tuple[str, str, str | None]]  # (case, sla) -> (status, target, completion)
    sla_states: dict[tuple[str, str], Any]
    notifications: list[dict[str, Any]]  # {"id", "rule", "source", "case"} per SNS message
    dead_letters: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    bus_ids: Counter[str]  # detail.id of every event on the enriched bus (stable per source event)
    outcomes: dict[str, Counter[str]]  # event id -> outcome of each invocation
    logs: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # the pipeline's: invocations, timers, polls
    metrics: Counter[str] = field(default_factory=Counter)  # what the functions counted (EMF metrics)
    claims_pending: int = 0  # claims whose side effects were never all sent, at the end

    def notification_ids(self) -> Counter[str]:
        return Counter(n["id"] for n in self.notifications)

    def by_rule(self) -> dict[str, int]:
        return dict(Counter(n["rule"] for n in self.notifications))


def _notification(message: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
    body = json.loads(message["Body"])
    source = (body.get("event") or {}).get("id") or (body.get("signal") or {}).get("id")
    return {
        "id": attributes["notificationId"],
        "rule": attributes["rule"],
        "case": attributes.get("caseId"),
        "source": source,
        "kind": "event" if body.get("event") else "signal",
        "sla": (body.get("signal") or {}).get("slaName"),
    }


def replay_day(
    day: Day,
    *,
    backend: str,
    faults: Faults | None = None,
    capture_logs: bool = False,
    seed: int = 8,
) -> Run:
    """Deliver the day (clean, or with `faults`) through a fresh pipeline, drain, and collect."""
    faults = faults or Faults()
    plan = arrange_deliveries(day.raws, faults) if faults.any else DeliveryPlan(day.raws)
    first = datetime.fromisoformat(day.events[0]["time"].replace("Z", "+00:00"))
    clock = VirtualClock(first - timedelta(minutes=1))
    buffer = io.StringIO()
    with LocalPipeline(
        SETTINGS,
        clock=clock,
        cases_state=day.state,
        seed=seed,
        backend="memory" if backend == "memory" else "moto",
        faults=faults,
    ) as pipeline:
        restore = _capture_logs(buffer) if capture_logs else None
        try:
            report = replay(plan.deliveries, pipeline, ReplayOptions(seed=seed, faults=faults))
            # Then the change feed keeps polling for a day after the last timer: every change of Cases
            # is read, and every open SLA past its target swept by the `due` index.
            pipeline.advance_to(pipeline.clock.now() + SETTLE)
        finally:
            if restore is not None:
                restore()
        slas = pipeline.sla_items()
        pipeline.effects()
        effects = pipeline.observed
        outcomes: dict[str, Counter[str]] = {}
        for invocation in pipeline.invocations:
            if invocation.event_id is not None:
                outcomes.setdefault(invocation.event_id, Counter())[invocation.outcome] += 1
        pending = claims_pending(pipeline.backend.case_store())
        counts = Counter(pipeline.counts)
        metrics = Counter(pipeline.metrics.counts)
    return Run(
        report=report,
        plan=plan,
        sla={
            (s.case_id, s.state.key): (
                s.state.status.value,
                s.state.target_time.isoformat(),
                s.state.completion_time.isoformat() if s.state.completion_time else None,
            )
            for s in slas
        },
        sla_states={(s.case_id, s.state.key): s.state for s in slas},
        notifications=[_notification(m) for m in effects.notifications],
        dead_letters=[json.loads(m["Body"]) for m in effects.dead_letters],
        bus_ids=Counter(json.loads(m["Body"])["detail"]["id"] for m in effects.bus_events),
        failures=[json.loads(m["Body"]) for m in effects.failures],
        outcomes=outcomes,
        logs=buffer.getvalue().splitlines(),
        counts=counts,
        metrics=metrics,
        claims_pending=pending,
    )


def claims_pending(store: Any) -> int:
    """Claims not done (an outbox never sent in full) in a backend's case store: the in-memory one's
    records, or the DynamoDB items' claims (`d` false)."""
    if isinstance(store, InMemoryCaseStore):
        return sum(1 for case in store._cases.values() for claim in case.claims.values() if not claim.done)
    items = store._client.get_paginator("scan").paginate(TableName=store.table_name)
    return sum(
        1
        for page in items
        for item in page.get("Items", [])
        for claim in item.get("claims", {}).get("M", {}).values()
        if not claim["M"]["d"]["BOOL"]
    )


def _capture_logs(buffer: io.StringIO) -> Any:
    """Every log line of casewatch's logger tree at INFO, formatted as in Lambda (Powertools JSON)."""
    from casewatch.observability import logger

    root = logging.getLogger(logger.name)
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_handler.formatter)
    handler.setLevel(logging.INFO)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = logger.registered_handler.level
    logger.registered_handler.setLevel(logging.CRITICAL)  # keep stderr quiet; the buffer has it all

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)
        logger.registered_handler.setLevel(quiet)

    return restore


def replay_clean_and_faulty(day: Day, *, backend: str, faults: Faults, parallel: bool) -> tuple[Run, Run]:
    """The in-order run and the faulty run (logs captured) of `day`; side by side on two cores if
    `parallel` (the in-order run in a fresh process)."""
    if not parallel:
        return replay_day(day, backend=backend), replay_day(
            day, backend=backend, faults=faults, capture_logs=True
        )
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        clean = pool.submit(replay_day, day, backend=backend)
        faulty = replay_day(day, backend=backend, faults=faults, capture_logs=True)
        return clean.result(), faulty


MEMORY_EVENTS = size_from_env("CASEWATCH_RELIABILITY_EVENTS", 1000)
MOTO_EVENTS = size_from_env("CASEWATCH_RELIABILITY_MOTO_EVENTS", 150)
TWO_CORES = (os.cpu_count() or 1) >= 2  # the in-order run then goes beside the faulty one
_RUNS: dict[str, tuple[Day, Run, Run]] = {}


def issue_scenario(backend: str) -> tuple[Day, Run, Run]:
    """(day, in-order run, faulty run) of the issue's scenario on `backend`, computed once per session."""
    if backend not in _RUNS:
        size = MEMORY_EVENTS if backend == "memory" else MOTO_EVENTS
        day = generate_day(size)
        faults = ISSUE_FAULTS if size >= 500 else SMALL_DAY_FAULTS
        clean, faulty = replay_clean_and_faulty(day, backend=backend, faults=faults, parallel=TWO_CORES)
        _RUNS[backend] = (day, clean, faulty)
    return _RUNS[backend]
