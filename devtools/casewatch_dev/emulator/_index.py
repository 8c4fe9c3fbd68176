"""The search index: what SearchCases and SearchAllRelatedItems see. GetCase and the per-case
SearchRelatedItems read the live state (read-after-write).

Cases' search is index-backed and lags writes (AWS: a change "typically takes less than a few seconds"
to propagate, "in some cases it can take several minutes"). The emulator models that on its own clock
(which may be virtual): every change to a case — created, updated, deleted, a related item added, a
ground-truth record put or removed by the local pipeline — is indexed as a snapshot of the whole case
`lag` after it happened, plus a seeded random part of `jitter`. Until then search answers from the
previous indexed version: nothing for a new case, the old fields for an updated one, the case itself for
a deleted one. A snapshot never replaces a newer one indexed before it (with jitter, snapshots of one
case can be indexed out of order; a real indexer versions its documents the same way). Time-derived
values (an SLA going Active -> Overdue) are evaluated at `as_of() = now - lag`: search sees the domain as
it was `lag` ago.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from casewatch.ports import Clock
from casewatch_dev.emulator._state import Case, Domain


@dataclass(order=True, frozen=True, slots=True)
class _Pending:
    visible_at: datetime
    sequence: int
    changed_at: datetime = field(compare=False)
    domain_id: str = field(compare=False)
    case_id: str = field(compare=False)
    case: Case | None = field(compare=False)  # None: deleted


@dataclass(frozen=True, slots=True)
class _Document:
    version: tuple[datetime, int]  # (when the change happened, its sequence number)
    case: Case | None  # None: a tombstone (deleted), so an older snapshot indexed later stays out


class SearchIndex:
    """Snapshots of cases, visible `lag` (+ up to `jitter`) after the change, on `clock`."""

    def __init__(self, clock: Clock, *, lag: timedelta, jitter: timedelta, rng: random.Random) -> None:
        self._clock = clock
        self.lag = lag
        self.jitter = jitter
        self._rng = rng
        self._pending: list[_Pending] = []  # a heap on (visible_at, sequence)
        self._sequence = 0
        self._documents: dict[str, dict[str, _Document]] = {}

    @property
    def lag(self) -> timedelta:
        return self._lag

    @lag.setter
    def lag(self, value: timedelta) -> None:
        if value < timedelta(0):
            raise ValueError("the search index lag cannot be negative")
        self._lag = value

    @property
    def jitter(self) -> timedelta:
        return self._jitter

    @jitter.setter
    def jitter(self, value: timedelta) -> None:
        if value < timedelta(0):
            raise ValueError("the search index jitter cannot be negative")
        self._jitter = value

    def record(self, domain_id: str, case_id: str, case: Case | None) -> None:
        """`case` changed now (None: it was deleted): index its current state after the lag."""
        now = self._clock.now()
        delay = self._lag
        if self._jitter:
            delay += self._jitter * self._rng.random()
        self._sequence += 1
        snapshot = case.snapshot() if case is not None else None
        heapq.heappush(
            self._pending, _Pending(now + delay, self._sequence, now, domain_id, case_id, snapshot)
        )
        self._catch_up(now)

    def replace_all(self, domains: Mapping[str, Domain]) -> None:
        """Index `domains` as they are, at once (a loaded state: Cases indexed it long ago)."""
        now = self._clock.now()
        self._pending.clear()
        self._documents = {
            domain_id: {
                case_id: _Document((now, 0), case.snapshot()) for case_id, case in domain.cases.items()
            }
            for domain_id, domain in domains.items()
        }

    def drop_domain(self, domain_id: str) -> None:
        self._documents.pop(domain_id, None)
        self._pending = [p for p in self._pending if p.domain_id != domain_id]
        heapq.heapify(self._pending)

    def flush(self) -> None:
        """Index every change made so far now, as if the lag had passed (tests on a wall clock)."""
        while self._pending:
            self._apply(heapq.heappop(self._pending))

    def as_of(self) -> datetime:
        """The moment the index shows the domain at (time-derived values are evaluated then)."""
        return self._clock.now() - self._lag

    def cases(self, domain_id: str) -> list[Case]:
        """The indexed cases of a domain, as search sees them now."""
        self._catch_up(self._clock.now())
        return [d.case for d in self._documents.get(domain_id, {}).values() if d.case is not None]

    def _catch_up(self, now: datetime) -> None:
        while self._pending and self._pending[0].visible_at <= now:
            self._apply(heapq.heappop(self._pending))

    def _apply(self, change: _Pending) -> None:
        documents = self._documents.setdefault(change.domain_id, {})
        current = documents.get(change.case_id)
        if current is not None:
            if current.version > (change.changed_at, change.sequence):
                return  # a newer version is indexed already
            if current.case is None:
                del documents[change.case_id]  # a case back after a deletion is indexed anew, at the end
        documents[change.case_id] = _Document((change.changed_at, change.sequence), change.case)


__all__ = ["SearchIndex"]
