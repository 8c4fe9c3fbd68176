"""The local pipeline routes like the deployed rules (the events of the configured domain only), seeds a
domain from the settings, and runs the feed's schedule as Lambda would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from casewatch.handlers import reconcile as reconcile_handler
from casewatch.settings import load_cdk_context
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


def test_a_pipeline_without_a_cases_state_has_the_fields_its_settings_name_and_polls_the_feed() -> None:
    """With no archive state the domain is seeded from the settings: the feed's searches name the fields
    the policies read (a custom field among them), so a bare domain would refuse every poll."""
    settings = load_cdk_context(ROOT / "cdk.json")
    assert settings.field_names  # cdk.json names a custom field (priority)
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    with LocalPipeline(settings, clock=VirtualClock(start), backend="memory") as pipeline:
        pipeline.advance_to(start + timedelta(minutes=10 * settings.reconcile_every_minutes))
        polls = [i for i in pipeline.invocations if i.function == "reconcile"]
    assert len(polls) == 10
    assert {i.outcome for i in polls} == {"handled"}, {i.reason for i in polls}


def test_a_failing_poll_retries_without_nesting_the_polls_that_fall_due_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda retries a failed asynchronous invocation after 1 and 2 minutes; at a 1-minute period the
    schedule's ticks fall inside those waits. They are skipped and counted, not run inside the retry
    (which nested one failing poll in another without end)."""
    settings = load_cdk_context(ROOT / "cdk.json").model_copy(update={"reconcile_every_minutes": 1})

    def failing(event: object, context: object, app: object = None) -> object:
        raise RuntimeError("the feed is down")

    monkeypatch.setattr(reconcile_handler, "handler", failing)
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    with LocalPipeline(settings, clock=VirtualClock(start), backend="memory") as pipeline:
        pipeline.advance_to(start + timedelta(minutes=30))
        polls = [i for i in pipeline.invocations if i.function == "reconcile"]
        skipped = pipeline.counts["reconcile_skipped"]
    # Each poll makes 3 attempts over 3 minutes (at t, t+1, t+3): polls start at minutes 1, 5, ... 29,
    # and the three ticks inside each one's retries (t+1, t+2, t+3) are skipped.
    assert [i.attempts for i in polls] == [3] * len(polls)
    assert {i.outcome for i in polls} == {"failed"}
    assert len(polls) == 8 and skipped == 24
