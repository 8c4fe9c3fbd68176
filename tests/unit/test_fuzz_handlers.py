"""Fuzzing every handler with near-valid Cases events: mutations of the real shapes in `events/`.

Each example takes a sample event (or the Scheduler payloads of `events/scheduler/`) and applies a few
mutations — delete a key, replace a value with arbitrary JSON, change a value's type, put in a value
that is valid elsewhere (another eventType, a related-item type, a field value union, an odd time) —
then runs the handler on the apps `casewatch.bootstrap` builds, over adapters in memory (SLA tracking,
notifications and claims in the in-memory case store, the real SNS/EventBridge/SQS/Scheduler adapters on
fake clients; GetCase and search answer from dicts).

Every example must end in a typed outcome — `handled`, `unhandled` or `invalid` — and never in an
unhandled exception; `invalid` exactly when the event does not parse, and then the event is parked on
the dead-letter queue as it came, with the parser's reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casewatch.bootstrap import build_event_app, build_reconcile_app, build_sla_timer_app
from casewatch.errors import InvalidCaseEventError
from casewatch.handlers import case_changed, reconcile, related_item_created, sla_timer
from casewatch.models.events import parse_case_event
from casewatch.settings import load_cdk_context
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from tests.apps import LambdaContext, memory_adapters
from tests.builders import EVENTS, ROOT, SAMPLE_FILES

SETTINGS = load_cdk_context(ROOT / "cdk.json")
NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
SAMPLES = {path.stem: json.loads(path.read_text()) for path in SAMPLE_FILES}
CASE_SAMPLES = [e for e in SAMPLES.values() if e["detail"]["eventType"].startswith("CASE.")]
ITEM_SAMPLES = [e for e in SAMPLES.values() if not e["detail"]["eventType"].startswith("CASE.")]
TIMER = json.loads((EVENTS / "scheduler" / "sla-timer-breach.json").read_text())
SCHEDULED = json.loads((EVENTS / "scheduler" / "reconcile.json").read_text())
EXAMPLES = 120

# Values that are valid somewhere in a Cases event: put in the wrong place, they make near-valid events.
KNOWN = [
    "",
    " ",
    "CASE.CREATED",
    "CASE.UPDATED",
    "CASE.DELETED",
    "RELATED_ITEM.CREATED",
    "RELATED_ITEM.DELETED",
    "Comment",
    "comment",
    "Sla",
    "Contact",
    "aws.cases",
    "Amazon Connect Cases Change",
    {"stringValue": "closed"},
    {"stringValue": "x" * 4101},
    {"doubleValue": 1e308},
    {"booleanValue": True},
    {"emptyValue": {}},
    {"userArnValue": "arn:aws:connect:us-east-1:123456789012:instance/i/agent/a"},
    {"stringValue": "a", "doubleValue": 1.0},
    {"value": {"stringValue": "open"}},
    "2026-11-23T10:00:00Z",
    "2026-11-23T10:00:00.123+02:00",
    "2026-13-45T99:99:99Z",
    1795771528470,
    -1,
    10**30,
    0.5,
    "arn:aws:cases:us-east-1:123456789012:domain/b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c",
    "arn:aws:cases:us-east-1:123456789012:domain/other/case/a3f1c2d4",
    ["status", "title"],
    {"fields": {}},
    {},
    [],
    None,
    "é\u0000\ud7ff😀",
]

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*prefix, index))
            found += _paths(value, (*prefix, index))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


def _retyped(value: Any) -> Any:
    if isinstance(value, str):
        return [value] if len(value) % 2 else len(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return {str(n): v for n, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return {}


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """A near-valid event: a sample with 1-4 mutations."""
    document = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(document, path), path[-1]
        operation = draw(st.sampled_from(["delete", "replace", "retype", "known", "known"]))
        if operation == "delete":
            del parent[key]
        elif operation == "replace":
            parent[key] = draw(json_value)
        elif operation == "retype":
            parent[key] = _retyped(parent[key])
        else:
            parent[key] = copy.deepcopy(draw(st.sampled_from(KNOWN)))
    return document


@st.composite
def same_typed(draw: st.DrawFn, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """A gentler mutant, mostly still valid: 1-3 leaves replaced by values of the same JSON type
    (strings by other strings, including values valid elsewhere in an event), or a key removed."""
    document = copy.deepcopy(draw(st.sampled_from(bases)))
    strings = st.one_of(st.sampled_from([k for k in KNOWN if isinstance(k, str)]), st.text(max_size=30))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        leaves = [p for p in _paths(document) if not isinstance(_parent(document, p)[p[-1]], dict | list)]
        if not leaves:
            break
        path = draw(st.sampled_from(leaves))
        parent, key = _parent(document, path), path[-1]
        value = parent[key]
        if draw(st.integers(min_value=0, max_value=9)) == 0 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(value, str):
            parent[key] = draw(strings)
        elif isinstance(value, bool):
            parent[key] = not value
        elif isinstance(value, int | float):
            parent[key] = draw(st.floats(allow_nan=False) | st.integers())
    return document


class World:
    """The apps of the four functions over one set of in-memory adapters, shared by the examples of a
    test (state accumulates, as in a container)."""

    def __init__(self) -> None:
        self.clock = VirtualClock(NOW)
        self.aws = memory_adapters(self.clock, SETTINGS)
        adapters = self.aws.adapters
        self.apps: dict[Callable[..., Any], Any] = {
            case_changed.handler: build_event_app(CASE_CHANGED, SETTINGS, adapters),
            related_item_created.handler: build_event_app(RELATED_ITEM_CREATED_FN, SETTINGS, adapters),
            sla_timer.handler: build_sla_timer_app(SETTINGS, adapters),
            reconcile.handler: build_reconcile_app(SETTINGS, adapters),
        }


def _check_event_outcome(world: World, result: Any, event: Any) -> None:
    assert isinstance(result, dict)
    assert result["outcome"] in {"handled", "unhandled", "invalid"}
    parked = world.aws.parked()
    try:
        parsed = parse_case_event(event)
    except InvalidCaseEventError as exc:  # invalid: parked as it came, with the parser's reason
        assert result["outcome"] == "invalid"
        assert result["reason"] == exc.reason
        [message] = parked
        assert message["reason"] == exc.reason[:1000]
        assert json.dumps(message["event"], sort_keys=True) == json.dumps(event, sort_keys=True)
        assert message["eventId"] == result["eventId"]
        return
    assert result["outcome"] != "invalid"
    assert parked == []
    assert result["eventId"] == parsed.id
    if result["outcome"] == "handled":
        assert result["caseId"] == parsed.case_id
    else:
        assert result["reason"] and result["getcaseCalls"] == 0


def _run(handler: Callable[..., Any], world: World, event: Any) -> Any:
    return handler(event, LambdaContext("fuzz"), app=world.apps[handler])


@pytest.fixture(scope="module")
def world() -> World:
    return World()


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@given(event=mutated(CASE_SAMPLES))
def test_case_changed_gives_a_typed_outcome_for_near_valid_events(
    world: World, event: dict[str, Any]
) -> None:
    _check_event_outcome(world, _run(case_changed.handler, world, event), event)


@FUZZ
@given(event=mutated(ITEM_SAMPLES))
def test_related_item_created_gives_a_typed_outcome_for_near_valid_events(
    world: World, event: dict[str, Any]
) -> None:
    _check_event_outcome(world, _run(related_item_created.handler, world, event), event)


@FUZZ
@given(event=mutated(CASE_SAMPLES + ITEM_SAMPLES))
def test_either_event_handler_gives_a_typed_outcome_for_the_other_shapes(
    world: World, event: dict[str, Any]
) -> None:
    for handler in (case_changed.handler, related_item_created.handler):
        _check_event_outcome(world, _run(handler, world, event), event)


@FUZZ
@given(payload=mutated([TIMER]))
def test_sla_timer_gives_a_typed_outcome_for_near_valid_payloads(
    world: World, payload: dict[str, Any]
) -> None:
    result = _run(sla_timer.handler, world, payload)
    assert result["outcome"] in {"handled", "invalid"}
    if result["outcome"] == "invalid":
        assert result["reason"].startswith("invalid fields")


@FUZZ
@given(event=mutated([SCHEDULED]))
def test_reconcile_handles_any_scheduled_event(world: World, event: dict[str, Any]) -> None:
    world.clock.advance(60)  # each run a minute later: SLAs of the other examples fall due
    result = _run(reconcile.handler, world, event)
    assert result["outcome"] == "handled" and result["throttled"] is False


@FUZZ
@given(event=same_typed(CASE_SAMPLES + ITEM_SAMPLES))
def test_event_handlers_give_a_typed_outcome_for_same_typed_mutations(
    world: World, event: dict[str, Any]
) -> None:
    detail = event.get("detail")
    kind = detail.get("eventType") if isinstance(detail, dict) else None
    handler = case_changed.handler if str(kind).startswith("CASE.") else related_item_created.handler
    _check_event_outcome(world, _run(handler, world, event), event)
