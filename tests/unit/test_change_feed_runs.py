"""Change-feed polls (the reconcile function; issue 12, defect 4, on the feed of issue 13) over fakes: the
cases Cases reports changed go oldest news first; one case's failure is its own (counted, read again by the
next poll: the watermark stays just before its news) and the cases after it are applied; a poll lasts as
long as the invocation has time, not a fixed count, and one out of time leaves the watermark just before
the first case it did not reach, where the next poll continues. The same on the Cases emulator and moto:
tests/integration/test_change_feed.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from casewatch.app.sla import feed as feed_module
from casewatch.app.sla.feed import MIN_RESERVE_S, FeedReport
from casewatch.domain.case_record import CaseChange, CaseRecord
from casewatch.domain.sla.model import SlaItemTooLargeError, SlaStatus
from casewatch.observability import RECONCILE_CASE_ERRORS
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesSearch, InMemoryCaseStore
from tests.apps import World
from tests.builders import DOMAIN, POLICIES, PRIORITY, RESOLVE, SLA_SETTINGS, at, created

LAG = SLA_SETTINGS.index_lag
NOW = at(30)  # every poll here: the cases' news (minutes 1 to 10) are older than now - the index lag
MICROSECOND = timedelta(microseconds=1)


class Store(InMemoryCaseStore):
    """The in-memory case store; records the cases committed, in order; a commit of a case in `failing`
    raises (DynamoDB refusing it); one in `taking` lets `seconds` of (fake) time pass."""

    def __init__(self) -> None:
        super().__init__(POLICIES)
        self.committed: list[str] = []
        self.failing: set[str] = set()
        self.taking: dict[str, float] = {}
        self.seconds = 0.0

    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        self.seconds += self.taking.get(old.case_id, 0.0)
        if old.case_id in self.failing:
            raise SlaItemTooLargeError(f"case {old.case_id}: refused")
        record = super().commit(old, change)
        self.committed.append(old.case_id)
        return record


def feed_world() -> tuple[World, Store, DictCasesSearch]:
    """The four functions over fakes, the feed's watermark at minute 0, the clock at `NOW`."""
    clock = VirtualClock(NOW)
    search = DictCasesSearch(clock)
    store = Store()
    world = World(SLA_SETTINGS, clock=clock, search=search, store=store)
    world.adapters.feed.advance(DOMAIN, at(0), None)
    return world, store, search


def changed(search: DictCasesSearch, *cases: tuple[str, float]) -> None:
    """Cases changed in Cases (their events lost), each last updated at its minute."""
    for case_id, minute in cases:
        search.put_case(case_id, {"status": "open", PRIORITY: "low"}, updated=at(minute))


def poll(world: World, poll_id: str, remaining_s: Callable[[], float] | None = None) -> FeedReport:
    return world.reconcile_app().feed.poll(trigger_id=poll_id, remaining_s=remaining_s)


def watermark(world: World) -> datetime | None:
    return world.adapters.feed.watermark(DOMAIN)


def remaining(*seconds: float) -> Callable[[], float]:
    """A fake `remaining_s`: the invocation's time left each time it is asked (the poll's start, then
    before each case), in turn."""
    left: Iterator[float] = iter(seconds)
    return lambda: next(left)


# -- the order ---------------------------------------------------------------------------------------------


def test_the_cases_are_applied_oldest_news_first() -> None:
    """By each case's earliest news: its last update, or an item associated earlier; a tie by case id."""
    world, store, search = feed_world()
    clock = world.clock
    clock.set(at(-5))
    world.deliver(created("known", -5))  # heard of before the watermark: only a new comment is news
    clock.set(NOW)
    store.committed.clear()
    changed(search, ("c-late", 9), ("c-b", 3), ("c-a", 3), ("c-early", 1), ("c-both", 8))
    search.add_item("known", "cm1", "Comment", at(2))
    search.add_item("c-both", "cm2", "Comment", at(0.5))  # an item older than the case's last update
    report = poll(world, "p1")
    assert (report.cases_changed, report.cases_applied, report.case_errors) == (6, 6, 0)
    assert store.committed == ["c-both", "c-early", "known", "c-a", "c-b", "c-late"]
    assert watermark(world) == NOW - LAG


# -- one case's failure is its own ---------------------------------------------------------------------------


