"""The change feed (the reconcile function, every `reconcile_every_minutes`): Cases read domain-wide.

One poll reads what changed in Cases since the watermark, whether or not its events arrived, in a few
index-backed searches (their cost grows with polls and pages, not with cases or SLAs):

- SearchCases: every case updated after the watermark, with the fields SLA tracking reads;
- SearchAllRelatedItems: every Sla item (and item type a policy completes on) associated after it —
  including Cases SLAs casewatch never heard of.

What the cases' records do not know already is applied to them (one batched read of the records, one
write per case that learns something); then open SLAs due a breach check before the new watermark are
given the horizon (a safety net for breach timers that did not fire). Search lags writes by the index
delay, so the watermark only moves to `now - index_lag`: a change younger than that is read again by the
next poll (applying it twice changes nothing). Cases are applied oldest news first; a poll out of time
moves the watermark up to the first case it did not reach.

A case that fails is read again by the next poll (the watermark stays before its news), but if its write
went through and only its sends failed (or the invocation was killed while sending), its record already
knows the news: the next poll would find nothing to apply, and what the write owes would never be sent.
So a poll marks what it is about to apply as owed (`FeedState.owe`, one write, before any case's write),
settles what it applied and sent, and first sends what earlier polls' owed triggers still hold (a claim
left pending, once its lease — that poll's invocation — is over).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from casewatch.app.case_update import CaseUpdater, Trigger
from casewatch.domain.case_record import CaseRecord
from casewatch.domain.sla.log import Observation
from casewatch.domain.sla.model import SlaTransition
from casewatch.domain.sla.observations import (
    LAST_UPDATED_FIELD,
    observe_items,
    observe_search,
    reconcile_fields,
    tracked_fields,
)
from casewatch.errors import CasesThrottledError, CasesUnavailableError, DuplicateInProgressError
from casewatch.models.fields import FieldValue
from casewatch.models.related_items import RelatedItemType
from casewatch.observability import (
    FEED_CASES_APPLIED,
    FEED_CASES_CHANGED,
    FEED_REQUESTS,
    RECONCILE_CASE_ERRORS,
    SLA_REPAIRS,
    logger,
)
from casewatch.ports import CasesSearch, CaseStore, ChangedCase, FeedState, FoundItem, MetricsRecorder

# Time kept free at the end of an invocation (at least three times the slowest case so far).
MIN_RESERVE_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class FeedReport:
    """One poll: counts and the new watermark (None: not moved)."""

    since: datetime | None = None
    until: datetime | None = None
    cases_changed: int = 0  # cases Cases reports changed (or with new related items)
    cases_applied: int = 0  # of which the records learned something
    cases_due: int = 0  # cases given the horizon by the due sweep
    cases_left: int = 0  # not reached (out of time, or Cases throttled): the next poll does them
    case_errors: int = 0
    search_requests: int = 0
    repairs: int = 0  # SLAs whose state changed
    transitions: tuple[SlaTransition, ...] = ()
    throttled: bool = False
    recovered: int = 0  # earlier polls' failed triggers whose owed side effects this poll sent

    def response(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "casesChanged": self.cases_changed,
            "casesApplied": self.cases_applied,
            "casesDue": self.cases_due,
            "casesLeft": self.cases_left,
            "caseErrors": self.case_errors,
            "searchRequests": self.search_requests,
            "repairs": self.repairs,
            "transitions": len(self.transitions),
            "throttled": self.throttled,
            "recovered": self.recovered,
        }


@dataclass
class _Poll:
    transitions: list[SlaTransition] = field(default_factory=list)
    applied: int = 0
    errors: int = 0
    left: int = 0
    slowest: float = 0.0
    held_at: datetime | None = None  # the earliest news of a case failed or not reached: read again
    done: list[tuple[str, str]] = field(default_factory=list)  # (case, claim key) applied and sent

    def pin(self, at: datetime) -> None:
        self.held_at = at if self.held_at is None else min(self.held_at, at)


class ChangeFeed:
    def __init__(
        self,
        *,
        domain_id: str,
        updater: CaseUpdater,
        store: CaseStore,
        search: CasesSearch,
        feed: FeedState,
        metrics: MetricsRecorder,
        index_lag: timedelta,
        first_lookback: timedelta,
    ) -> None:
        self.domain_id = domain_id
        self.updater = updater
        self.store = store
        self.search = search
        self.feed = feed
        self.metrics = metrics
        self.index_lag = index_lag
        self.first_lookback = first_lookback
        policies = updater.policies
        self.tracked = tracked_fields(policies)
        self.fields = reconcile_fields(self.tracked)  # SettingsError beyond what SearchCases returns
        completing = {p.complete_item for p in policies if p.complete_item}
        self.item_types = sorted({RelatedItemType.SLA.value, *completing})

    def poll(
        self,
        *,
        trigger_id: str,
        now: datetime | None = None,
        remaining_s: Callable[[], float] | None = None,
    ) -> FeedReport:
        """One poll (`trigger_id`: the invocation's event id, so a retry of it is recognised)."""
        now = now or self.updater.clock.now()
        deadline = self.updater.deadline(int(remaining_s() * 1000)) if remaining_s is not None else None
        position = self.feed.position(self.domain_id)
        recovered = self._settle_owed(position.owed, deadline)
        since = position.watermark
        start = since or now - self.first_lookback
        until = now - self.index_lag
        if until <= start:
            return FeedReport(since=since, recovered=recovered)
        requests = 0
        try:
            cases = self.search.changed_cases(self.domain_id, start, self.fields)
            requests += cases.requests
            items = self.search.associated_items(self.domain_id, start, self.item_types)
            requests += items.requests
        except (CasesThrottledError, CasesUnavailableError) as exc:
            logger.warning(
                "change feed: Cases search failed, the next poll retries", error=type(exc).__name__
            )
            self.metrics.count(FEED_REQUESTS, requests)
            return FeedReport(since=since, throttled=True, search_requests=requests, recovered=recovered)
        self.metrics.count(FEED_REQUESTS, requests)
        values, found, changed_at = _by_case(cases.items, items.items, start)
        changed = sorted(changed_at, key=lambda case_id: (changed_at[case_id], case_id))
        self.metrics.count(FEED_CASES_CHANGED, len(changed))
        poll = _Poll()
        records = self.store.load_many(self.domain_id, changed) if changed else {}
        planned = [
            (case_id, f"feed:{trigger_id}:{case_id}", news)
            for case_id in changed
            if (news := self._news(records.get(case_id), values.get(case_id), found.get(case_id, []), now))
        ]
        self._owe(planned)
        for n, (case_id, key, news) in enumerate(planned):
            if _out_of_time(remaining_s, poll.slowest):
                poll.left = len(planned) - n
                poll.pin(changed_at[case_id])
                break
            self._apply(poll, case_id, key, news, until, deadline=deadline)
        due = [] if poll.left else self.store.due_before(until, domain_id=self.domain_id)
        sweep = [(case_id, f"feed:{trigger_id}:{case_id}:due", ()) for _, case_id in due]
        self._owe(sweep)
        for case_id, key, _ in sweep:
            if not _out_of_time(remaining_s, poll.slowest):
                self._apply(poll, case_id, key, (), until, deadline=deadline)
        if poll.done:  # the others stay owed: the next polls send what their writes owe, if any
            self.feed.settle(self.domain_id, poll.done)
        # The news of a failed case, and of the cases not reached, is read again by the next poll: the
        # watermark stays just before the earliest of it (a poll out of time still makes progress).
        moved = until if poll.held_at is None else min(until, poll.held_at - timedelta(microseconds=1))
        advanced = moved > start
        if advanced:
            self.feed.advance(self.domain_id, moved, since)
        repairs = {(t.case_id, t.sla_key) for t in poll.transitions}
        self.metrics.count(FEED_CASES_APPLIED, poll.applied)
        if repairs:
            self.metrics.count(SLA_REPAIRS, len(repairs))
        return FeedReport(
            since=since,
            until=moved if advanced else None,
            cases_changed=len(changed),
            cases_applied=poll.applied,
            cases_due=len(due),
            cases_left=poll.left,
            case_errors=poll.errors,
            search_requests=requests,
            repairs=len(repairs),
            transitions=tuple(poll.transitions),
            recovered=recovered,
        )

    def _news(
        self,
        record: CaseRecord | None,
        values: Mapping[str, FieldValue] | None,
        items: Sequence[FoundItem],
        now: datetime,
    ) -> tuple[Observation, ...]:
        """What the search results say about a case that its record does not know."""
        fold = record.fold if record is not None else None
        news = observe_search(values, self.tracked, fold, now) if values is not None else []
        news += observe_items(((i.related_item_id, i.item_type, i.associated_at, i.sla) for i in items), fold)
        return tuple(news)

    def _owe(self, planned: Sequence[tuple[str, str, tuple[Observation, ...]]]) -> None:
        """Before any write: a poll that fails (or is killed) after a case's write leaves it owed."""
        if planned:
            self.feed.owe(self.domain_id, [(case_id, key) for case_id, key, _ in planned])

    def _settle_owed(self, owed: Sequence[tuple[str, str]], deadline: datetime | None) -> int:
        """Send what earlier polls' failed triggers owe: a claim left pending (written, its sends failed
        or cut short) is recovered once its lease is over; one done, or never written, is settled."""
        settled: list[tuple[str, str]] = []
        recovered = 0
        for case_id, claim_key in owed:
            try:
                update = self.updater.apply(
                    self.domain_id, case_id, claim_key, lambda _record: None, deadline=deadline
                )
            except DuplicateInProgressError:
                continue  # its poll may still be running: the next one looks again
            except Exception as exc:  # still failing: owed still (counted; the next poll retries)
                self.metrics.count(RECONCILE_CASE_ERRORS)
                logger.warning(
                    "change feed: an owed trigger failed again", case_id=case_id, error=type(exc).__name__
                )
                continue
            recovered += update.kind == "recovered"
            settled.append((case_id, claim_key))
        if settled:
            self.feed.settle(self.domain_id, settled)
        return recovered

    def _apply(
        self,
        poll: _Poll,
        case_id: str,
        claim_key: str,
        news: tuple[Observation, ...],
        until: datetime,
        *,
        deadline: datetime | None,
    ) -> None:
        started = time.monotonic()
        try:
            update = self.updater.apply(
                self.domain_id,
                case_id,
                claim_key,
                lambda _record: Trigger(observations=news, horizon=until),
                deadline=deadline,
            )
        except (
            Exception
        ) as exc:  # one case's failure must not hold up the others (counted, retried next poll)
            poll.errors += 1
            poll.pin(min((obs.at for obs in news), default=until))
            self.metrics.count(RECONCILE_CASE_ERRORS)
            logger.exception("change feed: a case failed", case_id=case_id, error=type(exc).__name__)
            return
        finally:
            poll.slowest = max(poll.slowest, time.monotonic() - started)
        poll.done.append((case_id, claim_key))
        if update.kind == "applied":
            poll.applied += 1
            poll.transitions += update.transitions
            if update.transitions:
                logger.info(
                    "sla repaired", case_id=case_id, slas=sorted({t.sla_key for t in update.transitions})
                )


def _by_case(
    cases: Sequence[ChangedCase], items: Sequence[FoundItem], start: datetime
) -> tuple[dict[str, Mapping[str, FieldValue]], dict[str, list[FoundItem]], dict[str, datetime]]:
    """The search results by case: field values, related items, and each case's earliest news (so the
    cases go oldest first and a poll out of time still moves the watermark up to the first not reached)."""
    values: dict[str, Mapping[str, FieldValue]] = {c.case_id: c.values for c in cases}
    found: dict[str, list[FoundItem]] = defaultdict(list)
    changed_at = {case_id: _updated_at(case_values) or start for case_id, case_values in values.items()}
    for item in items:
        found[item.case_id].append(item)
        earlier = changed_at.get(item.case_id)
        changed_at[item.case_id] = item.associated_at if earlier is None else min(earlier, item.associated_at)
    return values, found, changed_at


def _updated_at(values: Mapping[str, FieldValue]) -> datetime | None:
    updated = values.get(LAST_UPDATED_FIELD)
    return updated.as_datetime() if updated is not None else None


def _out_of_time(remaining_s: Callable[[], float] | None, slowest: float) -> bool:
    return remaining_s is not None and remaining_s() < max(MIN_RESERVE_S, 3 * slowest)


__all__ = ["ChangeFeed", "FeedReport"]
