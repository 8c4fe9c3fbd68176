"""One decision of the update loop (`casewatch.app.case_update`, step 2), in memory: a trigger applied
to a case's record gives the new SLA fold and states, their transitions and signals, the notifications
and bus events to send, the timers to set or cancel, and the change to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

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
from casewatch.domain.sla.log import (
    MAX_LOG_BYTES,
    MAX_OBSERVATIONS,
    CaseSlaLog,
    Observation,
    json_bytes_after,
)
from casewatch.domain.sla.model import PolicySpec, SlaState, SlaStatus, SlaTransition
from casewatch.domain.sla.timers import TimerKind, TimerSpec, desired_timers
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.observability import NOTIFICATIONS_STALE, REPLAYS_SKIPPED
from casewatch.ports import MetricsRecorder
from casewatch.settings import Settings

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


@dataclass
class Effects:
    """The side effects one step decides (sent after its write)."""

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


@dataclass(frozen=True, slots=True)
class Decider:
    """What a step decides with: the settings, the SLA policies, the breach grace (and a metrics sink
    for what it skips)."""

    settings: Settings
    policies: tuple[PolicySpec, ...]
    metrics: MetricsRecorder
    breach_grace: timedelta

    def messages(
        self,
        effects: Effects,
        record: CaseRecord,
        *,
        event: CaseEvent | None,
        view: EnrichedCase | None,
        marks: dict[str, StatusMark],
        signals: Sequence[SlaSignal],
        signal_view: EnrichedCase | None,
    ) -> int:
        """Add the notifications and bus events of an event (in the case's status order, `marks`: the
        marks this write sets) and of SLA signals to `effects`; how many status notifications were too
        old to send."""
        stale = 0
        if event is not None:
            notifications, stale = self.event_notifications(event, view, record, marks)
            effects.notifications += notifications
            bus_event = case_bus_event(event, view, self.settings)
            if bus_event is not None:
                effects.bus_events.append(bus_event)
        for signal in signals:
            effects.notifications += evaluate_sla_signal(signal, signal_view, self.settings)
            effects.bus_events.append(sla_bus_event(signal, signal_view, self.settings))
        return stale

    def event_notifications(
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

    def timers_for(
        self, effects: Effects, record: CaseRecord, before: SlaState | None, state: SlaState, now: datetime
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


class Step:
    """One decision: the trigger applied to the record, in memory."""

    def __init__(self, decider: Decider, record: CaseRecord, trigger: Trigger, now: datetime) -> None:
        self.decider = decider
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
        self.effects = Effects()
        signal_view = self.snapshot or record.snapshot or view
        stale = decider.messages(
            self.effects,
            record,
            event=trigger.event,
            view=view,
            marks=self.marks,
            signals=self.signals,
            signal_view=signal_view,
        )
        if stale:
            decider.metrics.count(NOTIFICATIONS_STALE, stale)
        for state in self.changed:
            decider.timers_for(self.effects, record, before.get(state.key), state, now)

    def _fold(self) -> FoldState | None:
        """The fold with the trigger's observations: extended in order, or re-folded from the log (None:
        the log is needed and was not loaded).

        A full log (`MAX_OBSERVATIONS`, `MAX_LOG_BYTES`) is compacted as it is stored, but an in-order
        trigger still extends the stored fold: compaction drops settled observations (a met SLA's closing
        among them, once it is old), so a fold of the compacted log could judge old SLAs again, and
        differently. Only an out-of-order trigger (or new policies) re-folds the log."""
        record, new = self.record, sorted(set(self.trigger.observations), key=Observation.sort_key)
        stored = record.fold
        if stored is not None and not new:
            return stored
        room = (
            record.log_size + len(new) <= MAX_OBSERVATIONS
            and json_bytes_after(record.log_bytes, record.log_size, new) <= MAX_LOG_BYTES
        )
        in_order = stored is not None and stored.can_extend(new)
        if stored is not None and in_order and room:
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
        if stored is not None and in_order:  # the log compacted, the fold extended
            extended = stored.copy()
            extended.extend(new)
            return extended
        self.refolded = True
        return fold(merged, self.decider.policies)

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
            s.target_time + self.decider.breach_grace
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