@pytest.mark.parametrize("news", ["values", "item"])
def test_a_failing_case_pins_the_watermark_before_its_news_and_the_later_cases_are_applied(news: str) -> None:
    world, store, search = feed_world()
    if news == "values":  # SearchCases reports it changed at minute 2
        changed(search, ("c1", 1), ("c2", 2), ("c3", 3))
    else:  # only SearchAllRelatedItems: a comment on it, associated at minute 2
        changed(search, ("c1", 1), ("c3", 3))
        search.add_item("c2", "cm1", "Comment", at(2))
    store.failing = {"c2"}
    report = poll(world, "p1")
    assert store.committed == ["c1", "c3"]  # the case after the failing one is applied
    assert (report.cases_changed, report.cases_applied, report.case_errors, report.cases_left) == (3, 2, 1, 0)
    assert world.counts[RECONCILE_CASE_ERRORS] == 1
    assert watermark(world) == at(2) - MICROSECOND  # its news is read again by the next poll
    assert world.adapters.feed.owed(DOMAIN) == [("c2", "feed:p1:c2")]  # (it may have been written)
    store.failing.clear()
    world.clock.advance(timedelta(minutes=1))
    again = poll(world, "p2")
    since = search.calls[-1][1]
    assert since == at(2) - MICROSECOND  # from where it was pinned
    assert store.committed == ["c1", "c3", "c2"]  # c3 is read again, but its record knows its news
    assert (again.cases_changed, again.cases_applied, again.case_errors) == (2, 1, 0)
    assert watermark(world) == NOW + timedelta(minutes=1) - LAG
    assert world.adapters.feed.owed(DOMAIN) == []  # never written: settled by the next poll
    assert world.counts[RECONCILE_CASE_ERRORS] == 1


def test_a_case_failing_every_poll_holds_the_watermark_and_nothing_else() -> None:
    world, store, search = feed_world()
    changed(search, ("c1", 1), ("c2", 2))
    store.failing = {"c1"}
    for minute in range(3):
        world.clock.set(NOW + timedelta(minutes=minute))
        changed(search, (f"new-{minute}", 20 + minute))  # later cases keep coming
        poll(world, f"p{minute}")
        assert watermark(world) == at(1) - MICROSECOND
    assert {case_id for case_id, _ in world.states()} == {"c2", "new-0", "new-1", "new-2"}
    # One error a poll: the owed trigger of a failed write that never happened is settled (nothing to send).
    assert world.counts[RECONCILE_CASE_ERRORS] == 3
    assert world.adapters.feed.owed(DOMAIN) == [("c1", "feed:p2:c1")]


def test_a_case_failing_in_the_due_sweep_pins_the_watermark_just_before_the_poll_s_end() -> None:
    """A due case has no news: its failure holds the watermark a microsecond before `until` (the sweep reads
    the due index again next poll anyway)."""
    world, store, _ = feed_world()
    world.clock.set(at(-1))
    world.deliver(created("c1", 0))
    world.clock.set(at(9 * 60))  # resolve (8 h) due
    world.adapters.feed.advance(DOMAIN, at(9 * 60 - 1), at(0))
    store.failing = {"c1"}
    report = poll(world, "p1")
    assert (report.cases_due, report.case_errors) == (1, 1)
    assert watermark(world) == at(9 * 60) - LAG - MICROSECOND
    assert world.state("c1", RESOLVE).status is SlaStatus.ACTIVE
    store.failing.clear()
    world.clock.advance(timedelta(minutes=1))
    assert poll(world, "p2").cases_due == 1
    assert world.state("c1", RESOLVE).status is SlaStatus.OVERDUE


# -- the invocation's time, not a count ----------------------------------------------------------------------


def test_a_poll_applies_more_than_fifty_cases_when_it_has_the_time() -> None:
    world, store, search = feed_world()
    changed(search, *((f"c{n:02d}", 1 + n / 10) for n in range(51)))
    report = poll(world, "p1", remaining_s=lambda: 60.0)
    assert (report.cases_changed, report.cases_applied, report.cases_left) == (51, 51, 0)
    assert store.committed == [f"c{n:02d}" for n in range(51)]


def test_a_poll_stops_when_less_than_three_times_the_slowest_case_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, store, search = feed_world()
    monkeypatch.setattr(feed_module, "time", SimpleNamespace(monotonic=lambda: store.seconds))
    changed(search, ("c1", 1), ("c2", 2), ("c3", 3))
    store.taking["c1"] = 4.0  # the slowest case so far: 12 s must be left before the next one
    report = poll(world, "p1", remaining_s=remaining(60.0, 60.0, 12.0, 11.999))
    assert store.committed == ["c1", "c2"]
    assert (report.cases_changed, report.cases_applied, report.cases_left) == (3, 2, 1)
    assert watermark(world) == at(3) - MICROSECOND
    again = poll(world, "p2")
    assert (again.cases_changed, again.cases_applied, again.cases_left) == (1, 1, 0)
    assert store.committed == ["c1", "c2", "c3"]


