"""The deployed topology in one process, offline: the Docker-less way to run casewatch.

- The real handlers, service, domain code and adapters run in-process; the Cases emulator provides
  Cases (the real boto3 `connectcases` client over HTTP on 127.0.0.1). AWS comes from one of two
  backends (`LocalPipeline(settings, backend=...)`, `casewatch replay --backend ...`):
  - `moto` (the default, full fidelity): moto (`mock_aws`) provides DynamoDB, SNS, SQS, EventBridge
    and Scheduler; every adapter is the real boto3 one. Used by `casewatch invoke`, `make demo` and
    the moto-backed reliability run. About 5-20 events/s (moto costs ~5 ms per call).
  - `memory` (fast, for large replays, the reliability suite and benchmarks): the same handlers and
    adapters where they only send (SNS, EventBridge, SQS, Scheduler: fake clients), in-memory ports
    with the DynamoDB adapters' semantics (conditional and versioned writes, revision conflicts, the
    `due` index) and Powertools' own idempotency on an in-memory persistence layer. See
    `casewatch.local.memory_backend`; contract tests hold the two backends to the same results.
- Everything is built from the definitions the CDK stack uses: `topology.FUNCTIONS` (functions and
  their EventBridge patterns), `tables.TABLES`, and the settings of cdk.json.
- Routing evaluates each event against the rule patterns with EventBridge pattern semantics (moto's
  pattern engine, on both backends) and invokes the matching handlers in-process, like Lambda's
  asynchronous invocation: up to `RETRY_ATTEMPTS` retries, `RETRY_DELAYS` of virtual time apart (the
  clock moves on meanwhile), then the on-failure destination (a queue).
- A virtual clock drives time. Events are processed in delivery order; EventBridge Scheduler
  schedules (which moto never fires) fire when the clock passes them, and the reconciliation schedule
  runs every `reconcile_every_minutes` of virtual time — a replay of yesterday takes seconds. The
  Lambda context's remaining time is on the virtual clock too, and botocore's retry back-off (a
  throttled GetCase) sleeps on it instead of the wall clock, so a throttled event finishes later in
  virtual time (lag), not in wall time.
- Faults (`casewatch.local.faults.Faults`): GetCase throttling/500s are the emulator's; handler
  timeouts wrap the notification sink's idempotency guard; delivery faults (duplicates, reordering,
  drops, malformed events) are the replay's (`casewatch.local.faults.arrange_deliveries`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal, Protocol

from casewatch import aws
from casewatch.constants import (
    ENRICHED_SOURCE,
    ENV_CASES_ENDPOINT,
    ENV_CONFIG,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.local.cases_emulator import CasesEmulator
from casewatch.local.clock import VirtualClock
from casewatch.local.event_files import UsageError
from casewatch.local.faults import Faults, SimulatedTimeout, TimeoutInjector
from casewatch.settings import Settings, get_settings
from casewatch.tables import IDEMPOTENCY_TABLE, STATE_TABLE
from casewatch.topology import EVENT_ROUTED, RECONCILE, SLA_TIMER, FunctionSpec, domain_arn, function_named

ACCOUNT = "123456789012"
REGION = "us-east-1"
RETRY_ATTEMPTS = 2  # Lambda async invocation retries (the stack sets the same)
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))  # virtual time before retry 1 and 2
FUNCTION_TIMEOUT = timedelta(seconds=30)  # the stack's timeout of the event-routed functions
STACK = "casewatch-local"
BACKENDS = ("moto", "memory")
BackendName = Literal["moto", "memory"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """One function invocation: its outcome after Lambda-like retries."""

    function: str
    event_id: str | None
    outcome: str  # handled | unhandled | invalid | failed (after retries, sent to the failure queue)
    attempts: int
    reason: str | None = None
    result: dict[str, Any] | None = None


@dataclass
class Effects:
    """Side effects observed on the local AWS resources."""

    getcase_calls: int = 0
    notifications: list[dict[str, Any]] = field(default_factory=list)
    bus_events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


class FakeLambdaContext:
    """Enough of the Lambda context for Powertools, with the remaining time on the pipeline's clock."""

    memory_limit_in_mb = 256

    def __init__(self, function: str, clock: Any = None, timeout: timedelta = FUNCTION_TIMEOUT) -> None:
        self.function_name = f"{STACK}-{function}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._clock = clock
        if clock is not None:
            self._deadline_at: datetime = clock.now() + timeout
        self._deadline = time.monotonic() + timeout.total_seconds()

    def get_remaining_time_in_millis(self) -> int:
        if self._clock is not None:
            return max(0, int((self._deadline_at - self._clock.now()).total_seconds() * 1000))
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Resources:
    state_table: str = f"{STACK}-state"
    idempotency_table: str = f"{STACK}-idempotency"
    topic_name: str = f"{STACK}-notifications"
    bus_name: str = f"{STACK}-enriched"
    schedule_group: str = f"{STACK}-sla"
    invalid_queue: str = f"{STACK}-invalid-events"
    failure_queue: str = f"{STACK}-failures"
    subscriber_queue: str = f"{STACK}-notifications-subscriber"
    bus_queue: str = f"{STACK}-enriched-subscriber"

    @property
    def scheduler_role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-scheduler"

    def function_arn(self, spec: FunctionSpec) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-{spec.name}"

    def queue_url(self, name: str) -> str:
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def _matcher(pattern: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    from moto.events.models import EventPattern

    compiled = EventPattern.load(json.dumps(pattern))
    return lambda event: bool(compiled.matches_event(event))  # type: ignore[arg-type]


class Backend(Protocol):
    """Where the pipeline's AWS services live (`MotoBackend`, `memory_backend.MemoryBackend`)."""

    name: str

    def dependencies(self) -> Any: ...

    def earliest_schedule(self) -> tuple[datetime, str, dict[str, Any]] | None: ...

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]: ...

    def remove_schedule(self, name: str) -> None: ...

    def send_failure(self, body: str) -> None: ...

    def take_notifications(self) -> list[dict[str, Any]]: ...

    def take_bus_events(self) -> list[dict[str, Any]]: ...

    def take_dead_letters(self) -> list[dict[str, Any]]: ...

    def take_failures(self) -> list[dict[str, Any]]: ...

    def sla_items(self) -> list[Any]: ...

    def close(self) -> None: ...


