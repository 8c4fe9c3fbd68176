"""The sla-timer and reconcile (change feed) handlers, observation building, and `casewatch sla show`,
on fakes: the functions built by `bootstrap` over in-memory adapters (`tests.apps.World`)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casewatch.domain.sla.log import ObsKind
from casewatch.domain.sla.model import CasesSlaSpec, SlaStatus
from casewatch.domain.sla.observations import (
    CasesSlaReport,
    needs_sla_lookup,
    observe_case_read,
    observe_event,
    tracked_fields,
)
from casewatch.domain.sla.timers import TimerKind
from casewatch.domain.values import parse_iso
from casewatch.errors import CasesRequestError, CasesThrottledError, CasesUnavailableError
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignalKind, SlaTimerPayload
from casewatch.observability import SLA_BREACHES_DEFERRED
from casewatch_dev import cli
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader, DictCasesSearch
from casewatch_dev.sla_cli import render_slas, sla_document, time_left
from tests.apps import FakeCasesSlas, World
from tests.builders import (
    DOMAIN,
    FIRST,
    POLICIES,
    PRIORITY,
    RESOLVE,
    SAMPLE_FILES,
    SLA_SETTINGS,
    T0,
    at,
    case_event_raw,
    comment,
    created,
    enriched,
    load_event,
    parsed,
    related_raw,
    updated,
)

GRACE = SLA_SETTINGS.breach_grace  # a breach timer fires this long after its target
PERIOD = SLA_SETTINGS.feed_period
LAG = SLA_SETTINGS.index_lag


def make(
    clock: VirtualClock,
    reader: DictCasesReader | None = None,
    source: FakeCasesSlas | None = None,
    search: DictCasesSearch | None = None,
) -> World:
    return World(SLA_SETTINGS, clock=clock, cases=reader, cases_slas=source, search=search)


def payload(kind: str, key: str, name: str, target: datetime, case_id: str = "c1") -> dict[str, Any]:
    return SlaTimerPayload(
        kind=kind, domain_id=DOMAIN, case_id=case_id, sla_name=name, sla_key=key, target_time=target
    ).wire()


def kinds(world: World) -> list[SlaSignalKind]:
    return [kind for _, kind in world.signals()]


def watermark_at(world: World, moment: datetime) -> None:
    """The change feed's watermark, as a poll would have left it."""
    feed = world.adapters.feed
    feed.advance(DOMAIN, moment, feed.watermark(DOMAIN))


# --- the sla-timer handler ---------------------------------------------------------------------------


def test_sla_timer_handler_breaches_and_reports_ids_only() -> None:
    clock = VirtualClock(at(-1))
    world = make(clock)
    world.deliver(created("c1", 0, "high"))
    clock.set(at(30) + GRACE)
    world.catch_up()
    response = world.fire(payload("breach", FIRST, "first-response-high", at(30)))
    assert response == {
        "outcome": "handled",
        "kind": "breach",
        "caseId": "c1",
        "slaChanges": [
            {
                "sla": FIRST,
                "status": "Overdue",
                "at": "2026-11-23T09:30:00+00:00",
                "target_time": "2026-11-23T09:30:00+00:00",
            }
        ],
        "deferred": False,
    }
    assert kinds(world) == [SlaSignalKind.BREACHED]


def test_sla_timer_handler_finds_the_sla_by_name_without_a_key() -> None:
    clock = VirtualClock(at(-1))
    world = make(clock)
    world.deliver(created("c1", 0, "high"))
    clock.set(at(24))
    body = payload("warning", FIRST, "first-response-high", at(30))
    del body["slaKey"]
    world.fire(body)
    assert kinds(world) == [SlaSignalKind.AT_RISK]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"kind": "breach"},
        {
            "kind": "nope",
            "domainId": DOMAIN,
            "caseId": "c1",
            "slaName": "x",
            "targetTime": "2026-11-23T09:00:00Z",
        },
        {"kind": "breach", "domainId": DOMAIN, "caseId": "c1", "slaName": "x", "targetTime": "yesterday"},
    ],
)
def test_sla_timer_handler_parks_nothing_and_retries_nothing_on_invalid_payloads(
    event: dict[str, Any],
) -> None:
    world = make(VirtualClock(at(0)))
    response = world.fire(event)
    assert response["outcome"] == "invalid"
    assert "2026" not in response["reason"]  # locations, not values
    assert world.store.commits == 0


# --- breaches: declared once the change feed passed the target, without asking Cases --------------------