def test_a_failing_slow_case_counts_for_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """The time a failed case took counts too: the next case is not started without three times it left."""
    world, store, search = feed_world()
    monkeypatch.setattr(feed_module, "time", SimpleNamespace(monotonic=lambda: store.seconds))
    changed(search, ("c1", 1), ("c2", 2))
    store.failing, store.taking["c1"] = {"c1"}, 10.0
    report = poll(world, "p1", remaining_s=remaining(60.0, 60.0, 29.999))
    assert (report.case_errors, report.cases_applied, report.cases_left) == (1, 0, 1)
    assert watermark(world) == at(1) - MICROSECOND  # the earlier of the two pins


def test_cases_with_the_same_news_time_one_reached_one_not() -> None:
    """Out of time between two cases changed at the same moment: the watermark stays before both, and the
    next poll reads both again (the one applied has nothing new)."""
    world, store, search = feed_world()
    changed(search, ("c-a", 2), ("c-b", 2))
    report = poll(world, "p1", remaining_s=remaining(60.0, 60.0, MIN_RESERVE_S - 0.001))
    assert (report.cases_applied, report.cases_left) == (1, 1)
    assert watermark(world) == at(2) - MICROSECOND
    again = poll(world, "p2")
    assert (again.cases_changed, again.cases_applied) == (2, 1)
    assert store.committed == ["c-a", "c-b"]


def test_a_poll_out_of_time_leaves_the_due_sweep_to_the_next_one() -> None:
    world, store, search = feed_world()
    world.clock.set(at(-1))
    world.deliver(created("due", 0))
    store.committed.clear()
    world.clock.set(at(9 * 60))  # its resolve is due
    world.adapters.feed.advance(DOMAIN, at(9 * 60 - 2), at(0))
    changed(search, ("c1", 9 * 60 - 1), ("c2", 9 * 60 - 1))
    report = poll(world, "p1", remaining_s=remaining(60.0, 60.0, MIN_RESERVE_S - 0.001))
    assert (report.cases_left, report.cases_due) == (1, 0)
    assert world.state("due", RESOLVE).status is SlaStatus.ACTIVE
    again = poll(world, "p2")
    assert (again.cases_applied, again.cases_due) == (2, 1)  # c2, and the due case given the horizon
    assert store.committed == ["c1", "c2", "due"]
    assert world.state("due", RESOLVE).status is SlaStatus.OVERDUE


@pytest.mark.parametrize(
    ("remaining_ms", "applied"), [(int(MIN_RESERVE_S * 1000), 1), (int(MIN_RESERVE_S * 1000) - 1, 0)]
)
def test_the_reconcile_handler_runs_on_the_invocations_remaining_time(
    remaining_ms: int, applied: int
) -> None:
    """The handler passes `context.get_remaining_time_in_millis()` in seconds: exactly the reserve left
    still applies a case, a millisecond less applies none and leaves it to the next poll."""
    world, store, search = feed_world()
    changed(search, ("c1", 1))
    response: dict[str, Any] = world.poll("r1", remaining_ms=remaining_ms)
    assert (response["casesChanged"], response["casesApplied"], response["casesLeft"]) == (
        1,
        applied,
        1 - applied,
    )
    assert len(store.committed) == applied
    assert watermark(world) == (NOW - LAG if applied else at(1) - MICROSECOND)


# -- what a poll reports ---------------------------------------------------------------------------------------


def emf(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents the handler printed (Powertools Metrics)."""
    return [
        doc
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and isinstance(doc := json.loads(line), dict) and "_aws" in doc
    ]


@pytest.mark.parametrize("held", ["failed", "out-of-time", "neither"])
def test_the_poll_reports_the_watermark_it_left_and_the_feed_lag_from_it(
    held: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`until` is the new watermark (a pinned one too), and `FeedLagSeconds` how far behind now it is: a
    case that failed, or one not reached, shows as lag (not as the index lag of a poll that kept up)."""
    world, store, search = feed_world()
    changed(search, ("c1", 1), ("c2", 2))
    if held == "failed":
        store.failing = {"c2"}
    capsys.readouterr()
    response = world.poll(
        "r1", remaining_ms=int(MIN_RESERVE_S * 1000) - 1 if held == "out-of-time" else 60_000
    )
    expected = {"failed": at(2) - MICROSECOND, "out-of-time": at(1) - MICROSECOND, "neither": NOW - LAG}[held]
    assert watermark(world) == expected
    assert response["until"] == expected.isoformat()
    [document] = [d for d in emf(capsys) if "FeedLagSeconds" in d]
    assert document["FeedLagSeconds"] in (
        (NOW - expected).total_seconds(),
        [(NOW - expected).total_seconds()],
    )


def test_a_poll_that_could_not_move_the_watermark_reports_none() -> None:
    world, store, search = feed_world()
    changed(search, ("c1", 1))
    store.failing = {"c1"}
    assert poll(world, "p1").until == at(1) - MICROSECOND
    world.clock.advance(timedelta(minutes=1))
    assert poll(world, "p2").until is None  # still held there: not moved
