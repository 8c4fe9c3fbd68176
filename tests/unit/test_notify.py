"""`Notifications` (app.notify) over fakes of its ports: exactly once, replays, status order, partial
failures. What it did is observed through the ports: what the notifier and the bus got, and the counts
it recorded on the metrics port."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from casewatch.app.notify import Notifications

from casewatch.domain.notifications.bus import BusEvent
from casewatch.domain.notifications.render import Notification
from casewatch.domain.notifications.rules import evaluate_case_event
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignalKind
from casewatch.observability import (
    BUS_EVENTS_DUPLICATE,
    BUS_EVENTS_PUT,
    NOTIFICATIONS_DUPLICATE,
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_STALE,
    REPLAYS_SKIPPED,
)
from casewatch.ports import OnceResult
from casewatch.settings import Settings
from casewatch_dev.fakes.ports import CountingMetrics, InMemoryStatusOrder
from tests.builders import DOMAIN, ROOT, load_event, sla_signal

COUNTED = (
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_DUPLICATE,
    NOTIFICATIONS_STALE,
    REPLAYS_SKIPPED,
    BUS_EVENTS_PUT,
    BUS_EVENTS_DUPLICATE,
)


class InProgressError(Exception):
    """Stands in for Powertools' IdempotencyAlreadyInProgressError."""


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.fail_rules: set[str] = set()

    def publish(self, notification: Notification) -> str:
        if notification.rule in self.fail_rules:
            raise RuntimeError("sns down")
        self.sent.append(notification)
        return f"m-{len(self.sent)}"


class FakeBus:
    def __init__(self) -> None:
        self.events: list[BusEvent] = []
        self.fail = False

    def put(self, events: Sequence[BusEvent]) -> int:
        if self.fail:
            raise RuntimeError("bus down")
        self.events.extend(events)
        return len(events)


class FakeOnce:
    """`ExactlyOnce` in memory, with a hand on the in-progress records (a concurrent duplicate)."""

    def __init__(self) -> None:
        self.done: dict[str, dict[str, Any]] = {}
        self.in_progress: set[str] = set()

    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> OnceResult:
        if key in self.in_progress:
            raise InProgressError(key)
        if key in self.done:
            return OnceResult(self.done[key], executed=False)
        self.in_progress.add(key)
        try:
            result = action()
        finally:
            self.in_progress.discard(key)
        self.done[key] = result
        return OnceResult(result, executed=True)

    def register_lambda_context(self, context: Any) -> None:  # pragma: no cover - the handlers' business
        raise AssertionError("Notifications never registers a context")


class Sink:
    """Notifications over the fakes, and the fakes to look at."""

    def __init__(self, *rules: dict[str, Any], **extra: Any) -> None:
        self.settings = Settings.from_mapping(
            {"domain_id": DOMAIN, "notification_rules": list(rules), **extra}
        )
        self.notifier, self.bus, self.once = FakeNotifier(), FakeBus(), FakeOnce()
        self.metrics = CountingMetrics()
        self.notifications = Notifications(
            self.settings,
            notifier=self.notifier,
            bus=self.bus,
            once=self.once,
            metrics=self.metrics,
            status_order=InMemoryStatusOrder(),
        )
        self.on_case_event = self.notifications.on_case_event
        self.on_sla_signal = self.notifications.on_sla_signal

    def counts(self) -> dict[str, int]:
        return {name: self.metrics.counts[name] for name in COUNTED}


def counted(**counts: int) -> dict[str, int]:
    """Expected counts: every counted metric, zero unless given (by metric name)."""
    return {name: counts.get(name, 0) for name in COUNTED}


def event(name: str, **changes: Any) -> CaseEvent:
    raw = copy.deepcopy(load_event(name))
    for key in ("id", "replay-name"):
        if key in changes:
            raw[key] = changes.pop(key)
    if "at" in changes:
        raw["detail"]["approximateChangeTime"] = changes.pop("at")
    for fid, value in changes.pop("fields", {}).items():
        raw["detail"]["case"]["fields"][fid] = {"value": FieldValue.of(value).to_wire()}
    assert not changes
    return parse_case_event(raw)


