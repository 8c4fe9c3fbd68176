"""A breach or warning timer fired (EventBridge Scheduler -> the sla-timer function).

A breach timer fires `breach_grace` after its SLA's target. If the SLA is still open then, and the
change feed's watermark has passed the target (every change of the case in Cases up to the target has
been applied, whether or not its event arrived), the breach is declared: time reached the target.
No Cases call: the feed's polls read Cases for every SLA at once. If the feed is behind, the timer is set
again one feed period later. A warning timer emits "SLA at risk" if the SLA is still Active, running,
with the same target. A stale timer (the SLA met, moved, or gone) changes nothing.

A signal whose delivery fails for good (`PermanentDeliveryError`: a disabled key, a deleted topic) is
written with its notification pending in the timer's claim, and the claim is left *owed* to the change
feed: every poll sends what is pending again until it goes through (the cause fixed), then settles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from casewatch.app.case_update import CaseUpdater, Trigger, Update
from casewatch.domain.case_record import CaseRecord
from casewatch.domain.sla.model import SlaState, SlaStatus
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.errors import PermanentDeliveryError
from casewatch.models.signals import SlaSignal, SlaSignalKind, SlaTimerPayload
from casewatch.observability import SLA_BREACHES_DEFERRED, logger
from casewatch.ports import FeedState, MetricsRecorder


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    update: Update
    deferred: bool = False  # the feed had not passed the target yet: the timer was set again


class SlaTimer:
    def __init__(
        self, *, updater: CaseUpdater, metrics: MetricsRecorder, feed: FeedState, feed_period: timedelta
    ) -> None:
        self.updater = updater
        self.metrics = metrics
        self.feed = feed
        self.feed_period = feed_period

    def on_timer(self, payload: SlaTimerPayload, *, remaining_ms: int | None = None) -> TimerOutcome:
        try:
            return self._on_timer(payload, remaining_ms)
        except PermanentDeliveryError:
            # Written, its sends pending in the claim: the change feed's polls send them once they can.
            self.feed.owe(payload.domain_id, [(payload.case_id, claim_key(payload))])
            raise

    def _on_timer(self, payload: SlaTimerPayload, remaining_ms: int | None) -> TimerOutcome:
        key = claim_key(payload)
        deadline = self.updater.deadline(remaining_ms)
        if payload.kind == TimerKind.WARNING.value:
            update = self.updater.apply(
                payload.domain_id,
                payload.case_id,
                key,
                lambda record: self._warn(payload, record),
                deadline=deadline,
            )
            return TimerOutcome(update)
        behind: list[datetime | None] = []

        def breach(record: CaseRecord) -> Trigger | None:
            state = _find(record, payload)
            if (
                state is None
                or state.status is not SlaStatus.ACTIVE
                or state.target_time != payload.target_time
            ):
                return None  # met, moved or gone since the timer was set
            if record.watermark is None or record.watermark < payload.target_time:
                behind.append(record.watermark)
                return None
            return Trigger(horizon=payload.target_time)

        update = self.updater.apply(
            payload.domain_id, payload.case_id, key, breach, deadline=deadline, with_watermark=True
        )
        if behind and self.updater.timers is not None:
            self.metrics.count(SLA_BREACHES_DEFERRED)
            fire_at = self.updater.clock.now() + self.feed_period
            logger.info(
                "breach check deferred: the change feed is behind the target", case_id=payload.case_id
            )
            self.updater.timers.set(
                TimerSpec(
                    TimerKind.BREACH,
                    payload.domain_id,
                    payload.case_id,
                    payload.sla_key or "",
                    payload.sla_name,
                    fire_at,
                    payload.target_time,
                )
            )
        return TimerOutcome(update, deferred=bool(behind))

    def _warn(self, payload: SlaTimerPayload, record: CaseRecord) -> Trigger | None:
        state = _find(record, payload)
        now = self.updater.clock.now()
        if state is None or state.status is not SlaStatus.ACTIVE or state.paused:
            return None
        if state.target_time != payload.target_time or now >= state.target_time:
            return None
        signal = SlaSignal(
            kind=SlaSignalKind.AT_RISK,
            domain_id=record.domain_id,
            case_id=record.case_id,
            sla_key=state.key,
            sla_name=state.name,
            origin=state.origin.value,
            target_time=state.target_time,
            at=min(now, state.target_time),
        )
        logger.info("sla at risk", case_id=record.case_id, sla=state.key)
        return Trigger(signals=(signal,))


def claim_key(payload: SlaTimerPayload) -> str:
    """One timer (kind, SLA, target) is applied once, however often Scheduler delivers it."""
    return f"timer:{payload.kind}:{payload.sla_key or payload.sla_name}:{payload.target_time.isoformat()}"


def _find(record: CaseRecord, payload: SlaTimerPayload) -> SlaState | None:
    states = record.states()
    if payload.sla_key is not None:
        return states.get(payload.sla_key)
    return next((s for s in states.values() if s.name == payload.sla_name), None)


__all__ = ["SlaTimer", "TimerOutcome", "claim_key"]
