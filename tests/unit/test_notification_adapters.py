"""SNS notifier, enriched bus and idempotency guard with fake clients (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from casewatch.adapters import idempotency
from casewatch.adapters.enriched_bus import MAX_REQUEST_BYTES, EventBridgeEnrichedBus, batches, entry_size
from casewatch.adapters.idempotency import LAMBDA_MAX_REMAINING_MS, PowertoolsIdempotency
from casewatch.adapters.notification_wiring import build_notification_sink
from casewatch.adapters.sns_notifier import MAX_MESSAGE_BYTES, SnsNotifier, message_structure
from casewatch.domain.notifications import BusEvent, Notification, evaluate_case_event
from casewatch.errors import EnrichedBusError, NotificationPublishError, SettingsError
from casewatch.models import parse_case_event
from casewatch.settings import Settings
from tests.conftest import load_event

DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
SETTINGS = Settings.from_mapping(
    {"domain_id": DOMAIN, "notification_rules": [{"name": "created", "on": "case_created"}]}
)


def notification() -> Notification:
    (n,) = evaluate_case_event(parse_case_event(load_event("case-created")), None, SETTINGS)
    return n


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, operation)


# --- SNS ---------------------------------------------------------------------------------------


class FakeSns:
    def __init__(self, error: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error = error

    def publish(self, **request: Any) -> dict[str, Any]:
        if self.error:
            raise client_error(self.error, "Publish")
        self.requests.append(request)
        return {"MessageId": "m-1"}


def test_sns_request_shape() -> None:
    sns = FakeSns()
    n = notification()
    assert SnsNotifier("arn:aws:sns:us-east-1:1:topic", client=sns).publish(n) == "m-1"  # type: ignore[arg-type]
    (request,) = sns.requests
    assert request["TopicArn"] == "arn:aws:sns:us-east-1:1:topic"
    assert request["Subject"] == n.subject
    assert request["MessageStructure"] == "json"
    body = json.loads(request["Message"])
    assert set(body) == {"default", "email", "sms"}
    assert json.loads(body["default"]) == n.payload
    assert body["email"] == n.text and body["sms"] == n.subject
    assert request["MessageAttributes"]["rule"] == {"DataType": "String", "StringValue": "created"}
    assert request["MessageAttributes"]["notificationId"]["StringValue"] == n.notification_id
    assert "MessageGroupId" not in request


def test_sns_fifo_topics_deduplicate_on_the_notification_id() -> None:
    sns = FakeSns()
    n = notification()
    SnsNotifier("arn:aws:sns:us-east-1:1:topic.fifo", client=sns).publish(n)  # type: ignore[arg-type]
    assert sns.requests[0]["MessageDeduplicationId"] == n.notification_id
    assert sns.requests[0]["MessageGroupId"] == n.case_id


def test_sns_messages_over_the_limit_drop_field_values() -> None:
    n = notification()
    huge = dict(n.payload)
    huge["case"] = dict(huge["case"])
    huge["case"]["fields"] = {
        f"f{i}": {"value": "x" * 4000, "source": "event", "asOf": "t"} for i in range(80)
    }
    big = Notification(**{**{k: getattr(n, k) for k in n.__slots__}, "payload": huge, "text": "y" * 200_000})  # type: ignore[arg-type]
    message = message_structure(big)
    assert len(message.encode()) < MAX_MESSAGE_BYTES
    default = json.loads(json.loads(message)["default"])
    assert default["case"]["truncated"] is True and len(default["case"]["fieldIds"]) == 80


@pytest.mark.parametrize(
    ("code", "retryable"), [("Throttled", True), ("InternalError", True), ("NotFound", False)]
)
def test_sns_errors_are_translated(code: str, retryable: bool) -> None:
    with pytest.raises(NotificationPublishError) as excinfo:
        SnsNotifier("arn:t", client=FakeSns(code)).publish(notification())  # type: ignore[arg-type]
    assert excinfo.value.code == code and excinfo.value.retryable is retryable
    assert isinstance(excinfo.value.__cause__, ClientError)


# --- EventBridge -------------------------------------------------------------------------------


class FakeEvents:
    """Fails the entries named in `failures` (detail id -> error codes, one per attempt)."""

    def __init__(self, failures: dict[str, list[str]] | None = None, error: str | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.failures = failures or {}
        self.error = error

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.error:
            raise client_error(self.error, "PutEvents")
        assert len(Entries) <= 10
        assert sum(entry_size(e) for e in Entries) <= MAX_REQUEST_BYTES  # type: ignore[arg-type]
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            codes = self.failures.get(json.loads(entry["Detail"])["id"], [])
            if codes:
                results.append({"ErrorCode": codes.pop(0), "ErrorMessage": "no"})
            else:
                results.append({"EventId": "x"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def bus_event(i: int, size: int = 10) -> BusEvent:
    return BusEvent(
        event_key=f"k{i}",
        detail_type="Case Enriched",
        detail={"id": f"k{i}", "pad": "x" * size},
        time=datetime(2026, 11, 23, tzinfo=UTC),
        resources=("arn:aws:cases:us-east-1:1:domain/d",),
    )


def test_bus_batches_by_ten_and_by_size() -> None:
    events = FakeEvents()
    bus = EventBridgeEnrichedBus("casewatch", client=events)  # type: ignore[arg-type]
    assert bus.put([bus_event(i) for i in range(23)]) == 23
    assert [len(c) for c in events.calls] == [10, 10, 3]
    entry = events.calls[0][0]
    assert entry["Source"] == "casewatch" and entry["EventBusName"] == "casewatch"
    assert entry["DetailType"] == "Case Enriched" and entry["Resources"] == [
        "arn:aws:cases:us-east-1:1:domain/d"
    ]
    big = FakeEvents()
    EventBridgeEnrichedBus("b", client=big).put([bus_event(i, 100_000) for i in range(5)])  # type: ignore[arg-type]
    assert [len(c) for c in big.calls] == [2, 2, 1]
    assert list(map(len, batches([]))) == []


def test_bus_retries_failed_entries_alone_with_bounded_backoff() -> None:
    events = FakeEvents({"k3": ["ThrottlingException", "InternalFailure"]})
    sleeps: list[float] = []
    bus = EventBridgeEnrichedBus("b", client=events, sleep=sleeps.append)  # type: ignore[arg-type]
    bus.put([bus_event(i) for i in range(5)])
    assert [len(c) for c in events.calls] == [5, 1, 1]
    assert json.loads(events.calls[1][0]["Detail"])["id"] == "k3"
    assert len(sleeps) == 2 and all(0 <= s <= bus.max_delay_s for s in sleeps)


def test_bus_raises_when_retries_are_spent() -> None:
    events = FakeEvents({"k1": ["ThrottlingException"] * 10})
    bus = EventBridgeEnrichedBus("b", client=events, max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError) as excinfo:
        bus.put([bus_event(0), bus_event(1)])
    assert excinfo.value.codes == ("ThrottlingException",)
    assert [len(c) for c in events.calls] == [2, 1, 1]


def test_bus_does_not_retry_permanent_errors() -> None:
    events = FakeEvents({"k0": ["MalformedDetail"]})
    bus = EventBridgeEnrichedBus("b", client=events, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError, match="MalformedDetail"):
        bus.put([bus_event(0)])
    assert len(events.calls) == 1


def test_bus_call_errors_are_translated() -> None:
    bus = EventBridgeEnrichedBus("b", client=FakeEvents(error="AccessDeniedException"))  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError, match="AccessDeniedException"):
        bus.put([bus_event(0)])


def test_oversized_bus_events_drop_field_values() -> None:
    events = FakeEvents()
    detail = {"id": "k", "case": {"fields": {f"f{i}": {"value": "x" * 4000} for i in range(80)}}}
    EventBridgeEnrichedBus("b", client=events).put(  # type: ignore[arg-type]
        [BusEvent("k", "Case Enriched", detail, datetime(2026, 1, 1, tzinfo=UTC))]
    )
    sent = json.loads(events.calls[0][0]["Detail"])
    assert sent["case"]["truncated"] is True and sent["case"]["fields"] == {}


# --- idempotency guard -------------------------------------------------------------------------


class Context:
    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining


def test_the_in_progress_deadline_follows_the_registered_context() -> None:
    guard = PowertoolsIdempotency("t")
    deadline = guard._deadline
    try:
        assert deadline.get_remaining_time_in_millis() == LAMBDA_MAX_REMAINING_MS  # nothing registered
        idempotency.register_lambda_context(Context(42_000))  # the process-wide registration
        assert deadline.get_remaining_time_in_millis() == 42_000
        guard.register_lambda_context(Context(7_000))  # this guard's own
        assert deadline.get_remaining_time_in_millis() == 7_000
        guard.register_lambda_context(Context(0))  # left over from an earlier invocation
        assert deadline.get_remaining_time_in_millis() == 42_000
    finally:
        idempotency.register_lambda_context(None)


# --- wiring ------------------------------------------------------------------------------------

ENV = {
    "CASEWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:casewatch",
    "CASEWATCH_EVENT_BUS": "casewatch-enriched",
    "CASEWATCH_IDEMPOTENCY_TABLE": "idem",
    "CASEWATCH_SLA_TABLE": "state",
}


def test_the_factory_builds_the_real_adapters() -> None:
    sink = build_notification_sink(SETTINGS, ENV)
    assert sink.notifier.topic_arn == ENV["CASEWATCH_TOPIC_ARN"]  # type: ignore[attr-defined]
    assert sink.bus.bus_name == "casewatch-enriched"  # type: ignore[attr-defined]
    assert sink.once.table_name == "idem"  # type: ignore[attr-defined]
    assert sink.status_order.table_name == "state"  # type: ignore[union-attr,attr-defined]


@pytest.mark.parametrize("missing", sorted(ENV))
def test_the_factory_names_a_missing_variable(missing: str) -> None:
    with pytest.raises(SettingsError, match=missing):
        build_notification_sink(SETTINGS, {k: v for k, v in ENV.items() if k != missing})
