"""The NotificationSink with its real adapters on moto: exactly once under at-least-once, unordered delivery.

SNS topic -> SQS subscriber, enriched bus -> rule -> SQS target, Powertools Idempotency on the idempotency
table and the status order on the state table, both created from `casewatch.tables`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from casewatch.adapters.idempotency import DEFAULT_EXPIRES_AFTER_SECONDS, KEY_PREFIX
from casewatch.app.notify import Notifications

from casewatch.bootstrap import Resources, aws_adapters
from casewatch.constants import CASE_DELETED
from casewatch.domain.notifications.documents import notification_id
from casewatch.domain.notifications.rules import evaluate_case_event
from casewatch.errors import DuplicateInProgressError
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignalKind
from casewatch.observability import (
    BUS_EVENTS_DUPLICATE,
    BUS_EVENTS_PUT,
    NOTIFICATIONS_DUPLICATE,
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_STALE,
)
from casewatch.settings import Settings, load_cdk_context
from casewatch_dev.fakes.ports import CountingMetrics
from tests.apps import LambdaContext
from tests.builders import CASE_1, DOMAIN, REGION, ROOT, SAMPLE_FILES, TEMPLATE, load_event, sla_signal

REPLAY = "casewatch-replay-2026-11-24"


@dataclass
class Stack:
    """The moto resources a deployed stack would have, and how to read what arrived."""

    resources: Resources
    topic_queue: str
    bus_queue: str

    def sink(self, settings: Settings) -> Notifications:
        """The notifications of one container: the real adapters on the stack's resources, as
        `casewatch.bootstrap` builds them, counting on their own metrics recorder."""
        adapters = replace(
            aws_adapters(settings, self.resources, parks_events=False), metrics=CountingMetrics()
        )
        adapters.once.register_lambda_context(LambdaContext())  # as the handler does, per invocation
        return Notifications(
            settings,
            notifier=adapters.notifier,
            bus=adapters.bus,
            once=adapters.once,
            metrics=adapters.metrics,
            status_order=adapters.status_order,
        )

    def messages(self) -> list[dict[str, Any]]:
        """SNS envelopes (raw delivery off) that reached the topic's SQS subscriber."""
        return [json.loads(m["Body"]) for m in drain(self.topic_queue)]

    def bus_events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in drain(self.bus_queue)]


def counts(*sinks: Notifications) -> Counter[str]:
    """What the containers counted, together."""
    total: Counter[str] = Counter()
    for sink in sinks:
        assert isinstance(sink.metrics, CountingMetrics)
        total.update(sink.metrics.counts)
    return total


def drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        out.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return out


@pytest.fixture
def stack(tables: Any) -> Stack:
    sqs = boto3.client("sqs", region_name=REGION)
    queues = {}
    for name in ("topic-subscriber", "bus-target"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[name] = (url, arn)
    sns = boto3.client("sns", region_name=REGION)
    topic_arn = sns.create_topic(Name="casewatch-notifications")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queues["topic-subscriber"][1])
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="casewatch-enriched")
    events.put_rule(
        Name="everything",
        EventBusName="casewatch-enriched",
        EventPattern=json.dumps({"source": ["casewatch"]}),
    )
    events.put_targets(
        Rule="everything",
        EventBusName="casewatch-enriched",
        Targets=[{"Id": "q", "Arn": queues["bus-target"][1]}],
    )
    resources = Resources(
        state_table=tables.state,
        idempotency_table=tables.idempotency,
        topic_arn=topic_arn,
        event_bus="casewatch-enriched",
    )
    return Stack(resources, topic_queue=queues["topic-subscriber"][0], bus_queue=queues["bus-target"][0])


# --- enriched views built from the events themselves -------------------------------------------

CORPUS = [parse_case_event(path.read_text()) for path in SAMPLE_FILES]
BY_STEM = {path.stem: event for path, event in zip(SAMPLE_FILES, CORPUS, strict=True)}


