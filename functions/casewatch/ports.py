"""Ports: the small interfaces the handlers and domain code depend on.

Adapters (boto3) implement them in `casewatch.adapters`; tests and the local pipeline pass fakes or the
same adapters pointed at moto and the Cases emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal


class CasesReader(Protocol):
    """The Cases API as enrichment needs it (GetCase)."""

    def get_case_fields(
        self, domain_id: str, case_id: str, field_ids: Sequence[str]
    ) -> tuple[str | None, dict[str, FieldValue]]:
        """(templateId, values by field id) for the requested fields, every page followed.

        Fields without a value are omitted (absent and `emptyValue` both mean empty).
        Raises `CaseNotFoundError` (404, final) or `CasesThrottledError` (retry budget spent).
        """
        ...


class SnapshotStore(Protocol):
    """The latest enriched view of each case, durable and versioned by approximateChangeTime."""

    def get(self, domain_id: str, case_id: str) -> EnrichedCase | None: ...

    def put(self, case: EnrichedCase) -> bool:
        """Store unless a newer (or same) version is stored; True if written."""
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


class Clock(Protocol):
    def now(self) -> datetime: ...
