"""The one set of fakes (`casewatch_dev.fakes`) behaves like the AWS adapters it stands for, and the
builders of `tests/builders.py` make the events they say. (The case store's fake and its DynamoDB adapter
are held to one contract in tests/integration/test_case_store.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from casewatch.domain.case_record import CaseChange, Claim
from casewatch.domain.sla.model import CasesSlaSpec, SlaConflictError, SlaStatus
from casewatch.domain.sla.observations import CasesSlaReport
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.errors import CaseNotFoundError, CasesThrottledError
from casewatch.models.fields import FieldValue
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.clients import FakeScheduler
from casewatch_dev.fakes.ports import (
    DictCasesReader,
    DictCasesSearch,
    InMemoryCaseStore,
    RecordingCaseStore,
    RecordingTimers,
)
from casewatch_dev.sla_items import case_slas, sla_items
from tests.apps import World
from tests.builders import (
    DOMAIN,
    FIRST,
    POLICIES,
    PRIORITY,
    RESOLVE,
    SLA_SETTINGS,
    at,
    case_event_raw,
    comment,
    created,
    enriched,
    parsed,
    sla_item_raw,
    updated,
)

# --- the case store ------------------------------------------------------------------------------------


def test_before_commit_runs_once_before_the_next_commit() -> None:
    world = World(SLA_SETTINGS, clock=VirtualClock(at(-1)))
    ran: list[int] = []
    world.on_commit(lambda: ran.append(world.store.commits))
    world.deliver(created("c1", 0))
    world.deliver(updated("c1", 10, "closed"))
    assert ran == [0]
    assert world.store.commits == 2


def test_the_store_keeps_documents_not_live_objects() -> None:
    """Every load decodes the fold from its JSON, as a DynamoDB read does: a loaded record shares nothing
    with what was committed or loaded before."""
    world = World(SLA_SETTINGS, clock=VirtualClock(at(-1)))
    world.deliver(created("c1", 0))
    one, two = world.store.load(DOMAIN, "c1"), world.store.load(DOMAIN, "c1")
    assert one.fold is not None and two.fold is not None
    assert one.fold is not two.fold
    assert one.fold.to_doc() == two.fold.to_doc()
    one.fold.extend([])  # touching one changes nothing stored
    one.fold.known["status"] = "closed"
    assert world.store.load(DOMAIN, "c1").fold.known["status"] == "open"


def test_the_recording_store_records_the_transitions_of_successful_commits_only() -> None:
    inner = InMemoryCaseStore(POLICIES)
    store = RecordingCaseStore(inner)
    world = World(SLA_SETTINGS, clock=VirtualClock(at(-1)), store=store)
    world.deliver(created("c1", 0, "high"))
    world.deliver(comment("c1", 10))
    taken = store.take_transitions()
    assert [(t.sla_key, t.status) for t in taken] == [
        (FIRST, SlaStatus.ACTIVE),
        (RESOLVE, SlaStatus.ACTIVE),
        (FIRST, SlaStatus.MET),
    ]
    assert store.take_transitions() == []
    inner.before_commit = lambda: world.deliver(updated("c1", 20, "closed", "high"))  # wins the race
    world.deliver(updated("c1", 15, "pending-customer", "high"))  # loses once, then applies on top
    assert inner.conflicts == 1
    assert [(t.sla_key, t.status) for t in store.take_transitions()] == [(RESOLVE, SlaStatus.MET)]
    assert inner.load(DOMAIN, "c1").states()[RESOLVE].status is SlaStatus.MET
    assert world.states()[("c1", RESOLVE)].status is SlaStatus.MET
    stale = store.load(DOMAIN, "c1")
    world.deliver(comment("c1", 30, "cm2"))
    with pytest.raises(SlaConflictError):  # a stale record: nothing recorded
        store.commit(stale, CaseChange("test", Claim(at(0), done=True), transitions=taken[:1]))
    assert store.take_transitions() == []


def test_sla_items_list_every_case_and_sla_of_a_store() -> None:
    world = World(SLA_SETTINGS, clock=VirtualClock(at(-1)))
    world.deliver(created("c2", 5))
    world.deliver(created("c1", 0, "high"))
    assert [(i.case_id, i.state.key) for i in sla_items(world.store)] == [
        ("c1", FIRST),
        ("c1", RESOLVE),
        ("c2", RESOLVE),
    ]
    assert [i.state.key for i in case_slas(world.store, DOMAIN, "c1")] == [FIRST, RESOLVE]
    assert case_slas(world.store, DOMAIN, "nobody") == []


# --- timers, GetCase, search ----------------------------------------------------------------------------


def test_recording_timers_keep_one_timer_per_case_sla_and_kind() -> None:
    timers = RecordingTimers()
    first = TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(480), at(480))
    timers.set(first)
    timers.set(TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(500), at(500)))
    timers.set(TimerSpec(TimerKind.WARNING, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(384), at(480)))
    assert [(t.kind, t.fire_at) for t in timers.due()] == [
        (TimerKind.WARNING, at(384)),
        (TimerKind.BREACH, at(500)),
    ]
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)  # already gone: fine
    assert (timers.sets, timers.cancels, len(timers.pending)) == (3, 2, 1)


def test_the_cases_reader_answers_from_its_dict_and_counts_requests() -> None:
    reader = DictCasesReader(
        {"c1": ("tpl", {"status": "open", "title": {"stringValue": "T"}, "empty": None})}
    )
    read = reader.get_case_fields(DOMAIN, "c1", ["status", "title", "empty", "unknown"])
    assert (read.template_id, read.values, read.requests) == (
        "tpl",
        {"status": FieldValue.of("open"), "title": FieldValue.of("T")},
        1,
    )
    reader.fail_with.append(CasesThrottledError())
    with pytest.raises(CasesThrottledError):
        reader.get_case_fields(DOMAIN, "c1", ["status"])
    with pytest.raises(CaseNotFoundError):
        reader.get_case_fields(DOMAIN, "gone", ["status"])
    assert reader.calls == 3
    assert reader.requests[0] == (DOMAIN, "c1", ("status", "title", "empty", "unknown"))


def test_the_cases_search_lags_writes_like_the_index() -> None:
    clock = VirtualClock(at(0))
    search = DictCasesSearch(clock, lag=timedelta(seconds=15))
    search.put_case("c1", {"status": "open"}, updated=at(0))
    assert search.changed_cases(DOMAIN, at(-1), ["status"]).items == []  # not indexed yet
    clock.advance(15)
    [found] = search.changed_cases(DOMAIN, at(-1), ["status"]).items
    assert (found.case_id, found.values) == ("c1", {"status": FieldValue.of("open")})
    search.put_case("c1", {"status": "closed"}, updated=at(1))
    assert search.changed_cases(DOMAIN, at(-1), ["status"]).items[0].values["status"] == FieldValue.of("open")
    clock.advance(15)
    assert search.changed_cases(DOMAIN, at(-1), ["status"]).items[0].values["status"] == FieldValue.of(
        "closed"
    )
    assert search.changed_cases(DOMAIN, at(1), ["status"]).items == []  # strictly after `since`


@pytest.mark.parametrize(("cases", "pages"), [(0, 1), (1, 1), (25, 1), (26, 2), (51, 3)])
def test_the_cases_search_counts_pages_of_25(cases: int, pages: int) -> None:
    search = DictCasesSearch()
    for n in range(cases):
        search.put_case(f"c{n:02d}", {"status": "open"}, updated=at(n))
    found = search.changed_cases(DOMAIN, at(-1), ["status", "last_updated_datetime"])
    assert (len(found.items), found.requests) == (cases, pages)
    assert [c.case_id for c in found.items] == [f"c{n:02d}" for n in range(cases)]  # oldest change first
    with pytest.raises(ValueError, match="25 fields"):
        search.changed_cases(DOMAIN, at(-1), [f"f{n}" for n in range(26)])


def test_the_item_search_answers_newest_first_by_type() -> None:
    search = DictCasesSearch()
    spec = CasesSlaSpec("Callback", "status", ("closed",), at(61))
    search.add_item("c1", "cm1", "Comment", at(1))
    search.add_item("c1", "s1", "Sla", at(2), CasesSlaReport("s1", at(2), spec, "Active"))
    search.add_item("c2", "ct1", "contact", at(3))
    found = search.associated_items(DOMAIN, at(1), ["SLA", "Comment", "Contact"])
    assert [(i.case_id, i.related_item_id, i.item_type) for i in found.items] == [
        ("c2", "ct1", "Contact"),
        ("c1", "s1", "Sla"),
    ]
    assert found.items[1].sla is not None and found.items[1].sla.spec == spec
    assert [i.related_item_id for i in search.associated_items(DOMAIN, at(0), ["Comment"]).items] == ["cm1"]
    search.fail_with.append(CasesThrottledError())
    with pytest.raises(CasesThrottledError):
        search.associated_items(DOMAIN, at(0), ["Sla"])
    assert search.requests == ["SearchAllRelatedItems"] * 3
    assert [call[0] for call in search.calls] == ["SearchAllRelatedItems"] * 3


def test_the_fake_scheduler_answers_like_scheduler_and_logs_every_call() -> None:
    from casewatch.adapters.scheduler_timers import SchedulerTimers, schedule_name

    scheduler = FakeScheduler("g")
    timers = SchedulerTimers(scheduler, group_name="g", target_arn="arn:t", role_arn="arn:r")  # type: ignore[arg-type]
    breach = TimerSpec(TimerKind.BREACH, DOMAIN, "c1", RESOLVE, "resolve-within-8h", at(480), at(480))
    timers.set(breach)
    timers.set(breach)  # exists: updated
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)
    timers.cancel("c1", RESOLVE, TimerKind.BREACH)  # gone: a not-found, ignored
    name = schedule_name("c1", RESOLVE, TimerKind.BREACH)
    assert scheduler.calls == [
        ("CreateSchedule", name),
        ("CreateSchedule", name),
        ("UpdateSchedule", name),
        ("DeleteSchedule", name),
        ("DeleteSchedule", name),
    ]
    assert scheduler.pending() == [] and scheduler.earliest() is None


# --- the builders ----------------------------------------------------------------------------------


def test_event_builders_parse() -> None:
    case = parsed(case_event_raw("CASE.CREATED", "c1", at(0), {"status": "open", PRIORITY: "high"}))
    assert case.case_id == "c1"
    assert case.field_values() == {"status": "open", PRIORITY: "high"}
    sla = parsed(sla_item_raw("c1", at(1), "s1"))
    assert sla.related_item is not None
    assert sla.related_item.sla is not None
    assert sla.related_item.sla.sla_configuration.target_time == at(31)
    assert enriched(case).value(PRIORITY) == "high"
    assert parsed(comment("c1", 3)).id == parsed(comment("c1", 3)).id  # ids derive from the detail
    assert parsed(comment("c1", 3)).id != parsed(comment("c1", 4)).id
