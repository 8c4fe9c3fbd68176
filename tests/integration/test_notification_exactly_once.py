"""The event path with its real adapters on moto: one notification per (event, rule) and one bus event per
event under at-least-once, unordered delivery to several containers.

SNS topic -> SQS subscriber, enriched bus -> rule -> SQS target, the case store (claims, status order) on
the state table created from `casewatch.tables`; the apps built by `casewatch.bootstrap` from the real AWS
adapters (GetCase answers from a dict). There is no idempotency table: an event's claim is written with
the case's state, its outbox sent after.
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

from casewatch.adapters.case_items import claim_id
from casewatch.app.process_event import claim_key
from casewatch.bootstrap import (
    Adapters,
    EventApp,
    Resources,
    aws_adapters,
    build_event_app,
    build_reconcile_app,
    build_sla_timer_app,
)
from casewatch.domain.case_record import status_hash
from casewatch.domain.notifications.documents import notification_id
from casewatch.errors import DuplicateInProgressError
from casewatch.handlers import case_changed, reconcile, related_item_created, sla_timer
from casewatch.models.events import parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaTimerPayload
from casewatch.observability import (
    BUS_EVENTS_PUT,
    DUPLICATE_TRIGGERS,
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_STALE,
)
from casewatch.settings import Settings, load_cdk_context
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import CountingMetrics, DictCasesReader, DictCasesSearch, ListDeadLetters
from tests.apps import FakeCasesSlas, LambdaContext
from tests.builders import (
    CASE_1,
    CASE_2,
    DOMAIN,
    FIRST,
    PRIORITY,
    REGION,
    ROOT,
    SAMPLE_FILES,
    TEMPLATE,
    load_event,
)

REPLAY = "casewatch-replay-2026-11-24"
NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
LEASE_MS = 30_000


class Crash(BaseException):
    """The invocation dies (a timeout): nothing after this point of it runs."""


@dataclass
class Stack:
    """The moto resources a deployed stack would have, and how to read what arrived."""

    resources: Resources
    topic_queue: str
    bus_queue: str
    clock: VirtualClock

    def container(self, settings: Settings) -> Container:
        """One Lambda container: the real adapters on the stack's resources, as `casewatch.bootstrap`
        builds them, with its own metrics recorder (and GetCase answered from a dict)."""
        reader = DictCasesReader()
        reader.add(CASE_1, {"status": "open", PRIORITY: "high", "title": "T"}, template_id=TEMPLATE)
        reader.add(CASE_2, {"status": "open", "title": "T"}, template_id=TEMPLATE)
        adapters = replace(
            aws_adapters(settings, self.resources, parks_events=False),
            clock=self.clock,
            metrics=CountingMetrics(),
            cases=reader,
            cases_slas=FakeCasesSlas(),
            search=DictCasesSearch(self.clock),
            dead_letters=ListDeadLetters(),
        )
        return Container(settings, adapters)

    def messages(self) -> list[dict[str, Any]]:
        """SNS envelopes (raw delivery off) that reached the topic's SQS subscriber."""
        return [json.loads(m["Body"]) for m in drain(self.topic_queue)]

    def bus_events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in drain(self.bus_queue)]


