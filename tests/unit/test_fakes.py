"""The one set of fakes (`casewatch_dev.fakes`) behaves like the AWS adapters it stands for, and the
builders of `tests/builders.py` make the events they say. (The same store scenarios run on moto in
tests/integration/test_sla_store.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from casewatch.domain.sla.fold import evaluate
from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import SlaConflictError, SlaStatus
from casewatch.domain.sla.timers import TimerKind, TimerSpec
from casewatch.errors import CaseNotFoundError, CasesThrottledError
from casewatch.models.fields import FieldValue
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import (
    DictCasesReader,
    InMemorySlaStore,
    InMemorySnapshotStore,
    InMemoryStatusOrder,
    RecordingSlaStore,
    RecordingTimers,
)
from tests.apps import SlaSystem
from tests.builders import (
    DOMAIN,
    FIRST,
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

# --- the SLA store -----------------------------------------------------------------------------------


def test_the_store_rejects_a_stale_revision() -> None:
    store = InMemorySlaStore()
    empty = store.load(DOMAIN, "c1")
    log = CaseSlaLog(DOMAIN, "c1")
    store.save(empty, log, [])
    with pytest.raises(SlaConflictError):
        store.save(empty, log, [])
    assert store.conflicts == 1
    assert store.load(DOMAIN, "c1").revision == 1


def test_the_store_rejects_an_older_state_over_a_newer_item() -> None:
    system = SlaSystem(SLA_SETTINGS, store=InMemorySlaStore(), clock=VirtualClock(at(-1)))
    system.deliver(created("c1", 0))
    system.deliver(updated("c1", 100, "closed"))
    current = system.store.load(DOMAIN, "c1")
    older = CaseSlaLog(DOMAIN, "c1", current.log.observations[:1])  # version 09:00
    with pytest.raises(SlaConflictError):  # the revision matches, the item's version does not
        system.store.save(current, older, list(evaluate(older, system.policies).values()))
    assert system.store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.MET


def test_before_save_runs_once_before_the_next_save() -> None:
    store = InMemorySlaStore()
    ran: list[int] = []
    store.before_save = lambda: ran.append(store.saves)
    store.save(store.load(DOMAIN, "c1"), CaseSlaLog(DOMAIN, "c1"), [])
    store.save(store.load(DOMAIN, "c1"), CaseSlaLog(DOMAIN, "c1"), [])
    assert ran == [0]


def test_an_sla_deferred_by_reconciliation_stays_deferred_after_later_saves() -> None:
    """The deferral travels with the SLA through saves that change other SLAs, or that SLA itself
    (it used to be undone by the next save: `defer_check` wrote beside the transaction)."""
    clock = VirtualClock(at(-1))
    system = SlaSystem(SLA_SETTINGS, store=InMemorySlaStore(), clock=clock)
    system.deliver(created("c1", 0, "high"))
    clock.set(at(45))
    assert system.reconcile().repairs == 1  # first response overdue since 09:30; next look at 10:15
    deferred = at(75)
    assert system.store.load(DOMAIN, "c1").slas[FIRST].next_check_at == deferred
    system.deliver(updated("c1", 50, "pending-customer", "high"))  # a later save: resolve pauses
    record = system.store.load(DOMAIN, "c1")
    assert record.revision == 3 and record.slas[RESOLVE].state.paused_since == at(50)
    assert record.slas[FIRST].next_check_at == deferred
    assert [s.case_id for s in system.store.due_before(deferred)] == []  # exactly at the check: not yet
    assert [s.state.key for s in system.store.due_before(deferred + timedelta(microseconds=1))] == [FIRST]
    assert [s.state.key for s in system.store.case_slas("c1") if s.next_check_at == deferred] == [FIRST]


def test_due_before_is_strictly_before_the_target() -> None:
    system = SlaSystem(SLA_SETTINGS, store=InMemorySlaStore(), clock=VirtualClock(at(-1)))
    system.deliver(created("c1", 0, "high"))
    assert system.store.due_before(at(30)) == []
    assert [s.state.key for s in system.store.due_before(at(30) + timedelta(microseconds=1))] == [FIRST]
    assert len(system.store.due_before(at(481))) == 2
    assert len(system.store.due_before(at(481), limit=1)) == 1


def test_the_recording_store_records_the_transitions_of_successful_saves_only() -> None:
    inner = InMemorySlaStore()
    store = RecordingSlaStore(inner)
    system = SlaSystem(SLA_SETTINGS, store=store, clock=VirtualClock(at(-1)))
    system.deliver(created("c1", 0, "high"))
    system.deliver(comment("c1", 10))
    taken = store.take_transitions()
    assert [(t.sla_key, t.status) for t in taken] == [
        (FIRST, SlaStatus.ACTIVE),
        (RESOLVE, SlaStatus.ACTIVE),
        (FIRST, SlaStatus.MET),
    ]
    assert store.take_transitions() == []
    stale = store.load(DOMAIN, "c1")
    system.deliver(updated("c1", 20, "closed", "high"))
    with pytest.raises(SlaConflictError):
        store.save(stale, stale.log, [])
    assert [(t.sla_key, t.status) for t in store.take_transitions()] == [(RESOLVE, SlaStatus.MET)]
    assert inner.states()[("c1", RESOLVE)].status is SlaStatus.MET  # the inner store has what was saved


# --- timers, status order, snapshots, GetCase ---------------------------------------------------------


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


def test_the_status_order_only_moves_forward_per_case_and_replay() -> None:
    order = InMemoryStatusOrder()
    assert order.claim(case_id="c1", status="closed", changed_at=at(10), notification_id="n1")
    assert not order.claim(case_id="c1", status="open", changed_at=at(5), notification_id="n2")
    assert order.claim(case_id="c1", status="closed", changed_at=at(5), notification_id="n3")  # same status
    assert order.claim(case_id="c1", status="open", changed_at=at(10), notification_id="n4")  # same time
    assert order.claim(case_id="c1", status="closed", changed_at=at(5), notification_id="n5", replay_name="r")
    assert order.claim(case_id="c2", status="open", changed_at=at(0), notification_id="n6")


def test_the_snapshot_store_keeps_the_newer_view() -> None:
    store = InMemorySnapshotStore()
    newer, older = parsed(updated("c1", 20, "closed")), parsed(updated("c1", 10, "open"))
    assert store.put(enriched(newer))
    assert not store.put(enriched(older))
    assert not store.put(enriched(newer))  # the same version again
    view = store.get(DOMAIN, "c1")
    assert view is not None and view.value("status") == "closed"
    assert store.get("another-domain", "c1") is None


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