def enriched_view(event: CaseEvent, corpus: list[CaseEvent] = CORPUS) -> EnrichedCase:
    """What enrichment would hand the sinks: the case's fields folded from its earlier events, then this one's."""
    history = sorted(
        (
            e
            for e in corpus
            if e.case_id == event.case_id
            and e.handled
            and e.change_time <= event.change_time
            and (not e.is_replay or e.id == event.id)
            and e.id != event.id
        ),
        key=lambda e: e.change_time,
    )
    fields: dict[str, EnrichedField] = {}
    for earlier in [*history, event]:
        source = Provenance.EVENT if earlier is event else Provenance.SNAPSHOT
        for fid, value in earlier.fields.items():
            fields[fid] = EnrichedField(value=value, source=source, as_of=earlier.change_time)
    template = event.template_id or next((e.template_id for e in reversed(history) if e.template_id), None)
    assert event.case_id is not None
    return EnrichedCase(
        domain_id=event.domain_id,
        case_id=event.case_id,
        template_id=template,
        version=event.change_time,
        event_id=event.id,
        fields=fields,
        deleted=event.event_type == CASE_DELETED,
    )


def attributes_of(envelope: dict[str, Any]) -> dict[str, str]:
    assert {a["Type"] for a in envelope["MessageAttributes"].values()} == {"String"}
    return {name: a["Value"] for name, a in envelope["MessageAttributes"].items()}


# --- Done when: every sample event, 3 times, shuffled ------------------------------------------

DONE_WHEN_RULES = [
    {"name": "contact-linked", "on": "contact_linked"},
    {"name": "file-attached", "on": "file_attached"},
    {"name": "any-related-item", "on": "related_item_added", "match": {"priority": ["high"]}},
    {"name": "case-deleted", "on": "case_deleted"},
    {"name": "case-updated", "on": "case_updated"},
]
# (sample, rule) -> the status and priority the message must carry (None: no value known)
EXPECTED: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("case-created", "high-priority-created"): ("open", "high"),
    ("case-updated", "case-assigned"): ("pending-customer", "high"),
    ("case-updated", "case-updated"): ("pending-customer", "high"),
    ("case-updated-replayed", "case-assigned"): ("pending-customer", "high"),
    ("case-updated-replayed", "case-updated"): ("pending-customer", "high"),
    ("case-updated-metadata-only", "case-updated"): (None, None),
    ("case-deleted", "case-deleted"): (None, None),
    ("related-item-comment", "comment-added"): ("open", "high"),  # 09:12, before the 09:14 update
    ("related-item-comment", "any-related-item"): ("open", "high"),
    ("related-item-contact", "contact-linked"): ("open", "high"),
    ("related-item-contact", "any-related-item"): ("open", "high"),
    ("related-item-file", "file-attached"): ("pending-customer", "high"),  # 09:20, after the update
    ("related-item-file", "any-related-item"): ("pending-customer", "high"),
    ("related-item-sla", "any-related-item"): ("open", "high"),
}