def breach_world(watermark: datetime | None) -> tuple[World, DictCasesReader, DictCasesSearch]:
    """Case c1 created at 09:00 (resolve-within-8h due 17:00), the clock at the breach timer's time."""
    clock = VirtualClock(at(-1))
    reader, search = DictCasesReader({"c1": (None, {"status": "open"})}), DictCasesSearch(clock)
    world = make(clock, reader, search=search)
    world.deliver(created("c1", 0))
    clock.set(at(480) + GRACE)
    if watermark is not None:
        watermark_at(world, watermark)
    world.bus_events()
    return world, reader, search


@pytest.mark.parametrize(
    "watermark",
    [at(480), at(480) + timedelta(microseconds=1), at(480) + GRACE - LAG],
    ids=["exactly-at-the-target", "just-after", "as-a-poll-leaves-it"],
)
def test_a_breach_is_declared_once_the_feed_passed_the_target(watermark: datetime) -> None:
    world, reader, search = breach_world(watermark)
    response = world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    assert ([c["status"] for c in response["slaChanges"]], response["deferred"]) == (["Overdue"], False)
    assert world.state("c1", RESOLVE).status is SlaStatus.OVERDUE
    assert world.state("c1", RESOLVE).history[-1].at == at(480)
    assert kinds(world) == [SlaSignalKind.BREACHED]
    assert (reader.requests, search.requests) == ([], [])  # no Cases call
    assert world.counts[SLA_BREACHES_DEFERRED] == 0


@pytest.mark.parametrize(
    "watermark",
    [None, at(480) - timedelta(microseconds=1), at(0)],
    ids=["never-polled", "just-before", "long-behind"],
)
def test_a_breach_is_deferred_while_the_feed_is_before_the_target(watermark: datetime | None) -> None:
    world, reader, search = breach_world(watermark)
    commits = world.store.commits
    response = world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    assert (response["slaChanges"], response["deferred"]) == ([], True)
    assert world.state("c1", RESOLVE).status is SlaStatus.ACTIVE
    assert world.store.commits == commits  # nothing written
    assert kinds(world) == []
    assert (reader.requests, search.requests) == ([], [])  # no Cases call either
    assert world.counts[SLA_BREACHES_DEFERRED] == 1
    # set again one feed period later, for the same target
    assert world.timer("c1", RESOLVE, TimerKind.BREACH) == world.clock.now() + PERIOD
    [(_, _, body)] = [t for t in world.scheduler.pending() if t[2]["kind"] == "breach"]
    assert body["targetTime"] == "2026-11-23T17:00:00Z"
    # the feed catches up: the re-armed timer declares the breach, once
    world.clock.set(world.clock.now() + PERIOD)
    world.catch_up()
    world.fire_timers(feed=False)
    assert world.state("c1", RESOLVE).status is SlaStatus.OVERDUE
    assert kinds(world) == [SlaSignalKind.BREACHED]
    world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))  # Scheduler delivers it again
    assert kinds(world) == [SlaSignalKind.BREACHED]


@pytest.mark.parametrize(
    "refusal",
    [
        CasesRequestError("GetCase refused: AccessDeniedException", code="AccessDeniedException"),
        CasesThrottledError("budget spent"),
        CasesUnavailableError("500"),
    ],
    ids=["refused", "throttled", "unavailable"],
)
def test_a_breach_is_declared_whatever_cases_would_answer(refusal: Exception) -> None:
    """The timer asks Cases nothing: Cases refusing, throttling or down changes nothing to it."""
    world, reader, search = breach_world(at(480) + GRACE - LAG)
    reader.fail_with = [refusal]
    search.fail_with = [refusal]
    response = world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert kinds(world) == [SlaSignalKind.BREACHED]
    assert (reader.requests, search.requests) == ([], [])


def test_a_failing_write_propagates_and_the_retry_declares_the_breach_once() -> None:
    """A failure while deciding (a bug, DynamoDB down) is not hidden: the invocation fails (Scheduler
    retries), nothing is written or signalled, and the retry declares the breach."""
    world, _, _ = breach_world(at(480) + GRACE - LAG)

    def broken() -> None:
        raise RuntimeError("DynamoDB is down")

    world.on_commit(broken)
    with pytest.raises(RuntimeError):
        world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    assert world.state("c1", RESOLVE).status is SlaStatus.ACTIVE
    assert kinds(world) == []
    world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
    assert world.state("c1", RESOLVE).status is SlaStatus.OVERDUE
    assert kinds(world) == [SlaSignalKind.BREACHED]


