"""A breach or warning timer fired (EventBridge Scheduler -> the sla-timer function)."""

from __future__ import annotations

from datetime import datetime

from casewatch.app.sla.apply import SlaApplier
from casewatch.app.sla.cases_check import CaseCheck, CasesCheck
from casewatch.domain.sla.fold import evaluate
from casewatch.domain.sla.model import SlaOutcome, SlaStatus
from casewatch.domain.sla.records import SlaCaseRecord, StoredSla
from casewatch.domain.sla.timers import TimerKind
from casewatch.errors import CasesError
from casewatch.models.signals import SlaSignal, SlaSignalKind, SlaTimerPayload
from casewatch.observability import SLA_BREACH_CHECK_FAILED, logger
from casewatch.ports import MetricsRecorder


class SlaTimer:
    """`verify_breaches`: before declaring a breach, ask Cases whether an event it never delivered
    completed the SLA after all (one check for the rare timer that would breach; none for stale ones)."""

    def __init__(
        self,
        *,
        applier: SlaApplier,
        metrics: MetricsRecorder,
        check: CasesCheck | None = None,
        verify_breaches: bool = True,
    ) -> None:
        self.applier = applier
        self.metrics = metrics
        self.check = check
        self.verify_breaches = verify_breaches

    def on_timer(self, payload: SlaTimerPayload) -> SlaOutcome:
        """A breach timer: time reached the target (judged at the timer's time, not when it ran).
        A warning timer: emit AT_RISK if the SLA is still Active, running, with that target.
        A stale timer (the SLA met, moved, or gone) changes nothing."""
        now = self.applier.clock.now()
        if payload.kind == TimerKind.WARNING.value:
            return self._warn(payload, now)
        tick = min(payload.target_time, now)
        check = self._verify_breach(payload.domain_id, payload.case_id, tick, now)
        return self.applier.apply(payload.domain_id, payload.case_id, check.observe, tick=tick)

    def _verify_breach(self, domain_id: str, case_id: str, tick: datetime, now: datetime) -> CaseCheck:
        if not self.verify_breaches or self.check is None or not self.check.enabled:
            return CaseCheck()
        record = self.applier.store.load(domain_id, case_id)
        states = evaluate(record.log.merge((), horizon=tick), self.applier.policies)
        breaching = [
            stored
            for key, stored in record.slas.items()
            if stored.state.status is SlaStatus.ACTIVE
            and key in states
            and states[key].status is SlaStatus.OVERDUE
        ]
        if not breaching:
            return CaseCheck()
        try:
            return self.check.check(domain_id, case_id, breaching, now)
        except CasesError as exc:  # best effort: throttled, unavailable, refused: judge on what was seen
            self.metrics.count(SLA_BREACH_CHECK_FAILED)
            logger.warning("could not verify a breach with Cases", case_id=case_id, error=type(exc).__name__)
            return CaseCheck()

    def _warn(self, payload: SlaTimerPayload, now: datetime) -> SlaOutcome:
        record = self.applier.store.load(payload.domain_id, payload.case_id)
        stored = _find(record, payload.sla_key, payload.sla_name)
        if stored is None:
            return SlaOutcome(payload.case_id)
        state = stored.state
        outcome = SlaOutcome(payload.case_id, states={state.key: state})
        if state.status is not SlaStatus.ACTIVE or state.paused or state.target_time != payload.target_time:
            return outcome
        if now >= state.target_time:
            return outcome
        signal = SlaSignal(
            kind=SlaSignalKind.AT_RISK,
            domain_id=record.log.domain_id or payload.domain_id,
            case_id=payload.case_id,
            sla_key=state.key,
            sla_name=state.name,
            origin=state.origin.value,
            target_time=state.target_time,
            at=min(now, state.target_time),
        )
        self.applier.signal(signal, self.applier.case_view(payload.domain_id, payload.case_id))
        logger.info("sla at risk", case_id=payload.case_id, sla=state.key)
        return outcome


def _find(record: SlaCaseRecord, key: str | None, name: str) -> StoredSla | None:
    if key is not None:
        return record.slas.get(key)
    return next((s for s in record.slas.values() if s.state.name == name), None)


__all__ = ["SlaTimer"]
