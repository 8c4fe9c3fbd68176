"""In-memory implementations of casewatch's ports, with the semantics of the AWS adapters they stand
for (revisions, claims, the due index). Thread-safe. Used by the local pipeline's
memory backend and by the tests — one set, so a fake cannot drift from the backend the tests trust.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from casewatch.adapters.case_items import CLAIM_RETENTION, DELETED_RETENTION, RETENTION
from casewatch.adapters.dynamodb_case_store import MAX_CLAIMS
from casewatch.domain.case_record import CaseChange, CaseRecord, Claim, Outbox, StatusMark
from casewatch.domain.sla.fold import FoldState
from casewatch.domain.sla.log import Observation
from casewatch.domain.sla.model import PolicySpec, SlaConflictError, SlaState, SlaTransition
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.domain.values import cases_iso
from casewatch.errors import CaseNotFoundError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.fields import FieldValue
from casewatch.models.related_items import RelatedItemType
from casewatch.ports import (
    CaseFields,
    CaseStore,
    ChangedCase,
    Clock,
    FeedPosition,
    Found,
    FoundItem,
    MetricsRecorder,
)

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


# --- Cases ---------------------------------------------------------------------------------------


def _field_value(value: Any) -> FieldValue:
    """A FieldValue, a wire dict (`{"stringValue": ...}`) or a Python value, as a FieldValue."""
    if isinstance(value, FieldValue):
        return value
    return FieldValue.model_validate(value) if isinstance(value, dict) else FieldValue.of(value)


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
        self.cases[case_id] = (template_id, {field_id: _field_value(v) for field_id, v in values.items()})

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


SEARCH_PAGE: Final = 25  # SearchCases' and SearchAllRelatedItems' largest page


class DictCasesSearch:
    """A `CasesSearch` over dicts, index-backed like Cases': what is put becomes visible `lag` later on
    `clock` (no clock: at once). Pages of `SEARCH_PAGE` are counted as requests (`requests`: one entry
    per page, the operation's name; `calls`: one per search, with its `since` and the field ids or item
    types asked for); `fail_with` makes the next searches raise, once each.

    `put_case` records a case's values as of its `last_updated_datetime` (`updated`), replacing what was
    indexed before; `add_item` a related item associated at `at` (with its Cases SLA report for an Sla).
    """

    def __init__(self, clock: Clock | None = None, lag: timedelta = timedelta()) -> None:
        self.clock = clock
        self.lag = lag
        self._cases: dict[str, list[tuple[datetime, datetime, dict[str, FieldValue]]]] = {}
        self._items: list[tuple[datetime, FoundItem]] = []
        self.requests: list[str] = []
        self.calls: list[tuple[str, datetime, tuple[str, ...]]] = []
        self.fail_with: list[Exception] = []
        self._lock = threading.Lock()

    def _now(self) -> datetime | None:
        return self.clock.now() if self.clock is not None else None

    def _visible(self, indexed_at: datetime | None) -> bool:
        now = self._now()
        return now is None or indexed_at is None or indexed_at <= now

    def put_case(self, case_id: str, values: Mapping[str, Any], *, updated: datetime) -> None:
        now = self._now()
        parsed = {fid: _field_value(v) for fid, v in values.items()}
        parsed["last_updated_datetime"] = FieldValue.of(cases_iso(updated))
        with self._lock:
            self._cases.setdefault(case_id, []).append((now + self.lag if now else updated, updated, parsed))

    def add_item(
        self,
        case_id: str,
        item_id: str,
        item_type: str,
        at: datetime,
        sla: CasesSlaReport | None = None,
    ) -> None:
        now = self._now()
        item = FoundItem(case_id, item_id, RelatedItemType.parse(item_type).value, at, sla)
        with self._lock:
            self._items.append((now + self.lag if now else at, item))

    def _page(self, operation: str, count: int) -> int:
        pages = max(1, -(-count // SEARCH_PAGE))
        self.requests += [operation] * pages
        if self.fail_with:
            raise self.fail_with.pop(0)
        return pages

    def changed_cases(self, domain_id: str, since: datetime, field_ids: Sequence[str]) -> Found[ChangedCase]:
        if len(field_ids) > SEARCH_PAGE:
            raise ValueError("SearchCases returns at most 25 fields per case")
        with self._lock:
            self.calls.append(("SearchCases", since, tuple(field_ids)))
            latest: list[tuple[datetime, str, dict[str, FieldValue]]] = []
            for case_id, versions in self._cases.items():
                visible = [v for v in versions if self._visible(v[0])]
                if visible:
                    _, updated, values = max(visible, key=lambda v: v[1])
                    if updated > since:
                        latest.append((updated, case_id, values))
            latest.sort(key=lambda found: (found[0], found[1]))
            pages = self._page("SearchCases", len(latest))
        wanted = set(field_ids)
        cases = [
            ChangedCase(case_id, {f: v for f, v in values.items() if f in wanted})
            for _, case_id, values in latest
        ]
        return Found(cases, pages)

    def associated_items(
        self, domain_id: str, since: datetime, item_types: Sequence[str]
    ) -> Found[FoundItem]:
        kinds = {RelatedItemType.parse(t).value for t in item_types}
        with self._lock:
            self.calls.append(("SearchAllRelatedItems", since, tuple(item_types)))
            found = sorted(
                (item for indexed_at, item in self._items if self._visible(indexed_at)),
                key=lambda item: (item.associated_at, item.related_item_id),
                reverse=True,
            )
            newer = [item for item in found if item.associated_at > since and item.item_type in kinds]
            pages = self._page("SearchAllRelatedItems", len(newer))
        return Found(newer, pages)


# --- enrichment and parking ----------------------------------------------------------------------


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


class InMemoryCaseStore:
    """`CaseStore` and `FeedState` with `DynamoDbCaseStore`'s semantics, in dicts.

    Each case is kept as the DynamoDB item keeps it: the fold as its JSON document (so every load
    decodes it, as a read does), the log as canonical JSON strings (a set, read in time order, as the
    observation items' sort keys order them), one claim read by key. A commit succeeds only if the
    revision is the one loaded; a completion marks the claim (or keeps ids pending); a case with more
    than `max_claims` claims loses those done and older than `CLAIM_RETENTION`; a case's expiry (the
    item's TTL, `expiry`) follows the newest change applied. `before_commit`: a hook called once before
    the next commit (tests interleave a writer).
    """

    def __init__(self, policies: Sequence[PolicySpec], *, max_claims: int = MAX_CLAIMS) -> None:
        self.policies = tuple(policies)
        self.max_claims = max_claims
        self._lock = threading.Lock()
        self._cases: dict[str, _StoredCase] = {}
        self._watermarks: dict[str, datetime] = {}
        self._owed: dict[str, set[tuple[str, str]]] = {}
        self.loads = 0
        self.commits = 0
        self.conflicts = 0
        self.before_commit: Callable[[], None] | None = None

    def load(
        self,
        domain_id: str,
        case_id: str,
        *,
        claim_key: str | None = None,
        with_log: bool = False,
        with_watermark: bool = False,
    ) -> CaseRecord:
        with self._lock:
            self.loads += 1
            stored = self._cases.get(case_id)
            watermark = self._watermarks.get(domain_id) if with_watermark else None
            if stored is None:
                return CaseRecord(domain_id, case_id, log=() if with_log else None, watermark=watermark)
            return replace(
                stored.record(self.policies, claim_key, with_log=with_log, watermark=watermark),
                case_id=case_id,
            )

    def load_many(self, domain_id: str, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
        with self._lock:
            self.loads += 1
            return {
                case_id: replace(
                    self._cases[case_id].record(self.policies, None, with_log=False, watermark=None),
                    case_id=case_id,
                )
                for case_id in dict.fromkeys(case_ids)
                if case_id in self._cases
            }

    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        if self.before_commit is not None:
            hook, self.before_commit = self.before_commit, None
            hook()
        with self._lock:
            stored = self._cases.get(old.case_id)
            if (stored.revision if stored is not None else 0) != old.revision:
                self.conflicts += 1
                raise SlaConflictError(f"case {old.case_id}: changed concurrently")
            if stored is None:
                stored = self._cases[old.case_id] = _StoredCase(old.domain_id)
            stored.apply(change)
            if len(stored.claims) > self.max_claims:
                cutoff = change.claim.at - CLAIM_RETENTION
                for key, claim in list(stored.claims.items()):
                    if claim.done and claim.at < cutoff:
                        del stored.claims[key]
            self.commits += 1
            # The record as it now is, from what was written (as the DynamoDB adapter returns it: no read,
            # no decoding of the fold just encoded).
            return replace(
                old,
                revision=stored.revision,
                snapshot=stored.snapshot,
                fold=change.fold if change.fold is not None else old.fold,
                horizon=stored.horizon,
                status_order=dict(stored.status_order),
                claim=change.claim,
                log=None,
                log_size=len(stored.log),
                log_bytes=stored.log_bytes,
                claims_size=len(stored.claims),
                watermark=None,
            )

    def complete(self, case_id: str, claim_key: str, *, pending: Sequence[str] | None = None) -> None:
        with self._lock:
            stored = self._cases.get(case_id)
            claim = stored.claims.get(claim_key) if stored is not None else None
            if stored is None or claim is None:
                return
            if pending is None:
                stored.claims[claim_key] = replace(claim, done=True, outbox=None)
            else:
                outbox = claim.outbox or Outbox()
                stored.claims[claim_key] = replace(claim, outbox=replace(outbox, pending=tuple(pending)))

    def due_before(
        self, moment: datetime, limit: int = 100, domain_id: str | None = None
    ) -> list[tuple[str, str]]:
        with self._lock:
            due = sorted(
                (s.due_at, s.domain_id, case_id)
                for case_id, s in self._cases.items()
                if s.due_at is not None
                and s.due_at < moment
                and (domain_id is None or s.domain_id == domain_id)
            )
        return [(domain_id, case_id) for _, domain_id, case_id in due[:limit]]

    def case_ids(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted((s.domain_id, case_id) for case_id, s in self._cases.items())

    def expiry(self, case_id: str) -> datetime | None:
        """When the case's record expires (the TTL DynamoDB would delete it after); None: not stored."""
        with self._lock:
            stored = self._cases.get(case_id)
            return stored.expires_at if stored is not None else None

    def watermark(self, domain_id: str) -> datetime | None:
        with self._lock:
            return self._watermarks.get(domain_id)

    def advance(self, domain_id: str, watermark: datetime, previous: datetime | None) -> None:
        with self._lock:
            if self._watermarks.get(domain_id) == previous:
                self._watermarks[domain_id] = watermark

    def owed(self, domain_id: str) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._owed.get(domain_id, set()))

    def position(self, domain_id: str) -> FeedPosition:
        with self._lock:
            return FeedPosition(
                self._watermarks.get(domain_id), tuple(sorted(self._owed.get(domain_id, set())))
            )

    def owe(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._owed.setdefault(domain_id, set()).update(triggers)

    def settle(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._owed.get(domain_id, set()).difference_update(triggers)

    def states(self) -> dict[tuple[str, str], SlaState]:
        """Every SLA's state by (case, SLA key)."""
        found = {}
        for domain_id, case_id in self.case_ids():
            for key, state in self.load(domain_id, case_id).states().items():
                found[(case_id, key)] = state
        return found


class _StoredCase:
    """One case as the store keeps it (documents and strings, not live objects)."""

    def __init__(self, domain_id: str) -> None:
        self.domain_id = domain_id
        self.revision = 0
        self.snapshot: EnrichedCase | None = None
        self.fold: str | None = None
        self.horizon: datetime | None = None
        self.log: dict[str, Observation] = {}  # canonical JSON -> the observation
        self.text_bytes = 0  # the log's texts, each with its comma (or closing bracket)
        self.status_order: dict[str, StatusMark] = {}
        self.claims: dict[str, Claim] = {}
        self.due_at: datetime | None = None
        self.last_folded: datetime | None = None  # the time of the fold's last observation
        self.expires_at: datetime | None = None

    @property
    def log_bytes(self) -> int:
        """The log's `json_bytes`, kept as it changes (2 for an empty log)."""
        return 1 + self.text_bytes if self.log else 2

    def apply(self, change: CaseChange) -> None:
        self._expire_after(change)
        self.revision += 1
        if change.fold is not None and change.fold.last is not None:
            self.last_folded = change.fold.last[0]
        if change.snapshot is not None:
            self.snapshot = change.snapshot
        if change.fold is not None:
            self.fold = json.dumps(change.fold.to_doc(), separators=(",", ":"))
        if change.horizon is not None:
            self.horizon = change.horizon
        for text in {o.to_json() for o in change.dropped}:
            if self.log.pop(text, None) is not None:
                self.text_bytes -= len(text.encode()) + 1
        for obs in change.appended:  # a set: the same observation once
            text = obs.to_json()
            if text not in self.log:
                self.log[text] = Observation.from_json(text)
                self.text_bytes += len(text.encode()) + 1
        self.status_order.update(change.status_order)
        self.claims[change.claim_key] = change.claim
        self.due_at = change.due_at

    def _expire_after(self, change: CaseChange) -> None:
        """The TTL, as the adapter sets it: `RETENTION` after the newest change applied (30 days for a
        deleted case); moved only by a newer change; a first record without one expires after its claim."""
        latest = [o.at for o in change.appended]
        if change.snapshot is not None:
            latest.append(change.snapshot.version)
        if not latest:
            if self.revision:
                return
            latest.append(change.claim.at)
        version = max(latest)
        applied = [t for t in (self.snapshot.version if self.snapshot else None, self.last_folded) if t]
        if applied and version <= max(applied):
            return
        view = change.snapshot if change.snapshot is not None else self.snapshot
        self.expires_at = version + (DELETED_RETENTION if view is not None and view.deleted else RETENTION)

    def record(
        self,
        policies: Sequence[PolicySpec],
        claim_key: str | None,
        *,
        with_log: bool,
        watermark: datetime | None,
    ) -> CaseRecord:
        fold = FoldState.from_doc(json.loads(self.fold), policies) if self.fold is not None else None
        return CaseRecord(
            domain_id=self.domain_id,
            case_id="",  # set below
            revision=self.revision,
            snapshot=self.snapshot,
            fold=fold,
            horizon=self.horizon,
            status_order=dict(self.status_order),
            claim=self.claims.get(claim_key) if claim_key is not None else None,
            log=tuple(sorted(self.log.values(), key=Observation.sort_key)) if with_log else None,
            log_size=len(self.log),
            log_bytes=self.log_bytes,
            claims_size=len(self.claims),
            watermark=watermark,
        )


class RecordingCaseStore:
    """A `CaseStore` that passes everything to `inner` and records the SLA transitions each successful
    commit wrote (the local pipeline's "SLA changes", observed at the port)."""

    def __init__(self, inner: CaseStore) -> None:
        self.inner = inner
        self.transitions: list[SlaTransition] = []
        self._lock = threading.Lock()

    def load(
        self,
        domain_id: str,
        case_id: str,
        *,
        claim_key: str | None = None,
        with_log: bool = False,
        with_watermark: bool = False,
    ) -> CaseRecord:
        return self.inner.load(
            domain_id, case_id, claim_key=claim_key, with_log=with_log, with_watermark=with_watermark
        )

    def load_many(self, domain_id: str, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
        return self.inner.load_many(domain_id, case_ids)

    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        committed = self.inner.commit(old, change)
        with self._lock:
            self.transitions += change.transitions
        return committed

    def complete(self, case_id: str, claim_key: str, *, pending: Sequence[str] | None = None) -> None:
        self.inner.complete(case_id, claim_key, pending=pending)

    def due_before(
        self, moment: datetime, limit: int = 100, domain_id: str | None = None
    ) -> list[tuple[str, str]]:
        return self.inner.due_before(moment, limit, domain_id)

    def case_ids(self) -> list[tuple[str, str]]:
        return self.inner.case_ids()

    def take_transitions(self) -> list[SlaTransition]:
        with self._lock:
            taken, self.transitions = self.transitions, []
        return taken


__all__ = [
    "CountingMetrics",
    "DictCasesReader",
    "DictCasesSearch",
    "InMemoryCaseStore",
    "ListDeadLetters",
    "ParkedEvent",
    "RecordingCaseStore",
    "RecordingTimers",
]