def test_a_stale_breach_timer_asks_cases_nothing_and_changes_nothing() -> None:
    clock = VirtualClock(at(-1))
    reader, search = DictCasesReader({"c1": (None, {"status": "open"})}), DictCasesSearch(clock)
    world = make(clock, reader, search=search)
    world.deliver(created("c1", 0))
    world.deliver(updated("c1", 60, "closed"))
    clock.set(at(480) + GRACE)
    commits = world.store.commits
    for watermark in (None, at(480)):
        if watermark is not None:
            watermark_at(world, watermark)
        response = world.fire(payload("breach", RESOLVE, "resolve-within-8h", at(480)))
        assert (response["slaChanges"], response["deferred"]) == ([], False)
    assert (reader.requests, search.requests) == ([], [])
    assert world.store.commits == commits
    assert world.timers() == {}  # a stale timer is not set again


def test_a_timer_that_fired_is_never_deleted() -> None:
    """Scheduler deletes a one-time schedule after it ran (ActionAfterCompletion DELETE): casewatch does
    not delete it again (a DeleteSchedule that can only fail); a timer that has not fired is deleted."""
    clock = VirtualClock(at(-1))
    world = make(clock)
    world.deliver(created("c1", 0, "high"))  # first response due 09:30, resolve 17:00
    world.fire_timers(until=at(30) + GRACE)  # first response: warning at 09:24, breach at 09:31:25
    assert world.state("c1", FIRST).status is SlaStatus.OVERDUE
    world.deliver(comment("c1", 40))  # first response NotMet: its timers fired, none left to delete
    assert world.state("c1", FIRST).status is SlaStatus.NOT_MET
    deleted = [name for op, name in world.scheduler.calls if op == "DeleteSchedule"]
    assert deleted == []
    world.deliver(updated("c1", 60, "closed", "high"))  # resolve met: its pending timers are deleted
    deleted = [name for op, name in world.scheduler.calls if op == "DeleteSchedule"]
    assert len(deleted) == 2
    assert world.timers() == {}


# --- the reconcile handler: the change feed -------------------------------------------------------------


def feed_world(**kwargs: Any) -> tuple[World, VirtualClock, DictCasesSearch]:
    """c1 created at 09:00 and the feed polled then (its watermark at 08:59:45)."""
    clock = VirtualClock(at(0))
    search = DictCasesSearch(clock)
    world = make(clock, search=search, **kwargs)
    world.poll("p0")
    world.deliver(created("c1", 0, kwargs.pop("priority", "low")))
    return world, clock, search


def test_reconcile_handler_repairs_a_missed_closing_from_search() -> None:
    world, clock, search = feed_world()
    search.put_case(
        "c1",
        {"status": "closed", PRIORITY: "low", "last_closed_datetime": "2026-11-23T10:00:00.000Z"},
        updated=at(120),
    )
    clock.set(at(8 * 60 + 15))
    response = world.poll("r1")
    assert (
        response["casesChanged"],
        response["casesApplied"],
        response["repairs"],
        response["searchRequests"],
    ) == (1, 1, 1, 2)
    assert response["slaChanges"] == [
        {"case": "c1", "sla": RESOLVE, "status": "Met", "at": "2026-11-23T10:00:00+00:00"}
    ]
    [(_, since, fields), (_, since_items, item_types)] = search.calls[-2:]
    assert since == since_items == at(0) - LAG
    assert set(fields) >= {
        "status",
        PRIORITY,
        "last_updated_datetime",
        "last_closed_datetime",
        "created_datetime",
    }
    assert set(item_types) == {"Sla", "Comment"}
    assert kinds(world) == [SlaSignalKind.MET]
    assert response["until"] == (at(8 * 60 + 15) - LAG).isoformat()


def test_reconcile_dates_a_field_change_by_the_last_update() -> None:
    world, clock, search = feed_world()
    search.put_case("c1", {"status": "closed"}, updated=at(8 * 60 + 30))
    clock.set(at(9 * 60))
    world.poll()
    state = world.state("c1", RESOLVE)
    assert (state.status, state.completion_time) == (SlaStatus.NOT_MET, at(8 * 60 + 30))


def test_reconcile_finds_a_missed_first_comment() -> None:
    clock = VirtualClock(at(0))
    search = DictCasesSearch(clock)
    world = make(clock, search=search)
    world.poll("p0")
    world.deliver(created("c1", 0, "high"))
    search.add_item("c1", "cm9", "Comment", at(12))
    search.add_item("c1", "cm10", "Comment", at(40))
    clock.set(at(45))
    report = world.poll()
    assert report["repairs"] == 1
    assert world.state("c1", FIRST).completion_time == at(12)
    assert world.state("c1", FIRST).status is SlaStatus.MET


