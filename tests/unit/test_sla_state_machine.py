"""The SLA state machine: scenarios, and order independence as a property (hypothesis)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casewatch.domain.sla.fold import evaluate
from casewatch.domain.sla.log import (
    MAX_OBSERVATIONS,
    CaseSlaLog,
    Observation,
    ObsKind,
    case_fields,
    compact,
)
from casewatch.domain.sla.model import PolicySpec, SlaStatus
from casewatch.domain.sla.timers import TimerKind, desired_timers
from casewatch.models.signals import SlaSignalKind, SlaTimerPayload
from casewatch_dev.clock import VirtualClock
from tests.apps import World
from tests.builders import (
    DOMAIN,
    FIRST,
    POLICIES,
    RESOLVE,
    SLA_SETTINGS,
    at,
    comment,
    created,
    deleted,
    sla_item_raw,
    updated,
)

GRACE = SLA_SETTINGS.breach_grace  # a breach timer fires this long after its target


class Harness(World):
    """The functions on fakes, with a virtual clock that starts before every event (timers fire later);
    events through their handlers, timers fired with the change feed keeping up."""

    def __init__(self, clock_minutes: float = -60) -> None:
        super().__init__(SLA_SETTINGS, clock=VirtualClock(at(clock_minutes)))

    def signal_kinds(self) -> list[tuple[str, SlaSignalKind]]:
        return self.signals()

    def payload(self, kind: TimerKind, case_id: str, key: str, name: str, target: Any) -> SlaTimerPayload:
        return SlaTimerPayload(
            kind=kind.value, domain_id=DOMAIN, case_id=case_id, sla_name=name, sla_key=key, target_time=target
        )


# --- scenarios -------------------------------------------------------------------------------------


def test_first_response_is_met_by_the_first_comment() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    assert h.state("c1", FIRST).status is SlaStatus.ACTIVE
    assert h.state("c1", FIRST).target_time == at(30)
    assert h.timer("c1", FIRST, TimerKind.BREACH) == at(30) + GRACE
    assert h.timer("c1", FIRST, TimerKind.WARNING) == at(24)
    h.deliver(comment("c1", 10))
    first = h.state("c1", FIRST)
    assert first.status is SlaStatus.MET
    assert first.completion_time == at(10)
    assert h.timers() == {
        ("c1", RESOLVE, TimerKind.BREACH): at(480) + GRACE,
        ("c1", RESOLVE, TimerKind.WARNING): at(384),
    }
    assert h.signal_kinds() == [("first-response-high", SlaSignalKind.MET)]


def test_a_policy_that_does_not_match_is_not_armed() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "low"))
    assert ("c1", FIRST) not in h.states()
    assert h.state("c1", RESOLVE).status is SlaStatus.ACTIVE


def test_completion_is_judged_at_the_change_time_not_when_processed() -> None:
    h = Harness(clock_minutes=3 * 24 * 60)  # processed three days late
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 100, "closed"))
    resolve = h.state("c1", RESOLVE)
    assert resolve.status is SlaStatus.MET
    assert resolve.completion_time == at(100)


def test_overdue_then_completed_is_not_met() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.fire_timers(until=at(31) + GRACE)
    assert h.state("c1", FIRST).status is SlaStatus.OVERDUE
    h.deliver(comment("c1", 45))
    first = h.state("c1", FIRST)
    assert first.status is SlaStatus.NOT_MET
    assert [t.status for t in first.history] == [SlaStatus.ACTIVE, SlaStatus.OVERDUE, SlaStatus.NOT_MET]
    assert first.history[1].at == at(30)
    kinds = [k for name, k in h.signal_kinds() if name == "first-response-high"]
    assert kinds == [SlaSignalKind.AT_RISK, SlaSignalKind.BREACHED, SlaSignalKind.NOT_MET]


def test_a_late_completion_without_a_timer_is_not_met_via_overdue() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.deliver(comment("c1", 45))
    assert [t.status for t in h.state("c1", FIRST).history] == [
        SlaStatus.ACTIVE,
        SlaStatus.OVERDUE,
        SlaStatus.NOT_MET,
    ]


def test_a_pause_moves_the_target_by_the_paused_time() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 60, "pending-customer"))
    paused = h.state("c1", RESOLVE)
    assert paused.paused_since == at(60)
    assert h.timer("c1", RESOLVE, TimerKind.BREACH) is None  # no breach while paused
    h.deliver(updated("c1", 180, "open"))
    resumed = h.state("c1", RESOLVE)
    assert resumed.paused_since is None
    assert resumed.paused_seconds == 120 * 60
    assert resumed.target_time == at(480 + 120)
    assert h.timer("c1", RESOLVE, TimerKind.BREACH) == at(600) + GRACE
    h.deliver(updated("c1", 590, "closed"))
    assert h.state("c1", RESOLVE).status is SlaStatus.MET


def test_completed_while_paused_is_met() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 400, "pending-customer"))
    h.deliver(updated("c1", 900, "closed"))
    resolve = h.state("c1", RESOLVE)
    assert resolve.status is SlaStatus.MET
    assert resolve.completion_time == at(900)


def test_a_deleted_case_cancels_its_open_slas_and_their_timers() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.deliver(comment("c1", 5))
    h.deliver(deleted("c1", 20))
    assert h.state("c1", FIRST).status is SlaStatus.MET  # completed SLAs keep their outcome
    assert h.state("c1", RESOLVE).status is SlaStatus.CANCELLED
    assert h.timers() == {}


def test_reopening_rearms_a_policy_that_says_so() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 100, "closed"))
    h.deliver(updated("c1", 200, "open"))
    rearmed = h.state("c1", RESOLVE)
    assert (rearmed.status, rearmed.cycle, rearmed.started_at, rearmed.target_time) == (
        SlaStatus.ACTIVE,
        2,
        at(200),
        at(680),
    )
    h.deliver(updated("c1", 900, "closed"))
    final = h.state("c1", RESOLVE)
    assert (final.status, final.cycle) == (SlaStatus.NOT_MET, 2)
    assert [(t.cycle, t.status) for t in final.history] == [
        (1, SlaStatus.ACTIVE),
        (1, SlaStatus.MET),
        (2, SlaStatus.ACTIVE),
        (2, SlaStatus.OVERDUE),
        (2, SlaStatus.NOT_MET),
    ]


def test_a_policy_without_rearm_stays_completed() -> None:
    no_rearm = PolicySpec(
        name="close",
        target=timedelta(minutes=60),
        complete_field="status",
        complete_values=("closed",),
    )
    log = CaseSlaLog(DOMAIN, "c1").merge(
        [
            Observation(at(0), ObsKind.CASE, fields=case_fields({"status": "open"}), created=at(0)),
            Observation(at(10), ObsKind.CASE, fields=case_fields({"status": "closed"})),
            Observation(at(20), ObsKind.CASE, fields=case_fields({"status": "open"})),
        ]
    )
    state = evaluate(log, [no_rearm])["policy#close"]
    assert (state.status, state.cycle) == (SlaStatus.MET, 1)


def test_a_cases_sla_is_met_when_its_field_reaches_the_target_value() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(sla_item_raw("c1", at(1), "s1"))
    key = "cases#s1"
    assert h.state("c1", key).target_time == at(31)
    assert h.state("c1", key).name == "First response"
    h.deliver(updated("c1", 20, "pending-customer"))
    assert h.state("c1", key).status is SlaStatus.MET
    assert h.state("c1", key).completion_time == at(20)


def test_a_cases_sla_arriving_after_the_change_that_met_it_is_met() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 20, "pending-customer"))
    h.deliver(updated("c1", 25, "open"))
    h.deliver(sla_item_raw("c1", at(1), "s1"))  # delivered late, its content as of creation
    assert h.state("c1", "cases#s1").status is SlaStatus.MET
    assert h.state("c1", "cases#s1").completion_time == at(20)


def test_a_cases_sla_reported_met_by_cases_is_met() -> None:
    h = Harness()
    h.deliver(sla_item_raw("c1", at(1), "s1", status="Met", completion=at(1)))
    assert h.state("c1", "cases#s1").status is SlaStatus.MET


def test_a_duplicate_changes_nothing_and_does_nothing() -> None:
    h = Harness()
    raw = created("c1", 0, "high")
    h.deliver(raw)
    commits, timer_calls = h.store.commits, len(h.scheduler.calls)
    sent = len(h.bus_events()) + len(h.notifications())
    h.deliver(raw)
    h.deliver(raw)
    assert (h.store.commits, len(h.scheduler.calls), len(h.bus_events()), len(h.notifications())) == (
        commits,
        timer_calls,
        0,
        0,
    )
    assert sent >= 1  # the first delivery did send something


def test_an_older_event_never_overwrites_a_newer_state() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    h.deliver(updated("c1", 100, "closed"))
    h.deliver(updated("c1", 50, "open"))  # older, delivered late
    assert h.state("c1", RESOLVE).status is SlaStatus.MET
    assert h.state("c1", RESOLVE).cycle == 1


def test_stale_timers_change_nothing() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.deliver(comment("c1", 5))
    h.clock.set(at(40))
    h.catch_up()
    commits = h.store.commits
    # the timers of the met SLA fire anyway (as if their deletes had not happened yet)
    for kind in TimerKind:
        response = h.fire(h.payload(kind, "c1", FIRST, "first-response-high", at(30)))
        assert (response["slaChanges"], response["deferred"]) == ([], False)
    assert h.state("c1", FIRST).status is SlaStatus.MET
    assert h.store.commits == commits  # nothing to write
    assert h.signal_kinds() == [("first-response-high", SlaSignalKind.MET)]


def test_the_warning_timer_signals_at_risk_once_while_active() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.fire_timers(until=at(24))
    assert h.signal_kinds() == [("first-response-high", SlaSignalKind.AT_RISK)]
    h.clock.set(at(25))
    h.fire(h.payload(TimerKind.WARNING, "c1", FIRST, "first-response-high", at(30)))  # delivered again
    assert h.signal_kinds() == [("first-response-high", SlaSignalKind.AT_RISK)]


def test_desired_timers_follow_the_state() -> None:
    h = Harness()
    h.deliver(created("c1", 0))
    state = h.state("c1", RESOLVE)
    timers = desired_timers(DOMAIN, "c1", state, 0.8, at(0))
    assert timers[TimerKind.BREACH] is not None
    assert timers[TimerKind.BREACH].fire_at == at(480)  # no grace asked for
    graced = desired_timers(DOMAIN, "c1", state, 0.8, at(0), breach_grace=GRACE)[TimerKind.BREACH]
    assert graced is not None
    assert (graced.fire_at, graced.target_time) == (at(480) + GRACE, at(480))
    assert desired_timers(DOMAIN, "c1", state, 0.8, at(480) + GRACE)[TimerKind.BREACH] is None  # fired
    assert timers[TimerKind.WARNING] is not None
    assert timers[TimerKind.WARNING].fire_at == at(384)
    assert desired_timers(DOMAIN, "c1", state, 0.8, at(400))[TimerKind.WARNING] is None
    assert desired_timers(DOMAIN, "c1", state, None, at(0))[TimerKind.WARNING] is None


def test_compaction_keeps_the_fold() -> None:
    policy = POLICIES[1]
    base = [Observation(at(0), ObsKind.CASE, fields=case_fields({"status": "open"}), created=at(0))]
    noise = [
        Observation(at(1 + i), ObsKind.CASE, fields=case_fields({"status": "open"}))
        for i in range(MAX_OBSERVATIONS + 50)
    ]
    tail = [
        Observation(at(5000), ObsKind.CASE, fields=case_fields({"status": "closed"})),
        Observation(at(10000), ObsKind.CASE, fields=case_fields({"status": "open"})),
    ]
    everything = tuple(sorted([*base, *noise, *tail], key=Observation.sort_key))
    compacted = compact(everything, MAX_OBSERVATIONS)
    assert len(compacted) <= MAX_OBSERVATIONS
    full = evaluate(CaseSlaLog(DOMAIN, "c1", everything), [policy])
    assert evaluate(CaseSlaLog(DOMAIN, "c1", compacted), [policy]) == full
    assert len(CaseSlaLog(DOMAIN, "c1").merge(everything).observations) <= MAX_OBSERVATIONS


def test_observations_round_trip_through_json() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "high"))
    h.deliver(sla_item_raw("c1", at(1), "s1"))
    h.deliver(comment("c1", 2))
    log = h.store.load(DOMAIN, "c1", with_log=True).log
    assert log is not None
    assert len(log) == 4  # created, the Sla item and its definition, the comment
    assert tuple(Observation.from_json(o.to_json()) for o in log) == log


# --- order independence ----------------------------------------------------------------------------

STATUSES = ("open", "pending-customer", "closed")


@st.composite
def scenarios(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events of 1..3 cases: created, status changes, comments, Cases SLA items, maybe a deletion."""
    events: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 3))):
        case_id = f"case-{n}"
        start = draw(st.integers(0, 120))
        priority = draw(st.sampled_from(("high", "low")))
        events.append(created(case_id, start, priority))
        now = start
        for i in range(draw(st.integers(0, 7))):
            now += draw(st.integers(1, 400))
            action = draw(st.sampled_from(("status", "status", "comment", "sla")))
            if action == "status":
                events.append(updated(case_id, now, draw(st.sampled_from(STATUSES)), priority, start))
            elif action == "comment":
                events.append(comment(case_id, now, f"cm-{n}-{i}"))
            else:
                minutes = draw(st.integers(5, 240))
                target = draw(st.sampled_from(("closed", "pending-customer")))
                events.append(sla_item_raw(case_id, at(now), f"s-{n}-{i}", values=(target,), minutes=minutes))
        if draw(st.booleans()) and draw(st.booleans()):
            events.append(deleted(case_id, now + draw(st.integers(1, 600))))
    return events


