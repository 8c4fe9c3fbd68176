"""Ports: every interface the use cases (`casewatch.app`) depend on, and the records that cross them.

Adapters (`casewatch.adapters`) implement them on AWS; `casewatch_dev.fakes` implements them in
memory for the tests and the local pipeline's memory backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from casewatch.domain.notifications.bus import BusEvent
from casewatch.domain.notifications.render import Notification
from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import SlaState
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.domain.sla.records import SlaCaseRecord, StoredSla
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal

# --- time and counting ---------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC."""
        ...


class MetricsRecorder(Protocol):
    """Where the use cases count things (Powertools EMF in Lambda, a counter in tests and locally)."""

    def count(self, name: str, value: float = 1) -> None: ...


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


# --- Cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFields:
    """What GetCase returned for some fields of a case, and what it took."""

    template_id: str | None
    values: dict[str, FieldValue]  # fields without a value are left out (absent and emptyValue alike)
    requests: int = 1  # pages requested (not botocore's retries)
    throttled: int = 0  # 429 answers seen on the way, retried or not


class CasesReader(Protocol):
    """GetCase: the case fields enrichment and reconciliation read."""

    def get_case_fields(self, domain_id: str, case_id: str, field_ids: Sequence[str]) -> CaseFields:
        """The requested fields, every page followed. Raises `CaseNotFoundError` (404, final),
        `CasesThrottledError` or `CasesUnavailableError` (retry budget spent; retryable)."""
        ...


class CasesSlaSource(Protocol):
    """Related items of a case as Cases has them (SearchRelatedItems). Both raise `CaseNotFoundError`
    when the case is gone, `CasesThrottledError`/`CasesUnavailableError` after retries."""

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        """The case's Cases SLA related items (the `sla` filter), with their status and completion."""
        ...

    def related_items(self, domain_id: str, case_id: str, item_type: str) -> list[tuple[str, datetime]]:
        """(relatedItemId, associationTime) of the case's related items of one type, e.g. "Comment"."""
        ...


class EventConfigurationStore(Protocol):
    """What a Cases domain publishes to EventBridge (Put/GetCaseEventConfiguration)."""

    def put(self, domain_id: str, event_bridge: Mapping[str, Any]) -> None: ...

    def read(self, domain_id: str) -> dict[str, Any]: ...

    def turn_off(self, domain_id: str) -> bool:
        """Stop the domain's publishing; False if the domain does not exist (nothing publishes)."""
        ...


# --- enrichment and the event path -----------------------------------------------------------------


class SnapshotStore(Protocol):
    """The latest enriched view of each case, durable and versioned by approximateChangeTime."""

    def get(self, domain_id: str, case_id: str) -> EnrichedCase | None: ...

    def put(self, case: EnrichedCase) -> bool:
        """Store unless a newer (or the same) version is stored; True if written."""
        ...


class DeadLetters(Protocol):
    """Where events that cannot be processed are parked with their reason (never lost)."""

    def park(self, raw: object, reason: str, *, function: str, event_id: str | None = None) -> None: ...


class CaseSink(Protocol):
    """A consumer of enriched case events (SLA tracking, notifications)."""

    def on_case_event(self, event: CaseEvent, case: EnrichedCase) -> None: ...


class SlaSignalSink(Protocol):
    """A consumer of SLA signals (notifications)."""

    def on_sla_signal(self, signal: SlaSignal, case: EnrichedCase | None) -> None: ...


# --- SLA state and timers ----------------------------------------------------------------------------


class SlaStore(Protocol):
    """Durable SLA state, one case at a time, with optimistic concurrency."""

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        """The case's log and SLAs (an empty record at revision 0 when none are stored)."""
        ...

    def save(
        self,
        old: SlaCaseRecord,
        log: CaseSlaLog,
        changed: Sequence[SlaState],
        *,
        next_checks: Mapping[str, datetime] | None = None,
    ) -> SlaCaseRecord:
        """Write the new log and the changed SLAs atomically, if nobody wrote since `old` was loaded.

        `next_checks`: reconciliation's next look at open SLAs (by key): until then `due_before` leaves
        them out; an SLA keeps its next check through later saves. Raises `SlaConflictError` when
        another writer saved first (reload and apply again).
        """
        ...

    def case_slas(self, case_id: str) -> list[StoredSla]: ...

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        """Open SLAs whose target (or next reconciliation check) is before `moment`, oldest first."""
        ...


class SlaTimers(Protocol):
    """One-time timers that call the sla-timer function back (EventBridge Scheduler)."""

    def set(self, timer: TimerSpec) -> None:
        """Create or move the timer of (case, SLA, kind) (idempotent)."""
        ...

    def cancel(self, case_id: str, sla_key: str, kind: TimerKind) -> None:
        """Delete it if it exists."""
        ...


# --- notifications ---------------------------------------------------------------------------------


class Notifier(Protocol):
    def publish(self, notification: Notification) -> str:
        """Send one notification; the message id."""
        ...


class EnrichedBus(Protocol):
    def put(self, events: Sequence[BusEvent]) -> int:
        """Put enriched events on the bus; the number put (raises if some failed)."""
        ...


class OnceResult(NamedTuple):
    result: dict[str, Any]
    executed: bool  # False: a repeat, the stored result of the first run


class ExactlyOnce(Protocol):
    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> OnceResult:
        """Run `action` once per key; a repeat returns the first result without running it.
        A concurrent run of the same key raises (retryable)."""
        ...

    def register_lambda_context(self, context: LambdaContextLike | None) -> None:
        """This invocation's context: an in-progress record then expires with the invocation."""
        ...


class StatusOrder(Protocol):
    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        """False if a newer status notification with another status was already sent for the case."""
        ...


__all__ = [
    "CaseFields",
    "CaseSink",
    "CasesReader",
    "CasesSlaSource",
    "Clock",
    "DeadLetters",
    "EnrichedBus",
    "EventConfigurationStore",
    "ExactlyOnce",
    "LambdaContextLike",
    "MetricsRecorder",
    "Notifier",
    "OnceResult",
    "SlaSignalSink",
    "SlaStore",
    "SlaTimers",
    "SnapshotStore",
    "StatusOrder",
]