def done_when_settings() -> Settings:
    shipped = load_cdk_context(ROOT / "cdk.json")
    rules = [rule.model_dump() for rule in shipped.notification_rules] + DONE_WHEN_RULES
    return load_cdk_context(ROOT / "cdk.json", {"notification_rules": rules})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_sample_three_times_shuffled_gives_one_message_per_event_and_rule(
    stack: Stack, seed: int
) -> None:
    settings = done_when_settings()
    containers = [stack.sink(settings), stack.sink(settings)]  # two Lambda containers, no shared memory
    deliveries = [path.stem for path in SAMPLE_FILES] * 3
    rng = random.Random(seed)
    rng.shuffle(deliveries)
    for stem in deliveries:
        event = parse_case_event(load_event(stem))  # a fresh parse per delivery, as Lambda would
        rng.choice(containers).on_case_event(event, enriched_view(event))

    messages = stack.messages()
    arrived = Counter()
    for envelope in messages:
        attributes = attributes_of(envelope)
        payload = json.loads(envelope["Message"])
        stem = next(s for s, e in BY_STEM.items() if e.id == payload["event"]["id"])
        event = BY_STEM[stem]
        rule = attributes["rule"]
        arrived[(stem, rule)] += 1
        status, priority = EXPECTED[(stem, rule)]
        expected = {
            "notificationId": notification_id(event.id, rule, event.replay_name),
            "rule": rule,
            "eventType": event.event_type,
            "caseId": event.case_id,
            "domainId": DOMAIN,
            "templateId": TEMPLATE,
            "replay": "true" if event.is_replay else "false",
        }
        if status is not None:
            expected["status"] = status
        if priority is not None:
            expected["priority"] = priority
        if event.related_item is not None:
            expected["relatedItemType"] = event.related_item.related_item_type.value
        assert attributes == expected, (stem, rule)
        assert envelope["Subject"] == payload["subject"]
        assert payload["notificationId"] == expected["notificationId"]
        assert payload["asOf"] == payload["event"]["approximateChangeTime"]
    assert dict(arrived) == dict.fromkeys(EXPECTED, 1)

    bus = stack.bus_events()
    assert Counter((e["detail-type"], e["detail"]["event"]["id"]) for e in bus) == Counter(
        {
            ("Case Enriched", BY_STEM["case-created"].id): 1,
            ("Case Enriched", BY_STEM["case-updated"].id): 1,
            ("Case Enriched", BY_STEM["case-updated-replayed"].id): 1,
            ("Case Enriched", BY_STEM["case-updated-metadata-only"].id): 1,
            ("Case Deleted", BY_STEM["case-deleted"].id): 1,
            ("Related Item Enriched", BY_STEM["related-item-comment"].id): 1,
            ("Related Item Enriched", BY_STEM["related-item-contact"].id): 1,
            ("Related Item Enriched", BY_STEM["related-item-file"].id): 1,
            ("Related Item Enriched", BY_STEM["related-item-sla"].id): 1,
        }
    )
    counted = counts(*containers)
    assert counted[NOTIFICATIONS_PUBLISHED] == len(EXPECTED)
    assert counted[NOTIFICATIONS_DUPLICATE] == 2 * len(EXPECTED)
    # 9 handled samples, 3 deliveries each; the unhandled one (3 deliveries) puts and counts nothing
    assert (counted[BUS_EVENTS_PUT], counted[BUS_EVENTS_DUPLICATE]) == (9, 2 * 9)
    assert counted[NOTIFICATIONS_STALE] == 0


# --- idempotency on DynamoDB -------------------------------------------------------------------

RULES = [
    {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
    {"name": "updated", "on": "case_updated"},
]


def settings_with(rules: list[dict[str, Any]], **extra: Any) -> Settings:
    return Settings.from_mapping({"domain_id": DOMAIN, "notification_rules": rules, **extra})


def test_n_copies_give_one_message_per_rule(stack: Stack) -> None:
    settings = settings_with(RULES)
    event = BY_STEM["case-updated"]
    for _ in range(5):
        stack.sink(settings).on_case_event(event, enriched_view(event))  # a new container every time
    assert sorted(attributes_of(m)["rule"] for m in stack.messages()) == ["assigned", "updated"]
    assert len(stack.bus_events()) == 1
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=stack.resources.idempotency_table)[
        "Items"
    ]
    assert len(items) == 3
    assert {i["status"]["S"] for i in items} == {"COMPLETED"}
    assert all(i["id"]["S"].startswith(f"{KEY_PREFIX}#") for i in items)
    expiry = min(int(i["expiration"]["N"]) for i in items)
    assert expiry >= datetime.now(UTC).timestamp() + DEFAULT_EXPIRES_AFTER_SECONDS - 60


def in_progress(key: str, remaining_ms: int) -> None:
    """Write the in-progress record a concurrent invocation holds, exactly as Powertools writes it."""
    layer = DynamoDBPersistenceLayer(
        table_name="casewatch-idempotency",  # the `tables` fixture's
        boto3_client=boto3.client("dynamodb", region_name=REGION),
    )
    layer.configure(IdempotencyConfig(event_key_jmespath="key"), key_prefix=KEY_PREFIX)
    layer.save_inprogress({"key": key}, remaining_time_in_millis=remaining_ms)


