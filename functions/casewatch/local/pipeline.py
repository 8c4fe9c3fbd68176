"""The deployed topology in one process, offline: the Docker-less way to run casewatch.

- moto (`mock_aws`) provides DynamoDB, SNS, SQS, EventBridge and Scheduler; the Cases emulator
  provides Cases; the real handlers run with real boto3 clients and the real adapters.
- Everything is built from the definitions the CDK stack uses: `topology.FUNCTIONS` (functions and
  their EventBridge patterns), `tables.TABLES`, and the settings of cdk.json.
- Routing evaluates each event against the rule patterns with EventBridge pattern semantics (moto's
  pattern engine) and invokes the matching handlers in-process, like Lambda's asynchronous invocation:
  up to `RETRY_ATTEMPTS` retries, then the on-failure destination (a queue).
- A virtual clock drives time. Events are processed in delivery order; EventBridge Scheduler
  schedules (which moto never fires) fire when the clock passes them, and the reconciliation schedule
  runs every `reconcile_every_minutes` of virtual time — a replay of yesterday takes seconds.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from casewatch.settings import Settings, get_settings
from casewatch.tables import IDEMPOTENCY_TABLE, STATE_TABLE
from casewatch.topology import EVENT_ROUTED, RECONCILE, SLA_TIMER, FunctionSpec, function_named

ACCOUNT = "123456789012"
REGION = "us-east-1"
RETRY_ATTEMPTS = 2  # Lambda async invocation retries (the stack sets the same)
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))
STACK = "casewatch-local"


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
    """Enough of the Lambda context for Powertools (and a remaining-time budget)."""

    memory_limit_in_mb = 256

    def __init__(self, function: str, timeout_s: int = 30) -> None:
        self.function_name = f"{STACK}-{function}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
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


def _matcher(pattern: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    from moto.events.models import EventPattern

    compiled = EventPattern.load(json.dumps(pattern))
    return lambda event: bool(compiled.matches_event(event))  # type: ignore[arg-type]


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
    ) -> None:
        self.settings = settings
        self.clock = clock or VirtualClock()
        self.resources = Resources()
        self.seed = seed
        self._cases_state = cases_state
        self._emulator_options = {"getcase_quota": getcase_quota, **(emulator_options or {})}
        self._stack = ExitStack()
        self._routes = [
            (spec, _matcher(pattern)) for spec in EVENT_ROUTED if (pattern := spec.event_pattern())
        ]
        self._next_reconcile: datetime | None = None
        self.emulator: CasesEmulator
        self.invocations: list[Invocation] = []
        self.counts: Counter[str] = Counter()
        self.transitions: list[Any] = []
        self._urls: dict[str, str] = {}
        self.deps: Any = None
        self._truth: list[dict[str, Any]] = []  # Cases' ground truth still to come (latest first)
        self.tracker: Any = None
        self.notifier: Any = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalPipeline:
        self._stack.enter_context(_local_environment())
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
        self._create_resources()
        self._configure_environment()
        from casewatch.wiring import build_dependencies

        self.deps = build_dependencies(self.settings, os.environ, self.clock)
        self.tracker = next((s for s in self.deps.sinks if hasattr(s, "take_transitions")), None)
        self.notifier = next((s for s in self.deps.sinks if hasattr(s, "notifications_by_rule")), None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        _forget_cached_dependencies()

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

    def _configure_environment(self) -> None:
        r = self.resources
        os.environ.update(
            {
                ENV_CONFIG: self.settings.runtime_json(),
                ENV_SLA_TABLE: r.state_table,
                ENV_IDEMPOTENCY_TABLE: r.idempotency_table,
                ENV_TOPIC_ARN: self.topic_arn,
                ENV_EVENT_BUS: r.bus_name,
                ENV_SCHEDULE_GROUP: r.schedule_group,
                ENV_SCHEDULER_ROLE_ARN: r.scheduler_role_arn,
                ENV_SLA_TIMER_ARN: r.function_arn(SLA_TIMER),
                ENV_DEAD_LETTER_QUEUE_URL: self._urls[r.invalid_queue],
                ENV_CASES_ENDPOINT: self.emulator.url,
            }
        )
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
        """Invoke a function like Lambda's asynchronous invocation (retries, then the failure queue)."""
        spec = function_named(spec) if isinstance(spec, str) else spec
        module = importlib.import_module(f"casewatch.handlers.{spec.module}")
        event_id = event.get("id") if isinstance(event.get("id"), str) else None
        deps = self.deps if spec.event_types else self.tracker
        reason = None
        for attempt in range(1, RETRY_ATTEMPTS + 2):
            try:
                result = module.handler(event, FakeLambdaContext(spec.name), deps=deps)
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
        aws.sqs_client().send_message(
            QueueUrl=self._urls[self.resources.failure_queue],
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": "RetriesExhausted",
                        "functionArn": self.resources.function_arn(spec),
                    },
                    "responseContext": {"functionError": "Unhandled"},
                    "requestPayload": event,
                    "reason": reason,
                }
            ),
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

    def _earliest_schedule(self) -> tuple[datetime, Callable[[], None]] | None:
        pending = self.pending_schedules()
        if not pending:
            return None
        at, name, payload = pending[0]

        def fire() -> None:
            self.counts["timers_fired"] += 1
            self.invoke(SLA_TIMER, payload)
            # ActionAfterCompletion=DELETE: the schedule is gone after it ran (if the handler kept it).
            from moto.scheduler.models import scheduler_backends

            group = scheduler_backends[ACCOUNT][REGION].schedule_groups[self.resources.schedule_group]
            group.schedules.pop(name, None)

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
        """What arrived on the topic's subscriber, the bus subscriber and the queues (drains them)."""
        effects = Effects(getcase_calls=self.emulator.calls["GetCase"])
        r = self.resources
        effects.notifications = self._drain_queue(r.subscriber_queue)
        effects.bus_events = self._drain_queue(r.bus_queue)
        effects.dead_letters = self._drain_queue(r.invalid_queue)
        effects.failures = self._drain_queue(r.failure_queue)
        return effects

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
        # Local runs print a report on stdout: metrics (EMF) are off and logs go to stderr at WARNING,
        # unless the user asks for more (CASEWATCH_LOCAL_LOG_LEVEL=INFO).
        "POWERTOOLS_METRICS_DISABLED": "true",
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
    _route_logs_to_stderr(keys["POWERTOOLS_LOG_LEVEL"])
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _route_logs_to_stderr(level: str) -> None:
    import logging
    import sys

    from casewatch.observability import logger

    logger.setLevel(level)
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)


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
