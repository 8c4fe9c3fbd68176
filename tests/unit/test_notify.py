"""NotificationSink with fakes of its ports: exactly once, replays, ordering, partial failures, counters."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from casewatch.domain.notifications import BusEvent, Notification, evaluate_case_event
from casewatch.models import parse_case_event
from casewatch.models.events import CaseEvent
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignal, SlaSignalKind
from casewatch.notification_service import NotificationSink
from casewatch.settings import Settings
from tests.conftest import ROOT, load_event

DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"


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
    """In-memory idempotency with the same contract as PowertoolsIdempotency."""

    def __init__(self) -> None:
        self.done: dict[str, dict[str, Any]] = {}
        self.in_progress: set[str] = set()
        self.context: Any = None

    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        if key in self.in_progress:
            raise InProgressError(key)
        if key in self.done:
            return self.done[key], False
        self.in_progress.add(key)
        try:
            result = action()
        finally:
            self.in_progress.discard(key)
        self.done[key] = result
        return result, True

    def register_lambda_context(self, context: Any) -> None:
        self.context = context


class FakeStatusOrder:
    """Same semantics as DynamoDbStatusOrder."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str | None], tuple[datetime, str]] = {}

    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        key = (case_id, replay_name)
        stored = self.latest.get(key)
        if stored is None or stored[0] <= changed_at:
            self.latest[key] = (changed_at, status)
            return True
        return stored[1] == status


def make_sink(
    *rules: dict[str, Any], **extra: Any
) -> tuple[NotificationSink, FakeNotifier, FakeBus, FakeOnce]:
    settings = Settings.from_mapping({"domain_id": DOMAIN, "notification_rules": list(rules), **extra})
    notifier, bus, once = FakeNotifier(), FakeBus(), FakeOnce()
    sink = NotificationSink(settings, notifier=notifier, bus=bus, once=once, status_order=FakeStatusOrder())
    return sink, notifier, bus, once


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
    sink, notifier, bus, _ = make_sink(*RULES)
    evt = event("case-updated")
    for _ in range(5):
        sink.on_case_event(evt, None)
    assert [n.rule for n in notifier.sent] == ["assigned", "updated"]
    assert [e.detail_type for e in bus.events] == ["Case Enriched"]
    assert sink.duplicates_suppressed == 8
    assert sink.bus_duplicates_suppressed == 4
    assert sink.report() == {
        "notifications": 2,
        "notifications_by_rule": {"assigned": 1, "updated": 1},
        "bus_events": {"Case Enriched": 1},
        "duplicates_suppressed": 8,
        "bus_duplicates_suppressed": 4,
        "stale_suppressed": 0,
        "replays_skipped": 0,
        "unhandled_events": 0,
    }
    assert [s.message_id for s in sink.sent] == ["m-1", "m-2"]


def test_a_concurrent_duplicate_raises_and_sends_nothing() -> None:
    sink, notifier, _, once = make_sink(*RULES)
    evt = event("case-updated")
    first, _ = evaluate_case_event(evt, None, sink.settings)
    once.in_progress.add(f"notify:{first.notification_id}")
    with pytest.raises(InProgressError):
        sink.on_case_event(evt, None)
    assert [n.rule for n in notifier.sent] == ["updated"]  # the other rule still went out
    once.in_progress.clear()
    sink.on_case_event(evt, None)  # the retry
    assert sorted(n.rule for n in notifier.sent) == ["assigned", "updated"]


def test_a_failure_is_raised_after_the_other_steps_and_retried_alone() -> None:
    sink, notifier, bus, _ = make_sink(*RULES)
    notifier.fail_rules = {"assigned"}
    evt = event("case-updated")
    with pytest.raises(RuntimeError, match="sns down"):
        sink.on_case_event(evt, None)
    assert [n.rule for n in notifier.sent] == ["updated"]
    assert len(bus.events) == 1
    notifier.fail_rules = set()
    sink.on_case_event(evt, None)
    assert [n.rule for n in notifier.sent] == ["updated", "assigned"]
    assert len(bus.events) == 1


def test_a_bus_failure_is_raised_and_retried() -> None:
    sink, notifier, bus, _ = make_sink(*RULES)
    bus.fail = True
    evt = event("case-updated")
    with pytest.raises(RuntimeError, match="bus down"):
        sink.on_case_event(evt, None)
    bus.fail = False
    sink.on_case_event(evt, None)
    assert len(notifier.sent) == 2 and len(bus.events) == 1


@pytest.mark.parametrize(("policy", "replay_notifies"), [("process", True), ("skip", False)])
def test_replays(policy: str, replay_notifies: bool) -> None:
    sink, notifier, bus, _ = make_sink(*RULES, replays=policy)
    original, replay = event("case-updated"), event("case-updated-replayed")
    sink.on_case_event(original, None)
    sink.on_case_event(replay, None)
    sink.on_case_event(replay, None)
    replayed = [n for n in notifier.sent if n.replay_name]
    assert len(replayed) == (2 if replay_notifies else 0)
    assert all(n.attributes["replay"] == "true" for n in replayed)
    assert sink.replays_skipped == (0 if replay_notifies else 2)
    # the bus always gets the replay, once, marked
    assert [e.detail["event"]["replayName"] for e in bus.events] == [None, "casewatch-replay-2026-11-24"]


def test_a_replay_of_the_same_event_id_is_not_suppressed_by_the_original() -> None:
    sink, notifier, _, _ = make_sink(*RULES)
    original = event("case-updated")
    replay = event("case-updated", **{"replay-name": "rehearsal"})
    sink.on_case_event(original, None)
    sink.on_case_event(replay, None)
    assert len(notifier.sent) == 4
    assert sink.duplicates_suppressed == 0


