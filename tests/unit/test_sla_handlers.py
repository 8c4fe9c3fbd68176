"""The sla-timer and reconcile handlers, observation building, and `casewatch sla show`, on fakes."""

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
from casewatch.handlers import reconcile, sla_timer
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignalKind, SlaTimerPayload
from casewatch.observability import SLA_BREACH_CHECK_FAILED
from casewatch_dev import cli
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader, InMemorySlaStore, RecordingTimers
from casewatch_dev.sla_cli import render_slas, sla_document, time_left
from tests.apps import FakeCasesSlas, LambdaContext, SlaSystem
from tests.builders import (
    DOMAIN,
    EVENTS,
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
    parsed,
    related_raw,
    updated,
)

TIMER_CONTEXT = LambdaContext("casewatch-sla-timer")


def make(
    clock: VirtualClock, reader: DictCasesReader | None = None, source: FakeCasesSlas | None = None
) -> SlaSystem:
    return SlaSystem(
        SLA_SETTINGS,
        store=InMemorySlaStore(),
        timers=RecordingTimers(),
        clock=clock,
        cases_reader=reader,
        cases_slas=source,
    )


def deliver(system: SlaSystem, raw: dict[str, Any]) -> None:
    system.deliver(raw)


def payload(kind: str, key: str, name: str, target: datetime, case_id: str = "c1") -> dict[str, Any]:
    return SlaTimerPayload(
        kind=kind, domain_id=DOMAIN, case_id=case_id, sla_name=name, sla_key=key, target_time=target
    ).wire()


def kinds(system: SlaSystem) -> list[SlaSignalKind]:
    return [s.kind for s, _ in system.signals.signals]


# --- handlers ----------------------------------------------------------------------------------------


def test_sla_timer_handler_breaches_and_reports_ids_only() -> None:
    clock = VirtualClock(at(-1))
    system = make(clock)
    deliver(system, created("c1", 0, "high"))
    clock.set(at(30))
    response = sla_timer.handler(
        payload("breach", FIRST, "first-response-high", at(30)), TIMER_CONTEXT, app=system.timer_app()
    )
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
    }
    assert kinds(system) == [SlaSignalKind.BREACHED]


def test_sla_timer_handler_finds_the_sla_by_name_without_a_key() -> None:
    clock = VirtualClock(at(-1))
    system = make(clock)
    deliver(system, created("c1", 0, "high"))
    clock.set(at(24))
    body = payload("warning", FIRST, "first-response-high", at(30))
    del body["slaKey"]
    sla_timer.handler(body, TIMER_CONTEXT, app=system.timer_app())
    assert kinds(system) == [SlaSignalKind.AT_RISK]


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
    system = make(VirtualClock(at(0)))
    response = sla_timer.handler(event, TIMER_CONTEXT, app=system.timer_app())
    assert response["outcome"] == "invalid"
    assert "2026" not in response["reason"]  # locations, not values


def test_reconcile_handler_repairs_a_missed_closing_from_getcase() -> None:
    clock = VirtualClock(at(-1))
    reader = DictCasesReader()
    system = make(clock, reader)
    deliver(system, created("c1", 0))
    reader.add(
        "c1",
        {
            "status": "closed",
            PRIORITY: "low",
            "last_updated_datetime": "2026-11-23T11:00:00.000Z",
            "last_closed_datetime": "2026-11-23T10:00:00.000Z",
        },
    )
    clock.set(at(8 * 60 + 15))
    response = reconcile.handler(
        {"id": "r1", "detail": {}}, LambdaContext("casewatch-reconcile"), app=system.reconcile_app()
    )
    assert (response["due"], response["casesChecked"], response["repairs"], response["casesCalls"]) == (
        1,
        1,
        1,
        1,
    )
    assert response["slaChanges"] == [
        {"case": "c1", "sla": RESOLVE, "status": "Met", "at": "2026-11-23T10:00:00+00:00"}
    ]
    assert set(reader.requests[0][2]) >= {"status", PRIORITY, "last_updated_datetime", "last_closed_datetime"}
    assert kinds(system) == [SlaSignalKind.MET]


def test_reconcile_dates_a_field_change_by_the_last_update() -> None:
    clock = VirtualClock(at(-1))
    reader = DictCasesReader()
    system = make(clock, reader)
    deliver(system, created("c1", 0))
    reader.add("c1", {"status": "closed", "last_updated_datetime": "2026-11-23T17:30:00.000Z"})
    clock.set(at(9 * 60))
    system.reconcile()
    state = system.store.load(DOMAIN, "c1").slas[RESOLVE].state
    assert (state.status, state.completion_time) == (SlaStatus.NOT_MET, at(8 * 60 + 30))


def test_reconcile_finds_a_missed_first_comment() -> None:
    clock = VirtualClock(at(-1))
    source = FakeCasesSlas(items={("c1", "Comment"): [("cm9", at(12)), ("cm10", at(40))]})
    system = make(clock, DictCasesReader({"c1": (None, {"status": "open"})}), source)
    deliver(system, created("c1", 0, "high"))
    clock.set(at(45))
    report = system.reconcile()
    assert report.repairs == 1
    assert system.store.load(DOMAIN, "c1").slas[FIRST].state.completion_time == at(12)


