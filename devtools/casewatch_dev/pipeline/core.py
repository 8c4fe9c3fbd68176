"""The deployed topology in one process, offline: the Docker-less way to run casewatch.

- The real handlers, use cases and adapters run in-process, composed by the functions' own composition
  root (`casewatch.bootstrap`); the Cases emulator provides Cases to the real boto3 `connectcases` client:
  over HTTP on 127.0.0.1 with the moto backend, in process (no socket) with the memory backend. AWS comes
  from one of two backends (`backend=`, `casewatch replay --backend`):
  `moto` (full fidelity, the default; ~5-20 events/s) or `memory` (the same adapters on fake clients and
  in-memory stores, for large replays, the reliability suite and benchmarks).
- Everything is built from the definitions the CDK stack uses: `topology.FUNCTIONS` (functions and
  their EventBridge patterns), the tables of `casewatch.tables`, and the settings of cdk.json.
- Routing evaluates each event against the rule patterns with EventBridge pattern semantics (moto's
  pattern engine, on both backends) and invokes the matching handlers in-process, like Lambda's
  asynchronous invocation: up to `RETRY_ATTEMPTS` retries, `RETRY_DELAYS` of virtual time apart (the
  clock moves on meanwhile), then the on-failure destination (a queue).
- A virtual clock drives time. Scheduler schedules (which moto never fires) fire when the clock passes
  them, and the reconciliation schedule runs every `reconcile_every_minutes` of virtual time. The Lambda
  context's remaining time and botocore's retry waits are on the virtual clock too (`virtual_time`).
- Each function is its own container: its adapters and clients are its own, and it runs under its
  synthesized IAM role (`iam=True`, the default; `casewatch_dev.pipeline.identities`): moto authorizes its
  AWS requests (moto backend) and the Cases emulator its Cases requests, with the role's policies. A
  request denied is recorded with the invocation (`Invocation.denials`) and reported (`access_denied`).
- What the functions did is observed through the ports: a counting metrics recorder, a recording SLA
  store (transitions), and the local queues, topic subscriber and bus subscriber.
- Faults (`casewatch_dev.faults.Faults`): GetCase throttling/500s are the emulator's; handler timeouts
  kill an invocation while it sends (after its state and claim were written); delivery faults
  (duplicates, reordering, drops, malformed events) are the replay's (`faults.arrange_deliveries`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from casewatch.bootstrap import Adapters, build_event_app, build_reconcile_app, build_sla_timer_app
from casewatch.domain.sla.model import SlaState, SlaStatus, SlaTransition
from casewatch.observability import DUPLICATE_TRIGGERS, PowertoolsMetrics
from casewatch.ports import CaseStore
from casewatch.settings import SYSTEM_FIELD_IDS, Settings
from casewatch.topology import EVENT_ROUTED, RECONCILE, SLA_TIMER, FunctionSpec, domain_arn, function_named
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import IN_PROCESS_ENDPOINT, CasesEmulator
from casewatch_dev.event_files import UsageError
from casewatch_dev.fakes.ports import CountingMetrics, RecordingCaseStore
from casewatch_dev.faults import Faults, SimulatedTimeout, TimeoutInjector
from casewatch_dev.iam.access import AccessControl, Denial
from casewatch_dev.iam.roles import FunctionRoles
from casewatch_dev.pipeline.context import ACCOUNT, REGION, FakeLambdaContext, LocalResources
from casewatch_dev.pipeline.environment import (
    EMF_OUTPUT,
    configure_environment,
    forget_cached,
    local_environment,
)
from casewatch_dev.pipeline.identities import FunctionIdentities, IamMode
from casewatch_dev.pipeline.memory_backend import MemoryBackend
from casewatch_dev.pipeline.moto_backend import MotoBackend
from casewatch_dev.pipeline.virtual_time import botocore_sleeps_on
from casewatch_dev.sla_items import SlaItem, sla_items

RETRY_ATTEMPTS = 2  # Lambda async invocation retries (the stack sets the same)
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))  # virtual time before retry 1 and 2
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
    denials: tuple[Denial, ...] = ()  # requests of this invocation that IAM denied (any attempt)


@dataclass
class Effects:
    """Side effects observed on the local AWS resources."""

    getcase_calls: int = 0
    notifications: list[dict[str, Any]] = field(default_factory=list)
    bus_events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


def pattern_matcher(pattern: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """An EventBridge pattern as a predicate (moto's pattern engine)."""
    from moto.events.models import EventPattern

    compiled = EventPattern.load(json.dumps(pattern))
    return lambda event: bool(compiled.matches_event(event))  # type: ignore[arg-type]


class Backend(Protocol):
    """Where the pipeline's AWS services live (`MotoBackend`, `MemoryBackend`)."""

    name: str

    def adapters(self) -> Adapters: ...

    def earliest_schedule(self) -> tuple[datetime, str, dict[str, Any]] | None: ...

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]: ...

    def remove_schedule(self, name: str) -> None: ...

    def send_failure(self, body: str) -> None: ...

    def take_notifications(self) -> list[dict[str, Any]]: ...

    def take_bus_events(self) -> list[dict[str, Any]]: ...

    def take_dead_letters(self) -> list[dict[str, Any]]: ...

    def take_failures(self) -> list[dict[str, Any]]: ...

    def case_store(self) -> CaseStore: ...

    def close(self) -> None: ...


