"""Issue 8's invariants: a generated day replayed with 20% duplicates, 10% reordered, 5% throttled
Cases reads, 1% malformed and 0.5% dropped events, against the same day replayed clean and in order.

Sizes: `CASEWATCH_RELIABILITY_EVENTS` (memory backend, default 1000; `make reliability`: 10000) and
`CASEWATCH_RELIABILITY_MOTO_EVENTS` (moto backend, default 150; a day that small gets 3% malformed and
2% dropped events, so that each fault happens: `SMALL_DAY_FAULTS`). The tolerances are stated, with their
reasons, in `tests/reliability/invariants.py`; nothing else may differ.
"""

from __future__ import annotations

from collections import Counter

from tests.reliability.invariants import (
    cases_with_dropped_events,
    history_policy_rows,
    log_lines_with_case_data,
    lost_events,
    unexplained_notifications,
    unexplained_sla_rows,
    unseen_cases_slas,
)
from tests.reliability.scenario import Day, Run


def test_every_valid_event_is_handled_or_dead_lettered_with_its_reason(
    issue_runs: tuple[Day, Run, Run],
) -> None:
    day, clean, faulty = issue_runs
    assert clean.report.lost == 0 and clean.report.failed == 0 and not clean.failures
    assert faulty.report.lost == 0
    assert lost_events(day, faulty) == []
    # every corrupted delivery a rule routes is parked with its reason, and nothing else is (a corruption
    # of `source`, `detail-type` or the domain in `resources` matches no rule: EventBridge delivers it to
    # no function, as in AWS)
    assert clean.report.unrouted == 0
    assert faulty.report.unrouted <= len(faulty.plan.malformed)
    assert len(faulty.dead_letters) == len(faulty.plan.malformed) - faulty.report.unrouted + len(
        faulty.failures
    )
    assert all(d.get("reason") for d in faulty.dead_letters + faulty.failures)
    # 5% throttled GetCase requests are botocore's to retry: no event is given up
    assert faulty.failures == [] and faulty.report.failed == 0
    delivered = len(faulty.plan.deliveries)
    assert faulty.report.events == delivered
    report = faulty.report
    assert report.handled + report.unhandled + report.unrouted + report.dead_lettered == delivered


def test_every_function_runs_under_its_role_and_nothing_is_denied(issue_runs: tuple[Day, Run, Run]) -> None:
    _, clean, faulty = issue_runs
    enforced = {"moto": "aws+cases", "memory": "cases"}[faulty.report.backend]  # memory: no AWS to authorize
    for run in (clean, faulty):
        assert run.report.iam == enforced
        assert (run.report.access_denied, run.report.access_denials) == (0, [])


def test_exactly_one_notification_per_event_and_rule(issue_runs: tuple[Day, Run, Run]) -> None:
    day, clean, faulty = issue_runs
    assert max(clean.notification_ids().values()) == 1
    repeated = {i: n for i, n in faulty.notification_ids().items() if n > 1}
    assert repeated == {}, "a notification was sent more than once"
    unexplained = unexplained_notifications(day, clean, faulty)
    assert unexplained == {"missing": [], "extra": []}
    assert faulty.report.duplicates_suppressed > 0  # duplicates really met the idempotency guard
    # and one enriched event per source event (or SLA signal) on the bus
    assert max(faulty.bus_ids.values()) == 1 and max(clean.bus_ids.values()) == 1


def test_sla_table_equals_the_in_order_run_after_the_change_feed(issue_runs: tuple[Day, Run, Run]) -> None:
    day, clean, faulty = issue_runs
    assert len(clean.sla) > 20  # enough SLAs for the comparison to mean something
    assert unexplained_sla_rows(day, clean, faulty) == []
    # the tolerated rows are the few that lost status history explains, never a broad exemption
    differing = sum(clean.sla.get(k) != faulty.sla.get(k) for k in clean.sla.keys() | faulty.sla.keys())
    assert differing <= len(history_policy_rows(day, faulty))


def test_the_change_feed_repairs_dropped_events(issue_runs: tuple[Day, Run, Run]) -> None:
    """Every SLA of a case that lost an event ends as in order (but for lost status history), and the
    feed really did repair some: without it they would differ."""
    day, clean, faulty = issue_runs
    cases = cases_with_dropped_events(day, faulty)
    assert cases, "no event was dropped"
    history = history_policy_rows(day, faulty)
    rows = [k for k in clean.sla.keys() | faulty.sla.keys() if k[0] in cases and k not in history]
    assert rows
    assert {k: faulty.sla.get(k) for k in rows} == {k: clean.sla.get(k) for k in rows}
    assert faulty.counts["reconcile_runs"] > 0
    assert faulty.metrics["SlaRepairs"] > 0  # SLAs the feed changed: the drops' consequences


def test_the_change_feed_discovers_cases_slas_casewatch_never_heard_of(
    issue_runs: tuple[Day, Run, Run],
) -> None:
    """A Cases SLA whose RELATED_ITEM.CREATED event was dropped is found (SearchAllRelatedItems): its row
    and its SLA notifications are the in-order run's."""
    day, clean, faulty = issue_runs
    unseen = unseen_cases_slas(day, faulty)
    for key in unseen:
        assert key in clean.sla
        assert faulty.sla.get(key) == clean.sla[key], key
    names = {(case, faulty.sla_states[(case, key)].name) for case, key in unseen}
    signals = [n for n in clean.notifications if n["kind"] == "signal" and (n["case"], n["sla"]) in names]
    faulty_ids = set(faulty.notification_ids())
    assert [n for n in signals if n["id"] not in faulty_ids] == []


def test_no_case_field_value_appears_in_any_log_line(issue_runs: tuple[Day, Run, Run]) -> None:
    _, _, faulty = issue_runs
    assert len(faulty.logs) > len(faulty.plan.deliveries)  # INFO lines of every invocation were captured
    assert log_lines_with_case_data(faulty) == []


def test_the_faults_were_really_injected(issue_runs: tuple[Day, Run, Run]) -> None:
    day, _, faulty = issue_runs
    plan, injected = faulty.plan, faulty.report.faults
    n = len(day.events)
    assert len(plan.duplicated) > 0.1 * n and len(plan.reordered) > 0.05 * n
    assert plan.malformed and plan.dropped and injected["cases_faults"] > 0
    assert Counter(faulty.report.bus_events) and faulty.report.duplicates_delivered >= len(plan.duplicated)