@dataclass
class Container:
    settings: Settings
    adapters: Adapters

    def __post_init__(self) -> None:
        self.apps: dict[str, EventApp] = {
            spec.name: build_event_app(spec, self.settings, self.adapters)
            for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN)
        }

    def deliver(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The event through the handler of the function its type routes to."""
        if raw["detail"]["eventType"].startswith("CASE."):
            name, handler = CASE_CHANGED.name, case_changed.handler
        else:
            name, handler = RELATED_ITEM_CREATED_FN.name, related_item_created.handler
        result: dict[str, Any] = handler(raw, LambdaContext(name, LEASE_MS), app=self.apps[name])
        return result

    @property
    def counts(self) -> Counter[str]:
        assert isinstance(self.adapters.metrics, CountingMetrics)
        return self.adapters.metrics.counts


def counts(*containers: Container) -> Counter[str]:
    """What the containers counted, together."""
    total: Counter[str] = Counter()
    for container in containers:
        total.update(container.counts)
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
def stack(state_table: str) -> Stack:
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
    resources = Resources(state_table=state_table, topic_arn=topic_arn, event_bus="casewatch-enriched")
    return Stack(resources, queues["topic-subscriber"][0], queues["bus-target"][0], VirtualClock(NOW))


CORPUS = {path.stem: parse_case_event(path.read_text()) for path in SAMPLE_FILES}


def attributes_of(envelope: dict[str, Any]) -> dict[str, str]:
    assert {a["Type"] for a in envelope["MessageAttributes"].values()} == {"String"}
    return {name: a["Value"] for name, a in envelope["MessageAttributes"].items()}


def case_items() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName="casewatch-state")["Items"]
    return [i for i in items if i["sk"]["S"] == "CASE"]


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


CASE_EVENTS = {
    "case-created",
    "case-updated",
    "case-updated-replayed",
    "case-updated-metadata-only",
    "case-deleted",
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
    containers = [stack.container(settings), stack.container(settings)]  # no shared memory
    deliveries = [path.stem for path in SAMPLE_FILES] * 3
    rng = random.Random(seed)
    rng.shuffle(deliveries)
    for stem in deliveries:
        rng.choice(containers).deliver(load_event(stem))  # a fresh event per delivery, as Lambda has

    arrived: Counter[tuple[str, str]] = Counter()
    sla_messages: list[dict[str, str]] = []
    for envelope in stack.messages():
        attributes = attributes_of(envelope)
        payload = json.loads(envelope["Message"])
        if payload["event"] is None:  # an SLA signal's
            sla_messages.append(attributes)
            continue
        stem = next(
            s
            for s, e in CORPUS.items()
            if e.id == payload["event"]["id"] and e.replay_name == payload["event"]["replayName"]
        )
        event = CORPUS[stem]
        rule = attributes["rule"]
        arrived[(stem, rule)] += 1
        expected = {
            "notificationId": notification_id(event.id, rule, event.replay_name),
            "rule": rule,
            "eventType": event.event_type,
            "caseId": event.case_id,
            "domainId": DOMAIN,
            "templateId": TEMPLATE,
            "replay": "true" if event.is_replay else "false",
        }
        status, priority = EXPECTED[(stem, rule)]
        if stem in CASE_EVENTS and status is not None:  # a case event's own values
            expected["status"] = status
            expected["priority"] = priority  # type: ignore[assignment]
        else:
            # A related item's message, a metadata-only or a deletion's, shows the case as casewatch knew
            # it then (its stored view, or GetCase's answer): the delivery order decides.
            assert attributes.pop("status", "open") in {"open", "pending-customer"}
            assert attributes.pop("priority", "high") == "high"
        if event.related_item is not None:
            expected["relatedItemType"] = event.related_item.related_item_type.value
        assert attributes == expected, (stem, rule)
        assert envelope["Subject"] == payload["subject"]
        assert payload["notificationId"] == expected["notificationId"]
        assert payload["asOf"] == payload["event"]["approximateChangeTime"]
    assert dict(arrived) == dict.fromkeys(EXPECTED, 1)
    # Case 2 (created 08:xx, deleted 16:45 unresolved) breached its 8 h resolve policy, whatever the order.
    assert [(a["rule"], a["caseId"], a["slaName"]) for a in sla_messages] == [
        ("sla-breached", CASE_2, "resolve-within-8h")
    ]

    bus = stack.bus_events()
    by_event = Counter(
        (e["detail-type"], e["detail"]["event"]["id"], e["detail"]["event"]["replayName"])
        for e in bus
        if "event" in e["detail"]
    )
    assert by_event == Counter(
        {
            ("Case Enriched", CORPUS["case-created"].id, None): 1,
            ("Case Enriched", CORPUS["case-updated"].id, None): 1,
            ("Case Enriched", CORPUS["case-updated-replayed"].id, REPLAY): 1,
            ("Case Enriched", CORPUS["case-updated-metadata-only"].id, None): 1,
            ("Case Deleted", CORPUS["case-deleted"].id, None): 1,
            ("Related Item Enriched", CORPUS["related-item-comment"].id, None): 1,
            ("Related Item Enriched", CORPUS["related-item-contact"].id, None): 1,
            ("Related Item Enriched", CORPUS["related-item-file"].id, None): 1,
            ("Related Item Enriched", CORPUS["related-item-sla"].id, None): 1,
        }
    )
    # The SLA outcomes do not depend on the order: case 1's first response (a comment) and its Cases SLA
    # met, case 2's resolve breached.
    signals = Counter(
        (e["detail-type"], e["detail"]["signal"]["slaName"]) for e in bus if "signal" in e["detail"]
    )
    assert signals == Counter(
        {
            ("Sla Met", "first-response-high"): 1,
            ("Sla Met", "First response"): 1,
            ("Sla Breached", "resolve-within-8h"): 1,
        }
    )
    counted = counts(*containers)
    assert counted[NOTIFICATIONS_PUBLISHED] == len(EXPECTED) + 1
    # 9 handled samples delivered 3 times each (the unhandled one reaches no claim)
    assert counted[DUPLICATE_TRIGGERS] == 2 * 9
    assert counted[BUS_EVENTS_PUT] == 9 + 3
    assert counted[NOTIFICATIONS_STALE] == 0
    for item in case_items():  # every claim done, no outbox left
        assert all(c["M"]["d"] == {"BOOL": True} and "o" not in c["M"] for c in item["claims"]["M"].values())
    assert len(case_items()) == 2


# --- claims on the case item ---------------------------------------------------------------------

RULES = [
    {"name": "assigned", "on": "field_changed", "fields": ["assigned_user"]},
    {"name": "updated", "on": "case_updated"},
]


def settings_with(rules: list[dict[str, Any]], **extra: Any) -> Settings:
    return Settings.from_mapping({"domain_id": DOMAIN, "notification_rules": rules, **extra})


def test_n_copies_give_one_message_per_rule_and_one_claim(stack: Stack) -> None:
    settings = settings_with(RULES)
    raw = load_event("case-updated")
    for _ in range(5):
        stack.container(settings).deliver(raw)  # a new container every time
    assert sorted(attributes_of(m)["rule"] for m in stack.messages()) == ["assigned", "updated"]
    assert len(stack.bus_events()) == 1
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName="casewatch-state")["Items"]
    assert {i["sk"]["S"].split("#")[0] for i in items} == {"CASE", "OBS"}  # no idempotency records
    [item] = case_items()
    [(key, claim)] = item["claims"]["M"].items()
    assert key == claim_id(claim_key(CORPUS["case-updated"]))
    assert claim["M"]["d"] == {"BOOL": True} and "o" not in claim["M"]
    assert item["rev"] == {"N": "1"}  # the duplicates wrote nothing


def test_a_concurrent_duplicate_raises_in_progress_and_sends_no_second_message(stack: Stack) -> None:
    """The first container is still sending (its claim pending, leased until its invocation ends): a
    duplicate in another container is retried later, and sends nothing."""
    settings = settings_with(RULES[:1])
    first, second = stack.container(settings), stack.container(settings)
    raw = load_event("case-updated")
    raised: list[BaseException] = []
    publish = first.adapters.notifier.publish

    def publish_while_a_duplicate_arrives(notification: Any) -> str:
        try:
            second.deliver(raw)
        except DuplicateInProgressError as exc:
            raised.append(exc)
        return publish(notification)

    first.adapters.notifier.publish = publish_while_a_duplicate_arrives  # type: ignore[method-assign]
    first.deliver(raw)
    assert len(raised) == 1
    assert len(stack.messages()) == 1
    assert len(stack.bus_events()) == 1
    second.deliver(raw)  # its retry finds the claim done
    assert (stack.messages(), stack.bus_events()) == ([], [])
    assert (second.counts[DUPLICATE_TRIGGERS], second.counts[NOTIFICATIONS_PUBLISHED]) == (1, 0)


def test_a_container_killed_after_its_write_leaves_an_outbox_the_retry_sends(stack: Stack) -> None:
    settings = settings_with(RULES)
    raw = load_event("case-updated")
    dying = stack.container(settings)

    def killed(notification: Any) -> str:
        raise Crash("Task timed out")

    dying.adapters.notifier.publish = killed  # type: ignore[method-assign]
    with pytest.raises(Crash):
        dying.deliver(raw)
    assert stack.messages() == [] and stack.bus_events() == []
    [item] = case_items()
    [claim] = item["claims"]["M"].values()
    assert claim["M"]["d"] == {"BOOL": False} and "o" in claim["M"]  # pending, with its outbox
    lease_ms = int(claim["M"]["l"]["N"])
    assert lease_ms == int((NOW + timedelta(milliseconds=LEASE_MS)).timestamp() * 1000)
    with pytest.raises(DuplicateInProgressError):  # within the lease: maybe still running
        stack.container(settings).deliver(raw)
    stack.clock.advance(timedelta(minutes=1))  # Lambda's retry of the timed-out invocation
    stack.container(settings).deliver(raw)
    assert sorted(attributes_of(m)["rule"] for m in stack.messages()) == ["assigned", "updated"]
    assert len(stack.bus_events()) == 1
    [item] = case_items()
    [claim] = item["claims"]["M"].values()
    assert claim["M"]["d"] == {"BOOL": True} and "o" not in claim["M"]
    stack.container(settings).deliver(raw)
    assert (stack.messages(), stack.bus_events()) == ([], [])


def test_a_failed_publish_is_retried_alone_by_the_next_delivery(stack: Stack) -> None:
    settings = settings_with(RULES)
    raw = load_event("case-updated")
    container = stack.container(settings)
    publish = container.adapters.notifier.publish

    def fail_assigned(notification: Any) -> str:
        if notification.rule == "assigned":
            raise RuntimeError("SNS unavailable")
        return publish(notification)

    container.adapters.notifier.publish = fail_assigned  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        container.deliver(raw)
    assert [attributes_of(m)["rule"] for m in stack.messages()] == ["updated"]
    assert len(stack.bus_events()) == 1
    [claim] = case_items()[0]["claims"]["M"].values()
    outbox = json.loads(claim["M"]["o"]["S"])
    assert outbox["pen"] == [notification_id(CORPUS["case-updated"].id, "assigned", None)]
    stack.clock.advance(timedelta(minutes=1))
    stack.container(settings).deliver(raw)
    stack.container(settings).deliver(raw)
    assert [attributes_of(m)["rule"] for m in stack.messages()] == ["assigned"]
    assert stack.bus_events() == []


def test_sla_signals_notify_once_across_functions_and_containers(stack: Stack) -> None:
    """The warning timer delivered twice, the breach declared by the timer and again looked at by the
    change feed's due sweep, in separate containers: each SLA signal notifies once."""
    settings = load_cdk_context(ROOT / "cdk.json")
    stack.clock.set(datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC))
    stack.container(settings).deliver(load_event("case-created"))  # high priority: first response 09:30
    target = datetime(2026, 11, 23, 9, 30, 0, 412000, tzinfo=UTC)

    def timer(kind: str) -> dict[str, Any]:
        return SlaTimerPayload(
            kind=kind,
            domain_id=DOMAIN,
            case_id=CASE_1,
            sla_name="first-response-high",
            sla_key=FIRST,
            target_time=target,
        ).wire()

    def timer_container() -> Any:
        return build_sla_timer_app(settings, stack.container(settings).adapters)

    stack.clock.set(target - timedelta(minutes=6))
    for _ in range(2):
        sla_timer.handler(timer("warning"), LambdaContext("casewatch-sla-timer"), app=timer_container())
    stack.clock.set(target + settings.breach_grace)
    feed_adapters = stack.container(settings).adapters
    feed_adapters.feed.advance(DOMAIN, target + settings.breach_grace - settings.index_lag, None)
    for _ in range(2):
        sla_timer.handler(timer("breach"), LambdaContext("casewatch-sla-timer"), app=timer_container())
    stack.clock.advance(settings.feed_period)
    feed_app = build_reconcile_app(settings, feed_adapters)
    reconcile.handler({"id": "poll-1", "detail": {}}, LambdaContext("casewatch-reconcile"), app=feed_app)
    attributes = sorted((attributes_of(m) for m in stack.messages()), key=lambda a: a["rule"])
    sla = [(a["rule"], a["eventType"], a["slaName"]) for a in attributes if a["rule"].startswith("sla-")]
    assert sla == [
        ("sla-at-risk", "SLA.AT_RISK", "first-response-high"),
        ("sla-breached", "SLA.BREACHED", "first-response-high"),
    ]
    kinds = Counter(e["detail-type"] for e in stack.bus_events())
    assert (kinds["Sla At Risk"], kinds["Sla Breached"]) == (1, 1)