def seed_domain(emulator: CasesEmulator, settings: Settings) -> str:
    """The configured domain, with the custom fields the settings read (a real domain has them: the change
    feed's SearchCases names them, and Cases refuses a field the domain lacks)."""
    domain_id = emulator.seed_domain(domain_id=settings.domain_id)
    names = {field_id: name for name, field_id in settings.field_names.items()}
    for field_id in sorted(settings.needed_field_ids - SYSTEM_FIELD_IDS):
        emulator.seed_field(domain_id, names.get(field_id, field_id), field_id=field_id)
    return domain_id


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
        iam: bool | FunctionRoles = True,
    ) -> None:
        if backend not in BACKENDS:
            raise UsageError(f"backend {backend!r}: one of {', '.join(BACKENDS)}")
        self.faults = (faults or Faults()).with_seed(seed)
        self.settings = settings
        self.clock = clock or VirtualClock()
        self.resources = LocalResources()
        self.seed = seed
        self.backend_name: BackendName = backend
        self._cases_state = cases_state
        self._emulator_options = {
            "getcase_quota": getcase_quota,
            **self.faults.emulator_options(),
            **(emulator_options or {}),
        }
        self._iam = iam
        self.access = AccessControl()
        self.identities: FunctionIdentities | None = None
        self._stack = ExitStack()
        # The rules take the events of the configured domain only, as in AWS.
        self.domain_arn = domain_arn(settings.domain_id, partition="aws", region=REGION, account=ACCOUNT)
        self._routes = [
            (spec, pattern_matcher(pattern))
            for spec in EVENT_ROUTED
            if (pattern := spec.event_pattern(self.domain_arn))
        ]
        self._next_reconcile: datetime | None = None
        self._reconciling = False  # a reconcile invocation (with its retries) is running
        self.emulator: CasesEmulator
        self.backend: Backend
        self.invocations: list[Invocation] = []
        self.counts: Counter[str] = Counter()
        self.transitions: list[SlaTransition] = []
        self.metrics = CountingMetrics(forward=PowertoolsMetrics())
        self.adapters: Adapters  # the pipeline's own (parking malformed lines), under no function's role
        self._apps: dict[str, Any] = {}
        self._truth: list[dict[str, Any]] = []  # Cases' ground truth still to come (latest first)
        self._recorders: dict[str, RecordingCaseStore] = {}
        self._timeouts_rng: random.Random | None = None
        self.observed = Effects()  # every side effect drained by `effects()` so far

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalPipeline:
        try:
            return self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> LocalPipeline:
        roles = self._roles()
        if roles is not None:
            self.resources = roles.resources  # the names the policies were resolved to
        self._stack.enter_context(local_environment())
        self._stack.enter_context(botocore_sleeps_on(self.clock))
        if self.backend_name == "moto":
            from moto import mock_aws

            self._stack.enter_context(mock_aws())
        self.emulator = CasesEmulator(
            clock=self.clock, seed=self.seed, account_id=ACCOUNT, region=REGION, **self._emulator_options
        )
        if self.backend_name == "moto":  # the memory backend's client is answered in process: no server
            self._stack.enter_context(self.emulator)
        if self._cases_state is not None:
            self.emulator.load_state(self._cases_state)
            self._truth = sorted(
                self._cases_state.get("timeline", []), key=lambda change: change["at"], reverse=True
            )
        elif self.settings.domain_id not in self.emulator.domain_ids():
            seed_domain(self.emulator, self.settings)
        self.backend = self._backend()
        self._stack.callback(self.backend.close)
        if roles is not None:
            self.identities = FunctionIdentities(roles, self.backend_name, self.access)
            self.identities.start(self._stack)
            self.emulator.access = self.access
        if self.faults.timeouts:
            self._timeouts_rng = random.Random(f"timeouts-{self.faults.seed}")  # noqa: S311 - reproducible
        self.adapters = replace(self.backend.adapters(), clock=self.clock, metrics=self.metrics)
        return self

    def _roles(self) -> FunctionRoles | None:
        if self._iam is False:
            return None
        if isinstance(self._iam, FunctionRoles):
            return self._iam
        from casewatch_dev.iam.roles import synthesized_roles
        from casewatch_dev.lambda_runtime.toolchain import ToolchainError

        try:
            return synthesized_roles(self.settings.domain_id)
        except ToolchainError as exc:
            raise UsageError(
                f"{exc} (the functions' IAM roles come from synthesizing the stack; --no-iam: without)"
            ) from exc

    @property
    def iam_mode(self) -> IamMode:
        """What IAM is enforced on: `aws+cases` (moto backend), `cases` (memory backend) or `off`."""
        return self.identities.mode if self.identities is not None else "off"

    @contextlib.contextmanager
    def acting_as(self, spec: FunctionSpec) -> Iterator[None]:
        """While inside, AWS and Cases are called as `spec`'s function (its role), when IAM is on."""
        if self.identities is None:
            yield
            return
        with self.identities.acting_as(spec.name):
            yield

    def _backend(self) -> Backend:
        if self.backend_name == "moto":
            configure_environment(self.settings, self.resources, self.emulator.url, {})
            return MotoBackend(self.settings, self.clock, self.resources, self.emulator.url)
        # A Cases client the emulator is not attached to fails at once (`.invalid` never resolves).
        configure_environment(self.settings, self.resources, IN_PROCESS_ENDPOINT, {})
        return MemoryBackend(self.settings, self.clock, self.resources, cases_emulator=self.emulator)

    def _function_adapters(self, spec: FunctionSpec) -> Adapters:
        """A function's own adapters (its container's), over the pipeline's clock, metrics and recorders."""
        base = self.backend.adapters()
        recorder = self._recorders[spec.name] = RecordingCaseStore(base.store)
        notifier = base.notifier
        if self._timeouts_rng is not None:
            notifier = TimeoutInjector(notifier, self.faults.timeouts, self._timeouts_rng)
        return replace(base, clock=self.clock, metrics=self.metrics, store=recorder, notifier=notifier)

    def app(self, spec: FunctionSpec) -> Any:
        """The function's app over its own adapters (built once, like once per container)."""
        if spec.name not in self._apps:
            with self.acting_as(spec):  # clients made now are the function's
                adapters = self._function_adapters(spec)
                if spec.event_types:
                    self._apps[spec.name] = build_event_app(spec, self.settings, adapters)
                elif spec == SLA_TIMER:
                    self._apps[spec.name] = build_sla_timer_app(
                        self.settings, replace(adapters, dead_letters=None)
                    )
                else:
                    self._apps[spec.name] = build_reconcile_app(
                        self.settings, replace(adapters, dead_letters=None)
                    )
        return self._apps[spec.name]

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        forget_cached()

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
        app = self.app(spec)
        reason = None
        denials: list[Denial] = []
        for attempt in range(1, RETRY_ATTEMPTS + 2):
            if attempt > 1:
                self.advance_to(self.clock.now() + RETRY_DELAYS[attempt - 2])
            context = FakeLambdaContext(spec.name, self.clock)
            mark = self.access.mark()
            try:
                with self.acting_as(spec), contextlib.redirect_stdout(EMF_OUTPUT):  # Lambda ships EMF lines
                    result = module.handler(event, context, app=app)
            except SimulatedTimeout as exc:
                reason = f"Task timed out ({exc})"
                self.counts["timeouts"] += 1
                self.counts["retries" if attempt <= RETRY_ATTEMPTS else "failed"] += 1
                continue
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"[:500]
                self.counts["retries" if attempt <= RETRY_ATTEMPTS else "failed"] += 1
                continue
            finally:
                denials += self.access.since(mark)
            outcome = str(result.get("outcome", "handled")) if isinstance(result, dict) else "handled"
            invocation = Invocation(
                spec.name,
                event_id,
                outcome,
                attempt,
                result=result if isinstance(result, dict) else None,
                denials=tuple(denials),
            )
            self._record(invocation)
            return invocation
        denials += self._send_failure(spec, event, reason)
        invocation = Invocation(
            spec.name, event_id, "failed", RETRY_ATTEMPTS + 1, reason=reason, denials=tuple(denials)
        )
        self._record(invocation)
        return invocation

    def _send_failure(self, spec: FunctionSpec, event: dict[str, Any], reason: str | None) -> list[Denial]:
        """Lambda's on-failure destination: the record goes to the failure queue, sent with the function's
        role (the stack grants it). A denied delivery loses the record, as in AWS."""
        from botocore.exceptions import ClientError

        record = {
            "requestContext": {
                "condition": "RetriesExhausted",
                "functionArn": self.resources.function_arn(spec),
            },
            "responseContext": {"functionError": "Unhandled"},
            "requestPayload": event,
            "reason": reason,
        }
        mark = self.access.mark()
        try:
            with self.acting_as(spec):
                self.backend.send_failure(json.dumps(record))
        except ClientError:
            if not self.access.since(mark):
                raise
        return self.access.since(mark)

    def _record(self, invocation: Invocation) -> None:
        self.invocations.append(invocation)
        self.counts[invocation.outcome] += 1
        if invocation.denials:
            self.counts["access_denied"] += 1
        taken = [t for recorder in self._recorders.values() for t in recorder.take_transitions()]
        self.transitions.extend(sorted(taken, key=lambda t: t.at))

    def park_malformed(self, origin: str, raw: object, reason: str) -> None:
        """A line of an archive that is not an event: parked with its reason, like an invalid event."""
        assert self.adapters.dead_letters is not None
        self.adapters.dead_letters.park(
            raw if raw is not None else {"origin": origin}, reason, function="replay"
        )
        self.counts["malformed"] += 1

    # -- reporting -----------------------------------------------------------------------------
    def sla_items(self) -> list[SlaItem]:
        """Every (case, SLA) in the state table, sorted by case and SLA key."""
        return sla_items(self.backend.case_store())

    def describe_invocation(self, invocation: Invocation) -> dict[str, Any]:
        """One invocation and every side effect it had (drains the local queues)."""
        effects = self.effects()
        return {
            "function": invocation.function,
            "outcome": invocation.outcome,
            "reason": invocation.reason or (invocation.result or {}).get("reason"),
            "attempts": invocation.attempts,
            "getcase_calls": effects.getcase_calls,
            "access_denied": [str(d) for d in invocation.denials],
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
            "notifications": [notification_summary(m) for m in effects.notifications],
            "bus_events": [bus_summary(m) for m in effects.bus_events],
            "dead_letters": [dead_letter_summary(m) for m in effects.dead_letters + effects.failures],
        }

    def fill_report(self, report: Any) -> None:
        """Complete a replay report with what the local resources saw."""
        effects = self.effects()
        report.getcase_calls = effects.getcase_calls
        report.notifications = dict(Counter(notification_summary(m)["rule"] for m in effects.notifications))
        report.bus_events = dict(Counter(bus_summary(m)["detail-type"] for m in effects.bus_events))
        report.sla_transitions = len(self.transitions)
        slas = self.sla_items()
        report.sla_status = dict(Counter(item.state.status.value for item in slas))
        report.sla_breaches = sum(1 for item in slas if _breached(item.state))
        report.timers_fired = self.counts["timers_fired"]
        report.reconciliations = self.counts["reconcile_runs"]
        report.duplicates_suppressed = self.metrics.counts[DUPLICATE_TRIGGERS]
        report.iam = self.iam_mode
        report.access_denied = self.counts["access_denied"]
        report.access_denials = sorted({str(d) for i in self.invocations for d in i.denials})
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
        # Lambda retries a failed poll while the schedule goes on: the polls that fall due meanwhile run
        # after it (in virtual time order), not inside its retry (a poll failing every time would recurse).
        if self._next_reconcile <= limit and not self._reconciling:
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
        self._reconciling = True
        try:
            self.reconcile()
        finally:
            self._reconciling = False

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


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}


def notification_summary(message: dict[str, Any]) -> dict[str, Any]:
    attributes = _attributes(message)
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    return {"rule": attributes.get("rule", "?"), "subject": body.get("subject", ""), "attributes": attributes}


def bus_summary(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    case = body.get("detail", {}).get("case", {})
    return {"detail-type": body.get("detail-type"), "caseId": case.get("caseId"), "id": body.get("id")}


def dead_letter_summary(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    return {
        "reason": body.get("reason"),
        "function": body.get("function") or "failure-destination",
        "eventId": body.get("eventId"),
    }


def _breached(state: SlaState) -> bool:
    return state.status is SlaStatus.NOT_MET or any(t.status is SlaStatus.OVERDUE for t in state.history)


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendName",
    "Effects",
    "Invocation",
    "LocalPipeline",
    "bus_summary",
    "dead_letter_summary",
    "notification_summary",
    "pattern_matcher",
]
