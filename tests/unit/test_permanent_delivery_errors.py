"""Errors that cannot succeed on retry (issue 12, defect 11), over bootstrap's apps on in-memory adapters
with the real SNS notifier on the fake SNS client (`FakeSns.refuse`): a delivery that failed for good
parks the event with its reason (the sla-timer reports its signal parked) instead of being retried into
the failure queue; a retryable failure still raises; a concurrent duplicate is counted per function."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from casewatch.bootstrap import build_event_app, build_reconcile_app, build_sla_timer_app
from casewatch.domain.sla.model import SlaStatus
from casewatch.errors import DuplicateInProgressError, EnrichedBusError, NotificationPublishError
from casewatch.handlers import case_changed, reconcile, sla_timer
from casewatch.observability import (
    DUPLICATES_IN_PROGRESS,
    EVENTS_HANDLED,
    EVENTS_PARKED,
    FUNCTION_DIMENSION,
    SIGNALS_PARKED,
)
from casewatch.ports import OnceResult
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import CountingMetrics, DictCasesReader
from casewatch_dev.replay import ReplayReport
from tests.apps import LambdaContext, MemoryAws, memory_adapters
from tests.builders import CASE_1, DOMAIN, EVENTS, FIRST, PRIORITY, T0, load_event, repo_settings

TWO_RULES = Settings.from_mapping(
    {
        "domain_id": DOMAIN,
        "notification_rules": [
            {"name": "created", "on": "case_created"},
            {"name": "created-again", "on": "case_created"},
        ],
    }
)
CONTEXT = LambdaContext(CASE_CHANGED.name)


def world(settings: Settings = TWO_RULES) -> tuple[MemoryAws, VirtualClock]:
    clock = VirtualClock(T0 - timedelta(minutes=1))
    reader = DictCasesReader()
    reader.add(CASE_1, {"status": "open", PRIORITY: "high"})
    return memory_adapters(clock, cases=reader), clock


def deliver(
    aws: MemoryAws, settings: Settings = TWO_RULES, raw: dict[str, Any] | None = None
) -> dict[str, Any]:
    """case-created (or `raw`) through the case-changed handler, as Lambda invokes it."""
    app = build_event_app(CASE_CHANGED, settings, aws.adapters)
    result: dict[str, Any] = case_changed.handler(raw or load_event("case-created"), CONTEXT, app=app)
    return result


def counts(aws: MemoryAws) -> Any:
    assert isinstance(aws.adapters.metrics, CountingMetrics)
    return aws.adapters.metrics.counts


def rules_published(aws: MemoryAws) -> list[str]:
    return [json.loads(m["Body"])["rule"]["name"] for m in aws.sns.take()]


def emf(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents the handlers printed (Powertools Metrics)."""
    lines = capsys.readouterr().out.splitlines()
    return [
        doc
        for line in lines
        if line.startswith("{") and isinstance(doc := json.loads(line), dict) and "_aws" in doc
    ]


# -- the event path ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AuthorizationError", "KMSDisabled", "KMSAccessDenied", "NotFound"])
def test_a_permanent_sns_error_parks_the_event_with_the_reason_and_raises_nothing(code: str) -> None:
    aws, _ = world()
    aws.sns.refuse = [code]  # the first notification ("created") is refused for good
    result = deliver(aws)
    assert result["outcome"] == "parked"
    assert f"notification created: SNS Publish failed with {code}" in result["reason"]
    [parked] = aws.parked()
    assert parked["reason"] == result["reason"]
    assert parked["event"] == load_event("case-created")  # the event as it came: a redrive sends it again
    assert (counts(aws)[EVENTS_PARKED], counts(aws)[EVENTS_HANDLED]) == (1, 0)
    # Every other step was done: the other notification and the enriched event.
    assert rules_published(aws) == ["created-again"]
    assert len(aws.events.take()) == 1


def test_the_parked_event_redriven_once_fixed_sends_what_failed_and_nothing_twice() -> None:
    aws, _ = world()
    aws.sns.refuse = ["KMSDisabled"]
    assert deliver(aws)["outcome"] == "parked"
    assert rules_published(aws) == ["created-again"] and len(aws.events.take()) == 1
    [parked] = aws.parked()
    assert deliver(aws, raw=parked["event"])["outcome"] == "handled"  # once fixed, the redrive
    assert rules_published(aws) == ["created"]
    assert aws.events.take() == []
    assert aws.parked() == []


def test_a_throttled_publish_still_raises_for_a_retry() -> None:
    aws, _ = world()
    aws.sns.refuse = ["Throttled"]
    with pytest.raises(NotificationPublishError) as caught:
        deliver(aws)
    assert (caught.value.codes, caught.value.retryable) == (("Throttled",), True)
    assert aws.parked() == []
    assert counts(aws)[EVENTS_PARKED] == 0


@pytest.mark.parametrize(
    "refused", [["AuthorizationError", "Throttled"], ["Throttled", "AuthorizationError"]], ids=["p-r", "r-p"]
)
def test_a_permanent_and_a_retryable_failure_raise_the_retryable_one(refused: list[str]) -> None:
    """Retrying can still deliver one of them: the event is retried (not parked); the retry repeats only
    what failed (the other steps are done), the permanent one included, and lands in the failure queue."""
    aws, _ = world()
    aws.sns.refuse = list(refused)
    with pytest.raises(NotificationPublishError) as caught:
        deliver(aws)
    assert (caught.value.codes, caught.value.retryable) == (("Throttled",), True)
    assert aws.parked() == []
    assert counts(aws)[EVENTS_PARKED] == 0