RULES = (
    {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
    {"name": "updated", "on": "case_updated"},
)


def test_n_deliveries_publish_once_per_rule_and_the_bus_once() -> None:
    sink = Sink(*RULES)
    evt = event("case-updated")
    for _ in range(5):
        sink.on_case_event(evt, None)
    assert [n.rule for n in sink.notifier.sent] == ["assigned", "updated"]
    assert [e.detail_type for e in sink.bus.events] == ["Case Enriched"]
    assert sink.counts() == counted(
        NotificationsPublished=2,
        NotificationsDuplicateSuppressed=8,
        EnrichedEventsPut=1,
        EnrichedEventsDuplicateSuppressed=4,
    )
    # the first run's result (with SNS's message id) is what the guard keeps for the repeats
    kept = [sink.once.done[f"notify:{n.notification_id}"] for n in sink.notifier.sent]
    assert kept == [
        {"outcome": "published", "messageId": "m-1"},
        {"outcome": "published", "messageId": "m-2"},
    ]


def test_a_concurrent_duplicate_raises_and_sends_nothing() -> None:
    sink = Sink(*RULES)
    evt = event("case-updated")
    first, _ = evaluate_case_event(evt, None, sink.settings)
    sink.once.in_progress.add(f"notify:{first.notification_id}")
    with pytest.raises(InProgressError):
        sink.on_case_event(evt, None)
    assert [n.rule for n in sink.notifier.sent] == ["updated"]  # the other rule still went out
    assert len(sink.bus.events) == 1  # and the bus step
    sink.once.in_progress.clear()
    sink.on_case_event(evt, None)  # the retry
    assert sorted(n.rule for n in sink.notifier.sent) == ["assigned", "updated"]
    assert sink.counts() == counted(
        NotificationsPublished=2,
        NotificationsDuplicateSuppressed=1,
        EnrichedEventsPut=1,
        EnrichedEventsDuplicateSuppressed=1,
    )


def test_a_failure_is_raised_after_the_other_steps_and_retried_alone() -> None:
    sink = Sink(*RULES)
    sink.notifier.fail_rules = {"assigned"}
    evt = event("case-updated")
    with pytest.raises(RuntimeError, match="sns down"):
        sink.on_case_event(evt, None)
    assert [n.rule for n in sink.notifier.sent] == ["updated"]
    assert len(sink.bus.events) == 1
    assert sink.metrics.counts[NOTIFICATIONS_PUBLISHED] == 1  # a failure is not counted as sent
    sink.notifier.fail_rules = set()
    sink.on_case_event(evt, None)
    assert [n.rule for n in sink.notifier.sent] == ["updated", "assigned"]
    assert len(sink.bus.events) == 1


def test_a_bus_failure_is_raised_and_retried() -> None:
    sink = Sink(*RULES)
    sink.bus.fail = True
    evt = event("case-updated")
    with pytest.raises(RuntimeError, match="bus down"):
        sink.on_case_event(evt, None)
    assert len(sink.notifier.sent) == 2  # the notifications went out first
    assert sink.metrics.counts[BUS_EVENTS_PUT] == 0
    sink.bus.fail = False
    sink.on_case_event(evt, None)
    assert len(sink.notifier.sent) == 2 and len(sink.bus.events) == 1


@pytest.mark.parametrize(("policy", "replay_notifies"), [("process", True), ("skip", False)])
def test_replays(policy: str, replay_notifies: bool) -> None:
    sink = Sink(*RULES, replays=policy)
    original, replay = event("case-updated"), event("case-updated-replayed")
    sink.on_case_event(original, None)
    sink.on_case_event(replay, None)
    sink.on_case_event(replay, None)
    replayed = [n for n in sink.notifier.sent if n.replay_name]
    assert len(replayed) == (2 if replay_notifies else 0)
    assert all(n.attributes["replay"] == "true" for n in replayed)
    assert sink.metrics.counts[REPLAYS_SKIPPED] == (0 if replay_notifies else 2)
    # the bus always gets the replay, once, marked
    assert [e.detail["event"]["replayName"] for e in sink.bus.events] == [None, "casewatch-replay-2026-11-24"]


def test_a_replay_of_the_same_event_id_is_not_suppressed_by_the_original() -> None:
    sink = Sink(*RULES)
    original = event("case-updated")
    replay = event("case-updated", **{"replay-name": "rehearsal"})
    sink.on_case_event(original, None)
    sink.on_case_event(replay, None)
    assert len(sink.notifier.sent) == 4
    assert sink.metrics.counts[NOTIFICATIONS_DUPLICATE] == 0


STATUS_RULES = (
    {"name": "closed", "on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
    {"name": "reopened", "on": "field_changed", "fields": ["status"], "to_values": ["open"]},
    {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
)
T1 = "2026-11-23T09:10:00.000Z"
T2 = "2026-11-23T09:20:00.000Z"


def test_closed_is_not_followed_by_a_stale_open() -> None:
    sink = Sink(*STATUS_RULES)
    closed = event("case-updated", id="e-closed", at=T2, fields={"status": "closed"})
    stale_open = event("case-updated", id="e-open", at=T1, fields={"status": "open"})
    sink.on_case_event(closed, None)
    sink.on_case_event(stale_open, None)
    assert [(n.rule, n.source_id) for n in sink.notifier.sent] == [
        ("closed", "e-closed"),
        ("assigned", "e-closed"),
        ("assigned", "e-open"),  # not a status notification: sent, saying "as of T1"
    ]
    assert sink.notifier.sent[-1].payload["asOf"] == T1
    assert sink.metrics.counts[NOTIFICATIONS_STALE] == 1
    sink.on_case_event(stale_open, None)  # a repeat stays suppressed
    assert len(sink.notifier.sent) == 3
    assert sink.metrics.counts[NOTIFICATIONS_STALE] == 1  # the guard answers the repeat: a duplicate now
    assert sink.metrics.counts[NOTIFICATIONS_DUPLICATE] == 2


def test_reopened_is_not_followed_by_a_stale_closed_but_in_order_both_go() -> None:
    sink = Sink(*STATUS_RULES[:2])
    closed = event("case-updated", id="e-closed", at=T1, fields={"status": "closed"})
    reopened = event("case-updated", id="e-open", at=T2, fields={"status": "open"})
    sink.on_case_event(reopened, None)
    sink.on_case_event(closed, None)
    assert [n.rule for n in sink.notifier.sent] == ["reopened"]
    in_order = Sink(*STATUS_RULES[:2])
    in_order.on_case_event(closed, None)
    in_order.on_case_event(reopened, None)
    assert [n.rule for n in in_order.notifier.sent] == ["closed", "reopened"]


def test_a_status_change_at_the_same_millisecond_is_not_stale() -> None:
    """The edge of the order: a different status at exactly the stored time still goes out."""
    sink = Sink(*STATUS_RULES[:2])
    sink.on_case_event(event("case-updated", id="a", at=T1, fields={"status": "closed"}), None)
    sink.on_case_event(event("case-updated", id="b", at=T1, fields={"status": "open"}), None)
    assert [n.rule for n in sink.notifier.sent] == ["closed", "reopened"]
    assert sink.metrics.counts[NOTIFICATIONS_STALE] == 0


def test_an_older_notification_of_the_same_status_is_not_suppressed() -> None:
    sink = Sink(STATUS_RULES[0])
    sink.on_case_event(event("case-updated", id="late", at=T2, fields={"status": "closed"}), None)
    sink.on_case_event(event("case-updated", id="early", at=T1, fields={"status": "closed"}), None)
    assert len(sink.notifier.sent) == 2 and sink.metrics.counts[NOTIFICATIONS_STALE] == 0


def test_replays_have_their_own_status_order() -> None:
    sink = Sink(*STATUS_RULES[:2])
    sink.on_case_event(event("case-updated", id="live", at=T2, fields={"status": "closed"}), None)
    replay_open = event("case-updated", id="old", at=T1, fields={"status": "open"}, **{"replay-name": "r1"})
    sink.on_case_event(replay_open, None)
    assert [n.rule for n in sink.notifier.sent] == ["closed", "reopened"]


def test_an_unhandled_event_notifies_nothing_and_counts_nothing() -> None:
    """The event processor counts unhandled events and keeps them from the sinks (test_handlers); one
    that reaches the notifications anyway sends nothing."""
    sink = Sink({"name": "any", "on": "related_item_added"})
    sink.on_case_event(event("related-item-updated-unhandled"), None)
    assert sink.notifier.sent == [] and sink.bus.events == []
    assert sink.counts() == counted()


def test_sla_signals_notify_once_and_reach_the_bus() -> None:
    sink = Sink({"name": "breached", "on": "sla_breached"})
    signal = sla_signal(SlaSignalKind.BREACHED, case_id="c1", name="first-response")
    for _ in range(3):
        sink.on_sla_signal(signal, None)
    sink.on_sla_signal(signal.model_copy(update={"kind": SlaSignalKind.AT_RISK}), None)
    assert [n.rule for n in sink.notifier.sent] == ["breached"]
    assert [e.detail_type for e in sink.bus.events] == ["Sla Breached", "Sla At Risk"]
    assert sink.counts() == counted(
        NotificationsPublished=1,
        NotificationsDuplicateSuppressed=2,
        EnrichedEventsPut=2,
        EnrichedEventsDuplicateSuppressed=2,
    )


def test_a_policy_and_a_cases_sla_of_one_name_both_notify() -> None:
    sink = Sink({"name": "breached", "on": "sla_breached"})
    policy = sla_signal(SlaSignalKind.BREACHED, name="Resolve", key="policy#Resolve")
    cases = policy.model_copy(update={"sla_key": "cases#9f8e7d6c", "origin": "cases"})
    for signal in (policy, cases, policy, cases):
        sink.on_sla_signal(signal, None)
    assert [n.attributes["slaName"] for n in sink.notifier.sent] == ["Resolve", "Resolve"]
    assert len({n.notification_id for n in sink.notifier.sent}) == 2
    assert len(sink.bus.events) == 2


def test_signals_are_not_status_notifications() -> None:
    """A signal bears no status change: the status order is not asked, however old the signal."""
    sink = Sink(*STATUS_RULES[:1], {"name": "breached", "on": "sla_breached"})
    sink.on_case_event(event("case-updated", id="new", at=T2, fields={"status": "closed"}), None)
    old = sla_signal(SlaSignalKind.BREACHED, target=event("case-updated").change_time - timedelta(hours=1))
    sink.on_sla_signal(old, None)
    assert [n.rule for n in sink.notifier.sent] == ["closed", "breached"]


def test_logs_carry_no_field_values(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(*RULES, {"name": "c", "on": "comment_added"})
    caplog.set_level("DEBUG")
    for name in ("case-updated", "related-item-comment", "related-item-updated-unhandled"):
        sink.on_case_event(event(name), None)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    for value in ("Refund not received", "pending-customer", "refund was issued", "queue/9e8d7c6b"):
        assert value not in text


def test_the_handlers_and_the_idempotency_adapter_import_no_powertools_idempotency() -> None:
    """Cold start: Powertools Idempotency and boto3 load on first use, not when a handler is imported."""
    code = (
        "import sys\n"
        "from casewatch.adapters.idempotency import PowertoolsIdempotency\n"
        "from casewatch.app.notify import Notifications\n"
        "from casewatch.handlers import case_changed, reconcile, related_item_created, sla_timer\n"
        "PowertoolsIdempotency('casewatch-idempotency')\n"
        "loaded = [m for m in sys.modules if m.startswith('aws_lambda_powertools.utilities.idempotency')]\n"
        "assert not loaded, loaded\n"
        "assert 'boto3' not in sys.modules\n"
        "assert 'casewatch.bootstrap' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "functions")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_container_keeps_nothing_per_notification() -> None:
    """Delivery only: nothing grows with what a container sent (the old sink kept every message for a
    local report, for the container's life). Allocations made in app/notify.py and still held after
    250 more deliveries: none beyond what 20 left (a list of 250 references would hold 2 KB)."""
    import gc
    import tracemalloc

    class ForgetfulOnce(FakeOnce):
        def run(self, key: str, action: Callable[[], dict[str, Any]]) -> OnceResult:
            return OnceResult(action(), executed=True)  # the guard's records are AWS's, not the container's

    sink = Sink({"name": "updated", "on": "case_updated"})
    sink.notifications.once = ForgetfulOnce()
    sink.notifications.status_order = None
    events = [event("case-updated", id=f"e-{n}") for n in range(270)]

    def held(deliveries: list[CaseEvent]) -> int:
        for evt in deliveries:
            sink.on_case_event(evt, None)
        sink.notifier.sent.clear()
        sink.bus.events.clear()
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, "*/casewatch/app/notify.py")]
        )
        return sum(stat.size for stat in snapshot.statistics("filename"))

    tracemalloc.start()
    try:
        after_20 = held(events[:20])
        after_270 = held(events[20:])
    finally:
        tracemalloc.stop()
    assert sink.metrics.counts[NOTIFICATIONS_PUBLISHED] == 270  # it did deliver them all
    assert after_270 - after_20 < 1_024