class LocalPipeline:
    """`with LocalPipeline(settings) as pipeline: pipeline.deliver(event)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: VirtualClock | None = None,
        cases_state: dict[str, Any] | None = None,
        seed: int = 0,
        getcase_quota: bool = False,
        emulator_options: dict[str, Any] | None = None,
        backend: BackendName = "moto",
        faults: Faults | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise UsageError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
        self.faults = (faults or Faults()).with_seed(seed)
        if self.faults.timeouts and backend != "memory":
            raise UsageError(
                "timeouts need --backend memory: Powertools' DynamoDB layer times in-progress records by "
                "the wall clock, which a replay on a virtual clock does not move"
            )
        self.settings = settings
        self.clock = clock or VirtualClock()
        self.resources = Resources()
        self.seed = seed
        self.backend_name: BackendName = backend
        self._cases_state = cases_state
        self._emulator_options = {
            "getcase_quota": getcase_quota,
            **self.faults.emulator_options(),
            **(emulator_options or {}),
        }
        self._stack = ExitStack()
        # The rules take the events of the configured domain only, as in AWS.
        self.domain_arn = domain_arn(settings.domain_id, partition="aws", region=REGION, account=ACCOUNT)
        self._routes = [
            (spec, _matcher(pattern))
            for spec in EVENT_ROUTED
            if (pattern := spec.event_pattern(self.domain_arn))
        ]
        self._next_reconcile: datetime | None = None
        self.emulator: CasesEmulator
        self.backend: Backend
        self.invocations: list[Invocation] = []
        self.counts: Counter[str] = Counter()
        self.transitions: list[Any] = []
        self.deps: Any = None
        self._truth: list[dict[str, Any]] = []  # Cases' ground truth still to come (latest first)
        self.tracker: Any = None
        self.notifier: Any = None
        self.timeouts: TimeoutInjector | None = None
        self.observed = Effects()  # every side effect drained by `effects()` so far

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalPipeline:
        try:
            return self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> LocalPipeline:
        self._stack.enter_context(_local_environment())
        self._stack.enter_context(_botocore_sleeps_on(self.clock))
        if self.backend_name == "moto":
            from moto import mock_aws

            self._stack.enter_context(mock_aws())
        self.emulator = self._stack.enter_context(
            CasesEmulator(
                clock=self.clock, seed=self.seed, account_id=ACCOUNT, region=REGION, **self._emulator_options
            )
        )
        if self._cases_state is not None:
            self.emulator.load_state(self._cases_state)
            self._truth = sorted(
                self._cases_state.get("timeline", []), key=lambda change: change["at"], reverse=True
            )
        elif self.settings.domain_id not in self.emulator.domain_ids():
            self.emulator.seed_domain(domain_id=self.settings.domain_id)
        if self.backend_name == "moto":
            self.backend = MotoBackend(self.settings, self.clock, self.resources, self.emulator.url)
        else:
            from casewatch.local.memory_backend import MemoryBackend

            _configure_environment(self.settings, self.resources, self.emulator.url, {})
            r = self.resources
            self.backend = MemoryBackend(
                self.settings,
                self.clock,
                schedule_group=r.schedule_group,
                timer_arn=r.function_arn(SLA_TIMER),
                scheduler_role_arn=r.scheduler_role_arn,
                dead_letter_url=r.queue_url(r.invalid_queue),
                failure_url=r.queue_url(r.failure_queue),
            )
        self._stack.callback(self.backend.close)
        self.deps = self.backend.dependencies()
        self.tracker = next((s for s in self.deps.sinks if hasattr(s, "take_transitions")), None)
        self.notifier = next((s for s in self.deps.sinks if hasattr(s, "notifications_by_rule")), None)
        if self.faults.timeouts and self.notifier is not None:
            rng = random.Random(f"timeouts-{self.faults.seed}")  # noqa: S311 - reproducible chaos
            self.timeouts = TimeoutInjector(self.notifier.once, self.faults.timeouts, rng)
            self.notifier.once = self.timeouts
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        _forget_cached_dependencies()

    # -- delivery ------------------------------------------------------------------------------
    def routes_for(self, event: dict[str, Any]) -> list[FunctionSpec]:
        return [spec for spec, matches in self._routes if matches(event)]

    def deliver(self, event: dict[str, Any], *, at: datetime | None = None) -> list[Invocation]:
        """Deliver one event as EventBridge would: to every matching rule's function."""
        if at is not None:
            self.advance_to(at)
        invocations = [self.invoke(spec, event) for spec in self.routes_for(event)]
        if not invocations:
            self.counts["unrouted"] += 1
        return invocations

    def invoke(self, spec: FunctionSpec | str, event: dict[str, Any]) -> Invocation:
        """Invoke a function like Lambda's asynchronous invocation: on an error (or a timeout), retry
        `RETRY_DELAYS` of virtual time later (the clock moves on meanwhile), then the failure queue."""
        spec = function_named(spec) if isinstance(spec, str) else spec
        module = importlib.import_module(f"casewatch.handlers.{spec.module}")
        event_id = event.get("id") if isinstance(event.get("id"), str) else None
        deps = self.deps if spec.event_types else self.tracker
        reason = None
        for attempt in range(1, RETRY_ATTEMPTS + 2):
            if attempt > 1:
                self.advance_to(self.clock.now() + RETRY_DELAYS[attempt - 2])
            context = FakeLambdaContext(spec.name, self.clock)
            try:
                with contextlib.redirect_stdout(_EMF_OUTPUT):  # Lambda would ship EMF lines to CloudWatch
                    result = module.handler(event, context, deps=deps)
            except SimulatedTimeout as exc:
                reason = f"Task timed out ({exc})"
                self.counts["timeouts"] += 1
                self.counts["retries" if attempt <= RETRY_ATTEMPTS else "failed"] += 1
                continue
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"[:500]
                self.counts["retries" if attempt <= RETRY_ATTEMPTS else "failed"] += 1
                continue
            outcome = str(result.get("outcome", "handled")) if isinstance(result, dict) else "handled"
            invocation = Invocation(
                spec.name, event_id, outcome, attempt, result=result if isinstance(result, dict) else None
            )
            self._record(invocation)
            return invocation
        self.backend.send_failure(
            json.dumps(
                {
                    "requestContext": {
                        "condition": "RetriesExhausted",
                        "functionArn": self.resources.function_arn(spec),
                    },
                    "responseContext": {"functionError": "Unhandled"},
                    "requestPayload": event,
                    "reason": reason,
                }
            )
        )
        invocation = Invocation(spec.name, event_id, "failed", RETRY_ATTEMPTS + 1, reason=reason)
        self._record(invocation)
        return invocation

    def _record(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)
        self.counts[invocation.outcome] += 1
        if self.tracker is not None:
            self.transitions.extend(self.tracker.take_transitions())

    def park_malformed(self, origin: str, raw: object, reason: str) -> None:
        """A line of an archive that is not an event: parked with its reason, like an invalid event."""
        self.deps.dead_letters.park(raw if raw is not None else {"origin": origin}, reason, function="replay")
        self.counts["malformed"] += 1

    # -- reporting -----------------------------------------------------------------------------
    def sla_items(self) -> list[Any]:
        """Every (case, SLA) in the state table, sorted by case and SLA key."""
        return self.backend.sla_items()

    def describe_invocation(self, invocation: Invocation) -> dict[str, Any]:
        """One invocation and every side effect it had (drains the local queues)."""
        effects = self.effects()
        return {
            "function": invocation.function,
            "outcome": invocation.outcome,
            "reason": invocation.reason or (invocation.result or {}).get("reason"),
            "attempts": invocation.attempts,
            "getcase_calls": effects.getcase_calls,
            "sla_changes": [
                {
                    "case": t.case_id,
                    "sla": t.sla_key,
                    "status": t.status.value,
                    "at": t.at.isoformat(),
                    "target_time": t.target_time.isoformat(),
                }
                for t in self.transitions
            ],
            "notifications": [_notification_summary(m) for m in effects.notifications],
            "bus_events": [_bus_summary(m) for m in effects.bus_events],
            "dead_letters": [_dead_letter_summary(m) for m in effects.dead_letters + effects.failures],
        }

    def fill_report(self, report: Any) -> None:
        """Complete a replay report with what the local resources saw."""
        effects = self.effects()
        report.getcase_calls = effects.getcase_calls
        report.notifications = dict(Counter(_notification_summary(m)["rule"] for m in effects.notifications))
        report.bus_events = dict(Counter(_bus_summary(m)["detail-type"] for m in effects.bus_events))
        report.sla_transitions = len(self.transitions)
        slas = self.sla_items()
        report.sla_status = dict(Counter(item.state.status.value for item in slas))
        report.sla_breaches = sum(1 for item in slas if _breached(item.state))
        report.timers_fired = self.counts["timers_fired"]
        report.reconciliations = self.counts["reconcile_runs"]
        if self.notifier is not None:
            report.duplicates_suppressed = int(self.notifier.report()["duplicates_suppressed"])
        parked = len(effects.dead_letters) + len(effects.failures)
        if parked != report.dead_lettered:
            # Every dead-lettered event must be on a queue with its reason; anything else is lost.
            report.lost += max(0, report.dead_lettered - parked)

    # -- time ----------------------------------------------------------------------------------
    def advance_to(self, moment: datetime) -> None:
        """Move the clock forward to `moment`, firing schedules and reconciliation that fall due."""
        while True:
            due = self._next_due(moment)
            if due is None:
                break
            at, fire = due
            if at > self.clock.now():
                self.clock.set(at)
            fire()
        if moment > self.clock.now():
            self.clock.set(moment)

    def _next_due(self, limit: datetime) -> tuple[datetime, Callable[[], None]] | None:
        candidates: list[tuple[datetime, Callable[[], None]]] = []
        if self._truth:
            at = datetime.fromisoformat(self._truth[-1]["at"])
            if at <= limit:
                candidates.append((at, self._apply_truth))
        schedule = self._earliest_schedule()
        if schedule is not None and schedule[0] <= limit:
            candidates.append(schedule)
        if self._next_reconcile is None:
            self._next_reconcile = self.clock.now() + timedelta(minutes=self.settings.reconcile_every_minutes)
        if self._next_reconcile <= limit:
            at = self._next_reconcile
            candidates.append((at, self._run_reconcile))
        # Ties: Cases' truth first, then timers, then reconciliation (candidates are in that order).
        return min(candidates, key=lambda c: c[0]) if candidates else None

    def _apply_truth(self) -> None:
        """Cases changed (whether or not an event about it is ever delivered)."""
        change = self._truth.pop()
        if "deleted" in change:
            self.emulator.remove_case(self.settings.domain_id, change["deleted"])
        else:
            self.emulator.put_case_record(self.settings.domain_id, change["case"])

    def _run_reconcile(self) -> None:
        assert self._next_reconcile is not None
        self._next_reconcile += timedelta(minutes=self.settings.reconcile_every_minutes)
        self.reconcile()

    def reconcile(self) -> Invocation:
        """Run the reconciliation function now (as its schedule would)."""
        self.counts["reconcile_runs"] += 1
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": ACCOUNT,
            "time": self.clock.now().isoformat(),
            "region": REGION,
            "resources": [],
            "detail": {},
        }
        return self.invoke(RECONCILE, event)

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Scheduler one-time schedules in casewatch's group: (time, name, input)."""
        return self.backend.pending_schedules()

    def _earliest_schedule(self) -> tuple[datetime, Callable[[], None]] | None:
        earliest = self.backend.earliest_schedule()
        if earliest is None:
            return None
        at, name, payload = earliest

        def fire() -> None:
            # ActionAfterCompletion=DELETE: a one-time schedule is consumed when it fires (a timer the
            # handler sets again while running is a new schedule).
            self.backend.remove_schedule(name)
            self.counts["timers_fired"] += 1
            self.invoke(SLA_TIMER, payload)

        return at, fire

    def drain(self, horizon: timedelta = timedelta(hours=48)) -> None:
        """Let time run until every pending schedule has fired and Cases' timeline is applied
        (at most `horizon` ahead)."""
        limit = self.clock.now() + horizon
        while True:
            pending = [at for at, _, _ in self.pending_schedules()]
            if self._truth:
                pending.append(datetime.fromisoformat(self._truth[0]["at"]))
            due = [at for at in pending if at <= limit]
            if not due:
                return
            self.advance_to(max(due))

    # -- observing -----------------------------------------------------------------------------
    def effects(self) -> Effects:
        """What arrived on the topic's subscriber, the bus subscriber and the queues since the last call
        (drains them; `observed` keeps everything ever drained)."""
        found = Effects(
            getcase_calls=self.emulator.calls["GetCase"],
            notifications=self.backend.take_notifications(),
            bus_events=self.backend.take_bus_events(),
            dead_letters=self.backend.take_dead_letters(),
            failures=self.backend.take_failures(),
        )
        self.observed.getcase_calls = found.getcase_calls
        self.observed.notifications += found.notifications
        self.observed.bus_events += found.bus_events
        self.observed.dead_letters += found.dead_letters
        self.observed.failures += found.failures
        return found


