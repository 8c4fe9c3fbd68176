"""The Lambda handlers with fakes: every sample event through its handler, invalid ones parked, logs clean."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casewatch import observability
from casewatch.app.process_event import claim_key
from casewatch.errors import CasesThrottledError, CasesUnavailableError, DuplicateInProgressError
from casewatch.handlers import case_changed, related_item_created
from casewatch.models.enriched import EnrichedCase, Provenance
from casewatch.models.events import parse_case_event
from casewatch.observability import LazyTracer, PowertoolsMetrics, logger, tracing_disabled
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader, ListDeadLetters
from tests.apps import World
from tests.builders import (
    CASE_1,
    CASE_2,
    DOMAIN,
    INVALID_FILES,
    SAMPLE_FILES,
    load_event,
    raw_of,
    repo_settings,
)

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
HANDLERS: dict[str, ModuleType] = {
    CASE_CHANGED.name: case_changed,
    RELATED_ITEM_CREATED_FN.name: related_item_created,
}
ROUTE = {
    t: name
    for name, spec in (
        (CASE_CHANGED.name, CASE_CHANGED),
        (RELATED_ITEM_CREATED_FN.name, RELATED_ITEM_CREATED_FN),
    )
    for t in spec.event_types
}


@pytest.fixture(name="repo_settings")
def repo_settings_fixture() -> Settings:
    return repo_settings()


def make_deps(settings: Settings, **overrides: Any) -> World:
    """The functions on fakes (invalid events parked in a list); GetCase knows the two sample cases."""
    reader = DictCasesReader()
    for case_id in (CASE_1, CASE_2):
        reader.add(
            case_id, {"customer_id": "cust-1", "reference_number": "78412093", "status": "open", "title": "T"}
        )
    options: dict[str, Any] = {
        "cases": reader,
        "clock": VirtualClock(NOW),
        "dead_letters": ListDeadLetters(),
        **overrides,
    }
    return World(settings, **options)


def invoke(function: str, event: Any, deps: World) -> dict[str, Any]:
    return deps.deliver(event, function)


def received(deps: World) -> list[tuple[str | None, EnrichedCase]]:
    """(event id, enriched view) of every event the functions handled."""
    return [(o.event_id, o.case) for o in deps.outcomes() if o.case is not None]


def parked(deps: World) -> Any:
    dead_letters = deps.adapters.dead_letters
    assert isinstance(dead_letters, ListDeadLetters)
    return dead_letters.parked


# --- every sample through its handler ----------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_every_sample_event_through_its_handler(path: Path, repo_settings: Settings) -> None:
    raw = load_event(path.stem)
    deps = make_deps(repo_settings)
    event_type = raw["detail"]["eventType"]
    function = ROUTE.get(event_type, RELATED_ITEM_CREATED_FN.name)  # an unknown type reaches no rule
    result = invoke(function, raw, deps)

    assert result["eventId"] == raw["id"]
    ids_and_counts = {"outcome", "eventId", "caseId", "getcaseCalls"}
    assert set(result) == (ids_and_counts if event_type in ROUTE else ids_and_counts | {"reason"})
    counts = deps.counts
    if event_type in ROUTE:
        assert result["outcome"] == "handled"
        assert result["caseId"] in {CASE_1, CASE_2}
        [(event_id, case)] = received(deps)
        assert event_id == raw["id"]
        assert case.case_id == result["caseId"]
        assert set(repo_settings.needed_field_ids) <= set(case.fields) | set(case.missing)
        assert counts["EventsHandled"] == 1
        assert counts["GetCaseCalls"] == result["getcaseCalls"]
    else:
        assert result["outcome"] == "unhandled"
        assert result["reason"] == "event type not handled here"
        assert counts["EventsUnhandled"] == 1
        assert counts["EventsHandled"] == 0
        assert received(deps) == []
        assert deps.store.commits == 0


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_the_wrong_handler_leaves_an_event_unhandled(path: Path, repo_settings: Settings) -> None:
    raw = load_event(path.stem)
    deps = make_deps(repo_settings)
    right = ROUTE.get(raw["detail"]["eventType"])
    for function in HANDLERS:
        if function == right:
            continue
        result = invoke(function, raw, deps)
        assert result["outcome"] == "unhandled"
        assert result["reason"] == "event type not handled here"
        assert result["getcaseCalls"] == 0
    assert received(deps) == []
    assert deps.cases.calls == 0
    assert deps.store.commits == 0
    assert (deps.notifications(), deps.bus_events()) == ([], [])


@pytest.mark.parametrize(
    ("stem", "calls"),
    [
        ("case-created", 0),  # carries every needed field (or omits them as empty: they are in includedData)
        ("case-updated", 0),
        ("case-updated-replayed", 0),
        ("case-updated-metadata-only", 1),  # no includedData: one GetCase for all 7 needed fields
        ("case-deleted", 0),
        ("related-item-comment", 1),  # no snapshot yet
        ("related-item-contact", 1),
        ("related-item-file", 1),
        ("related-item-sla", 1),
        ("related-item-updated-unhandled", 0),
    ],
)
def test_getcase_calls_per_sample_event_with_the_repo_settings(
    stem: str, calls: int, repo_settings: Settings
) -> None:
    raw = load_event(stem)
    deps = make_deps(repo_settings)
    result = invoke(ROUTE.get(raw["detail"]["eventType"], RELATED_ITEM_CREATED_FN.name), raw, deps)
    assert result["getcaseCalls"] == calls
    reader = deps.cases
    assert isinstance(reader, DictCasesReader)
    assert reader.calls == calls
    if calls:
        [(_, _, requested)] = reader.requests
        assert set(requested) == repo_settings.needed_field_ids  # all of them in that one call


def test_the_sample_day_in_time_order_needs_one_getcase(repo_settings: Settings) -> None:
    events = sorted(
        (load_event(p.stem) for p in SAMPLE_FILES), key=lambda e: e["detail"]["approximateChangeTime"]
    )
    deps = make_deps(repo_settings)
    calls = {
        e["id"]: invoke(ROUTE.get(e["detail"]["eventType"], RELATED_ITEM_CREATED_FN.name), e, deps)[
            "getcaseCalls"
        ]
        for e in events
    }
    assert sum(calls.values()) == 1  # only the metadata-only update
    assert calls[load_event("case-updated-metadata-only")["id"]] == 1
    stored = deps.store.load(repo_settings.domain_id, CASE_2).snapshot
    assert stored is not None
    assert stored.deleted
    comment_view = next(c for e, c in received(deps) if e == load_event("related-item-comment")["id"])
    assert set(comment_view.sources().values()) == {Provenance.SNAPSHOT}


def test_the_snapshot_keeps_the_needed_fields_only(repo_settings: Settings) -> None:
    deps = make_deps(repo_settings)
    invoke(CASE_CHANGED.name, load_event("case-created"), deps)
    [(_, view)] = received(deps)
    assert {"summary", "created_datetime"} <= set(view.fields)  # messages show all the event carries
    stored = deps.store.load(view.domain_id, view.case_id).snapshot
    assert stored is not None
    assert set(stored.fields) == repo_settings.needed_field_ids


def test_a_deleted_case_builds_its_view_from_the_event_and_the_snapshot(repo_settings: Settings) -> None:
    deps = make_deps(repo_settings)
    invoke(CASE_CHANGED.name, load_event("case-updated-metadata-only"), deps)  # case 2: GetCase once
    result = invoke(CASE_CHANGED.name, load_event("case-deleted"), deps)
    assert result["getcaseCalls"] == 0
    [_, (_, view)] = received(deps)
    assert view.deleted
    assert view.value("title") == "T"
    assert view.fields["title"].source is Provenance.SNAPSHOT


# --- invalid and poison events -----------------------------------------------------------------


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("function", list(HANDLERS))
def test_invalid_events_are_parked_with_their_reason_and_nothing_is_raised(
    path: Path, function: str, repo_settings: Settings
) -> None:
    raw = raw_of(path)
    deps = make_deps(repo_settings)
    result = invoke(function, raw, deps)
    assert result["outcome"] == "invalid"
    assert result["reason"]
    [parked_event] = parked(deps)
    assert parked_event.raw is raw
    assert parked_event.reason == result["reason"]
    assert parked_event.function == function
    expected_id = raw.get("id") if isinstance(raw, dict) else None
    assert parked_event.event_id == expected_id == result["eventId"]
    assert deps.counts["EventsInvalid"] == 1
    assert received(deps) == []
    assert deps.store.commits == 0


OTHER_DOMAIN = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"  # another Cases domain of the same account


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_an_event_of_another_domain_is_unhandled_and_nothing_else_happens(
    path: Path, repo_settings: Settings
) -> None:
    """An account may hold several Cases domains: a replay, a redrive or a hand-made invocation may bring
    another domain's event to the function. It reads nothing, sends nothing, parks nothing."""
    raw = json.loads(json.dumps(load_event(path.stem)).replace(DOMAIN, OTHER_DOMAIN))
    assert repo_settings.domain_id == DOMAIN and DOMAIN not in json.dumps(raw)
    deps = make_deps(repo_settings)
    result = invoke(ROUTE.get(raw["detail"]["eventType"], RELATED_ITEM_CREATED_FN.name), raw, deps)
    assert (result["outcome"], result.get("reason")) == (
        "unhandled",
        "event of another Cases domain than the configured domain_id",
    )
    assert result["getcaseCalls"] == 0 and deps.cases.calls == 0
    assert received(deps) == []
    assert parked(deps) == []
    assert deps.store.commits == 0
    assert (deps.notifications(), deps.bus_events()) == ([], [])
    assert (deps.counts["EventsUnhandled"], deps.counts["EventsHandled"]) == (1, 0)


