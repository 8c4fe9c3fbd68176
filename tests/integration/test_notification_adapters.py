"""SNS notifier and enriched-event bus on moto: what an SQS subscriber and a bus rule's SQS target receive."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.domain.notifications.bus import BusEvent, case_bus_event, sla_bus_event
from casewatch.domain.notifications.rules import evaluate_case_event
from casewatch.models.events import parse_case_event
from casewatch.models.signals import SlaSignalKind
from casewatch.settings import load_cdk_context
from tests.builders import CASE_1, REGION, ROOT, SAMPLE_FILES, load_event, sla_signal

pytestmark = pytest.mark.usefixtures("moto")


def queue(name: str, **attributes: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def topic_with_subscriber(raw: bool, filter_policy: dict[str, Any] | None = None) -> tuple[str, str]:
    sns = boto3.client("sns", region_name=REGION)
    topic_arn = sns.create_topic(Name="casewatch-notifications")["TopicArn"]
    url, arn = queue(f"subscriber-{'raw' if raw else 'envelope'}")
    attributes = {"RawMessageDelivery": "true" if raw else "false"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return topic_arn, url


def comment_notification() -> Any:
    settings = load_cdk_context(ROOT / "cdk.json")
    (notification,) = evaluate_case_event(
        parse_case_event(load_event("related-item-comment")), None, settings
    )
    return notification


def test_sns_envelope_delivery_carries_json_subject_and_attributes() -> None:
    topic_arn, url = topic_with_subscriber(raw=False)
    notification = comment_notification()
    message_id = SnsNotifier(topic_arn).publish(notification)
    (message,) = drain(url)
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == message_id
    assert envelope["Subject"] == notification.subject
    assert json.loads(envelope["Message"]) == notification.payload
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == notification.attributes
    assert {v["Type"] for v in envelope["MessageAttributes"].values()} == {"String"}
    assert envelope["MessageAttributes"]["rule"]["Value"] == "comment-added"
    assert envelope["MessageAttributes"]["relatedItemType"]["Value"] == "Comment"


def test_sns_raw_delivery_carries_json_body_and_sqs_attributes() -> None:
    topic_arn, url = topic_with_subscriber(raw=True)
    notification = comment_notification()
    SnsNotifier(topic_arn).publish(notification)
    (message,) = drain(url)
    payload = json.loads(message["Body"])
    assert payload == notification.payload
    assert payload["rule"] == {"name": "comment-added", "on": "comment_added"}
    assert payload["relatedItem"]["type"] == "Comment"
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == notification.attributes
    assert attributes["caseId"] == CASE_1 and attributes["replay"] == "false"
    assert {v["DataType"] for v in message["MessageAttributes"].values()} == {"String"}


def test_subscribers_filter_on_attributes() -> None:
    topic_arn, url = topic_with_subscriber(raw=True, filter_policy={"rule": ["high-priority-created"]})
    settings = load_cdk_context(ROOT / "cdk.json")
    notifier = SnsNotifier(topic_arn)
    for path in SAMPLE_FILES:
        for notification in evaluate_case_event(parse_case_event(path.read_text()), None, settings):
            notifier.publish(notification)
    received = [json.loads(m["Body"])["rule"]["name"] for m in drain(url)]
    assert received == ["high-priority-created"]


def test_fifo_topic_drops_a_repeat() -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic_arn = sns.create_topic(
        Name="casewatch-notifications.fifo",
        Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "false"},
    )["TopicArn"]
    url, arn = queue("subscriber.fifo", FifoQueue="true")
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    notifier = SnsNotifier(topic_arn)
    notification = comment_notification()
    notifier.publish(notification)
    notifier.publish(notification)
    assert len(drain(url)) == 1


# --- the enriched-event bus --------------------------------------------------------------------


def bus_with_target(pattern: dict[str, Any]) -> tuple[str, str]:
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="casewatch-enriched")
    url, arn = queue("bus-target")
    events.put_rule(Name="all-enriched", EventBusName="casewatch-enriched", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="all-enriched", EventBusName="casewatch-enriched", Targets=[{"Id": "q", "Arn": arn}]
    )
    return "casewatch-enriched", url


def test_bus_events_arrive_with_source_detail_type_and_detail() -> None:
    bus_name, url = bus_with_target({"source": ["casewatch"]})
    settings = load_cdk_context(ROOT / "cdk.json")
    expected: dict[str, BusEvent] = {}
    for path in SAMPLE_FILES:
        bus_event = case_bus_event(parse_case_event(path.read_text()), None, settings)
        if bus_event is not None:
            expected[bus_event.event_key] = bus_event
    signal = sla_signal(SlaSignalKind.BREACHED, target=datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    sla = sla_bus_event(signal, None, settings)
    expected[sla.event_key] = sla
    assert EventBridgeEnrichedBus(bus_name).put(list(expected.values())) == 10

    received = [json.loads(m["Body"]) for m in drain(url)]
    assert len(received) == 10
    for event in received:
        sent = expected[event["detail"]["id"]]
        assert event["source"] == "casewatch"
        assert event["detail-type"] == sent.detail_type
        assert event["detail"] == sent.detail
        assert event["resources"] == list(sent.resources)
    assert sorted(e["detail-type"] for e in received) == sorted(
        ["Case Enriched"] * 4 + ["Case Deleted"] + ["Related Item Enriched"] * 4 + ["Sla Breached"]
    )


def test_bus_consumers_filter_on_the_enriched_detail() -> None:
    bus_name, url = bus_with_target(
        {
            "source": ["casewatch"],
            "detail-type": ["Case Enriched"],
            "detail": {
                "case": {"fields": {"status": {"value": ["pending-customer"]}}},
                "event": {"replayName": [None]},
            },
        }
    )
    settings = load_cdk_context(ROOT / "cdk.json")
    bus = EventBridgeEnrichedBus(bus_name)
    for path in SAMPLE_FILES:
        bus_event = case_bus_event(parse_case_event(path.read_text()), None, settings)
        if bus_event is not None:
            bus.put([bus_event])
    received = [json.loads(m["Body"]) for m in drain(url)]
    assert [e["detail"]["event"]["id"] for e in received] == ["5c7e9a1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b"]
