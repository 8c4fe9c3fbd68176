"""Errors that cannot succeed on retry (issue 12, defect 11, on the claims of issue 13), through the handlers
over bootstrap's apps on in-memory adapters (`tests.apps.World`) with the real SNS notifier on the fake SNS
client (`FakeSns.refuse`): a delivery that failed for good parks the event with its reason (the sla-timer
reports its signal parked) instead of being retried into the failure queue, every other step done and what
failed kept pending in the event's claim (a redrive sends only that); a retryable failure still raises; a
concurrent duplicate (a claim pending under a live lease) is counted per function."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from casewatch.app.process_event import claim_key
from casewatch.app.sla.timer import claim_key as timer_claim_key
from casewatch.domain.case_record import CaseChange, Claim
from casewatch.domain.sla.model import SlaStatus
from casewatch.errors import DuplicateInProgressError, EnrichedBusError, NotificationPublishError
from casewatch.models.events import parse_case_event
from casewatch.models.signals import SlaSignalKind, SlaTimerPayload
from casewatch.observability import (
    DUPLICATES_IN_PROGRESS,
    EVENTS_HANDLED,
    EVENTS_PARKED,
    FUNCTION_DIMENSION,
    SIGNALS_PARKED,
)
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader
from casewatch_dev.replay import ReplayReport
from tests.apps import World
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
LEASE = timedelta(seconds=31)  # the handlers' invocations have 30 s left: a claim's lease is over after this


def world(settings: Settings = TWO_RULES) -> World:
    reader = DictCasesReader()
    reader.add(CASE_1, {"status": "open", PRIORITY: "high"})
    return World(settings, clock=VirtualClock(T0 - timedelta(minutes=1)), cases=reader)


def rules_published(w: World) -> list[str]:
    return [n["rule"] for n in w.notifications()]


def emf(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents the handlers printed (Powertools Metrics)."""
    lines = capsys.readouterr().out.splitlines()
    return [
        doc
        for line in lines
        if line.startswith("{") and isinstance(doc := json.loads(line), dict) and "_aws" in doc
    ]


def pending(w: World, raw: dict[str, Any]) -> tuple[str, ...] | None:
    claim = w.store.load(DOMAIN, CASE_1, claim_key=claim_key(parse_case_event(raw))).claim
    assert claim is not None
    return None if claim.done else claim.outbox.pending


# -- the event path ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AuthorizationError", "KMSDisabled", "KMSAccessDenied", "NotFound"])
def test_a_permanent_sns_error_parks_the_event_with_the_reason_and_raises_nothing(code: str) -> None:
    w = world()
    w.aws.sns.refuse = [code]  # the first notification ("created") is refused for good
    raw = load_event("case-created")
    result = w.deliver(raw)
    assert result["outcome"] == "parked"
    assert f"notification created: SNS Publish failed with {code}" in result["reason"]
    [parked] = w.parked()
    assert parked["reason"] == result["reason"]
    assert parked["event"] == load_event("case-created")  # the event as it came: a redrive sends it again
    assert (w.counts[EVENTS_PARKED], w.counts[EVENTS_HANDLED]) == (1, 0)
    # Every other step was done: the other notification and the enriched event; the case's state written.
    assert rules_published(w) == ["created-again"]
    assert len(w.bus_events()) == 1
    assert w.store.load(DOMAIN, CASE_1).snapshot is not None
    assert len(pending(w, raw) or ()) == 1  # only the refused notification is owed (sent by a redrive)


def test_the_parked_event_redriven_once_fixed_sends_what_failed_and_nothing_twice() -> None:
    w = world()
    w.aws.sns.refuse = ["KMSDisabled"]
    assert w.deliver(load_event("case-created"))["outcome"] == "parked"
    assert rules_published(w) == ["created-again"] and len(w.bus_events()) == 1
    [parked] = w.parked()
    w.clock.advance(LEASE)  # the key fixed, the parked event redriven (after its invocation ended)
    assert w.deliver(parked["event"])["outcome"] == "handled"
    assert rules_published(w) == ["created"]
    assert w.bus_events() == []
    assert w.parked() == []
    assert pending(w, parked["event"]) is None  # the claim is done
    assert w.deliver(parked["event"])["outcome"] == "handled"  # redriven twice: a duplicate
    assert rules_published(w) == [] and w.bus_events() == []