def test_reconcile_reads_a_cases_sla_completion_from_search_all_related_items() -> None:
    world, clock, search = feed_world()
    spec = CasesSlaSpec("Callback", "status", ("closed",), at(61))
    world.deliver(
        related_raw(
            "c1",
            at(1),
            "Sla",
            "s1",
            {
                "sla": {
                    "slaConfiguration": {
                        "name": "Callback",
                        "fieldId": "status",
                        "targetFieldValues": [{"stringValue": "closed"}],
                        "targetTime": "2026-11-23T10:01:00.000Z",
                    }
                }
            },
        )
    )
    search.add_item("c1", "s1", "Sla", at(1), CasesSlaReport("s1", at(1), spec, "NotMet", at(70)))
    clock.set(at(75))
    report = world.poll()
    assert (report["searchRequests"], report["repairs"]) == (2, 1)
    state = world.state("c1", "cases#s1")
    assert (state.status, state.completion_time) == (SlaStatus.NOT_MET, at(70))


def test_a_case_event_reads_an_sla_definition_the_event_lacks() -> None:
    clock = VirtualClock(at(-1))
    spec = CasesSlaSpec("Callback", "status", ("closed",), at(61))
    source = FakeCasesSlas(slas={"c1": [CasesSlaReport("s1", at(1), spec, "Active")]})
    world = make(clock, None, source)
    raw = related_raw("c1", at(1), "Sla", "s1")
    assert needs_sla_lookup(parsed(raw))
    world.deliver(raw)
    assert world.state("c1", "cases#s1").target_time == at(61)
    assert source.calls == 1
    world.deliver(raw)  # a duplicate is recognised by its claim before anything is asked
    assert source.calls == 1


def test_the_reconcile_handler_reports_a_throttled_search_and_keeps_the_watermark() -> None:
    world, clock, search = feed_world()
    before = world.adapters.feed.watermark(DOMAIN)
    search.fail_with = [CasesThrottledError("budget spent")]
    clock.set(at(5))
    response = world.poll()
    assert (response["throttled"], response["until"]) == (True, None)
    assert world.adapters.feed.watermark(DOMAIN) == before
    assert world.poll()["until"] == (at(5) - LAG).isoformat()  # the next poll reads the same window


# --- observations ------------------------------------------------------------------------------------


def test_a_metadata_only_update_takes_changed_fields_from_the_enriched_case() -> None:
    raw = case_event_raw("CASE.UPDATED", "c1", at(5), {}, changed=["status", "title"])
    raw["detail"]["case"].pop("fields")
    event = parsed(raw)
    view = EnrichedCase(
        domain_id=DOMAIN,
        case_id="c1",
        version=at(5),
        fields={
            "status": EnrichedField(value=FieldValue.of("closed"), source=Provenance.GETCASE, as_of=at(5)),
            PRIORITY: EnrichedField(value=FieldValue.of("high"), source=Provenance.SNAPSHOT, as_of=at(1)),
        },
    )
    (obs,) = observe_event(event, view, tracked_fields(POLICIES))
    assert dict(obs.fields) == {"status": "closed"}  # priority did not change: unknown at this time


def test_a_created_event_takes_initial_values_from_the_enriched_case() -> None:
    raw = case_event_raw("CASE.CREATED", "c1", at(0), {"status": "open"})
    event = parsed(raw)
    view = enriched(event, {PRIORITY: "high"})
    (obs,) = observe_event(event, view, tracked_fields(POLICIES))
    assert dict(obs.fields) == {"status": "open", PRIORITY: "high"}
    assert obs.created == at(0)


def test_a_comment_ignores_the_snapshot() -> None:
    event = parsed(comment("c1", 3))
    (obs,) = observe_event(event, enriched(event, {"status": "closed"}), tracked_fields(POLICIES))
    assert (obs.kind, obs.item_type, obs.fields) == (ObsKind.ITEM, "Comment", ())


def test_a_case_read_is_dated_by_cases() -> None:
    values = {
        "status": FieldValue.of("closed"),
        "last_updated_datetime": FieldValue.of("2026-11-23T11:00:00.000Z"),
        "last_closed_datetime": FieldValue.of("2026-11-23T10:00:00.000Z"),
    }
    read = observe_case_read(values, frozenset({"status", PRIORITY}), at(600))
    assert [(o.at, dict(o.fields)) for o in read] == [
        (at(120), {"status": "closed", PRIORITY: None}),
        (at(60), {"status": "closed"}),
    ]
    undated = observe_case_read({"status": FieldValue.of("open")}, frozenset({"status"}), at(600))
    assert [o.at for o in undated] == [at(600)]