class RefusingBus:
    """An enriched bus whose PutEvents is refused for good."""

    def put(self, events: Any) -> int:
        raise EnrichedBusError(
            "PutEvents failed with AccessDeniedException", codes=("AccessDeniedException",), retryable=False
        )


def test_every_permanent_failure_is_in_the_reason() -> None:
    aws, _ = world()
    aws.adapters = replace(aws.adapters, bus=RefusingBus())
    aws.sns.refuse = ["KMSDisabled"]
    result = deliver(aws)
    assert result["outcome"] == "parked"
    assert result["reason"].split("; ") == [
        f"notification created: SNS Publish failed with KMSDisabled (rule created, case {CASE_1})",
        "enriched event Case Enriched: PutEvents failed with AccessDeniedException",
    ]


def test_the_replay_report_counts_a_parked_event_as_dead_lettered_not_lost() -> None:
    report = ReplayReport(events=1)
    report.tally({"parked"})
    assert (report.parked, report.dead_lettered, report.lost, report.handled) == (1, 1, 0, 0)
    assert "parked (a delivery failed for good)" in report.render()


# -- the sla-timer: Scheduler would retry for a day ---------------------------------------------------------


def test_a_timer_whose_signal_fails_for_good_returns_parked_and_reconciliation_repairs_it_later(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = repo_settings()
    aws, clock = world(settings)
    assert (
        deliver(aws, settings)["outcome"] == "handled"
    )  # the case (priority high): first response in 30 min
    aws.sns.take()
    payload = json.loads((EVENTS / "scheduler" / "sla-timer-breach.json").read_text())
    clock.set(T0 + timedelta(minutes=31))
    aws.sns.refuse = ["KMSDisabled"]
    capsys.readouterr()
    response = sla_timer.handler(
        payload, LambdaContext("casewatch-sla-timer"), app=build_sla_timer_app(settings, aws.adapters)
    )
    assert response["outcome"] == "parked"
    assert "notification sla-breached: SNS Publish failed with KMSDisabled" in response["reason"]
    [document] = [d for d in emf(capsys) if SIGNALS_PARKED in d]
    assert document[SIGNALS_PARKED] in (1.0, [1.0])
    assert aws.sns.take() == []
    # Nothing was written: the SLA is still Active, due, and reconciliation (the key fixed) breaches it.
    assert aws.adapters.sla_store.load(DOMAIN, CASE_1).slas[FIRST].state.status is SlaStatus.ACTIVE
    repaired = reconcile.handler(
        {"id": "r1", "detail": {}},
        LambdaContext("casewatch-reconcile"),
        app=build_reconcile_app(settings, aws.adapters),
    )
    assert (repaired["repairs"], repaired["caseErrors"]) == (1, 0)
    assert aws.adapters.sla_store.load(DOMAIN, CASE_1).slas[FIRST].state.status is SlaStatus.OVERDUE
    assert rules_published(aws) == ["sla-breached"]


# -- a concurrent duplicate: a benign retry, counted per function --------------------------------------------


class InProgressElsewhere:
    """`ExactlyOnce` whose every key is being run by a concurrent delivery."""

    def run(self, key: str, action: Any) -> OnceResult:
        raise DuplicateInProgressError(f"{key.split(':', 1)[0]} in progress elsewhere")

    def register_lambda_context(self, context: Any) -> None:
        pass


def duplicates_counted(capsys: pytest.CaptureFixture[str], function_name: str) -> None:
    [document] = [d for d in emf(capsys) if DUPLICATES_IN_PROGRESS in d]
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Casewatch"
    assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [[FUNCTION_DIMENSION, "service"]]
    assert (document["service"], document[FUNCTION_DIMENSION]) == ("casewatch", function_name)
    assert document[DUPLICATES_IN_PROGRESS] in (1.0, [1.0])


def test_the_event_handler_counts_a_concurrent_duplicate_for_its_function_and_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws, _ = world()
    aws.adapters = replace(aws.adapters, once=InProgressElsewhere())
    capsys.readouterr()
    with pytest.raises(DuplicateInProgressError):
        deliver(aws)
    duplicates_counted(capsys, CASE_CHANGED.name)
    assert aws.parked() == []


def test_the_sla_timer_counts_a_concurrent_duplicate_for_its_function_and_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = repo_settings()
    aws, clock = world(settings)
    deliver(aws, settings)
    payload = json.loads((EVENTS / "scheduler" / "sla-timer-breach.json").read_text())
    clock.set(T0 + timedelta(minutes=31))
    app = build_sla_timer_app(settings, replace(aws.adapters, once=InProgressElsewhere()))
    capsys.readouterr()
    with pytest.raises(DuplicateInProgressError):
        sla_timer.handler(payload, LambdaContext("Casewatch-SlaTimer-1A2B"), app=app)
    duplicates_counted(capsys, "Casewatch-SlaTimer-1A2B")
