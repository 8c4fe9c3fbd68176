"""The local pipeline routes like the deployed rules (the events of the configured domain only), seeds a
domain from the settings, and runs the feed's schedule as Lambda would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from casewatch.handlers import reconcile as reconcile_handler
from casewatch.settings import load_cdk_context
from casewatch.topology import RECONCILE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.pipeline import LocalPipeline
from tests.builders import ROOT, load_event

OTHER_DOMAIN = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"


def test_the_local_pipeline_routes_the_events_of_its_domain_only() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    pipeline = LocalPipeline(settings)  # routing is built with the pipeline; nothing is started
    assert pipeline.domain_arn == f"arn:aws:cases:us-east-1:123456789012:domain/{settings.domain_id}"
    for name, function in (
        ("case-created", "case-changed"),
        ("related-item-comment", "related-item-created"),
    ):
        event = load_event(name)
        assert [spec.name for spec in pipeline.routes_for(event)] == [function]
        other = json.loads(json.dumps(event).replace(settings.domain_id, OTHER_DOMAIN))
        assert pipeline.routes_for(other) == [], name


def test_a_failing_poll_retries_without_nesting_the_polls_that_fall_due_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda retries a failed asynchronous invocation after 1 and 2 minutes; at a 1-minute period the
    schedule's ticks fall inside those waits. They run after it, each once, not inside its retry (which
    nested one failing poll in another without end)."""
    settings = load_cdk_context(ROOT / "cdk.json").model_copy(update={"reconcile_every_minutes": 1})

    def failing(event: object, context: object, app: object = None) -> object:
        raise RuntimeError("the feed is down")

    monkeypatch.setattr(reconcile_handler, "handler", failing)
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    with LocalPipeline(settings, clock=VirtualClock(start), backend="memory") as pipeline:
        pipeline.advance_to(start + timedelta(minutes=30))
        polls = [i for i in pipeline.invocations if i.function == "reconcile"]
    # Every tick of the 30 minutes ran once, each with Lambda's 3 attempts (at t, t+1, t+3), one after the
    # other: none inside another's retry.
    assert len(polls) == 30
    assert [i.attempts for i in polls] == [3] * 30
    assert {i.outcome for i in polls} == {"failed"}


def test_a_pipeline_without_cases_state_seeds_the_fields_the_settings_read() -> None:
    """A real domain has the custom fields the settings name: the change feed's SearchCases asks for them
    (Cases refuses a field the domain lacks), so every poll of a replay without `state/` would fail."""
    settings = load_cdk_context(ROOT / "cdk.json")
    with LocalPipeline(settings, iam=False, backend="memory") as pipeline:
        fields = pipeline.app(RECONCILE).feed.fields
        assert settings.field_id("priority") in fields
        response = pipeline.emulator.client(in_process=True).list_fields(domainId=settings.domain_id)
        names = {f["fieldId"]: f["name"] for f in response["fields"]}
        assert names[settings.field_id("priority")] == "priority"
        assert pipeline.reconcile().outcome == "handled"