def _run(events: Sequence[dict[str, Any]], clock_minutes: float = -60) -> Harness:
    h = Harness(clock_minutes)
    for raw in events:
        h.deliver(raw)
    h.fire_timers()
    # The change feed runs: its due sweep declares the breaches whose timers could not fire (their
    # targets had passed when the events were processed).
    h.poll()
    return h


def _times(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["detail"]["approximateChangeTime"] for e in events]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=scenarios())
def test_any_order_with_duplicates_ends_in_the_in_order_state(
    data: st.DataObject, events: list[dict[str, Any]]
) -> None:
    in_order = _run(sorted(events, key=lambda e: e["detail"]["approximateChangeTime"]))
    shuffled = data.draw(st.permutations(events), label="order")
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
    positions = data.draw(
        st.lists(st.integers(0, len(events)), min_size=len(duplicates), max_size=len(duplicates)),
        label="positions",
    )
    chaotic = list(shuffled)
    for raw, position in zip(duplicates, positions, strict=True):
        chaotic.insert(position, raw)
    late_clock = data.draw(st.sampled_from((-60, 7 * 24 * 60)), label="clock")
    chaos = _run(chaotic, late_clock)
    assert chaos.states() == in_order.states()
    if late_clock < 0:  # timers converge too
        assert chaos.timers() == in_order.timers() == {}