class MotoBackend:
    """AWS on moto (`mock_aws`, entered by the pipeline): the real adapters with real boto3 clients."""

    name = "moto"

    def __init__(self, settings: Settings, clock: VirtualClock, resources: Resources, cases_url: str) -> None:
        self.settings = settings
        self.clock = clock
        self.resources = resources
        self._urls: dict[str, str] = {}
        self._create_resources()
        _configure_environment(settings, resources, cases_url, self._urls, topic_arn=self.topic_arn)

    def _create_resources(self) -> None:
        r = self.resources
        ddb = aws.dynamodb_client()
        ddb.create_table(**STATE_TABLE.create_table_args(r.state_table))
        ddb.create_table(**IDEMPOTENCY_TABLE.create_table_args(r.idempotency_table))
        sqs = aws.sqs_client()
        for name in (r.invalid_queue, r.failure_queue, r.subscriber_queue, r.bus_queue):
            self._urls[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        sns = aws.sns_client()
        self.topic_arn = sns.create_topic(Name=r.topic_name)["TopicArn"]
        sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{r.subscriber_queue}",
            Attributes={"RawMessageDelivery": "true"},
        )
        events = aws.events_client()
        events.create_event_bus(Name=r.bus_name)
        events.put_rule(
            Name=f"{STACK}-all-enriched",
            EventBusName=r.bus_name,
            EventPattern=json.dumps({"source": [ENRICHED_SOURCE]}),
        )
        events.put_targets(
            Rule=f"{STACK}-all-enriched",
            EventBusName=r.bus_name,
            Targets=[{"Id": "subscriber", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{r.bus_queue}"}],
        )
        aws.scheduler_client().create_schedule_group(Name=r.schedule_group)

    def dependencies(self) -> Any:
        from casewatch.wiring import build_dependencies

        return build_dependencies(self.settings, os.environ, self.clock)

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(self.resources.schedule_group)
        if group is None:
            return []
        found = []
        for name, schedule in group.schedules.items():
            expression = schedule.schedule_expression
            if expression.startswith("at(") and expression.endswith(")"):
                at = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=self.clock.now().tzinfo)
                found.append((at, name, json.loads(schedule.target.get("Input") or "{}")))
        return sorted(found, key=lambda item: (item[0], item[1]))

    def earliest_schedule(self) -> tuple[datetime, str, dict[str, Any]] | None:
        pending = self.pending_schedules()
        return pending[0] if pending else None

    def remove_schedule(self, name: str) -> None:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(self.resources.schedule_group)
        if group is not None:
            group.schedules.pop(name, None)

    def send_failure(self, body: str) -> None:
        aws.sqs_client().send_message(QueueUrl=self._urls[self.resources.failure_queue], MessageBody=body)

    def take_notifications(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.subscriber_queue)

    def take_bus_events(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.bus_queue)

    def take_dead_letters(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.invalid_queue)

    def take_failures(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.failure_queue)

    def sla_items(self) -> list[Any]:
        """Every (case, SLA) in the state table (a scan: fine for a local table)."""
        from casewatch.adapters.dynamodb_sla_store import SLA_PREFIX, stored_sla

        ddb = aws.dynamodb_client()
        items: list[Any] = []
        kwargs: dict[str, Any] = {"TableName": self.resources.state_table}
        while True:
            page = ddb.scan(**kwargs)
            items += [stored_sla(i) for i in page.get("Items", []) if i["sk"]["S"].startswith(SLA_PREFIX)]
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: (i.case_id, i.state.key))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _drain_queue(self, name: str) -> list[dict[str, Any]]:
        sqs = aws.sqs_client()
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self._urls[name], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            received = batch.get("Messages", [])
            if not received:
                return messages
            for message in received:
                messages.append(dict(message))
            sqs.delete_message_batch(
                QueueUrl=self._urls[name],
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)],
            )

    def close(self) -> None:
        return None


