"""The one loop under every use case: load the case, decide, write state and claim together, send.

A *trigger* (a Cases event, an SLA timer, the change feed's news about a case) is applied to the case's
record (`casewatch.domain.case_record`) in four steps:

1. load the record, with the trigger's claim: a claim already done is a duplicate (nothing happens), a
   pending one with a live lease a concurrent delivery (`DuplicateInProgressError`, retried later), a
   pending one whose lease expired the retry of a claimant that died after its write (its outbox is sent);
2. decide (`casewatch.app.case_step.Step`): the SLA fold extended with the trigger's observations (or
   re-folded from the log when they arrive out of order), the SLA transitions and their signals, the
   notifications the rules ask for (status notifications checked against the case's status order), the
   enriched bus events, the timers to set or cancel;
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

from casewatch.app.case_step import Decider, Effects, Step, Trigger
from casewatch.backoff import full_jitter
from casewatch.domain.case_record import (
    CaseRecord,
    Claim,
    Outbox,
)
from casewatch.domain.sla.model import (
    PolicySpec,
    SlaConflictError,
    SlaState,
    SlaTransition,
)
from casewatch.errors import DeliveryError, DuplicateInProgressError, PermanentDeliveryError
from casewatch.observability import (
    BUS_EVENTS_PUT,
    DUPLICATE_TRIGGERS,
    NOTIFICATIONS_PUBLISHED,
    SLA_TRANSITIONS,
    logger,
)
from casewatch.ports import CaseStore, Clock, EnrichedBus, MetricsRecorder, Notifier, SlaTimers
from casewatch.settings import Settings

MAX_ATTEMPTS: Final = 8  # load-decide-write rounds before giving up on a contended case (retryable)
BACKOFF_BASE_S: Final = 0.01
BACKOFF_CAP_S: Final = 0.5
DEFAULT_LEASE: Final = timedelta(minutes=15)  # Lambda's longest invocation, when no deadline is known


@dataclass(frozen=True, slots=True)
class Update:
    """What applying a trigger did."""

    kind: Literal["applied", "unchanged", "duplicate", "recovered"]
    states: dict[str, SlaState] = field(default_factory=dict)
    transitions: tuple[SlaTransition, ...] = ()
    notifications: int = 0
    attempts: int = 0


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

    def _decider(self) -> Decider:
        return Decider(self.settings, self.policies, self.metrics, self.breach_grace)

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
            step = Step(self._decider(), record, trigger, now)
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
        effects = Effects()
        decider = self._decider()
        event = trigger.event if trigger is not None else None
        decider.messages(
            effects, record, event=event, view=view, marks={}, signals=outbox.signals, signal_view=view
        )
        pending = set(outbox.pending) if outbox.pending is not None else None
        if pending is not None:
            effects.notifications = [n for n in effects.notifications if n.notification_id in pending]
            effects.bus_events = [b for b in effects.bus_events if b.event_key in pending]
        states = record.states()
        for key in outbox.timer_keys:
            if key in states:
                decider.timers_for(effects, record, None, states[key], self.clock.now())
        logger.warning(
            "resending the side effects of an interrupted claim", case_id=record.case_id, claim=claim_key
        )
        self._send(record.case_id, claim_key, effects)
        return Update("recovered", states=states, notifications=len(effects.notifications), attempts=attempt)

    # -- side effects ------------------------------------------------------------------------------
    def _send(self, case_id: str, claim_key: str, effects: Effects) -> None:
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


__all__ = ["CaseUpdater", "Trigger", "Update"]
