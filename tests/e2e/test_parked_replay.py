"""A delivery that failed for good, through the local pipeline (issue 12, defect 11): the replay report
counts the event `parked`, dead-lettered with its reason on the invalid-events queue, not lost."""

from __future__ import annotations

from datetime import timedelta

from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.clients import FakeSns
from casewatch_dev.pipeline import LocalPipeline
from casewatch_dev.replay import ReplayOptions, load_events, replay
from tests.builders import EVENTS, T0, repo_settings


def test_a_permanently_refused_notification_is_parked_and_reported_not_lost() -> None:
    raws = load_events([str(EVENTS / "case-created.json"), str(EVENTS / "case-updated.json")])
    with LocalPipeline(
        repo_settings(), clock=VirtualClock(T0 - timedelta(minutes=1)), backend="memory"
    ) as pipeline:
        sns = pipeline.backend.sns
        assert isinstance(sns, FakeSns)
        sns.refuse = ["KMSDisabled"]  # the created event's one notification: the topic's key is disabled
        report = replay(raws, pipeline, ReplayOptions(backend="memory"))
        pipeline.effects()
        [dead_letter] = pipeline.observed.dead_letters
    assert (report.parked, report.handled, report.dead_lettered, report.lost) == (1, 1, 1, 0)
    assert "parked (a delivery failed for good)" in report.render()
    assert "SNS Publish failed with KMSDisabled" in str(dead_letter)