def test_every_sample_event_goes_through_sla_tracking() -> None:
    world = make(VirtualClock(T0 - timedelta(days=1)))
    for path in SAMPLE_FILES:
        world.deliver(json.loads(path.read_text()))
    sla = load_event("related-item-sla")["detail"]["relatedItem"]
    states = world.store.load(DOMAIN, sla["caseId"]).states()
    cases_sla = states[f"cases#{sla['relatedItemId']}"]
    assert (cases_sla.name, cases_sla.target_time.isoformat()) == (
        "First response",
        "2026-11-23T09:30:01.650000+00:00",
    )
    # case 1: status to pending-customer at 09:14:37.905 meets the Cases SLA and pauses the resolve
    # policy; the comment at 09:12 is the first response to a high-priority case
    assert (cases_sla.status, cases_sla.completion_time) == (
        SlaStatus.MET,
        parse_iso("2026-11-23T09:14:37.905Z"),
    )
    assert states[FIRST].status is SlaStatus.MET
    assert states[RESOLVE].paused_since == parse_iso("2026-11-23T09:14:37.905Z")
    # case 2 (metadata-only update, then deleted): its resolve SLA is cancelled
    case2 = world.store.load(DOMAIN, "c9e8d7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f").states()
    assert {k: s.status for k, s in case2.items()} == {RESOLVE: SlaStatus.CANCELLED}


# --- the CLI -----------------------------------------------------------------------------------------


def test_render_and_json_show_state_time_left_and_completion() -> None:
    clock = VirtualClock(at(-1))
    world = make(clock)
    world.deliver(created("c1", 0, "high"))
    world.deliver(comment("c1", 40))
    world.deliver(updated("c1", 100, "closed", "high"))
    world.deliver(updated("c1", 200, "open", "high"))
    slas = sorted(world.store.load(DOMAIN, "c1").states().values(), key=lambda s: s.key)
    text = render_slas(slas, at(260))
    assert "first-response-high     policy  NotMet" in text
    assert "10m 00s late" in text
    assert "resolve-within-8h (#2)  policy  Active" in text
    assert "7h 00m left" in text
    document = sla_document(slas[1], at(260))
    assert (document["status"], document["cycle"], document["secondsLeft"]) == ("Active", 2, 7 * 3600.0)
    assert [h["status"] for h in document["history"]] == ["Active", "Met", "Active"]
    assert time_left(slas[1], at(200 + 480 + 65)) == "due 1h 05m ago"


def test_sla_show_needs_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASEWATCH_SLA_TABLE", raising=False)
    assert cli.main(["sla", "show", "c1"], out=io.StringIO()) == 2
    assert cli.main(["sla"], out=io.StringIO()) == 2


def test_timer_names_are_short_and_deterministic() -> None:
    from casewatch.adapters.scheduler_timers import schedule_name

    name = schedule_name("a" * 36, "cases#" + "b" * 36, TimerKind.WARNING)
    assert name == schedule_name("a" * 36, "cases#" + "b" * 36, TimerKind.WARNING)
    assert len(name) <= 64
    assert name != schedule_name("a" * 36, "cases#" + "b" * 36, TimerKind.BREACH)
    assert Path(__file__).exists()


def test_a_repair_whose_sends_failed_is_sent_by_a_later_poll() -> None:
    """The feed repairs a case (its closing event was dropped), writes it, then the bus is down: the poll
    counts a case error and keeps the watermark before it. A later poll must send what that write owes
    (the SLA's Met), once, although the case's record already knows the closing."""
    world, clock, search = feed_world()
    search.put_case(
        "c1", {"status": "closed", "last_closed_datetime": "2026-11-23T10:00:00.000Z"}, updated=at(60)
    )
    world.bus_events()
    put_events = world.aws.events.put_events

    def down(**request: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutEvents")

    world.aws.events.put_events = down  # type: ignore[method-assign]
    clock.set(at(61))
    failed = world.poll("p1")
    assert failed["caseErrors"] == 1
    assert world.adapters.feed.watermark(DOMAIN) < at(60)  # pinned before the case's news
    assert world.state("c1", RESOLVE).status is SlaStatus.MET  # written before the sends
    assert world.bus_events() == []
    world.aws.events.put_events = put_events  # type: ignore[method-assign]
    for minute in (62, 63):
        clock.set(at(minute))
        world.poll(f"p-{minute}")
    assert kinds(world) == [SlaSignalKind.MET]  # sent by the next poll, once
    assert world.adapters.feed.owed(DOMAIN) == []  # and no longer owed