STATUS_RULES = (
    {"name": "closed", "on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
    {"name": "reopened", "on": "field_changed", "fields": ["status"], "to_values": ["open"]},
    {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
)
T1 = "2026-11-23T09:10:00.000Z"
T2 = "2026-11-23T09:20:00.000Z"


def test_closed_is_not_followed_by_a_stale_open() -> None:
    sink, notifier, _, _ = make_sink(*STATUS_RULES)
    closed = event("case-updated", id="e-closed", at=T2, fields={"status": "closed"})
    stale_open = event("case-updated", id="e-open", at=T1, fields={"status": "open"})
    sink.on_case_event(closed, None)
    sink.on_case_event(stale_open, None)
    assert [(n.rule, n.source_id) for n in notifier.sent] == [
        ("closed", "e-closed"),
        ("assigned", "e-closed"),
        ("assigned", "e-open"),  # not a status notification: sent, saying "as of T1"
    ]
    assert notifier.sent[-1].payload["asOf"] == T1
    assert sink.stale_suppressed == 1
    sink.on_case_event(stale_open, None)  # a repeat stays suppressed
    assert len(notifier.sent) == 3


def test_reopened_is_not_followed_by_a_stale_closed_but_in_order_both_go() -> None:
    sink, notifier, _, _ = make_sink(*STATUS_RULES[:2])
    closed = event("case-updated", id="e-closed", at=T1, fields={"status": "closed"})
    reopened = event("case-updated", id="e-open", at=T2, fields={"status": "open"})
    sink.on_case_event(reopened, None)
    sink.on_case_event(closed, None)
    assert [n.rule for n in notifier.sent] == ["reopened"]
    sink2, notifier2, _, _ = make_sink(*STATUS_RULES[:2])
    sink2.on_case_event(closed, None)
    sink2.on_case_event(reopened, None)
    assert [n.rule for n in notifier2.sent] == ["closed", "reopened"]


def test_an_older_notification_of_the_same_status_is_not_suppressed() -> None:
    sink, notifier, _, _ = make_sink(STATUS_RULES[0])
    sink.on_case_event(event("case-updated", id="late", at=T2, fields={"status": "closed"}), None)
    sink.on_case_event(event("case-updated", id="early", at=T1, fields={"status": "closed"}), None)
    assert len(notifier.sent) == 2 and sink.stale_suppressed == 0


def test_replays_have_their_own_status_order() -> None:
    sink, notifier, _, _ = make_sink(*STATUS_RULES[:2])
    sink.on_case_event(event("case-updated", id="live", at=T2, fields={"status": "closed"}), None)
    replay_open = event("case-updated", id="old", at=T1, fields={"status": "open"}, **{"replay-name": "r1"})
    sink.on_case_event(replay_open, None)
    assert [n.rule for n in notifier.sent] == ["closed", "reopened"]


def test_unhandled_events_are_counted_and_ignored() -> None:
    sink, notifier, bus, _ = make_sink({"name": "any", "on": "related_item_added"})
    sink.on_case_event(event("related-item-updated-unhandled"), None)
    assert notifier.sent == [] and bus.events == []
    assert sink.unhandled_events == 1


def test_sla_signals_notify_once_and_reach_the_bus() -> None:
    sink, notifier, bus, _ = make_sink({"name": "breached", "on": "sla_breached"})
    signal = SlaSignal(
        kind=SlaSignalKind.BREACHED,
        domain_id=DOMAIN,
        case_id="c1",
        sla_name="first-response",
        origin="policy",
        target_time=datetime.fromisoformat("2026-11-23T09:30:00+00:00"),
        at=datetime.fromisoformat("2026-11-23T09:30:00+00:00"),
    )
    for _ in range(3):
        sink.on_sla_signal(signal, None)
    sink.on_sla_signal(signal.model_copy(update={"kind": SlaSignalKind.AT_RISK}), None)
    assert [n.rule for n in notifier.sent] == ["breached"]
    assert [e.detail_type for e in bus.events] == ["Sla Breached", "Sla At Risk"]


def test_the_lambda_context_is_passed_to_the_guard() -> None:
    sink, _, _, once = make_sink()
    context = object()
    sink.register_lambda_context(context)
    assert once.context is context


def test_logs_carry_no_field_values(caplog: pytest.LogCaptureFixture) -> None:
    sink, _, _, _ = make_sink(*RULES, {"name": "c", "on": "comment_added"})
    caplog.set_level("DEBUG")
    for name in ("case-updated", "related-item-comment", "related-item-updated-unhandled"):
        sink.on_case_event(event(name), None)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    for value in ("Refund not received", "pending-customer", "refund was issued", "queue/9e8d7c6b"):
        assert value not in text


def test_importing_the_sink_does_not_import_powertools_idempotency() -> None:
    code = (
        "import sys\n"
        "from casewatch.adapters.notification_wiring import build_notification_sink\n"
        "from casewatch.settings import Settings\n"
        "env = {k: 'x' for k in ('CASEWATCH_TOPIC_ARN', 'CASEWATCH_EVENT_BUS',"
        " 'CASEWATCH_IDEMPOTENCY_TABLE', 'CASEWATCH_SLA_TABLE')}\n"
        "build_notification_sink(Settings(domain_id='d'), env)\n"
        "loaded = [m for m in sys.modules if m.startswith('aws_lambda_powertools.utilities.idempotency')]\n"
        "assert not loaded, loaded\n"
        "assert 'boto3' not in sys.modules\n"
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