def test_a_concurrent_duplicate_raises_in_progress_and_sends_no_second_message(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    event = BY_STEM["case-updated"]
    (notification,) = evaluate_case_event(event, None, settings)
    in_progress(f"notify:{notification.notification_id}", remaining_ms=60_000)

    sink = stack.sink(settings)
    with pytest.raises(DuplicateInProgressError):
        sink.on_case_event(event, enriched_view(event))
    assert stack.messages() == []
    assert len(stack.bus_events()) == 1  # the other step still ran, once


def test_a_duplicate_during_the_first_publish_is_retryable_not_a_second_message(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    event = BY_STEM["case-updated"]
    first, second = stack.sink(settings), stack.sink(settings)
    raised: list[BaseException] = []
    publish = first.notifier.publish

    def publish_while_a_duplicate_arrives(notification: Any) -> str:
        try:
            second.on_case_event(event, enriched_view(event))  # the duplicate, in another container
        except DuplicateInProgressError as exc:
            raised.append(exc)
        return publish(notification)

    first.notifier.publish = publish_while_a_duplicate_arrives  # type: ignore[method-assign]
    first.on_case_event(event, enriched_view(event))
    assert len(raised) == 1
    assert len(stack.messages()) == 1
    second.on_case_event(event, enriched_view(event))  # its retry finds the completed record
    assert stack.messages() == []
    assert counts(second)[NOTIFICATIONS_DUPLICATE] == 1
    assert counts(second)[NOTIFICATIONS_PUBLISHED] == 0


def test_an_expired_in_progress_record_lets_the_retry_publish(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    event = BY_STEM["case-updated"]
    (notification,) = evaluate_case_event(event, None, settings)
    in_progress(f"notify:{notification.notification_id}", remaining_ms=-1_000)  # that invocation timed out
    stack.sink(settings).on_case_event(event, enriched_view(event))
    assert len(stack.messages()) == 1


def test_a_failed_publish_is_retried_by_the_next_delivery(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    event = BY_STEM["case-updated"]
    sink = stack.sink(settings)
    publish = sink.notifier.publish

    def fail_once(notification: Any) -> str:
        sink.notifier.publish = publish  # type: ignore[method-assign]
        raise RuntimeError("SNS unavailable")

    sink.notifier.publish = fail_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        sink.on_case_event(event, enriched_view(event))
    assert stack.messages() == []
    sink.on_case_event(event, enriched_view(event))
    sink.on_case_event(event, enriched_view(event))
    assert len(stack.messages()) == 1


def test_sla_signals_notify_once_across_containers(stack: Stack) -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    case = enriched_view(BY_STEM["case-updated"])
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    breached = sla_signal(SlaSignalKind.BREACHED, name="first-response-high", target=at)
    at_risk = breached.model_copy(update={"kind": SlaSignalKind.AT_RISK, "at": at - timedelta(minutes=6)})
    for signal in (breached, at_risk, breached, at_risk, breached):
        stack.sink(settings).on_sla_signal(signal, case)  # timer, reconciler, ...: other functions
    attributes = sorted((attributes_of(m) for m in stack.messages()), key=lambda a: a["rule"])
    assert [(a["rule"], a["eventType"], a["slaName"], a["status"]) for a in attributes] == [
        ("sla-at-risk", "SLA.AT_RISK", "first-response-high", "pending-customer"),
        ("sla-breached", "SLA.BREACHED", "first-response-high", "pending-customer"),
    ]
    assert sorted(e["detail-type"] for e in stack.bus_events()) == ["Sla At Risk", "Sla Breached"]


# --- replays -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["process", "skip"])
def test_replays(stack: Stack, policy: str) -> None:
    settings = settings_with(RULES, replays=policy)
    original, replay = BY_STEM["case-updated"], BY_STEM["case-updated-replayed"]
    for event in (original, replay, replay):
        stack.sink(settings).on_case_event(event, enriched_view(event))
    replays = sorted(attributes_of(m)["replay"] for m in stack.messages())
    assert replays == (["false", "false", "true", "true"] if policy == "process" else ["false", "false"])
    bus = stack.bus_events()
    assert sorted(str(e["detail"]["event"]["replayName"]) for e in bus) == ["None", REPLAY]


def test_a_replay_of_the_original_event_id_notifies_again(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    original = BY_STEM["case-updated"]
    replay = parse_case_event({**load_event("case-updated"), "replay-name": "rehearsal"})
    assert replay.id == original.id
    stack.sink(settings).on_case_event(original, enriched_view(original))
    stack.sink(settings).on_case_event(replay, enriched_view(replay))
    assert sorted(attributes_of(m)["replay"] for m in stack.messages()) == ["false", "true"]


# --- ordering ----------------------------------------------------------------------------------

STATUS_RULES = [
    {"name": "closed", "on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
    {"name": "opened", "on": "field_changed", "fields": ["status"], "to_values": ["open"]},
]


def status_event(event_id: str, at: str, status: str) -> CaseEvent:
    raw = load_event("case-updated")
    raw = {**raw, "id": event_id, "detail": {**raw["detail"], "approximateChangeTime": at}}
    raw["detail"]["case"] = {
        **raw["detail"]["case"],
        "fields": {**raw["detail"]["case"]["fields"], "status": {"value": FieldValue.of(status).to_wire()}},
    }
    return parse_case_event(raw)


def test_closed_is_never_followed_by_a_stale_open(stack: Stack) -> None:
    settings = settings_with(STATUS_RULES)
    closed = status_event("e-closed", "2026-11-23T10:00:00.000Z", "closed")
    stale_open = status_event("e-open", "2026-11-23T09:00:00.000Z", "open")
    sinks = [stack.sink(settings) for _ in range(2)]
    sinks[0].on_case_event(closed, enriched_view(closed, []))
    sinks[1].on_case_event(stale_open, enriched_view(stale_open, []))
    sinks[1].on_case_event(stale_open, enriched_view(stale_open, []))
    messages = stack.messages()
    assert [attributes_of(m)["rule"] for m in messages] == ["closed"]
    assert json.loads(messages[0]["Message"])["asOf"] == "2026-11-23T10:00:00.000Z"
    assert (counts(sinks[1])[NOTIFICATIONS_STALE], counts(sinks[1])[NOTIFICATIONS_DUPLICATE]) == (1, 1)
    assert len(stack.bus_events()) == 2  # both events are still re-published, each with its asOf

    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName="casewatch-state", Key={"pk": {"S": f"CASE#{CASE_1}"}, "sk": {"S": "NOTIFY#STATUS"}}
    )["Item"]
    assert item["latest_at"]["N"] == str(int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000))
    assert item["notification_id"]["S"] == notification_id("e-closed", "closed")
    assert "closed" not in json.dumps(item)  # the status is stored hashed
    assert int(item["expires_at"]["N"]) > datetime.now(UTC).timestamp()

    reopened = status_event("e-reopen", "2026-11-23T11:00:00.000Z", "open")
    stack.sink(settings).on_case_event(reopened, enriched_view(reopened, []))
    assert [attributes_of(m)["rule"] for m in stack.messages()] == ["opened"]


# --- redaction ---------------------------------------------------------------------------------

SECRETS = (
    "Refund not received",  # title
    "Customer reports the refund",  # summary
    "profiles/5e4d3c2b1a0f4e9d8c7b6a5f4e3d2c1b",  # customer_id
    "78412093",  # reference_number
    "pending-customer",  # status (also an SLA's target value)
)


def test_redacted_fields_never_reach_sns_the_bus_or_the_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    rules = [
        {"name": "everything-case", "on": "case_updated"},
        {"name": "created", "on": "case_created"},
        {"name": "items", "on": "related_item_added"},
        {"name": "deleted", "on": "case_deleted"},
        {"name": "breached", "on": "sla_breached"},
    ]
    settings = settings_with(
        rules,
        field_names={"priority": "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"},
        redact_fields=["title", "summary", "customer_id", "reference_number", "status"],
    )
    caplog.set_level(
        "INFO"
    )  # botocore's DEBUG logs echo request bodies: never run it at DEBUG with real data
    caplog.set_level("DEBUG", logger="casewatch")
    caplog.set_level("DEBUG", logger="aws_lambda_powertools")
    sink = stack.sink(settings)
    for event in CORPUS:
        sink.on_case_event(event, enriched_view(event))
    signal = sla_signal(SlaSignalKind.BREACHED, name="resolve", target=datetime(2026, 11, 23, 17, tzinfo=UTC))
    sink.on_sla_signal(signal, enriched_view(BY_STEM["case-updated"]))

    sns_bodies = [json.dumps(m) for m in stack.messages()]
    bus_bodies = [json.dumps(e) for e in stack.bus_events()]
    assert len(sns_bodies) == 10 and len(bus_bodies) == 10
    for body in sns_bodies + bus_bodies:
        for secret in SECRETS:
            assert secret not in body
    assert any('"status": "[redacted]"' in json.dumps(attributes_of(json.loads(b))) for b in sns_bodies)

    ours = [r for r in caplog.records if r.name.startswith(("casewatch", "aws_lambda_powertools"))]
    assert ours, "the sink logs what it does"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (*SECRETS, "high", "refund was issued", "queue/9e8d7c6b"):
        assert secret not in logged