def test_a_parked_event_redriven_within_its_invocation_is_a_concurrent_duplicate() -> None:
    """Its claim is still leased to the invocation that parked it: a redrive that early is retried."""
    w = world()
    w.aws.sns.refuse = ["KMSDisabled"]
    w.deliver(load_event("case-created"))
    [parked] = w.parked()
    w.clock.advance(LEASE - timedelta(seconds=2))
    with pytest.raises(DuplicateInProgressError):
        w.deliver(parked["event"])
    assert rules_published(w) == ["created-again"]


def test_a_throttled_publish_still_raises_for_a_retry() -> None:
    w = world()
    w.aws.sns.refuse = ["Throttled"]
    with pytest.raises(NotificationPublishError) as caught:
        w.deliver(load_event("case-created"))
    assert (caught.value.codes, caught.value.retryable) == (("Throttled",), True)
    assert w.parked() == []
    assert w.counts[EVENTS_PARKED] == 0
    w.clock.advance(LEASE)  # Lambda's retry: only the throttled notification
    assert w.deliver(load_event("case-created"))["outcome"] == "handled"
    assert sorted(rules_published(w)) == ["created", "created-again"]  # each once in all
    assert len(w.bus_events()) == 1


@pytest.mark.parametrize(
    "refused", [["AuthorizationError", "Throttled"], ["Throttled", "AuthorizationError"]], ids=["p-r", "r-p"]
)
def test_a_permanent_and_a_retryable_failure_raise_the_retryable_one(refused: list[str]) -> None:
    """Retrying can still deliver one of them: the event is retried (not parked); the retry repeats only
    what failed (the other steps are done), the permanent one included, and lands in the failure queue."""
    w = world()
    w.aws.sns.refuse = list(refused)
    raw = load_event("case-created")
    with pytest.raises(NotificationPublishError) as caught:
        w.deliver(raw)
    assert (caught.value.codes, caught.value.retryable) == (("Throttled",), True)
    assert w.parked() == []
    assert w.counts[EVENTS_PARKED] == 0
    assert len(pending(w, raw) or ()) == 2  # both notifications are owed to the retry
    assert len(w.bus_events()) == 1  # the enriched event went out


class RefusingBus:
    """An enriched bus whose PutEvents is refused for good."""

    def put(self, events: Any) -> int:
        raise EnrichedBusError(
            "PutEvents failed with AccessDeniedException", codes=("AccessDeniedException",), retryable=False
        )


def test_every_permanent_failure_is_in_the_reason() -> None:
    w = world()
    w.adapters = replace(w.adapters, bus=RefusingBus())  # type: ignore[arg-type]
    w.aws.sns.refuse = ["KMSDisabled"]
    result = w.deliver(load_event("case-created"))
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


# -- the sla-timer: Scheduler would retry for a day; it has no dead-letter queue -------------------------------

BREACH = SlaTimerPayload.model_validate_json((EVENTS / "scheduler" / "sla-timer-breach.json").read_text())


def breach_refused_for_good(capsys: pytest.CaptureFixture[str]) -> tuple[World, dict[str, Any]]:
    """The case (priority high: first response in 30 min) handled; at the breach timer (the target and the
    grace, the change feed past the target) the breach notification is refused for good (the topic's key)."""
    settings = repo_settings()
    w = world(settings)
    assert w.deliver(load_event("case-created"))["outcome"] == "handled"
    w.notifications(), w.bus_events()
    w.clock.set(BREACH.target_time + settings.breach_grace)
    w.catch_up()
    w.aws.sns.refuse = ["KMSDisabled"]
    capsys.readouterr()
    return w, w.fire(BREACH)


