"""The capacity model (`casewatch_dev.capacity`): each limit solved for the rate, on made-up demand."""

from __future__ import annotations

import math

import pytest

from casewatch.settings import load_cdk_context
from casewatch_dev.bench.accounting import Call, Invocation
from casewatch_dev.bench.steady import at_rate
from casewatch_dev.capacity import Costs, Demand, Model, percentile, search_pages


def _demand(**overrides: object) -> Demand:
    values: dict[str, object] = {
        "events": 1000,
        "event_share": {"case-changed": 0.6, "related-item-created": 0.4},
        "cases_event_path": {"GetCase": 0.5, "SearchRelatedItems": 0.0},
        "case_results": 0.5,
        "item_results": 0.2,
        "feed_applies": 0.0,
        "feed_due": 0.0,
        "timers": {"breach": 0.1, "warning": 0.1},
        "polls": 10,
        "incomplete_polls": 0,
    }
    values.update(overrides)
    return Demand(**values)  # type: ignore[arg-type]


COSTS = Costs(
    lambda_ms={
        "case_created": 100.0,
        "case_updated": 100.0,
        "case_deleted": 100.0,
        "comment": 100.0,
        "contact": 100.0,
        "file": 100.0,
        "sla_item": 100.0,
        "breach_timer": 100.0,
        "warning_timer": 100.0,
    },
    event_path_cases_requests=0.0,
    cases_request_ms=60.0,
    wcu_per_event=10.0,
    gsi_wcu_per_event=0.2,
)


def _model(minutes: int = 1, *, reserved: int | None = None, **demand: object) -> Model:
    settings = load_cdk_context(
        "cdk.json", {"reconcile_every_minutes": minutes, "reserved_concurrency": reserved}
    )
    return Model(settings, _demand(**demand), COSTS, case_page=25, item_page=25)


def test_search_pages_read_every_page_and_at_least_one() -> None:
    assert search_pages(0, 25, newest_first=False) == 1
    assert search_pages(25, 25, newest_first=False) == 1
    assert search_pages(26, 25, newest_first=False) == 2
    # Newest first: up to the page holding the first item already seen (one more than the new ones).
    assert search_pages(24, 25, newest_first=True) == 1
    assert search_pages(25, 25, newest_first=True) == 2


def test_getcase_on_the_event_path_saturates_at_the_quota_over_calls_per_event() -> None:
    model = _model(cases_event_path={"GetCase": 0.5})
    assert model.highest_rate("Cases GetCase (event path)") == pytest.approx(4.0 / 0.5, rel=1e-3)


def test_the_capacity_is_the_lowest_limit_and_every_limit_holds_there() -> None:
    model = _model()
    capacity = model.highest_rate()
    limits = {name: model.highest_rate(name) for name in model.limit_usage(1.0)}
    assert capacity == pytest.approx(min(limits.values()), abs=0.2)
    assert all(usage <= 1.0 for usage in model.limit_usage(capacity).values())
    assert any(usage > 1.0 for usage in model.limit_usage(capacity * 1.05 + 0.5).values())


def test_searchcases_pages_per_poll_follow_results_per_event_rate_and_period() -> None:
    model = _model(minutes=1, case_results=0.5)
    cases_pages, _ = model.feed_pages(100.0)  # 0.5 x 100/s x 60 s = 3,000 cases, 25 a page
    assert cases_pages == math.ceil(3000 / 25)
    # 2 pages/s over 60 s: 120 pages, so 100 events/s saturates SearchCases' quota exactly.
    assert model.highest_rate("Cases SearchCases (feed)") == pytest.approx(100.0, abs=0.5)


def test_a_longer_feed_period_makes_each_poll_longer_than_its_invocation_allows() -> None:
    one, fifteen = _model(minutes=1), _model(minutes=15)
    limit = "feed poll within its invocation and period"
    assert fifteen.highest_rate(limit) < one.highest_rate(limit) / 5


def test_case_applies_in_the_poll_cost_what_a_breach_timer_costs() -> None:
    idle, busy = _model(), _model(feed_applies=0.5)
    assert busy.poll_seconds(10.0) - idle.poll_seconds(10.0) == pytest.approx(0.5 * 10 * 60 * 0.1, rel=1e-6)


def test_lambda_concurrency_is_invocations_per_second_times_duration_against_the_reservation() -> None:
    model = _model(reserved=2)
    needed = model.concurrency(10.0)
    assert needed["case-changed"] == pytest.approx(10 * 0.6 * (0.1 + 0.5 * 0.06))
    assert model.highest_rate("Lambda concurrency: case-changed") == pytest.approx(
        2 / (0.6 * (0.1 + 0.5 * 0.06)), abs=0.1
    )
    unreserved = _model(reserved=None)
    assert unreserved.highest_rate("Lambda concurrency: case-changed") > 1000


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([float(n) for n in range(1, 101)], 0.99) == 99.0
    assert percentile([5.0], 0.5) == 5.0


def _invocation(kind: str, *ops: str, wcu: int = 0) -> Invocation:
    calls = [Call(*op.split(":"), purpose=op.split(":")[1], wcu=wcu) for op in ops]
    return Invocation(kind, calls, cpu_s=0.0)


def test_the_steady_state_counts_events_as_measured_and_a_poll_over_the_events_it_serves() -> None:
    """`bench.steady.at_rate`: 4 handled events of 5 requests each (1 WCU each), one breach timer of 5,
    polls of 3 own requests + 2 searches; at 1 event/s and P = 1 min a poll serves 60 events: 30 changed
    cases (one page of 25 and one more, one batch read), 12 items (one page), 6 applies of a timer's 5."""
    model = _model(1, case_results=0.5, item_results=0.2, feed_applies=0.1)
    event = (
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "sns:Publish",
        "events:PutEvents",
        "dynamodb:UpdateItem",
    )
    timer = _invocation("breach_timer", *event, wcu=2)
    poll = _invocation(
        "reconcile_run",
        "dynamodb:GetItem",
        "connectcases:SearchCases",
        "connectcases:SearchAllRelatedItems",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        wcu=1,
    )
    log = [*(_invocation("case_updated", *event, wcu=1) for _ in range(4)), timer, poll, poll]
    steady = at_rate(log, 4, model, 256, 1.0)
    assert steady["events_per_poll"] == 60.0
    assert model.feed_pages(1.0) == (2, 1)
    own, pages, batch_reads, applies = 3, 2 + 1, 1, 6 * 5
    assert steady["poll_requests"] == own + pages + batch_reads + applies == 37
    assert steady["requests"] == round((4 * 5 + 5) / 4 + 37 / 60, 2)
    # WCU: the events' 4 x 5 x 1 and the timer's 5 x 2 over 4 events; a poll's 5 x 1 and 6 applies x 10.
    assert steady["wcu"] == round((20 + 10) / 4 + (5 + 6 * 10) / 60, 2)
    # A poll's requests grow with the rate: at 2.5 events/s, 150 events, 75 changed cases (3 pages of 25,
    # one batch read), 30 new items (2 pages: newest first, up to one already seen), 15 applies.
    faster = at_rate(log, 4, model, 256, 2.5)
    assert faster["poll_requests"] == 3 + 3 + 2 + 1 + 15 * 5
    assert faster["requests"] == round((4 * 5 + 5) / 4 + 84 / 150, 2) < steady["requests"]
