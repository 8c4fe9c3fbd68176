"""In-memory implementations of casewatch's ports, with the semantics of the AWS adapters they stand
for (conditional and versioned writes, the same deferrals). Thread-safe. Used by the local pipeline's
memory backend and by the tests — one set, so a fake cannot drift from the backend the tests trust.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from casewatch.adapters.dynamodb_sla_store import due_shard
from casewatch.domain.enrichment import supersedes
from casewatch.domain.sla.fold import new_transitions
from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import SlaConflictError, SlaState, SlaTransition
from casewatch.domain.sla.records import SlaCaseRecord, StoredSla
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.domain.values import sortable_iso
from casewatch.errors import CaseNotFoundError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal
from casewatch.ports import CaseFields, MetricsRecorder, SlaStore
from casewatch.tables import DUE_SHARDS

# --- counting, recording -------------------------------------------------------------------------


class CountingMetrics:
    """A `MetricsRecorder` that sums counts by name, and passes them on to `forward` if given (the local
    pipeline forwards to Powertools, so the functions' EMF output is produced as in Lambda)."""

    def __init__(self, forward: MetricsRecorder | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.forward = forward
        self._lock = threading.Lock()

    def count(self, name: str, value: float = 1) -> None:
        with self._lock:
            self.counts[name] += int(value)
        if self.forward is not None:
            self.forward.count(name, value)


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


# --- Cases ---------------------------------------------------------------------------------------


class DictCasesReader:
    """A `CasesReader` over a dict of cases: {case_id: (template_id, {field_id: value})}.

    Records the requested field ids (`requests`); `fail_with` makes the next calls raise (e.g.
    `CasesThrottledError()`), once each.
    """

    def __init__(self, cases: Mapping[str, tuple[str | None, Mapping[str, Any]]] | None = None) -> None:
        self.cases: dict[str, tuple[str | None, dict[str, FieldValue]]] = {}
        for case_id, (template_id, values) in (cases or {}).items():
            self.add(case_id, values, template_id=template_id)
        self.requests: list[tuple[str, str, tuple[str, ...]]] = []
        self.fail_with: list[Exception] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

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

    def get_case_fields(self, domain_id: str, case_id: str, field_ids: Sequence[str]) -> CaseFields:
        with self._lock:
            self.requests.append((domain_id, case_id, tuple(field_ids)))
            if self.fail_with:
                raise self.fail_with.pop(0)
            found = self.cases.get(case_id)
        if found is None:
            raise CaseNotFoundError(f"case {case_id} not found")
        template_id, values = found
        wanted = {f: values[f] for f in field_ids if f in values and not values[f].is_empty}
        return CaseFields(template_id, wanted)


# --- enrichment and parking ----------------------------------------------------------------------


class InMemorySnapshotStore:
    """A `SnapshotStore` in a dict, with the DynamoDB store's version rule (`supersedes`)."""

    def __init__(self) -> None:
        self.views: dict[str, EnrichedCase] = {}
        self._lock = threading.Lock()

    def get(self, domain_id: str, case_id: str) -> EnrichedCase | None:
        with self._lock:
            view = self.views.get(case_id)
        return view if view is not None and view.domain_id == domain_id else None

    def put(self, case: EnrichedCase) -> bool:
        with self._lock:
            stored = self.views.get(case.case_id)
            if stored is not None and not supersedes(case, stored):
                return False
            self.views[case.case_id] = case
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


# --- SLA state and timers -------------------------------------------------------------------------


class InMemorySlaStore:
    """`SlaStore` with `DynamoDbSlaStore`'s semantics, in dicts.

    - `save` succeeds only if the case's revision is the one loaded (nothing stored for revision 0),
      and no changed SLA is stored with a newer `version` (the transaction's per-item conditions):
      else `SlaConflictError`, like a cancelled TransactWriteItems;
    - the log carries a copy of the case's SLAs as of its last save (a load is one read); the SLA items
      themselves are what `due_before` and `case_slas` read; both get the same next checks;
    - `due_before` reads the sparse `due` index: open SLAs with `due_at = max(target, next_check)`
      before the moment, `limit` per shard (index order) and then overall, oldest first.

    `before_save`: a hook called once before the next save (tests interleave a competing writer).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, tuple[CaseSlaLog, int, dict[str, StoredSla]]] = {}  # log, revision, copy
        self._slas: dict[str, dict[str, StoredSla]] = {}  # the SLA items
        self.loads = 0
        self.saves = 0
        self.conflicts = 0
        self.before_save: Callable[[], None] | None = None

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        with self._lock:
            self.loads += 1
            stored = self._logs.get(case_id)
            if stored is None:
                return SlaCaseRecord(CaseSlaLog(domain_id, case_id), {}, 0)
            log, revision, embedded = stored
            return SlaCaseRecord(log, dict(embedded), revision)

    def save(
        self,
        old: SlaCaseRecord,
        log: CaseSlaLog,
        changed: Sequence[SlaState],
        *,
        next_checks: Mapping[str, datetime] | None = None,
    ) -> SlaCaseRecord:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        case_id = log.case_id
        revision = old.revision + 1
        next_checks = next_checks or {}
        with self._lock:
            current = self._logs.get(case_id)
            stored_revision = current[1] if current is not None else None
            taken = current is not None if old.revision == 0 else stored_revision != old.revision
            if taken:
                self.conflicts += 1
                raise SlaConflictError(f"case {case_id}: SLA state changed concurrently")
            items = self._slas.setdefault(case_id, {})
            writes = {state.key: (state, log.version) for state in changed}
            for key in next_checks.keys() - writes.keys():  # only the next check moves: the same state
                if key in old.slas:
                    writes[key] = (old.slas[key].state, old.slas[key].version)
            for key, (_, version) in writes.items():
                existing = items.get(key)
                if (
                    version is not None
                    and existing is not None
                    and (existing.version is None or existing.version > version)
                ):
                    self.conflicts += 1
                    raise SlaConflictError(f"case {case_id}: SLA state changed concurrently")
            slas = dict(old.slas)
            for key, (state, version) in writes.items():
                before = old.slas.get(key)
                next_check = next_checks.get(key, before.next_check_at if before is not None else None)
                stored = StoredSla(log.domain_id, case_id, state, version, revision, next_check)
                items[key] = stored
                slas[key] = stored
            self._logs[case_id] = (log, revision, slas)
            self.saves += 1
        return SlaCaseRecord(log, slas, revision)

    def case_slas(self, case_id: str) -> list[StoredSla]:
        with self._lock:
            found = list(self._slas.get(case_id, {}).values())
        return sorted(found, key=lambda s: (s.state.started_at, s.state.key))

    @staticmethod
    def _due_at(sla: StoredSla) -> str | None:
        if not sla.state.status.is_open:
            return None
        target = sla.state.target_time
        return sortable_iso(max(target, sla.next_check_at) if sla.next_check_at is not None else target)

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        bound = sortable_iso(moment)
        shards: list[list[tuple[str, StoredSla]]] = [[] for _ in range(DUE_SHARDS)]
        with self._lock:
            for case_id, items in self._slas.items():
                shard = shards[int(due_shard(case_id))]
                for sla in items.values():
                    due_at = self._due_at(sla)
                    if due_at is not None and due_at < bound:
                        shard.append((due_at, sla))
        found: list[StoredSla] = []
        for shard in shards:
            shard.sort(key=lambda entry: entry[0])
            found += [sla for _, sla in shard[:limit]]
        found.sort(key=lambda s: (s.next_check_at or s.state.target_time, s.case_id, s.state.key))
        return found[:limit]

    def items(self) -> list[StoredSla]:
        """Every (case, SLA), sorted by case and SLA key."""
        with self._lock:
            found = [sla for items in self._slas.values() for sla in items.values()]
        return sorted(found, key=lambda s: (s.case_id, s.state.key))

    def states(self) -> dict[tuple[str, str], SlaState]:
        """Every SLA's state by (case, SLA key)."""
        return {(sla.case_id, sla.state.key): sla.state for sla in self.items()}


class RecordingSlaStore:
    """An `SlaStore` that passes everything to `inner` and records the transitions each successful save
    wrote (the local pipeline's "SLA changes", observed at the port instead of inside the use case)."""

    def __init__(self, inner: SlaStore) -> None:
        self.inner = inner
        self.transitions: list[SlaTransition] = []
        self._lock = threading.Lock()

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        return self.inner.load(domain_id, case_id)

    def save(
        self,
        old: SlaCaseRecord,
        log: CaseSlaLog,
        changed: Sequence[SlaState],
        *,
        next_checks: Mapping[str, datetime] | None = None,
    ) -> SlaCaseRecord:
        saved = self.inner.save(old, log, changed, next_checks=next_checks)
        found = []
        for state in changed:
            before = old.slas.get(state.key)
            for t in new_transitions(before.state if before is not None else None, state):
                found.append(
                    SlaTransition(
                        log.domain_id,
                        log.case_id,
                        state.key,
                        state.name,
                        state.origin,
                        t.status,
                        t.at,
                        t.cycle,
                        t.target_time,
                    )
                )
        with self._lock:
            self.transitions += found
        return saved

    def case_slas(self, case_id: str) -> list[StoredSla]:
        return self.inner.case_slas(case_id)

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        return self.inner.due_before(moment, limit)

    def take_transitions(self) -> list[SlaTransition]:
        with self._lock:
            taken, self.transitions = self.transitions, []
        return taken


class RecordingTimers:
    """`SlaTimers` that keeps the pending timers in a dict and counts calls."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str, TimerKind], TimerSpec] = {}
        self.sets = 0
        self.cancels = 0

    def set(self, timer: TimerSpec) -> None:
        self.sets += 1
        self.pending[(timer.case_id, timer.sla_key, timer.kind)] = timer

    def cancel(self, case_id: str, sla_key: str, kind: TimerKind) -> None:
        self.cancels += 1
        self.pending.pop((case_id, sla_key, kind), None)

    def due(self) -> list[TimerSpec]:
        return sorted(self.pending.values(), key=lambda t: (t.fire_at, t.case_id, t.sla_key, t.kind.value))


# --- notifications -----------------------------------------------------------------------------------


class InMemoryStatusOrder:
    """`StatusOrder` with `DynamoDbStatusOrder`'s conditional write: the latest status notification per
    case (and per replay), only ever moved forward in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str | None], tuple[int, str, str]] = {}

    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        at_ms = int(changed_at.timestamp() * 1000)
        key = (case_id, replay_name)
        with self._lock:
            stored = self._latest.get(key)
            if stored is None or stored[0] <= at_ms:
                self._latest[key] = (at_ms, status, notification_id)
                return True
            return stored[1] == status


__all__ = [
    "CountingMetrics",
    "DictCasesReader",
    "InMemorySlaStore",
    "InMemorySnapshotStore",
    "InMemoryStatusOrder",
    "ListDeadLetters",
    "ParkedEvent",
    "RecordingSignalSink",
    "RecordingSink",
    "RecordingSlaStore",
    "RecordingTimers",
]