# --- replays -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["process", "skip"])
def test_replays(stack: Stack, policy: str) -> None:
    settings = settings_with(RULES, replays=policy)
    for stem in ("case-updated", "case-updated-replayed", "case-updated-replayed"):
        stack.container(settings).deliver(load_event(stem))
    replays = sorted(attributes_of(m)["replay"] for m in stack.messages())
    assert replays == (["false", "false", "true", "true"] if policy == "process" else ["false", "false"])
    bus = stack.bus_events()
    assert sorted(str(e["detail"]["event"]["replayName"]) for e in bus) == ["None", REPLAY]


def test_a_replay_of_the_original_event_id_notifies_again(stack: Stack) -> None:
    settings = settings_with(RULES[:1])
    original = load_event("case-updated")
    replay = {**load_event("case-updated"), "replay-name": "rehearsal"}
    assert replay["id"] == original["id"]
    stack.container(settings).deliver(original)
    stack.container(settings).deliver(replay)
    assert sorted(attributes_of(m)["replay"] for m in stack.messages()) == ["false", "true"]


# --- ordering ----------------------------------------------------------------------------------

STATUS_RULES = [
    {"name": "closed", "on": "field_changed", "fields": ["status"], "to_values": ["closed"]},
    {"name": "opened", "on": "field_changed", "fields": ["status"], "to_values": ["open"]},
]


