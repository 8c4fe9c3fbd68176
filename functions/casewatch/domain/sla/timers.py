"""The timers an SLA needs: a breach timer at its target, a warning timer before it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from casewatch.domain.sla.model import SlaState, SlaStatus


class TimerKind(StrEnum):
    BREACH = "breach"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A one-time timer of an SLA: fire at `fire_at`; `target_time` is the SLA's target."""

    kind: TimerKind
    domain_id: str
    case_id: str
    sla_key: str
    sla_name: str
    fire_at: datetime
    target_time: datetime


def desired_timers(
    domain_id: str,
    case_id: str,
    state: SlaState,
    warning_fraction: float | None,
    now: datetime,
    *,
    breach_grace: timedelta = timedelta(),
) -> dict[TimerKind, TimerSpec | None]:
    """The timers an SLA should have now (None: none of that kind, or one that has fired already):
    while Active and running, a breach timer `breach_grace` after the target (by then the change feed
    has seen every change of the case up to the target, so the breach is declared without asking
    Cases), and a warning timer at `warning_fraction` of the duration (if still ahead)."""
    wanted: dict[TimerKind, TimerSpec | None] = {TimerKind.BREACH: None, TimerKind.WARNING: None}
    if state.status is not SlaStatus.ACTIVE or state.paused:
        return wanted
    breach_at = state.target_time + breach_grace
    if breach_at > now:
        wanted[TimerKind.BREACH] = TimerSpec(
            TimerKind.BREACH, domain_id, case_id, state.key, state.name, breach_at, state.target_time
        )
    if warning_fraction is not None:
        seconds = math.floor(state.duration.total_seconds() * warning_fraction)
        warn_at = state.target_time - state.duration + timedelta(seconds=seconds)
        if now < warn_at < state.target_time:
            wanted[TimerKind.WARNING] = TimerSpec(
                TimerKind.WARNING, domain_id, case_id, state.key, state.name, warn_at, state.target_time
            )
    return wanted