def _mutations() -> st.SearchStrategy[Any]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        raw = load_event(draw(st.sampled_from([p.stem for p in SAMPLE_FILES])))
        target = raw if draw(st.booleans()) else raw["detail"]
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values)
        return raw

    return json_values | mutated() | st.binary(max_size=50)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_mutations())
def test_a_poison_event_never_raises(raw: Any, repo_settings: Settings) -> None:
    for function in HANDLERS:
        deps = make_deps(repo_settings)
        result = invoke(function, raw, deps)
        assert result["outcome"] in {"handled", "unhandled", "invalid"}
        if result["outcome"] == "invalid":
            assert len(parked(deps)) == 1


# --- transient errors propagate ----------------------------------------------------------------


def test_getcase_throttled_after_retries_propagates_and_is_counted(repo_settings: Settings) -> None:
    deps = make_deps(repo_settings)
    deps.cases.fail_with.append(CasesThrottledError("budget spent"))
    with pytest.raises(CasesThrottledError):
        invoke(CASE_CHANGED.name, load_event("case-updated-metadata-only"), deps)
    counts = deps.counts
    assert counts["GetCaseThrottled"] == 1
    assert counts["GetCaseCalls"] == 1
    assert counts["EventsHandled"] == 0
    assert received(deps) == []
    assert parked(deps) == []
    assert deps.store.commits == 0  # nothing written: the retry starts afresh