def _configure_environment(
    settings: Settings,
    r: Resources,
    cases_url: str,
    urls: dict[str, str],
    *,
    topic_arn: str | None = None,
) -> None:
    """The environment the stack gives the functions (the moto backend's handlers read it)."""
    os.environ.update(
        {
            ENV_CONFIG: settings.runtime_json(),
            ENV_SLA_TABLE: r.state_table,
            ENV_IDEMPOTENCY_TABLE: r.idempotency_table,
            ENV_TOPIC_ARN: topic_arn or f"arn:aws:sns:{REGION}:{ACCOUNT}:{r.topic_name}",
            ENV_EVENT_BUS: r.bus_name,
            ENV_SCHEDULE_GROUP: r.schedule_group,
            ENV_SCHEDULER_ROLE_ARN: r.scheduler_role_arn,
            ENV_SLA_TIMER_ARN: r.function_arn(SLA_TIMER),
            ENV_DEAD_LETTER_QUEUE_URL: urls.get(r.invalid_queue, r.queue_url(r.invalid_queue)),
            ENV_CASES_ENDPOINT: cases_url,
        }
    )
    _forget_cached_dependencies()


def _virtual_seconds(seconds: float) -> timedelta:
    """`seconds` as a timedelta, rounded *up* to the microsecond (a wait never falls short)."""
    return timedelta(microseconds=math.ceil(max(seconds, 0.0) * 1_000_000))