def test_a_timer_whose_signal_fails_for_good_returns_parked_and_counts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    w, response = breach_refused_for_good(capsys)
    assert response["outcome"] == "parked"
    assert "notification sla-breached: SNS Publish failed with KMSDisabled" in response["reason"]
    [document] = [d for d in emf(capsys) if SIGNALS_PARKED in d]
    assert document[SIGNALS_PARKED] in (1.0, [1.0])
    assert w.parked() == []  # the sla-timer has no dead-letter queue: the log and the metric say it
    assert w.notifications() == []
    assert w.signals() == [("first-response-high", SlaSignalKind.BREACHED)]  # the bus event went out
    # The breach is written (before the sends): the SLA is Overdue; its notification stays pending in the
    # timer's claim.
    assert w.state(CASE_1, FIRST).status is SlaStatus.OVERDUE
    claim = w.store.load(DOMAIN, CASE_1, claim_key=timer_claim_key(BREACH)).claim
    assert claim is not None and not claim.done
    assert [s.kind for s in claim.outbox.signals] == [SlaSignalKind.BREACHED]
    assert len(claim.outbox.pending or ()) == 1


def test_the_parked_breach_notification_is_sent_by_the_change_feed_once_the_cause_is_fixed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The timer's claim is owed to the change feed: each poll sends what it holds pending again, and keeps
    it owed while the cause lasts (counted); once fixed, the next poll sends it, once, and settles it. A
    later firing of the same timer (Scheduler's retry, a redrive) then sends nothing."""
    w, _ = breach_refused_for_good(capsys)
    w.aws.sns.refuse = ["KMSDisabled", "KMSDisabled"]  # the key stays disabled for two more polls
    for _ in range(2):
        w.clock.advance(timedelta(minutes=1))
        assert w.poll()["recovered"] == 0
        assert rules_published(w) == []
    assert w.store.owed(DOMAIN) == [(CASE_1, timer_claim_key(BREACH))]
    w.clock.advance(timedelta(minutes=1))  # the key enabled again
    assert w.poll()["recovered"] == 1
    assert rules_published(w) == ["sla-breached"]
    assert w.store.owed(DOMAIN) == []
    w.clock.advance(timedelta(minutes=1))
    assert w.poll()["recovered"] == 0
    assert w.fire(BREACH)["outcome"] == "handled"
    assert rules_published(w) == []  # once


def test_the_parked_breach_notification_is_sent_once_the_cause_is_fixed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    w, _ = breach_refused_for_good(capsys)
    for _ in range(3):
        w.clock.advance(timedelta(minutes=1))
        w.poll()
    assert rules_published(w) == ["sla-breached"]


# -- a concurrent duplicate: a benign retry, counted per function --------------------------------------------


def duplicates_counted(capsys: pytest.CaptureFixture[str], function_name: str) -> None:
    [document] = [d for d in emf(capsys) if DUPLICATES_IN_PROGRESS in d]
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Casewatch"
    assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [[FUNCTION_DIMENSION, "service"]]
    assert (document["service"], document[FUNCTION_DIMENSION]) == ("casewatch", function_name)
    assert document[DUPLICATES_IN_PROGRESS] in (1.0, [1.0])


def claimed_elsewhere(w: World, key: str) -> None:
    """Another invocation holds the claim of `key` (written, its sends not done) for 15 more minutes."""
    now = w.clock.now()
    record = w.store.load(DOMAIN, CASE_1, claim_key=key)
    w.store.commit(record, CaseChange(key, Claim(now, done=False, lease_until=now + timedelta(minutes=15))))


def test_the_event_handler_counts_a_concurrent_duplicate_for_its_function_and_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    w = world()
    raw = load_event("case-created")
    claimed_elsewhere(w, claim_key(parse_case_event(raw)))
    capsys.readouterr()
    with pytest.raises(DuplicateInProgressError):
        w.deliver(raw)
    duplicates_counted(capsys, CASE_CHANGED.name)
    assert w.parked() == [] and w.notifications() == []


def test_the_sla_timer_counts_a_concurrent_duplicate_for_its_function_and_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = repo_settings()
    w = world(settings)
    w.deliver(load_event("case-created"))
    w.clock.set(BREACH.target_time + settings.breach_grace)
    w.catch_up()
    claimed_elsewhere(w, timer_claim_key(BREACH))
    capsys.readouterr()
    with pytest.raises(DuplicateInProgressError):
        w.fire(BREACH)
    duplicates_counted(capsys, "casewatch-sla-timer")
    assert w.state(CASE_1, FIRST).status is SlaStatus.ACTIVE