def status_event(event_id: str, at: str, status: str) -> dict[str, Any]:
    raw = load_event("case-updated")
    raw = {**raw, "id": event_id, "detail": {**raw["detail"], "approximateChangeTime": at}}
    raw["detail"]["case"] = {
        **raw["detail"]["case"],
        "fields": {**raw["detail"]["case"]["fields"], "status": {"value": FieldValue.of(status).to_wire()}},
    }
    return raw


def test_closed_is_never_followed_by_a_stale_open(stack: Stack) -> None:
    settings = settings_with(STATUS_RULES)
    closed = status_event("e-closed", "2026-11-23T10:00:00.000Z", "closed")
    stale_open = status_event("e-open", "2026-11-23T09:00:00.000Z", "open")
    containers = [stack.container(settings) for _ in range(2)]
    containers[0].deliver(closed)
    containers[1].deliver(stale_open)
    containers[1].deliver(stale_open)
    messages = stack.messages()
    assert [attributes_of(m)["rule"] for m in messages] == ["closed"]
    assert json.loads(messages[0]["Message"])["asOf"] == "2026-11-23T10:00:00.000Z"
    assert (containers[1].counts[NOTIFICATIONS_STALE], containers[1].counts[DUPLICATE_TRIGGERS]) == (1, 1)
    assert len(stack.bus_events()) == 2  # both events are still re-published, each with its asOf

    [item] = case_items()
    mark = item["so"]["M"]["live"]["S"]
    at_ms = int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000)
    assert mark == f"{at_ms}|{status_hash('closed')}"
    assert "closed" not in json.dumps(item["so"])  # the status is stored hashed

    reopened = status_event("e-reopen", "2026-11-23T11:00:00.000Z", "open")
    stack.container(settings).deliver(reopened)
    assert [attributes_of(m)["rule"] for m in stack.messages()] == ["opened"]