def test_reconcile_reads_cases_slas_with_search_related_items() -> None:
    clock = VirtualClock(at(-1))
    source = FakeCasesSlas()
    system = make(clock, None, source)
    deliver(system, created("c1", 0))
    spec = CasesSlaSpec("Callback", "status", ("closed",), at(61))
    deliver(
        system,
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
        ),
    )
    source.slas["c1"] = [CasesSlaReport("s1", at(1), spec, "NotMet", at(70))]
    clock.set(at(75))
    report = system.reconcile()
    assert (report.cases_calls, report.repairs) == (1, 1)
    state = system.store.load(DOMAIN, "c1").slas["cases#s1"].state
    assert (state.status, state.completion_time) == (SlaStatus.NOT_MET, at(70))


def test_a_case_event_reads_an_sla_definition_the_event_lacks() -> None:
    clock = VirtualClock(at(-1))
    spec = CasesSlaSpec("Callback", "status", ("closed",), at(61))
    source = FakeCasesSlas(slas={"c1": [CasesSlaReport("s1", at(1), spec, "Active")]})
    system = make(clock, None, source)
    raw = related_raw("c1", at(1), "Sla", "s1")
    assert needs_sla_lookup(parsed(raw))
    deliver(system, raw)
    assert system.store.load(DOMAIN, "c1").slas["cases#s1"].state.target_time == at(61)
    assert source.calls == 1


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
    system = make(VirtualClock(T0 - timedelta(days=1)))
    for path in SAMPLE_FILES:
        event = parsed(json.loads(path.read_text()))
        system.case_events.on_case_event(event, enriched(event))
    sla = json.loads((EVENTS / "related-item-sla.json").read_text())["detail"]["relatedItem"]
    states = system.store.load(DOMAIN, sla["caseId"]).slas
    cases_sla = states[f"cases#{sla['relatedItemId']}"].state
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
    assert states[FIRST].state.status is SlaStatus.MET
    assert states[RESOLVE].state.paused_since == parse_iso("2026-11-23T09:14:37.905Z")
    # case 2 (metadata-only update, then deleted): its resolve SLA is cancelled
    case2 = system.store.load(DOMAIN, "c9e8d7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f").slas
    assert {k: s.state.status for k, s in case2.items()} == {RESOLVE: SlaStatus.CANCELLED}


# --- the CLI -----------------------------------------------------------------------------------------


def test_render_and_json_show_state_time_left_and_completion() -> None:
    clock = VirtualClock(at(-1))
    system = make(clock)
    deliver(system, created("c1", 0, "high"))
    deliver(system, comment("c1", 40))
    deliver(system, updated("c1", 100, "closed", "high"))
    deliver(system, updated("c1", 200, "open", "high"))
    slas = list(system.store.load(DOMAIN, "c1").slas.values())
    text = render_slas(slas, at(260))
    assert "first-response-high     policy  NotMet" in text
    assert "10m 00s late" in text
    assert "resolve-within-8h (#2)  policy  Active" in text
    assert "7h 00m left" in text
    document = sla_document(slas[1], at(260))
    assert (document["status"], document["cycle"], document["secondsLeft"]) == ("Active", 2, 7 * 3600.0)
    assert [h["status"] for h in document["history"]] == ["Active", "Met", "Active"]
    overdue = system.store.load(DOMAIN, "c1").slas[RESOLVE].state
    assert time_left(overdue, at(200 + 480 + 65)) == "due 1h 05m ago"


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


@pytest.mark.parametrize(
    "refusal",
    [
        CasesRequestError("GetCase refused: AccessDeniedException", code="AccessDeniedException"),
        CasesThrottledError("budget spent"),
        CasesUnavailableError("500"),
    ],
    ids=["refused", "throttled", "unavailable"],
)
def test_a_breach_is_still_declared_when_cases_cannot_be_asked(refusal: Exception) -> None:
    clock = VirtualClock(at(-1))
    reader = DictCasesReader()
    reader.fail_with = [refusal]
    system = make(clock, reader)
    deliver(system, created("c1", 0))
    clock.set(at(480))
    response = sla_timer.handler(
        payload("breach", RESOLVE, "resolve-within-8h", at(480)), TIMER_CONTEXT, app=system.timer_app()
    )
    assert [c["status"] for c in response["slaChanges"]] == ["Overdue"]
    assert system.store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.OVERDUE
    assert kinds(system) == [SlaSignalKind.BREACHED]
    assert len(reader.requests) == 1
    assert system.metrics.counts[SLA_BREACH_CHECK_FAILED] == 1


def test_a_programming_error_in_the_breach_check_is_not_hidden() -> None:
    """Only Cases' own failures are judged on what was seen: a bug propagates (Scheduler retries) and
    nothing is written or signalled."""
    clock = VirtualClock(at(-1))
    reader = DictCasesReader()
    reader.fail_with = [TypeError("a bug")]
    system = make(clock, reader)
    deliver(system, created("c1", 0))
    clock.set(at(480))
    with pytest.raises(TypeError):
        sla_timer.handler(
            payload("breach", RESOLVE, "resolve-within-8h", at(480)), TIMER_CONTEXT, app=system.timer_app()
        )
    assert system.store.load(DOMAIN, "c1").slas[RESOLVE].state.status is SlaStatus.ACTIVE
    assert kinds(system) == []
    assert system.metrics.counts[SLA_BREACH_CHECK_FAILED] == 0


def test_a_stale_breach_timer_asks_cases_nothing() -> None:
    clock = VirtualClock(at(-1))
    reader = DictCasesReader({"c1": (None, {"status": "open"})})
    system = make(clock, reader)
    deliver(system, created("c1", 0))
    deliver(system, updated("c1", 60, "closed"))
    clock.set(at(480))
    sla_timer.handler(
        payload("breach", RESOLVE, "resolve-within-8h", at(480)), TIMER_CONTEXT, app=system.timer_app()
    )
    assert reader.requests == []
