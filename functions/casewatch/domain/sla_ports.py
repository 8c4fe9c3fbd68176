"""The ports SLA tracking depends on, and the records that cross them.

Adapters: `DynamoDbSlaStore` (adapters/dynamodb_sla_store.py), `SchedulerTimers`
(adapters/scheduler_timers.py), `CasesApiSlaSource` (adapters/cases_sla_source.py). Tests pass the
same adapters on moto and the Cases emulator, or in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from casewatch.domain.sla import CaseSlaLog, SlaState, TimerKind, TimerSpec
from casewatch.domain.sla_observations import CasesSlaReport
from casewatch.models.base import as_utc


@dataclass(frozen=True, slots=True)
class StoredSla:
    """One (case, SLA) item: the fold's state plus what the store keeps about it."""

    domain_id: str
    case_id: str
    state: SlaState
    version: datetime | None  # the newest approximateChangeTime applied when it last changed
    revision: int  # the case log's revision that wrote it
    next_check_at: datetime | None = None  # reconciliation's next look at it (open SLAs)


@dataclass(frozen=True, slots=True)
class SlaCaseRecord:
    """Everything stored about a case's SLAs: its observation log and its SLA items."""

    log: CaseSlaLog
    slas: Mapping[str, StoredSla] = field(default_factory=dict)
    revision: int = 0  # 0: nothing stored yet

    @classmethod
    def empty(cls, domain_id: str, case_id: str) -> SlaCaseRecord:
        return cls(CaseSlaLog(domain_id, case_id))


class SlaTimerPayload(BaseModel):
    """What a breach or warning schedule sends to the sla-timer function."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    kind: Literal["breach", "warning"]
    domain_id: str = Field(min_length=1)
    case_id: str = Field(min_length=1)
    sla_name: str = Field(min_length=1)
    sla_key: str | None = None  # "policy#<name>" / "cases#<relatedItemId>"; else found by name
    target_time: datetime

    @field_validator("target_time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return as_utc(v)

    def wire(self) -> dict[str, str]:
        body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {k: str(v) for k, v in body.items()}


class SlaStore(Protocol):
    """Durable SLA state, one case at a time, with optimistic concurrency."""

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        """The case's log and SLAs (an empty record at revision 0 when none are stored)."""
        ...

    def save(self, old: SlaCaseRecord, log: CaseSlaLog, changed: Sequence[SlaState]) -> SlaCaseRecord:
        """Write the new log and the changed SLAs atomically, if nobody wrote since `old` was loaded.

        Raises `SlaConflictError` when another writer did (reload and apply again).
        """
        ...

    def case_slas(self, case_id: str) -> list[StoredSla]: ...

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        """Open SLAs whose target (or next reconciliation check) is before `moment`, oldest first."""
        ...

    def defer_check(self, case_id: str, sla_key: str, until: datetime) -> None:
        """Reconciliation looked at an open SLA: do not return it from `due_before` until `until`."""
        ...


class SlaTimers(Protocol):
    """One-time timers that call the sla-timer function back (EventBridge Scheduler)."""

    def set(self, timer: TimerSpec) -> None:
        """Create or move the timer of (case, SLA, kind) (idempotent)."""
        ...

    def cancel(self, case_id: str, sla_key: str, kind: TimerKind) -> None:
        """Delete it if it exists."""
        ...


class CasesSlaSource(Protocol):
    """Related items of a case as Cases has them (SearchRelatedItems). Both raise `CaseNotFoundError`
    when the case is gone, `CasesThrottledError` when throttled after retries."""

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        """The case's Cases SLA related items (the `sla` filter), with their status and completion."""
        ...

    def related_items(self, domain_id: str, case_id: str, item_type: str) -> list[tuple[str, datetime]]:
        """(relatedItemId, associationTime) of the case's related items of one type, e.g. "Comment"."""
        ...


__all__ = ["CasesSlaSource", "SlaCaseRecord", "SlaStore", "SlaTimerPayload", "SlaTimers", "StoredSla"]