# --- redaction ---------------------------------------------------------------------------------

SECRETS = (
    "Refund not received",  # title
    "Customer reports the refund",  # summary
    "profiles/5e4d3c2b1a0f4e9d8c7b6a5f4e3d2c1b",  # customer_id
    "78412093",  # reference_number
    "pending-customer",  # status (also an SLA's target value)
)


def test_redacted_fields_never_reach_sns_the_bus_the_state_table_or_the_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    rules = [
        {"name": "everything-case", "on": "case_updated"},
        {"name": "created", "on": "case_created"},
        {"name": "items", "on": "related_item_added"},
        {"name": "deleted", "on": "case_deleted"},
        {"name": "met", "on": "sla_met"},
    ]
    settings = settings_with(
        rules,
        field_names={"priority": PRIORITY},
        redact_fields=["title", "summary", "customer_id", "reference_number", "status"],
        sla_policies=[{"name": "first", "target_minutes": 60, "complete_when": {"related_item": "Comment"}}],
    )
    caplog.set_level(
        "INFO"
    )  # botocore's DEBUG logs echo request bodies: never run it at DEBUG with real data
    caplog.set_level("DEBUG", logger="casewatch")
    caplog.set_level("DEBUG", logger="aws_lambda_powertools")
    container = stack.container(settings)
    for path in sorted(SAMPLE_FILES, key=lambda p: load_event(p.stem)["detail"]["approximateChangeTime"]):
        container.deliver(load_event(path.stem))

    messages, bus = stack.messages(), stack.bus_events()
    sns_bodies, bus_bodies = [json.dumps(m) for m in messages], [json.dumps(e) for e in bus]
    assert sorted(attributes_of(m)["rule"] for m in messages) == [
        "created",
        "deleted",
        *["everything-case"] * 3,  # case-updated, its replay, case 2's metadata-only update
        *["items"] * 4,
        *["met"] * 2,  # the policy (met by the comment) and the Cases SLA (by pending-customer)
    ]
    assert sorted(e["detail-type"] for e in bus) == [
        "Case Deleted",
        *["Case Enriched"] * 4,
        *["Related Item Enriched"] * 4,
        "Sla Breached",  # case 2's policy: an hour passed before its first event
        *["Sla Met"] * 2,
    ]
    for body in sns_bodies + bus_bodies:
        for secret in SECRETS:
            assert secret not in body
    assert any('"status": "[redacted]"' in json.dumps(attributes_of(json.loads(b))) for b in sns_bodies)

    ours = [r for r in caplog.records if r.name.startswith(("casewatch", "aws_lambda_powertools"))]
    assert ours, "the functions log what they do"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (*SECRETS, "high", "refund was issued", "queue/9e8d7c6b"):
        assert secret not in logged
