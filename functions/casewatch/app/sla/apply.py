"""The one loop under every SLA use case: load the case, merge observations, fold, act, write.

Load the case's SLA record, merge new observations into its log, fold (`casewatch.domain.sla.fold`),
bring the timers in line and emit signals for new transitions, then write — conditionally on the
revision loaded; a writer that lost a race reloads and applies again (bounded, with jitter). Side
effects come before the write, so a crash or a lost race repeats them (timers are idempotent upserts,
signals carry a stable `signal_id`) instead of losing them; a duplicate changes nothing and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

from casewatch.backoff import full_jitter
from casewatch.domain.sla.fold import due_without_timer, evaluate, new_transitions
from casewatch.domain.sla.log import CaseSlaLog, Observation
from casewatch.domain.sla.model import (
    PolicySpec,
    SlaConflictError,
    SlaOutcome,
    SlaState,
    SlaStatus,
    SlaTransition,
)
from casewatch.domain.sla.records import SlaCaseRecord
from casewatch.domain.sla.timers import desired_timers
from casewatch.models.enriched import EnrichedCase
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.observability import SLA_TRANSITIONS, logger
from casewatch.ports import Clock, MetricsRecorder, SlaSignalSink, SlaStore, SlaTimers, SnapshotStore

MAX_ATTEMPTS: Final = 8  # load-fold-write rounds before giving up on a contended case (retryable)
BACKOFF_BASE_S: Final = 0.01
BACKOFF_CAP_S: Final = 0.5

SIGNAL_OF: Final = {
    SlaStatus.OVERDUE: SlaSignalKind.BREACHED,
    SlaStatus.MET: SlaSignalKind.MET,
    SlaStatus.NOT_MET: SlaSignalKind.NOT_MET,
}

Observe = Callable[[CaseSlaLog], Iterable[Observation]]
"""The new observations for a case, given its stored log."""
NextChecks = Callable[[Mapping[str, SlaState]], Mapping[str, datetime]]
"""Reconciliation's next look at open SLAs, given the states after the apply."""


class SlaApplier:
    def __init__(
        self,
        *,
        store: SlaStore,
        signals: SlaSignalSink,
        policies: Sequence[PolicySpec],
        clock: Clock,
        metrics: MetricsRecorder,
        timers: SlaTimers | None = None,
        warning_fraction: float | None = None,
        snapshots: SnapshotStore | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.signals = signals
        self.policies = tuple(policies)
        self.clock = clock
        self.metrics = metrics
        self.timers = timers
        self.warning_fraction = warning_fraction
        self.snapshots = snapshots
        self.max_attempts = max_attempts
        self._sleep = sleep

    def apply(
        self,
        domain_id: str,
        case_id: str,
        observe: Observe,
        *,
        tick: datetime | None = None,
        case: EnrichedCase | None = None,
        next_checks: NextChecks | None = None,
    ) -> SlaOutcome:
        """Apply what `observe` adds to the case (and time reaching `tick`); `case` is the enriched view
        signals carry (else the stored snapshot is read when a signal needs it)."""
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
            checks = dict(next_checks(states)) if next_checks is not None else {}
            if not changed and not checks and log.observations == record.log.observations:
                # Nothing new (a duplicate), or only the horizon moved without changing any SLA (a
                # stale timer): nothing to write. A later apply re-derives the horizon from its clock.
                return SlaOutcome(case_id, attempts=attempt, states=states)
            self._sync_timers(log.domain_id or domain_id, case_id, record, changed, now)
            transitions = self._signal(log.domain_id or domain_id, case_id, record, changed, case)
            try:
                self.store.save(record, log, changed, next_checks=checks)
            except SlaConflictError:
                logger.info("sla write lost a race, applying again", case_id=case_id, attempt=attempt)
                if attempt < self.max_attempts:
                    self._sleep(full_jitter(attempt, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S))
                continue
            if transitions:
                self.metrics.count(SLA_TRANSITIONS, len(transitions))
            return SlaOutcome(case_id, tuple(transitions), True, attempt, states)
        raise SlaConflictError(
            f"case {case_id}: SLA state still contended after {self.max_attempts} attempts"
        )

    def case_view(self, domain_id: str, case_id: str) -> EnrichedCase | None:
        """The stored enriched view of the case (for signals outside an event), if there is one."""
        return self.snapshots.get(domain_id, case_id) if self.snapshots is not None else None

    def signal(self, signal: SlaSignal, case: EnrichedCase | None) -> None:
        self.signals.on_sla_signal(signal, case)

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
                    view = self.case_view(domain_id, case_id)
                signal = SlaSignal(
                    kind=kind,
                    domain_id=domain_id,
                    case_id=case_id,
                    sla_key=state.key,
                    sla_name=state.name,
                    origin=state.origin.value,
                    target_time=t.target_time,
                    at=t.at,
                )
                self.signals.on_sla_signal(signal, view)
        return applied


__all__ = ["MAX_ATTEMPTS", "NextChecks", "Observe", "SlaApplier"]