class _VirtualSleepTime:
    """`time` as botocore's endpoint sees it inside the pipeline: `sleep` advances the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.advance(_virtual_seconds(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _VirtualBucketClock:
    """botocore's adaptive-mode clock (`botocore.retries.bucket.Clock`) on the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, amount: float) -> None:
        self._clock.advance(_virtual_seconds(amount))

    def current_time(self) -> float:
        return self._clock.now().timestamp()


class _VirtualCondition:
    """The token bucket's condition variable: waiting for tokens advances the virtual clock."""

    def __init__(self, clock: VirtualClock, lock: Any = None) -> None:
        self._clock = clock
        self._lock = lock if lock is not None else threading.RLock()

    def __enter__(self) -> _VirtualCondition:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        self._clock.advance(_virtual_seconds(timeout or 0.0) or timedelta(microseconds=1))
        return False

    def notify(self, n: int = 1) -> None:
        return None

    def notify_all(self) -> None:
        return None


@contextmanager
def _botocore_sleeps_on(clock: VirtualClock) -> Iterator[None]:
    """botocore's waits on the virtual clock, for the clients created inside the pipeline: the retry
    back-off (`time.sleep` in `botocore.endpoint`) and adaptive mode's client-side rate limiter (its
    token bucket's clock and condition variable), so a throttled GetCase costs virtual time, not wall
    time, exactly as botocore would spend it."""
    endpoint: Any = importlib.import_module("botocore.endpoint")
    bucket: Any = importlib.import_module("botocore.retries.bucket")
    threads = SimpleNamespace(
        Lock=threading.Lock,
        RLock=threading.RLock,
        Condition=lambda lock=None: _VirtualCondition(clock, lock),
    )
    saved = (endpoint.time, bucket.Clock, bucket.threading)
    endpoint.time = _VirtualSleepTime(clock)
    bucket.Clock = lambda: _VirtualBucketClock(clock)
    bucket.threading = threads
    try:
        yield
    finally:
        endpoint.time, bucket.Clock, bucket.threading = saved


