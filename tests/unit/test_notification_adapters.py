"""SNS notifier and enriched bus with fake clients (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from casewatch.adapters.enriched_bus import MAX_REQUEST_BYTES, EventBridgeEnrichedBus, batches, entry_size
from casewatch.adapters.sns_notifier import MAX_MESSAGE_BYTES, SnsNotifier, message_structure
from casewatch.domain.notifications.bus import BusEvent
from casewatch.domain.notifications.render import Notification
from casewatch.domain.notifications.rules import evaluate_case_event
from casewatch.errors import EnrichedBusError, NotificationPublishError
from casewatch.models.events import parse_case_event
from casewatch.settings import Settings
from casewatch_dev.fakes.clients import FakeSns
from tests.builders import load_event

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


class RefusingSns(FakeSns):
    """The fake SNS client (`casewatch_dev.fakes.clients`), answering every publish with an error code."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error

    def publish(self, **request: Any) -> dict[str, Any]:
        raise client_error(self.error, "Publish")


def test_sns_request_shape() -> None:
    sns = FakeSns()
    n = notification()
    message_id = SnsNotifier("arn:aws:sns:us-east-1:1:topic", client=sns).publish(n)  # type: ignore[arg-type]
    assert message_id  # SNS's message id
    (request,) = sns.published
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
    assert sns.published[0]["MessageDeduplicationId"] == n.notification_id
    assert sns.published[0]["MessageGroupId"] == n.case_id


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
    ("code", "retryable"),
    [
        ("Throttled", True),
        ("InternalError", True),
        ("KMSThrottling", True),
        ("NotFound", False),
        ("AuthorizationError", False),  # the topic policy or the role: retrying cannot help
        ("KMSDisabled", False),  # the topic's key
        ("KMSAccessDenied", False),
        ("InvalidParameter", False),
    ],
)
def test_sns_errors_are_translated(code: str, retryable: bool) -> None:
    with pytest.raises(NotificationPublishError) as excinfo:
        SnsNotifier("arn:t", client=RefusingSns(code)).publish(notification())  # type: ignore[arg-type]
    assert excinfo.value.codes == (code,) and excinfo.value.retryable is retryable
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
    assert excinfo.value.retryable is True  # a later retry of the event can succeed
    assert [len(c) for c in events.calls] == [2, 1, 1]


def test_bus_does_not_retry_permanent_errors() -> None:
    events = FakeEvents({"k0": ["MalformedDetail"]})
    bus = EventBridgeEnrichedBus("b", client=events, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError, match="MalformedDetail") as excinfo:
        bus.put([bus_event(0)])
    assert len(events.calls) == 1
    assert excinfo.value.retryable is False  # nor would a retry of the event: it is parked


def test_bus_entries_failing_permanently_and_retryably_are_not_retryable() -> None:
    events = FakeEvents({"k0": ["MalformedDetail"], "k1": ["ThrottlingException"] * 10})
    bus = EventBridgeEnrichedBus("b", client=events, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError) as excinfo:
        bus.put([bus_event(0), bus_event(1)])
    assert sorted(excinfo.value.codes) == ["MalformedDetail", "ThrottlingException"]
    assert excinfo.value.retryable is False


@pytest.mark.parametrize(
    ("code", "retryable"), [("AccessDeniedException", False), ("InternalException", True)]
)
def test_bus_call_errors_are_translated(code: str, retryable: bool) -> None:
    bus = EventBridgeEnrichedBus("b", client=FakeEvents(error=code))  # type: ignore[arg-type]
    with pytest.raises(EnrichedBusError, match=code) as excinfo:
        bus.put([bus_event(0)])
    assert (excinfo.value.codes, excinfo.value.retryable) == ((code,), retryable)


def test_oversized_bus_events_drop_field_values() -> None:
    events = FakeEvents()
    detail = {"id": "k", "case": {"fields": {f"f{i}": {"value": "x" * 4000} for i in range(80)}}}
    EventBridgeEnrichedBus("b", client=events).put(  # type: ignore[arg-type]
        [BusEvent("k", "Case Enriched", detail, datetime(2026, 1, 1, tzinfo=UTC))]
    )
    sent = json.loads(events.calls[0][0]["Detail"])
    assert sent["case"]["truncated"] is True and sent["case"]["fields"] == {}