@settings(max_examples=60, deadline=None)
@given(events=scenarios())
def test_delivering_everything_twice_is_the_same_as_once(events: list[dict[str, Any]]) -> None:
    once = _run(events)
    commits = once.store.commits
    once.notifications()
    once.bus_events()
    for raw in events:
        once.deliver(raw)
    assert once.store.commits == commits
    assert (once.notifications(), once.bus_events()) == ([], [])


def test_merge_is_commutative_and_idempotent() -> None:
    a = Observation(at(1), ObsKind.CASE, fields=case_fields({"status": "open"}))
    b = Observation(at(2), ObsKind.ITEM, item_type="Comment", ref="x")
    b_other = Observation(at(1), ObsKind.CASE, fields=case_fields({"status": "closed"}))  # same identity as a
    empty = CaseSlaLog(DOMAIN, "c1")
    one = empty.merge([a, b]).merge([b_other]).merge([a])
    two = empty.merge([b_other]).merge([b, a])
    assert one == two
    assert len(one.observations) == 2
    assert empty.merge([], horizon=at(5)).merge([], horizon=at(3)).horizon == at(5)


def test_a_policy_arms_when_the_case_starts_to_match() -> None:
    h = Harness()
    h.deliver(created("c1", 0, "low"))
    h.deliver(updated("c1", 50, "open", "high"))  # raised to high priority at 09:50
    first = h.state("c1", FIRST)
    assert (first.started_at, first.target_time) == (at(50), at(80))