@contextmanager
def _local_environment() -> Iterator[None]:
    """Dummy credentials and region, restored afterwards: nothing can reach a real account."""
    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "casewatch",
        "POWERTOOLS_METRICS_NAMESPACE": "Casewatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # Local runs print a report on stdout: the functions' EMF metric lines are discarded (see
        # `_EMF_OUTPUT`) and their logs go to stderr at WARNING, unless the user asks for more
        # (CASEWATCH_LOCAL_LOG_LEVEL=INFO). Metrics are not disabled: Powertools then never clears its
        # buffer and prints it when 100 values pile up.
        "POWERTOOLS_LOG_LEVEL": os.environ.get("CASEWATCH_LOCAL_LOG_LEVEL", "WARNING"),
    }
    touched = {
        *keys,
        ENV_CONFIG,
        ENV_SLA_TABLE,
        ENV_IDEMPOTENCY_TABLE,
        ENV_TOPIC_ARN,
        ENV_EVENT_BUS,
        ENV_SCHEDULE_GROUP,
        ENV_SCHEDULER_ROLE_ARN,
        ENV_SLA_TIMER_ARN,
        ENV_DEAD_LETTER_QUEUE_URL,
        ENV_CASES_ENDPOINT,
    }
    saved = {k: os.environ.get(k) for k in touched}
    os.environ.update(keys)
    restore_logs = _route_logs_to_stderr(
        keys["POWERTOOLS_LOG_LEVEL"], saved["POWERTOOLS_LOG_LEVEL"] or "INFO"
    )
    try:
        yield
    finally:
        restore_logs()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Discard:
    """A text sink for the EMF lines Powertools prints (in Lambda they go to CloudWatch)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


_EMF_OUTPUT: Any = _Discard()


def _route_logs_to_stderr(level: str, previous_level: str) -> Callable[[], None]:
    """Send the functions' logs to stderr at `level`; returns how to put things back (to
    `previous_level`: the logger may have been created inside this environment, at `level`)."""
    import logging
    import sys

    from casewatch.observability import logger

    logger.setLevel(level)
    handler = logger.registered_handler
    previous_stream = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None

    def restore() -> None:
        logger.setLevel(previous_level)
        if previous_stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous_stream)

    return restore


def _forget_cached_dependencies() -> None:
    """Clients, settings and wired dependencies are cached per container: start afresh."""
    aws.reset_clients()
    get_settings.cache_clear()
    try:
        wiring = importlib.import_module("casewatch.wiring")
    except ImportError:
        return
    for name in ("default_dependencies",):
        cached = getattr(wiring, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}


def _notification_summary(message: dict[str, Any]) -> dict[str, Any]:
    attributes = _attributes(message)
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    return {"rule": attributes.get("rule", "?"), "subject": body.get("subject", ""), "attributes": attributes}


def _bus_summary(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    case = body.get("detail", {}).get("case", {})
    return {"detail-type": body.get("detail-type"), "caseId": case.get("caseId"), "id": body.get("id")}


def _dead_letter_summary(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    return {
        "reason": body.get("reason"),
        "function": body.get("function") or "failure-destination",
        "eventId": body.get("eventId"),
    }


def _breached(state: Any) -> bool:
    from casewatch.domain.sla import SlaStatus

    return state.status is SlaStatus.NOT_MET or any(t.status is SlaStatus.OVERDUE for t in state.history)
