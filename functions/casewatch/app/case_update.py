"""The one loop under every use case: load the case, decide, write state and claim together, send.

A *trigger* (a Cases event, an SLA timer, the change feed's news about a case) is applied to the case's
record (`casewatch.domain.case_record`) in four steps:

1. load the record, with the trigger's claim: a claim already done is a duplicate (nothing happens), a
   pending one with a live lease a concurrent delivery (`DuplicateInProgressError`, retried later), a
   pending one whose lease expired the retry of a claimant that died after its write (its outbox is sent);
2. decide (`Step`): the SLA fold extended with the trigger's observations (or re-folded from the log
   when they arrive out of order), the SLA transitions and their signals, the notifications the rules
   ask for (status notifications checked against the case's status order), the enriched bus events,
   the timers to set or cancel;
3. write the new state and the trigger's claim in one conditional write (a writer that lost a race
   reloads and decides again); the claim holds the outbox while the side effects are sent;
4. send: timers, one SNS Publish per notification, one PutEvents for the bus events; then mark the claim
   done (or keep the ids that failed pending). Errors that retrying cannot cure park the trigger
   (`PermanentDeliveryError`); the others propagate, and the retry sends only what is still pending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from casewatch.backoff import full_jitter
from casewatch.domain.case_record import (
    LIVE_SCOPE,
    CaseChange,
    CaseRecord,
    Claim,
    Outbox,
    StatusMark,
    status_hash,
)
from casewatch.domain.enrichment import supersedes
from casewatch.domain.notifications.bus import BusEvent, case_bus_event, sla_bus_event
from casewatch.domain.notifications.render import Notification
from casewatch.domain.notifications.rules import evaluate_case_event, evaluate_sla_signal
from casewatch.domain.sla.fold import FoldState, fold, new_transitions
from casewatch.domain.sla.log import MAX_LOG_BYTES, MAX_OBSERVATIONS, CaseSlaLog, Observation, json_bytes
from casewatch.domain.sla.model import (
    PolicySpec,
    SlaConflictError,
    SlaState,
    SlaStatus,
    SlaTransition,
)
from casewatch.domain.sla.timers import TimerKind, TimerSpec, desired_timers
from casewatch.errors import DeliveryError, DuplicateInProgressError, PermanentDeliveryError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.observability import (
    BUS_EVENTS_PUT,
    DUPLICATE_TRIGGERS,
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_STALE,
    REPLAYS_SKIPPED,
    SLA_TRANSITIONS,
    logger,
)
from casewatch.ports import CaseStore, Clock, EnrichedBus, MetricsRecorder, Notifier, SlaTimers
from casewatch.settings import Settings

MAX_ATTEMPTS: Final = 8  # load-decide-write rounds before giving up on a contended case (retryable)
BACKOFF_BASE_S: Final = 0.01
BACKOFF_CAP_S: Final = 0.5
DEFAULT_LEASE: Final = timedelta(minutes=15)  # Lambda's longest invocation, when no deadline is known

SIGNAL_OF: Final = {
    SlaStatus.OVERDUE: SlaSignalKind.BREACHED,
    SlaStatus.MET: SlaSignalKind.MET,
    SlaStatus.NOT_MET: SlaSignalKind.NOT_MET,
}


@dataclass(frozen=True, slots=True)
class Trigger:
    """What a trigger brings to a case (see `CaseUpdater.apply`)."""

    event: CaseEvent | None = None  # a Cases event: its own notifications and bus event
    view: EnrichedCase | None = None  # the enriched case as of the event (what its messages show)
    snapshot: EnrichedCase | None = None  # the view to store, if it is newer than the stored one
    observations: tuple[Observation, ...] = ()
    horizon: datetime | None = None  # time known to have reached this far (breaches are due)
    signals: tuple[SlaSignal, ...] = ()  # signals besides the SLA transitions' (an "at risk" warning)


@dataclass(frozen=True, slots=True)
class Update:
    """What applying a trigger did."""

    kind: Literal["applied", "unchanged", "duplicate", "recovered"]
    states: dict[str, SlaState] = field(default_factory=dict)
    transitions: tuple[SlaTransition, ...] = ()
    notifications: int = 0
    attempts: int = 0


@dataclass
class _Effects:
    notifications: list[Notification] = field(default_factory=list)
    bus_events: list[BusEvent] = field(default_factory=list)
    timers_set: list[TimerSpec] = field(default_factory=list)
    timers_cancelled: list[tuple[str, str, TimerKind]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.notifications or self.bus_events or self.timers_set or self.timers_cancelled)

    def ids(self) -> tuple[str, ...]:
        return tuple(n.notification_id for n in self.notifications) + tuple(
            b.event_key for b in self.bus_events
        )


class CaseUpdater:
    def __init__(
        self,
        *,
        settings: Settings,
        store: CaseStore,
        notifier: Notifier,
        bus: EnrichedBus,
        clock: Clock,
        metrics: MetricsRecorder,
        policies: Sequence[PolicySpec],
        timers: SlaTimers | None = None,
        breach_grace: timedelta = timedelta(),
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.notifier = notifier
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.policies = tuple(policies)
        self.timers = timers
        self.breach_grace = breach_grace
        self.max_attempts = max_attempts
        self._sleep = sleep

    def deadline(self, remaining_ms: int | None) -> datetime | None:
        """When the invocation ends, from its remaining time (None: unknown)."""
        return self.clock.now() + timedelta(milliseconds=remaining_ms) if remaining_ms is not None else None

    # -- the loop ----------------------------------------------------------------------------------
    def apply(
        self,
        domain_id: str,
        case_id: str,
        claim_key: str,
        decide: Callable[[CaseRecord], Trigger | None],
        *,
        deadline: datetime | None = None,
        with_watermark: bool = False,
    ) -> Update:
        """Apply the trigger `decide` makes of the case's record (None: nothing to do), claimed as
        `claim_key`. `deadline`: when the invocation ends (the claim's lease)."""
        with_log = False
        for attempt in range(1, self.max_attempts + 1):
            record = self.store.load(
                domain_id, case_id, claim_key=claim_key, with_log=with_log, with_watermark=with_watermark
            )
            now = self.clock.now()
            claim = record.claim
            if claim is not None and claim.done:
                self.metrics.count(DUPLICATE_TRIGGERS)
                return Update("duplicate", states=record.states(), attempts=attempt)
            if claim is not None and claim.in_progress(now):
                raise DuplicateInProgressError(
                    f"case {case_id}: {claim_key.split(':', 1)[0]} in progress elsewhere"
                )
            trigger = decide(record)
            if claim is not None:  # the claimant died after its write: send what it left pending
                return self._recover(record, claim, claim_key, trigger, attempt)
            if trigger is None:
                return Update("unchanged", states=record.states(), attempts=attempt)
            step = _Step(self, record, trigger, now)
            if step.needs_log:
                with_log = True
                continue  # decide again with the log (an out-of-order observation: re-fold)
            if not step.changes_anything():
                return Update("unchanged", states=step.states, attempts=attempt)
            lease = deadline or now + DEFAULT_LEASE
            change = step.change(
                claim_key, Claim(now, done=not step.effects, lease_until=lease, outbox=step.outbox())
            )
            try:
                self.store.commit(record, change)
            except SlaConflictError:
                logger.info("case write lost a race, applying again", case_id=case_id, attempt=attempt)
                if attempt < self.max_attempts:
                    self._sleep(full_jitter(attempt, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S))
                continue
            if step.transitions:
                self.metrics.count(SLA_TRANSITIONS, len(step.transitions))
            if step.effects:
                self._send(case_id, claim_key, step.effects)
            return Update(
                "applied",
                states=step.states,
                transitions=step.transitions,
                notifications=len(step.effects.notifications),
                attempts=attempt,
            )
        raise SlaConflictError(f"case {case_id}: still contended after {self.max_attempts} attempts")

    def _recover(
        self, record: CaseRecord, claim: Claim, claim_key: str, trigger: Trigger | None, attempt: int
    ) -> Update:
        outbox = claim.outbox or Outbox()
        view = (trigger.view if trigger is not None else None) or record.snapshot
        effects = _Effects()
        if trigger is not None and trigger.event is not None:
            effects.notifications += self._event_notifications(trigger.event, view, record, {})[0]
            bus_event = case_bus_event(trigger.event, view, self.settings)
            if bus_event is not None:
                effects.bus_events.append(bus_event)
        for signal in outbox.signals:
            effects.notifications += evaluate_sla_signal(signal, view, self.settings)
            effects.bus_events.append(sla_bus_event(signal, view, self.settings))
        pending = set(outbox.pending) if outbox.pending is not None else None
        if pending is not None:
            effects.notifications = [n for n in effects.notifications if n.notification_id in pending]
            effects.bus_events = [b for b in effects.bus_events if b.event_key in pending]
        states = record.states()
        for key in outbox.timer_keys:
            if key in states:
                self._timers_for(effects, record, None, states[key], self.clock.now())
        logger.warning(
            "resending the side effects of an interrupted claim", case_id=record.case_id, claim=claim_key
        )
        self._send(record.case_id, claim_key, effects)
        return Update("recovered", states=states, notifications=len(effects.notifications), attempts=attempt)

    # -- side effects ------------------------------------------------------------------------------
    def _send(self, case_id: str, claim_key: str, effects: _Effects) -> None:
        """Timers, notifications, then the bus events (one PutEvents); then the claim is done. Every step
        is attempted; what failed stays pending in the claim."""
        if self.timers is not None:
            for timer in effects.timers_set:
                self.timers.set(timer)
            for cancelled in effects.timers_cancelled:
                self.timers.cancel(*cancelled)
        errors: list[tuple[str, str, Exception]] = []
        for notification in effects.notifications:
            try:
                self.notifier.publish(notification)
            except Exception as exc:
                errors.append((notification.notification_id, f"notification {notification.rule}", exc))
                logger.warning(
                    "notification failed",
                    rule=notification.rule,
                    notification_id=notification.notification_id,
                    case_id=notification.case_id,
                    error=type(exc).__name__,
                )
            else:
                self.metrics.count(NOTIFICATIONS_PUBLISHED)
        if effects.bus_events:
            try:
                self.bus.put(effects.bus_events)
            except Exception as exc:
                for bus_event in effects.bus_events:
                    errors.append((bus_event.event_key, f"enriched event {bus_event.detail_type}", exc))
                logger.warning(
                    "enriched events failed", count=len(effects.bus_events), error=type(exc).__name__
                )
            else:
                self.metrics.count(BUS_EVENTS_PUT, len(effects.bus_events))
        if not errors:
            self.store.complete(case_id, claim_key)
            return
        # What failed stays pending in the claim: a retry (or, after a permanent error, a redrive of the
        # parked trigger once the cause is fixed) sends only that.
        self.store.complete(case_id, claim_key, pending=sorted({key for key, _, _ in errors}))
        retryable = [
            exc for _, _, exc in errors if not (isinstance(exc, DeliveryError) and not exc.retryable)
        ]
        if retryable:
            raise retryable[0]
        raise PermanentDeliveryError("; ".join(dict.fromkeys(f"{what}: {exc}" for _, what, exc in errors)))

    # -- what a trigger means -------------------------------------------------------------------------
    def _event_notifications(
        self,
        event: CaseEvent,
        view: EnrichedCase | None,
        record: CaseRecord,
        marks: dict[str, StatusMark],
    ) -> tuple[list[Notification], int]:
        """The event's notifications in the case's status order (`marks`: the marks this write sets);
        and how many status notifications were too old to send."""
        if event.is_replay and self.settings.replays == "skip":
            self.metrics.count(REPLAYS_SKIPPED)
            return [], 0
        sent: list[Notification] = []
        stale = 0
        scope = LIVE_SCOPE if event.replay_name is None else f"replay#{event.replay_name}"
        for notification in evaluate_case_event(event, view, self.settings):
            status = notification.status_change
            if status is not None:
                at_ms = int(notification.as_of.timestamp() * 1000)
                mark = marks.get(scope) or record.status_order.get(scope)
                if mark is not None and not mark.allows(at_ms, status):
                    stale += 1
                    continue
                if mark is None or at_ms >= mark.at_ms:
                    marks[scope] = StatusMark(at_ms, status_hash(status))
            sent.append(notification)
        return sent, stale

    def _timers_for(
        self, effects: _Effects, record: CaseRecord, before: SlaState | None, state: SlaState, now: datetime
    ) -> None:
        if before is not None and before.timing == state.timing:
            return
        warning = self.settings.sla_warning_fraction
        wanted = desired_timers(
            record.domain_id, record.case_id, state, warning, now, breach_grace=self.breach_grace
        )
        previous = (
            desired_timers(
                record.domain_id, record.case_id, before, warning, now, breach_grace=self.breach_grace
            )
            if before is not None
            else {}
        )
        for kind, timer in wanted.items():
            if timer is not None:
                effects.timers_set.append(timer)
            elif previous.get(kind) is not None:  # a timer that has not fired yet: cancel it
                effects.timers_cancelled.append((record.case_id, state.key, kind))


class _Step:
    """One decision: the trigger applied to the record, in memory (see the module docstring, step 2)."""

    def __init__(self, updater: CaseUpdater, record: CaseRecord, trigger: Trigger, now: datetime) -> None:
        self.updater = updater
        self.record = record
        self.trigger = trigger
        self.now = now
        self.needs_log = False
        self.appended: tuple[Observation, ...] = ()
        self.dropped: tuple[Observation, ...] = ()
        self.refolded = False
        self.horizon = _latest(record.horizon, trigger.horizon)
        folded = self._fold()
        if folded is None:
            self.needs_log = True
            return
        self.fold = folded
        before = record.states()
        self.states = folded.states(self.horizon)
        self.changed = [s for key, s in self.states.items() if before.get(key) != s]
        self.snapshot = _newer(trigger.snapshot, record.snapshot)
        view = trigger.view or self.snapshot or record.snapshot
        self.transitions, signals = self._transitions(before)
        self.signals = (*signals, *trigger.signals)
        self.marks: dict[str, StatusMark] = {}
        self.effects = _Effects()
        if trigger.event is not None:
            notifications, stale = updater._event_notifications(trigger.event, view, record, self.marks)
            if stale:
                updater.metrics.count(NOTIFICATIONS_STALE, stale)
            self.effects.notifications += notifications
            bus_event = case_bus_event(trigger.event, view, updater.settings)
            if bus_event is not None:
                self.effects.bus_events.append(bus_event)
        signal_view = self.snapshot or record.snapshot or view
        for signal in self.signals:
            self.effects.notifications += evaluate_sla_signal(signal, signal_view, updater.settings)
            self.effects.bus_events.append(sla_bus_event(signal, signal_view, updater.settings))
        for state in self.changed:
            updater._timers_for(self.effects, record, before.get(state.key), state, now)

    def _fold(self) -> FoldState | None:
        """The fold with the trigger's observations: extended in order, or re-folded from the log (None:
        the log is needed and was not loaded)."""
        record, new = self.record, sorted(set(self.trigger.observations), key=Observation.sort_key)
        stored = record.fold
        if stored is not None and not new:
            return stored
        room = (
            record.log_size + len(new) <= MAX_OBSERVATIONS
            and record.log_bytes + json_bytes(new) <= MAX_LOG_BYTES
        )
        if stored is not None and room and stored.can_extend(new):
            extended = stored.copy()
            extended.extend(new)
            self.appended = tuple(new)
            return extended
        if record.log is None and (record.log_size or stored is not None):
            return None
        log = CaseSlaLog(
            record.domain_id, record.case_id, tuple(sorted(record.log or (), key=Observation.sort_key))
        )
        merged = log.merge(new)
        kept, before = set(merged.observations), set(log.observations)
        self.appended = tuple(o for o in merged.observations if o not in before)
        self.dropped = tuple(o for o in log.observations if o not in kept)
        self.refolded = True
        return fold(merged, self.updater.policies)

    def _transitions(self, before: dict[str, SlaState]) -> tuple[tuple[SlaTransition, ...], list[SlaSignal]]:
        record = self.record
        transitions: list[SlaTransition] = []
        signals: list[SlaSignal] = []
        for state in self.changed:
            for t in new_transitions(before.get(state.key), state):
                transitions.append(
                    SlaTransition(
                        record.domain_id,
                        record.case_id,
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
                if kind is not None:
                    signals.append(
                        SlaSignal(
                            kind=kind,
                            domain_id=record.domain_id,
                            case_id=record.case_id,
                            sla_key=state.key,
                            sla_name=state.name,
                            origin=state.origin.value,
                            target_time=t.target_time,
                            at=t.at,
                        )
                    )
        return tuple(transitions), signals

    def changes_anything(self) -> bool:
        record = self.record
        return bool(
            self.effects
            or self.appended
            or self.dropped
            or self.snapshot is not record.snapshot
            or self.horizon != record.horizon
            or self.marks
            or self.changed
        )

    def due_at(self) -> datetime | None:
        """When the earliest open, running SLA is due a breach check (its target and the grace)."""
        due = [
            s.target_time + self.updater.breach_grace
            for s in self.states.values()
            if s.status is SlaStatus.ACTIVE and not s.paused
        ]
        return min(due, default=None)

    def outbox(self) -> Outbox:
        return Outbox(
            signals=tuple(self.signals),
            timer_keys=tuple(sorted({s.key for s in self.changed})),
        )

    def change(self, claim_key: str, claim: Claim) -> CaseChange:
        return CaseChange(
            claim_key=claim_key,
            claim=claim,
            snapshot=self.snapshot if self.snapshot is not self.record.snapshot else None,
            fold=self.fold if (self.appended or self.refolded or self.record.fold is None) else None,
            horizon=self.horizon,
            appended=self.appended,
            dropped=self.dropped,
            status_order=self.marks,
            due_at=self.due_at(),
            transitions=self.transitions,
        )


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def _newer(candidate: EnrichedCase | None, stored: EnrichedCase | None) -> EnrichedCase | None:
    """The view to keep: the candidate if it supersedes the stored one (see `domain.enrichment`)."""
    if candidate is None:
        return stored
    if stored is None or supersedes(candidate, stored):
        return candidate
    return stored


__all__ = ["CaseUpdater", "Trigger", "Update"]
