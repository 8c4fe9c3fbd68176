"""In-memory implementations of the ports, for tests and the local pipeline (no boto3, thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casewatch.domain.enrichment import supersedes
from casewatch.errors import CaseNotFoundError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal


class RecordingSink:
    """A `CaseSink` that records what it got: `received` is a list of (event, case)."""

    def __init__(self) -> None:
        self.received: list[tuple[CaseEvent, EnrichedCase]] = []
        self._lock = threading.Lock()

    def on_case_event(self, event: CaseEvent, case: EnrichedCase) -> None:
        with self._lock:
            self.received.append((event, case))

    @property
    def cases(self) -> list[EnrichedCase]:
        return [case for _, case in self.received]


class RecordingSignalSink:
    """An `SlaSignalSink` that records the signals it got."""

    def __init__(self) -> None:
        self.signals: list[tuple[SlaSignal, EnrichedCase | None]] = []
        self._lock = threading.Lock()

    def on_sla_signal(self, signal: SlaSignal, case: EnrichedCase | None) -> None:
        with self._lock:
            self.signals.append((signal, case))


class InMemorySnapshotStore:
    """A `SnapshotStore` in a dict, with the DynamoDB store's version rule (`supersedes`)."""

    def __init__(self) -> None:
        self.views: dict[str, EnrichedCase] = {}
        self.gets = 0
        self.writes = 0
        self.rejected = 0
        self._lock = threading.Lock()

    def get(self, domain_id: str, case_id: str) -> EnrichedCase | None:
        with self._lock:
            self.gets += 1
            view = self.views.get(case_id)
        return view if view is not None and view.domain_id == domain_id else None

    def put(self, case: EnrichedCase) -> bool:
        with self._lock:
            stored = self.views.get(case.case_id)
            if stored is not None and not supersedes(case, stored):
                self.rejected += 1
                return False
            self.views[case.case_id] = case
            self.writes += 1
            return True


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    raw: object
    reason: str
    function: str
    event_id: str | None


class ListDeadLetters:
    """A `DeadLetters` that keeps the parked events in a list."""

    def __init__(self) -> None:
        self.parked: list[ParkedEvent] = []
        self._lock = threading.Lock()

    def park(self, raw: object, reason: str, *, function: str, event_id: str | None = None) -> None:
        with self._lock:
            self.parked.append(ParkedEvent(raw, reason, function, event_id))


class DictCasesReader:
    """A `CasesReader` over a dict of cases: {case_id: (template_id, {field_id: value})}.

    Counts `calls` like the API adapter (one per request) and records the requested field ids.
    `fail_with` makes the next calls raise (e.g. `CasesThrottledError()`), once each.
    """

    def __init__(self, cases: Mapping[str, tuple[str | None, Mapping[str, Any]]] | None = None) -> None:
        self.cases: dict[str, tuple[str | None, dict[str, FieldValue]]] = {}
        for case_id, (template_id, values) in (cases or {}).items():
            self.add(case_id, values, template_id=template_id)
        self.calls = 0
        self.throttled = 0
        self.requests: list[tuple[str, str, tuple[str, ...]]] = []
        self.fail_with: list[Exception] = []
        self._lock = threading.Lock()

    def add(self, case_id: str, values: Mapping[str, Any], *, template_id: str | None = None) -> None:
        """A case; values are FieldValue, wire dicts (`{"stringValue": ...}`) or Python values."""
        parsed = {
            field_id: v
            if isinstance(v, FieldValue)
            else FieldValue.model_validate(v)
            if isinstance(v, dict)
            else FieldValue.of(v)
            for field_id, v in values.items()
        }
        self.cases[case_id] = (template_id, parsed)

    def get_case_fields(
        self, domain_id: str, case_id: str, field_ids: Sequence[str]
    ) -> tuple[str | None, dict[str, FieldValue]]:
        with self._lock:
            self.calls += 1
            self.requests.append((domain_id, case_id, tuple(field_ids)))
            if self.fail_with:
                raise self.fail_with.pop(0)
            found = self.cases.get(case_id)
        if found is None:
            raise CaseNotFoundError(f"case {case_id} not found")
        template_id, values = found
        return template_id, {f: values[f] for f in field_ids if f in values and not values[f].is_empty}


class CountingMetrics:
    """A `MetricsRecorder` that sums counts by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, value: float = 1) -> None:
        with self._lock:
            self.counts[name] += int(value)


__all__ = [
    "CountingMetrics",
    "DictCasesReader",
    "InMemorySnapshotStore",
    "ListDeadLetters",
    "ParkedEvent",
    "RecordingSignalSink",
    "RecordingSink",
]
