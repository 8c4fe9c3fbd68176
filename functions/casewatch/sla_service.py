"""SLA tracking use cases: a case event, a timer firing, a reconciliation run.

`SlaTracker` is the `CaseSink` the event handlers feed. Every use case is the same loop: load the
case's SLA record, merge new observations into its log, fold (`casewatch.domain.sla.evaluate`),
bring the timers in line and emit signals for new transitions, then write — conditionally on the
revision loaded; a writer that lost a race reloads and applies again (bounded). Side effects come
before the write, so a crash or a lost race repeats them (timers are idempotent upserts, signals
carry a stable `signal_id`) instead of losing them; a duplicate event changes nothing and does nothing.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from casewatch.domain.sla import (
    CaseSlaLog,
    Observation,
    ObsKind,
    PolicySpec,
    SlaConflictError,
    SlaOrigin,
    SlaOutcome,
    SlaState,
    SlaStatus,
    SlaTransition,
    TimerKind,
    compile_policies,
    desired_timers,
    due_without_timer,
    evaluate,
    new_transitions,
)
from casewatch.domain.sla_observations import (
    needs_sla_lookup,
    observe_case_read,
    observe_event,
    reconcile_fields,
    tracked_fields,
)
from casewatch.domain.sla_ports import (
    CasesSlaSource,
    SlaCaseRecord,
    SlaStore,
    SlaTimerPayload,
    SlaTimers,
    StoredSla,
)
from casewatch.errors import CaseNotFoundError, CasesThrottledError, CasesUnavailableError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.observability import logger
from casewatch.ports import CasesReader, Clock, SlaSignalSink, SnapshotStore
from casewatch.settings import Settings

MAX_ATTEMPTS: Final = 8  # load-fold-write rounds before giving up on a contended case (retryable)
BACKOFF_BASE_S: Final = 0.01
BACKOFF_CAP_S: Final = 0.5
TRANSITIONS_KEPT: Final = 10_000
# Reconciliation looks again at an open SLA after a quarter of its age, between these bounds.
RECHECK_MIN: Final = timedelta(minutes=30)
RECHECK_MAX: Final = timedelta(hours=24)

SIGNAL_OF: Final = {
    SlaStatus.OVERDUE: SlaSignalKind.BREACHED,
    SlaStatus.MET: SlaSignalKind.MET,
    SlaStatus.NOT_MET: SlaSignalKind.NOT_MET,
}


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """One reconciliation run: ids and counts only."""

    due: int = 0  # open SLAs due before now (read from the index)
    cases_checked: int = 0
    cases_left: int = 0  # due cases left for the next run (budget spent)
    cases_calls: int = 0  # Cases API calls made
    repairs: int = 0  # SLAs whose state changed because of what Cases said (or time passing)
    transitions: tuple[SlaTransition, ...] = ()
    throttled: bool = False

    def response(self) -> dict[str, object]:
        return {
            "due": self.due,
            "casesChecked": self.cases_checked,
            "casesLeft": self.cases_left,
            "casesCalls": self.cases_calls,
            "repairs": self.repairs,
            "transitions": len(self.transitions),
            "throttled": self.throttled,
        }


@dataclass
class _CaseCheck:
    observations: list[Observation] = field(default_factory=list)
    calls: int = 0

    def observe(self, _log: CaseSlaLog) -> list[Observation]:
        return self.observations


class SlaTracker:
    """Tracks the SLAs of every case: a `CaseSink`, the sla-timer use case and reconciliation."""

    def __init__(
        self,
        *,
        store: SlaStore,
        signals: SlaSignalSink,
        policies: Sequence[PolicySpec] = (),
        timers: SlaTimers | None = None,
        clock: Clock | None = None,
        warning_fraction: float | None = None,
        cases_slas: CasesSlaSource | None = None,
        cases_reader: CasesReader | None = None,
        snapshots: SnapshotStore | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        verify_breaches: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.signals = signals
        self.policies = tuple(policies)
        self.timers = timers
        self.clock: Clock = clock or SystemClock()
        self.warning_fraction = warning_fraction
        self.cases_slas = cases_slas
        self.cases_reader = cases_reader
        self.snapshots = snapshots
        self.max_attempts = max_attempts
        self.verify_breaches = verify_breaches  # a breach timer first asks Cases (see `on_timer`)
        self._sleep = sleep
        # Every transition applied by this tracker (the local pipeline reports them), newest last.
        self.transitions: deque[SlaTransition] = deque(maxlen=TRANSITIONS_KEPT)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: SlaStore,
        signals: SlaSignalSink,
        timers: SlaTimers | None = None,
        clock: Clock | None = None,
        cases_slas: CasesSlaSource | None = None,
        cases_reader: CasesReader | None = None,
        snapshots: SnapshotStore | None = None,
    ) -> SlaTracker:
        """The tracker of the configured policies (field names resolved) and warning fraction."""
        return cls(
            store=store,
            signals=signals,
            policies=compile_policies(settings.sla_policies, settings.field_id),
            timers=timers,
            clock=clock,
            warning_fraction=settings.sla_warning_fraction,
            cases_slas=cases_slas,
            cases_reader=cases_reader,
            snapshots=snapshots,
        )

    # -- use case: a case event ----------------------------------------------------------------
    def on_case_event(self, event: CaseEvent, case: EnrichedCase | None) -> None:
        """`CaseSink`: apply one enriched event (see `apply_event` for the outcome)."""
        self.apply_event(event, case)

    def apply_event(self, event: CaseEvent, case: EnrichedCase | None) -> SlaOutcome:
        case_id = event.case_id
        if not event.handled or case_id is None:
            return SlaOutcome(case_id or "")
        extra: list[Observation] = []
        if needs_sla_lookup(event) and self.cases_slas is not None:
            try:
                reports = self.cases_slas.case_slas(event.domain_id, case_id)
            except CaseNotFoundError:
                reports = []
            for report in reports:
                if report.related_item_id == event.related_item_id:
                    extra += report.observations()

        def observe(log: CaseSlaLog) -> list[Observation]:
            tracked = tracked_fields(self.policies, log.cases_sla_fields())
            return observe_event(event, case, tracked) + extra

        outcome = self._apply(event.domain_id, case_id, observe, case=case)
        if outcome.transitions:
            logger.info(
                "sla transitions",
                event_id=event.id,
                case_id=case_id,
                transitions=[f"{t.sla_key}:{t.status.value}" for t in outcome.transitions],
            )
        return outcome

    # -- use case: a timer fired ---------------------------------------------------------------
    def on_timer(self, payload: SlaTimerPayload) -> SlaOutcome:
        """A breach timer: time reached the target (judged at the timer's time, not when it ran); if
        that breaches an SLA, Cases is asked first whether it was completed after all (missed event).
        A warning timer: emit AT_RISK if the SLA is still Active, running, with that target.
        A stale timer (the SLA met, moved, or gone) changes nothing."""
        now = self.clock.now()
        if payload.kind == TimerKind.WARNING.value:
            return self._warn(payload, now)
        tick = min(payload.target_time, now)
        check = self._verify_breach(payload.domain_id, payload.case_id, tick, now)
        return self._apply(payload.domain_id, payload.case_id, check.observe, tick=tick)

    def _verify_breach(self, domain_id: str, case_id: str, tick: datetime, now: datetime) -> _CaseCheck:
        """Before declaring a breach, ask Cases whether the SLA was in fact completed (an event Cases
        never delivered): one call for the rare timer that would breach, none for stale timers."""
        if not self.verify_breaches or (self.cases_reader is None and self.cases_slas is None):
            return _CaseCheck()
        record = self.store.load(domain_id, case_id)
        states = evaluate(record.log.merge((), horizon=tick), self.policies)
        breaching = [
            stored
            for key, stored in record.slas.items()
            if stored.state.status is SlaStatus.ACTIVE
            and key in states
            and states[key].status is SlaStatus.OVERDUE
        ]
        if not breaching:
            return _CaseCheck()
        try:
            return self._check_case(domain_id, case_id, breaching, now)
        except Exception as exc:  # best effort: throttled, unavailable, not allowed... judge on what was seen
            logger.warning("could not verify a breach with Cases", case_id=case_id, error=type(exc).__name__)
            return _CaseCheck()

    def _warn(self, payload: SlaTimerPayload, now: datetime) -> SlaOutcome:
        record = self.store.load(payload.domain_id, payload.case_id)
        stored = _find(record, payload.sla_key, payload.sla_name)
        if stored is None:
            return SlaOutcome(payload.case_id)
        state = stored.state
        if state.status is not SlaStatus.ACTIVE or state.paused or state.target_time != payload.target_time:
            return SlaOutcome(payload.case_id, states={state.key: state})
        if now >= state.target_time:
            return SlaOutcome(payload.case_id, states={state.key: state})
        signal = SlaSignal(
            kind=SlaSignalKind.AT_RISK,
            domain_id=record.log.domain_id or payload.domain_id,
            case_id=payload.case_id,
            sla_name=state.name,
            origin=state.origin.value,
            target_time=state.target_time,
            at=min(now, state.target_time),
        )
        self.signals.on_sla_signal(signal, self._case_view(payload.domain_id, payload.case_id))
        logger.info("sla at risk", case_id=payload.case_id, sla=state.key)
        return SlaOutcome(payload.case_id, states={state.key: state})

    # -- use case: reconciliation --------------------------------------------------------------
    def reconcile(
        self, *, now: datetime | None = None, max_cases: int = 50, max_due: int = 500
    ) -> ReconcileReport:
        """Repair SLAs that are due (target passed, still open) from what Cases says now.

        Cases SLAs: SearchRelatedItems (sla filter) gives their completion; policy SLAs: one GetCase
        of the tracked fields (dated by `last_updated_datetime`/`last_closed_datetime`) and, for a
        related-item completion, SearchRelatedItems of that type. At most `max_cases` cases per run
        (the Cases quotas are shared); the rest stay due for the next run.
        """
        now = now or self.clock.now()
        due = self.store.due_before(now, limit=max_due)
        by_case: dict[tuple[str, str], list[StoredSla]] = {}
        for sla in due:
            by_case.setdefault((sla.domain_id, sla.case_id), []).append(sla)
        checked = calls = repairs = 0
        transitions: list[SlaTransition] = []
        throttled = False
        cases = list(by_case.items())
        for (domain_id, case_id), slas in cases[:max_cases]:
            try:
                check = self._check_case(domain_id, case_id, slas, now)
            except (CasesThrottledError, CasesUnavailableError) as exc:
                throttled = True
                logger.warning("reconciliation stopped: Cases", case_id=case_id, error=type(exc).__name__)
                break
            calls += check.calls
            checked += 1
            outcome = self._apply(domain_id, case_id, check.observe, tick=now)
            changed = {t.sla_key for t in outcome.transitions}
            repairs += len(changed)
            transitions += outcome.transitions
            for sla in slas:
                state = outcome.states.get(sla.state.key, sla.state)
                if state.status.is_open:
                    self.store.defer_check(case_id, state.key, now + _recheck_after(state, now))
            if changed:
                logger.info("sla repaired", case_id=case_id, slas=sorted(changed))
        return ReconcileReport(
            due=len(due),
            cases_checked=checked,
            cases_left=len(cases) - checked,
            cases_calls=calls,
            repairs=repairs,
            transitions=tuple(transitions),
            throttled=throttled,
        )

    def _check_case(
        self, domain_id: str, case_id: str, slas: Sequence[StoredSla], now: datetime
    ) -> _CaseCheck:
        check = _CaseCheck()
        origins = {s.state.origin for s in slas}
        try:
            if SlaOrigin.CASES in origins and self.cases_slas is not None:
                check.calls += 1
                for report in self.cases_slas.case_slas(domain_id, case_id):
                    check.observations += report.observations()
            policies = {p.key: p for p in self.policies}
            due_policies = [policies[s.state.key] for s in slas if s.state.key in policies]
            if any(p.complete_field for p in due_policies) and self.cases_reader is not None:
                tracked = tracked_fields(self.policies)
                check.calls += 1
                _, values = self.cases_reader.get_case_fields(domain_id, case_id, reconcile_fields(tracked))
                check.observations += observe_case_read(values, tracked, now)
            item_types = sorted({p.complete_item for p in due_policies if p.complete_item})
            if item_types and self.cases_slas is not None:
                for item_type in item_types:
                    check.calls += 1
                    for item_id, created in self.cases_slas.related_items(domain_id, case_id, item_type):
                        check.observations.append(
                            Observation(created, ObsKind.ITEM, item_type=item_type, ref=item_id)
                        )
        except CaseNotFoundError:
            check.observations = [Observation(now, ObsKind.DELETED, source="reconcile")]
        return check

    # -- the apply loop --------------------------------------------------------------------------
    def _apply(
        self,
        domain_id: str,
        case_id: str,
        observe: Callable[[CaseSlaLog], Iterable[Observation]],
        *,
        tick: datetime | None = None,
        case: EnrichedCase | None = None,
    ) -> SlaOutcome:
        for attempt in range(1, self.max_attempts + 1):
            record = self.store.load(domain_id, case_id)
            log = record.log.merge(observe(record.log), horizon=tick)
            states = evaluate(log, self.policies)
            now = self.clock.now()
            reached = due_without_timer(states.values(), now)
            if reached is not None:  # a target already passed: no timer will fire for it
                log = log.with_horizon(reached)
                states = evaluate(log, self.policies)
            old = {key: stored.state for key, stored in record.slas.items()}
            changed = [state for key, state in states.items() if old.get(key) != state]
            if not changed and log.observations == record.log.observations:
                # Nothing new (a duplicate), or only the horizon moved without changing any SLA (a
                # stale timer): nothing to write. A later apply re-derives the horizon from its clock.
                return SlaOutcome(case_id, attempts=attempt, states=states)
            self._sync_timers(log.domain_id or domain_id, case_id, record, changed, now)
            transitions = self._signal(log.domain_id or domain_id, case_id, record, changed, case)
            try:
                self.store.save(record, log, changed)
            except SlaConflictError:
                logger.info("sla write lost a race, applying again", case_id=case_id, attempt=attempt)
                if attempt < self.max_attempts:
                    # full jitter: contending writers of one case spread out instead of colliding again
                    self._sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))  # noqa: S311
                continue
            self.transitions.extend(transitions)
            return SlaOutcome(case_id, tuple(transitions), True, attempt, states)
        raise SlaConflictError(
            f"case {case_id}: SLA state still contended after {self.max_attempts} attempts"
        )

    def _sync_timers(
        self, domain_id: str, case_id: str, record: SlaCaseRecord, changed: Sequence[SlaState], now: datetime
    ) -> None:
        if self.timers is None:
            return
        for state in changed:
            before = record.slas.get(state.key)
            if before is not None and before.state.timing == state.timing:
                continue
            for kind, timer in desired_timers(domain_id, case_id, state, self.warning_fraction, now).items():
                if timer is not None:
                    self.timers.set(timer)
                elif before is not None and before.state.status is SlaStatus.ACTIVE:
                    self.timers.cancel(case_id, state.key, kind)

    def _signal(
        self,
        domain_id: str,
        case_id: str,
        record: SlaCaseRecord,
        changed: Sequence[SlaState],
        case: EnrichedCase | None,
    ) -> list[SlaTransition]:
        applied: list[SlaTransition] = []
        view = case
        for state in changed:
            before = record.slas.get(state.key)
            for t in new_transitions(before.state if before is not None else None, state):
                applied.append(
                    SlaTransition(
                        domain_id,
                        case_id,
                        state.key,
                        state.name,
                        state.origin,
                        t.status,
                        t.at,
                        t.cycle,
                        t.target_time,
                    )
                )
                kind = SIGNAL_OF.get(t.status)
                if kind is None:
                    continue
                if view is None:
                    view = self._case_view(domain_id, case_id)
                signal = SlaSignal(
                    kind=kind,
                    domain_id=domain_id,
                    case_id=case_id,
                    sla_name=state.name,
                    origin=state.origin.value,
                    target_time=t.target_time,
                    at=t.at,
                )
                self.signals.on_sla_signal(signal, view)
        return applied

    def _case_view(self, domain_id: str, case_id: str) -> EnrichedCase | None:
        """The stored enriched view of the case (for signals outside an event), if there is one."""
        return self.snapshots.get(domain_id, case_id) if self.snapshots is not None else None

    def take_transitions(self) -> list[SlaTransition]:
        """The transitions recorded so far, forgetting them."""
        taken = list(self.transitions)
        self.transitions.clear()
        return taken


def _find(record: SlaCaseRecord, key: str | None, name: str) -> StoredSla | None:
    if key is not None:
        return record.slas.get(key)
    return next((s for s in record.slas.values() if s.state.name == name), None)


def _recheck_after(state: SlaState, now: datetime) -> timedelta:
    age = max(now - state.target_time, timedelta())
    return min(max(age / 4, RECHECK_MIN), RECHECK_MAX)


__all__ = ["ReconcileReport", "SlaTimerPayload", "SlaTracker", "SystemClock"]