def test_cases_unavailable_propagates(repo_settings: Settings) -> None:
    deps = make_deps(repo_settings)
    deps.cases.fail_with.append(CasesUnavailableError("500"))
    with pytest.raises(CasesUnavailableError):
        invoke(RELATED_ITEM_CREATED_FN.name, load_event("related-item-comment"), deps)


def test_a_failing_send_propagates_after_the_state_is_stored(repo_settings: Settings) -> None:
    """The bus is down: the invocation fails (Lambda retries) after the case's state and the event's claim
    were written; the retry, once the first invocation's lease has ended, sends what is still pending and
    finds the fetched fields in the stored view (no second GetCase)."""
    deps = make_deps(repo_settings)
    events = deps.aws.events
    put = events.put_events

    def down(**request: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutEvents")

    events.put_events = down  # type: ignore[method-assign]
    raw = load_event("related-item-comment")
    with pytest.raises(Exception, match="PutEvents failed with InternalException"):
        invoke(
            RELATED_ITEM_CREATED_FN.name,
            raw,
            deps,
        )
    assert deps.cases.calls == 1
    assert deps.bus_events() == []
    events.put_events = put  # type: ignore[method-assign]
    with pytest.raises(DuplicateInProgressError):  # Lambda's retry, before the first invocation's lease ended
        invoke(RELATED_ITEM_CREATED_FN.name, raw, deps)
    deps.clock.advance(60)  # the first invocation had 30 s left
    assert invoke(RELATED_ITEM_CREATED_FN.name, raw, deps)["getcaseCalls"] == 0
    [bus_event] = deps.bus_events()
    assert bus_event["detail"]["event"]["id"] == raw["id"]
    assert invoke(RELATED_ITEM_CREATED_FN.name, raw, deps)["outcome"] == "handled"  # done: a duplicate
    assert deps.bus_events() == []
    assert deps.cases.calls == 1


def test_a_deleted_case_is_processed_with_what_the_event_carries(repo_settings: Settings) -> None:
    deps = make_deps(repo_settings, cases=DictCasesReader())  # GetCase answers 404
    result = invoke(RELATED_ITEM_CREATED_FN.name, load_event("related-item-file"), deps)
    assert result["outcome"] == "handled"
    [(_, view)] = received(deps)
    assert view.flags == ("case_not_found",)
    assert set(view.missing) == repo_settings.needed_field_ids
    assert deps.counts["CaseNotFound"] == 1


# --- logs and metrics --------------------------------------------------------------------------


def _field_values() -> set[str]:
    """Distinctive case data in the samples: string field values and comment bodies."""
    values: set[str] = set()
    for path in SAMPLE_FILES:
        event = parse_case_event(load_event(path.stem))
        values |= {v for v in event.field_values().values() if isinstance(v, str) and len(v) >= 6}
        item = event.related_item
        if item is not None and item.comment is not None and item.comment.body:
            values.add(item.comment.body)
    return values


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """What the Powertools logger writes (JSON lines), at DEBUG level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger(logger.name)
    previous = logger.log_level
    target.addHandler(handler)
    logger.setLevel("DEBUG")
    yield stream
    logger.setLevel(previous)
    target.removeHandler(handler)


def test_logs_hold_ids_and_never_field_values(repo_settings: Settings, captured_logs: io.StringIO) -> None:
    deps = make_deps(repo_settings)
    for path in [*SAMPLE_FILES, *INVALID_FILES]:
        raw = raw_of(path)
        detail = raw.get("detail") if isinstance(raw, dict) else None
        event_type = detail.get("eventType") if isinstance(detail, dict) else None
        invoke(ROUTE.get(str(event_type), CASE_CHANGED.name), raw, deps)
    out = captured_logs.getvalue()
    assert "Refund not received" in json.dumps(load_event("case-created"))  # the check below means something
    leaked = sorted(v for v in _field_values() if v in out)
    assert leaked == []
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"level"' in line]
    handled = [line for line in lines if line.get("message") == "event handled"]
    assert len(handled) == 9
    assert all(line["correlation_id"] == line["event_id"] for line in handled)  # EventBridge `id`
    assert all(line["function_name"] in HANDLERS for line in handled)
    assert handled[0]["sources"]["event"]  # field ids by provenance


def test_case_data_is_logged_only_when_configured(
    repo_settings: Settings, captured_logs: io.StringIO
) -> None:
    configured = repo_settings.model_copy(update={"log_case_data": True})
    invoke(CASE_CHANGED.name, load_event("case-created"), make_deps(configured))
    assert "Refund not received" in captured_logs.getvalue()


def test_metrics_are_emf_in_the_casewatch_namespace(
    repo_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    deps = make_deps(repo_settings, metrics=PowertoolsMetrics())  # the real port: Powertools' EMF
    invoke(CASE_CHANGED.name, load_event("case-updated-metadata-only"), deps)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [emf] = blobs
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Casewatch"
    assert directive["Dimensions"] == [["service"]]
    assert emf["service"] == "casewatch"
    assert emf["EventsHandled"] == [1.0] or emf["EventsHandled"] == 1.0
    assert emf["GetCaseCalls"] in (1.0, [1.0])


# --- the handler and its app ------------------------------------------------------------------


@pytest.mark.parametrize("function", list(HANDLERS))
def test_the_handler_leases_the_event_claim_until_the_invocation_ends(
    function: str, repo_settings: Settings
) -> None:
    """The claim written with the event's state is leased for the invocation's remaining time: a
    concurrent delivery within it waits (retries), Lambda's retry after a timeout finds it expired."""
    deps = make_deps(repo_settings)
    raw = load_event("case-created" if function == CASE_CHANGED.name else "related-item-comment")
    remaining_ms = 12_345
    deps.deliver(raw, function, remaining_ms=remaining_ms)
    event = parse_case_event(raw)
    assert event.case_id is not None
    record = deps.store.load(event.domain_id, event.case_id, claim_key=claim_key(event))
    assert record.claim is not None
    assert record.claim.done
    assert record.claim.lease_until == NOW + timedelta(milliseconds=remaining_ms)


# --- tracing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "disabled"),
    [
        ({}, True),  # outside Lambda
        ({"LAMBDA_TASK_ROOT": "/var/task"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, True),
    ],
)
def test_tracing_follows_the_powertools_rule(
    env: dict[str, str], disabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_disabled() is disabled


def test_the_tracer_decorator_is_applied_on_the_first_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[dict[str, Any]] = []

    class FakeTracer:
        def capture_lambda_handler(self, fn: Any, capture_response: bool | None = None) -> Any:
            applied.append({"fn": fn.__name__, "capture_response": capture_response})
            return lambda event, context, **kwargs: ("traced", fn(event, context, **kwargs))

    monkeypatch.setattr(observability, "get_tracer", FakeTracer)
    monkeypatch.setattr(observability, "tracing_disabled", lambda: False)

    @LazyTracer().capture_lambda_handler(capture_response=False)
    def handler(event: Any, context: Any, app: Any = None) -> Any:
        return event, app

    assert applied == []  # nothing at import time
    assert handler(1, None, app=2) == ("traced", (1, 2))
    assert handler(3, None) == ("traced", (3, None))
    assert applied == [{"fn": "handler", "capture_response": False}]  # once per container


def test_no_tracer_is_built_while_tracing_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "get_tracer", lambda: pytest.fail("the X-Ray SDK was loaded"))
    monkeypatch.setattr(observability, "tracing_disabled", lambda: True)

    @LazyTracer().capture_lambda_handler
    def handler(event: Any, context: Any) -> Any:
        return event

    assert handler("e", None) == "e"
