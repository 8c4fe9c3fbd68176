"""Ports: every interface the use cases (`casewatch.app`) depend on, and the records that cross them.

Adapters (`casewatch.adapters`) implement them on AWS; `casewatch_dev.fakes` implements them in
memory for the tests and the local pipeline's memory backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from casewatch.domain.case_record import CaseChange, CaseRecord
from casewatch.domain.notifications.bus import BusEvent
from casewatch.domain.notifications.render import Notification
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.models.fields import FieldValue

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


class EventConfigurationStore(Protocol):
    """What a Cases domain publishes to EventBridge (Put/GetCaseEventConfiguration)."""

    def put(self, domain_id: str, event_bridge: Mapping[str, Any]) -> None: ...

    def read(self, domain_id: str) -> dict[str, Any]: ...

    def turn_off(self, domain_id: str) -> bool:
        """Stop the domain's publishing; False if the domain does not exist (nothing publishes)."""
        ...


@dataclass(frozen=True, slots=True)
class ChangedCase:
    """A case SearchCases found changed: the field values asked for (a field without one is absent)."""

    case_id: str
    values: dict[str, FieldValue]


@dataclass(frozen=True, slots=True)
class FoundItem:
    """A related item SearchAllRelatedItems found: its case, type, association time, and for an Sla item
    what Cases says of it."""

    case_id: str
    related_item_id: str
    item_type: str
    associated_at: datetime
    sla: CasesSlaReport | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """A search's answer and the requests (pages) it took."""

    items: list[T]
    requests: int


class CasesSearch(Protocol):
    """Domain-wide search (SearchCases, SearchAllRelatedItems): the change feed's view of Cases.
    Index-backed: results lag writes by the index delay. Errors as `CasesReader`'s."""

    def changed_cases(self, domain_id: str, since: datetime, field_ids: Sequence[str]) -> Found[ChangedCase]:
        """Every case whose `last_updated_datetime` is after `since`, oldest change first, with the
        fields asked for (at most 25), every page followed."""
        ...

    def associated_items(
        self, domain_id: str, since: datetime, item_types: Sequence[str]
    ) -> Found[FoundItem]:
        """Every related item of these types associated after `since` (newest first, pages followed
        until older ones)."""
        ...


# --- enrichment and the event path -----------------------------------------------------------------


class DeadLetters(Protocol):
    """Where events that cannot be processed are parked with their reason (never lost)."""

    def park(self, raw: object, reason: str, *, function: str, event_id: str | None = None) -> None: ...


# --- the case record, and SLA timers ----------------------------------------------------------------


class CaseStore(Protocol):
    """Everything kept about each case, one record per case, written conditionally on its revision."""

    def load(
        self,
        domain_id: str,
        case_id: str,
        *,
        claim_key: str | None = None,
        with_log: bool = False,
        with_watermark: bool = False,
    ) -> CaseRecord:
        """The case's record (revision 0 when nothing is stored), with the claim of `claim_key` if there
        is one, the observation log if asked, and the change feed's watermark if asked."""
        ...

    def load_many(self, domain_id: str, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
        """Several cases' records at once (no claims, no logs)."""
        ...

    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        """Write `change` if nobody wrote the case since `old` was loaded; else `CaseConflictError`
        (reload and apply again)."""
        ...

    def complete(self, case_id: str, claim_key: str, *, pending: Sequence[str] | None = None) -> None:
        """The claim's side effects were sent: mark it done. With `pending`, some were not: keep those
        ids pending in its outbox (a retry sends only them)."""
        ...

    def due_before(
        self, moment: datetime, limit: int = 100, domain_id: str | None = None
    ) -> list[tuple[str, str]]:
        """(domain id, case id) of cases (of `domain_id`, if given) with an open SLA due a breach check
        before `moment`, earliest first."""
        ...

    def case_ids(self) -> list[tuple[str, str]]:
        """Every (domain id, case id) stored (for tools: a scan)."""
        ...


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where the change feed of a domain is: its watermark and the triggers owed, (case id, claim key)."""

    watermark: datetime | None = None
    owed: tuple[tuple[str, str], ...] = ()


class FeedState(Protocol):
    """Where the change feed left off, per domain (`watermark`: every change of Cases up to it is
    applied), and the feed's triggers whose side effects may still be owed (`owed`: a poll failed on the
    case after, perhaps, writing it; the case's record alone cannot tell the next poll)."""

    def watermark(self, domain_id: str) -> datetime | None: ...

    def position(self, domain_id: str) -> FeedPosition:
        """The watermark and what is owed, in one read (a poll's first)."""
        ...

    def advance(self, domain_id: str, watermark: datetime, previous: datetime | None) -> None:
        """Move the watermark forward, if nobody moved it since `previous` was read."""
        ...

    def owed(self, domain_id: str) -> list[tuple[str, str]]:
        """(case id, claim key) of the triggers owed, oldest first."""
        ...

    def owe(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        """Add (case id, claim key) pairs to what is owed."""
        ...

    def settle(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        """Remove them: their claims are done (or were never written)."""
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


__all__ = [
    "CaseFields",
    "CaseStore",
    "CasesReader",
    "CasesSearch",
    "CasesSlaSource",
    "ChangedCase",
    "Clock",
    "DeadLetters",
    "EnrichedBus",
    "EventConfigurationStore",
    "FeedPosition",
    "FeedState",
    "Found",
    "FoundItem",
    "LambdaContextLike",
    "MetricsRecorder",
    "Notifier",
    "SlaTimers",
]