def test_a_policy_first_seen_matching_runs_from_the_case_creation() -> None:
    h = Harness()
    h.deliver(updated("c1", 50, "open", "high", created_at=0))  # CASE.CREATED never arrived
    assert h.state("c1", FIRST).started_at == at(0)
    assert h.state("c1", FIRST).status is SlaStatus.OVERDUE  # its target (09:30) passed before 09:50


# --- the observation's JSON -------------------------------------------------------------------------


def test_an_observation_computes_its_json_once_and_keeps_what_was_read() -> None:
    """Identity and canonical JSON are computed once per observation (not on every merge or sort)."""
    obs = Observation(at(0), ObsKind.CASE, fields=case_fields({"status": "open"}), created=at(0))
    first = obs.to_json()
    assert obs.to_json() is first
    assert obs.sort_key()[2] is first
    text = '{"at":"2026-11-23T09:00:00.000000Z","kind":"item","ref":"cm1","type":"Comment"}'
    read = Observation.from_json(text)
    assert read.to_json() is text  # as stored, not re-serialised
    assert read == Observation(at(0), ObsKind.ITEM, item_type="Comment", ref="cm1")
    assert read.to_json() == Observation(at(0), ObsKind.ITEM, item_type="Comment", ref="cm1").to_json()


def test_the_json_tells_true_from_one() -> None:
    """`True == 1 == 1.0` in Python: equal values of different types must not share their JSON."""
    values = [True, 1.0, "1"]
    texts = [Observation(at(0), ObsKind.CASE, fields=case_fields({"score": v})).to_json() for v in values]
    assert len(set(texts)) == 3
    assert [dict(Observation.from_json(t).fields)["score"] for t in texts] == values
