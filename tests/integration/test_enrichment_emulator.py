"""Enrichment end to end: the handlers with real adapters, the real boto3 `connectcases` client against
the Cases emulator (127.0.0.1), DynamoDB and SQS on moto. GetCase requests are counted by the emulator.

No wall-clock sleeps: throttling is injected with `fail_next`, botocore's backoff and adaptive
rate limiter are made instant (the retry decisions themselves are botocore's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.retries.bucket import TokenBucket
from botocore.retries.standard import ExponentialBackoff

from casewatch import bootstrap
from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.clients import client_config
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.constants import (
    ENV_CASES_ENDPOINT,
    ENV_CONFIG,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SLA_TABLE,
    ENV_TOPIC_ARN,
)
from casewatch.errors import CasesThrottledError, CasesUnavailableError
from casewatch.handlers import related_item_created
from casewatch.models.enriched import EnrichedCase, Provenance
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from casewatch_dev.emulator import CasesEmulator
from tests.apps import LambdaContext, World
from tests.builders import (
    CASE_1,
    CASE_2,
    DOMAIN,
    INVALID_FILES,
    PRIORITY,
    REGION,
    SAMPLE_FILES,
    TEMPLATE,
    load_event,
    repo_settings,
)

AGENT = "arn:aws:connect:us-east-1:123456789012:instance/f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b/agent/7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
QUEUE = "arn:aws:connect:us-east-1:123456789012:instance/f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b/queue/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
PROFILE = "arn:aws:profile:us-east-1:123456789012:domains/amazon-connect-acme/profiles/5e4d3c2b1a0f4e9d8c7b6a5f4e3d2c1b"
# The two sample cases as Cases holds them at the end of the sample day (case 2 before its deletion).
CASE_VALUES: dict[str, dict[str, object]] = {
    CASE_1: {
        "title": "Refund not received",
        "status": "pending-customer",
        "summary": "Customer reports the refund for order 1234 has not arrived.",
        "customer_id": PROFILE,
        "assigned_queue": QUEUE,
        "assigned_user": AGENT,
        PRIORITY: "high",
        "reference_number": "78412093",
    },
    CASE_2: {
        "title": "Damaged parcel",
        "status": "open",
        "customer_id": PROFILE,
        "assigned_queue": QUEUE,
        PRIORITY: "low",
        "reference_number": "78412094",
    },
}
NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
ROUTE = {t: spec.name for spec in (CASE_CHANGED, RELATED_ITEM_CREATED_FN) for t in spec.event_types}


def seed(emu: CasesEmulator, domain_id: str = DOMAIN, extra_fields: int = 0) -> list[str]:
    """The sample domain, field, template and cases (and `extra_fields` more custom fields)."""
    emu.seed_domain(domain_id=domain_id)
    emu.seed_field(domain_id, "Priority", "SingleSelect", field_id=PRIORITY)
    extra = [
        emu.seed_field(domain_id, f"Extra {i}", "Text", field_id=f"extra-{i:03d}")
        for i in range(extra_fields)
    ]
    emu.seed_template(domain_id, "Default", template_id=TEMPLATE)
    for case_id, values in CASE_VALUES.items():
        emu.seed_case(domain_id, TEMPLATE, {**values, **{f: f"value of {f}" for f in extra}}, case_id=case_id)
    return extra


@pytest.fixture(scope="module")
def emu() -> Iterator[CasesEmulator]:
    with CasesEmulator(clock=VirtualClock(NOW), seed=7) as emulator:
        seed(emulator)
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_counters(emu: CasesEmulator) -> Iterator[None]:
    emu.reset_counters()
    yield
    emu.getcase_page_size = 100
    emu.empty_as = "omit"


@pytest.fixture(autouse=True)
def _instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore decides every retry as usual; only its waits are skipped."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(TokenBucket, "acquire", lambda self, amount=1, block=True: True)


@dataclass
class Aws:
    """The state table and a dead-letter queue on moto."""

    dynamodb: Any
    sqs: Any
    table: str
    queue_url: str

    def parked(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [{"body": json.loads(m["Body"]), "attributes": m["MessageAttributes"]} for m in messages]

    def stored(self, settings: Settings, case_id: str) -> EnrichedCase | None:
        """The case's stored view (what the next event's enrichment starts from)."""
        store = DynamoDbCaseStore(self.table, self.dynamodb, bootstrap.policies(settings))
        return store.load(DOMAIN, case_id).snapshot


@pytest.fixture
def moto_aws(state_table: str) -> Aws:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="casewatch-invalid-events")["QueueUrl"]
    return Aws(boto3.client("dynamodb", region_name=REGION), sqs, state_table, url)


@pytest.fixture(name="repo_settings")
def repo_settings_fixture() -> Settings:
    return repo_settings()


def real_deps(emu: CasesEmulator, res: Aws, settings: Settings, *, max_attempts: int = 4) -> World:
    """The functions on the real adapters for Cases (the emulator), the case store and SQS (moto)."""
    cases = CasesApi(emu.client(config=client_config(max_attempts=max_attempts, mode="adaptive")))
    return World(
        settings,
        clock=VirtualClock(NOW),
        cases=cases,
        cases_slas=cases,
        store=DynamoDbCaseStore(res.table, res.dynamodb, bootstrap.policies(settings)),
        dead_letters=SqsDeadLetters(res.queue_url, client=res.sqs),
    )


def run(raw: Any, deps: World, function: str | None = None) -> dict[str, Any]:
    return deps.deliver(raw, function)


def only_case(deps: World) -> EnrichedCase:
    [case] = deps.views()
    return case


def emulator_value(emu: CasesEmulator, case_id: str, field_id: str, domain_id: str = DOMAIN) -> object:
    union = emu.case_values(domain_id, case_id).get(field_id)
    return None if not union else next(iter(union.values()))


def retarget(raw: dict[str, Any], *, domain_id: str = DOMAIN, case_id: str | None = None) -> dict[str, Any]:
    """A sample event moved to another domain and/or case."""
    text = json.dumps(raw).replace(DOMAIN, domain_id)
    if case_id is not None:
        text = text.replace(CASE_1, case_id).replace(CASE_2, case_id)
    moved: dict[str, Any] = json.loads(text)
    return moved


# --- every sample event, GetCase requests counted ------------------------------------------------

# GetCase requests per sample event, each on an empty snapshot store.
REPO_SETTINGS_CALLS = {
    "case-created": 0,  # carries every needed field; assigned_user is in includedData, omitted: empty
    "case-updated": 0,
    "case-updated-replayed": 0,
    "case-updated-metadata-only": 1,  # no includedData at all
    "case-deleted": 0,  # never fetches
    "related-item-comment": 1,  # no case fields, no snapshot yet
    "related-item-contact": 1,
    "related-item-file": 1,
    "related-item-sla": 1,
    "related-item-updated-unhandled": 0,
}
# The same needed fields, but casewatch told nothing about includedData: absent fields are unknown.
NO_INCLUDED_DATA_CALLS = {
    **REPO_SETTINGS_CALLS,
    "case-created": 1,  # assigned_user
    "case-updated": 1,  # customer_id, reference_number
    "case-updated-replayed": 1,
}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("config", ["repo", "no_included_data"])
def test_every_sample_event_with_the_real_client(
    path: Path, config: str, emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    settings = repo_settings if config == "repo" else repo_settings.model_copy(update={"event_fields": []})
    expected = (REPO_SETTINGS_CALLS if config == "repo" else NO_INCLUDED_DATA_CALLS)[path.stem]
    raw = load_event(path.stem)
    deps = real_deps(emu, moto_aws, settings)
    result = run(raw, deps)

    assert emu.calls["GetCase"] == expected == result["getcaseCalls"]
    assert deps.counts["GetCaseCalls"] == expected  # type: ignore[attr-defined]
    if raw["detail"]["eventType"] not in ROUTE:
        assert result["outcome"] == "unhandled"
        return
    assert result["outcome"] == "handled"
    case = only_case(deps)
    needed = settings.needed_field_ids
    if expected:
        [record] = emu.call_log
        event_fields = set(raw["detail"].get("case", {}).get("fields", {}))
        assert set(record.params["fields"]) == needed - event_fields  # one request, exactly the missing ids
    for field_id, field in case.fields.items():
        if field.source is Provenance.GETCASE:
            assert field.value.python == emulator_value(emu, case.case_id, field_id)
            assert field.as_of == NOW
    if raw["detail"]["eventType"] == "CASE.DELETED":
        assert case.deleted
    else:
        assert set(case.fields) >= needed
        assert case.missing == ()
    stored = moto_aws.stored(settings, case.case_id)
    assert stored is not None  # the view, with the needed fields, is the case's durable snapshot now
    assert stored.fields == {f: v for f, v in case.fields.items() if f in needed}
    assert stored.model_dump(exclude={"fields"}) == case.model_dump(exclude={"fields"})


def test_the_sample_day_in_order_needs_one_getcase(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    events = sorted(
        (load_event(p.stem) for p in SAMPLE_FILES), key=lambda e: e["detail"]["approximateChangeTime"]
    )
    deps = real_deps(emu, moto_aws, repo_settings)
    per_event = {e["id"]: run(e, deps)["getcaseCalls"] for e in events}
    assert emu.calls["GetCase"] == sum(per_event.values()) == 1
    assert per_event[load_event("case-updated-metadata-only")["id"]] == 1


def test_the_replayed_update_reuses_the_snapshot(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    settings = repo_settings.model_copy(update={"event_fields": []})  # the update lacks 2 needed fields
    deps = real_deps(emu, moto_aws, settings)
    assert run(load_event("case-updated"), deps)["getcaseCalls"] == 1
    # The same change again (an archive replay): the fields fetched at NOW are not older than it.
    assert run(load_event("case-updated-replayed"), deps)["getcaseCalls"] == 0
    assert emu.calls["GetCase"] == 1


def test_invalid_events_are_parked_on_the_queue_with_their_reason(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    deps = real_deps(emu, moto_aws, repo_settings)
    raws = [json.loads(p.read_text()) for p in INVALID_FILES if p.stem not in {"not-json"}]
    for raw in raws:
        assert run(raw, deps, CASE_CHANGED.name)["outcome"] == "invalid"
    parked = []
    while batch := moto_aws.parked():
        parked += batch
    assert len(parked) == len(raws)
    assert emu.calls["GetCase"] == 0
    for message in parked:
        body = message["body"]
        assert body["reason"] and body["function"] == CASE_CHANGED.name
        assert message["attributes"]["function"]["StringValue"] == CASE_CHANGED.name
        assert message["attributes"]["reason"]["StringValue"] == body["reason"][:256]
        assert body["event"] in raws
        assert "truncated" not in body


def test_an_event_too_big_for_sqs_is_parked_truncated(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    raw = load_event("case-created")
    raw["detail"]["case"]["fields"]["summary"] = {"value": {"stringValue": "x" * 300_000}}  # > 4100: invalid
    deps = real_deps(emu, moto_aws, repo_settings)
    assert run(raw, deps)["outcome"] == "invalid"
    [message] = moto_aws.parked()
    body = message["body"]
    assert body["truncated"] is True
    assert len(json.dumps(body, separators=(",", ":")).encode()) <= 262_144  # SQS's classic limit
    assert body["eventBytes"] > 262_144
    assert body["event"].startswith('{"version":"0","id":"0f3b5a1e')
    assert body["eventId"] == raw["id"]
    assert "4100" in body["reason"]


# --- the enrichment request --------------------------------------------------------------------


def test_fields_the_event_carries_are_never_fetched(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    settings = repo_settings.model_copy(
        update={"enrichment_fields": ["status", "title", "summary", "case_reason"]}
    )
    deps = real_deps(emu, moto_aws, settings.model_copy(update={"event_fields": []}))
    run(load_event("case-updated"), deps)
    [record] = emu.call_log
    carried = set(load_event("case-updated")["detail"]["case"]["fields"])
    assert not set(record.params["fields"]) & carried
    assert "summary" in record.params["fields"]


@pytest.fixture
def wide_domain() -> Iterator[tuple[CasesEmulator, list[str]]]:
    """A domain with 230 more custom fields, every one set on the sample cases; no paging under 500."""
    with CasesEmulator(clock=VirtualClock(NOW), seed=3, getcase_page_size=500) as emulator:
        extra = seed(emulator, extra_fields=230)
        yield emulator, extra


def test_many_missing_fields_take_one_request(
    wide_domain: tuple[CasesEmulator, list[str]], moto_aws: Aws
) -> None:
    emu, extra = wide_domain
    settings = Settings(domain_id=DOMAIN, enrichment_fields=["status", "title", *extra[:150]])
    deps = real_deps(emu, moto_aws, settings)
    run(load_event("case-updated-metadata-only"), deps)
    assert emu.calls["GetCase"] == 1
    [record] = emu.call_log
    assert len(record.params["fields"]) == 152
    case = only_case(deps)
    assert case.value("extra-149") == "value of extra-149"
    assert case.missing == ()


def test_more_than_220_fields_take_one_request_per_220(
    wide_domain: tuple[CasesEmulator, list[str]], moto_aws: Aws
) -> None:
    emu, extra = wide_domain
    settings = Settings(domain_id=DOMAIN, enrichment_fields=["status", *extra])  # 231 fields
    deps = real_deps(emu, moto_aws, settings)
    assert run(load_event("related-item-comment"), deps)["getcaseCalls"] == 2
    assert [len(r.params["fields"]) for r in emu.call_log] == [220, 11]
    case = only_case(deps)
    assert {case.value(f) for f in extra} == {f"value of {f}" for f in extra}


def test_pages_are_followed_to_the_end(emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings) -> None:
    emu.getcase_page_size = 3
    deps = real_deps(emu, moto_aws, repo_settings)
    result = run(load_event("case-updated-metadata-only"), deps)  # 7 needed fields: pages of 3, 3, 1
    assert emu.calls["GetCase"] == 3 == result["getcaseCalls"]
    assert [r.params.get("nextToken") is not None for r in emu.call_log] == [False, True, True]
    case = only_case(deps)
    for field_id in repo_settings.needed_field_ids:
        assert case.value(field_id) == emulator_value(emu, CASE_2, field_id)
        assert case.fields[field_id].source is Provenance.GETCASE


@pytest.mark.parametrize("empty_as", ["omit", "emptyValue"])
def test_absent_and_empty_value_both_mean_empty(
    empty_as: Any, emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    emu.empty_as = empty_as
    deps = real_deps(emu, moto_aws, repo_settings)
    run(load_event("case-updated-metadata-only"), deps)  # case 2 has no assigned user
    case = only_case(deps)
    assert case.value("assigned_user") is None
    assert case.fields["assigned_user"].source is Provenance.GETCASE
    assert case.fields["assigned_user"].value.empty_value is not None
    assert case.missing == ()


# --- throttling, errors, deleted cases ---------------------------------------------------------


def test_a_throttle_is_retried_then_succeeds(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    emu.fail_next("GetCase", status=429, count=2)
    deps = real_deps(emu, moto_aws, repo_settings, max_attempts=3)
    result = run(load_event("related-item-comment"), deps)
    assert result["outcome"] == "handled"
    assert result["getcaseCalls"] == 1  # one request, botocore retried it
    assert emu.calls["GetCase"] == 3
    assert [r.status for r in emu.call_log] == [429, 429, 200]
    counts = deps.counts
    assert counts["GetCaseThrottled"] == 2  # seen although retried successfully
    assert counts["EventsHandled"] == 1
    assert only_case(deps).value("status") == "pending-customer"


def test_throttling_past_the_budget_propagates_from_the_handler(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    emu.fail_next("GetCase", status=429, count=3)
    deps = real_deps(emu, moto_aws, repo_settings, max_attempts=3)
    with pytest.raises(CasesThrottledError) as raised:
        run(load_event("related-item-comment"), deps)
    assert type(raised.value.__cause__).__name__ == "ThrottlingException"
    assert emu.calls["GetCase"] == 3  # the bounded budget
    counts = deps.counts
    assert counts["GetCaseThrottled"] == 3
    assert counts["EventsHandled"] == 0
    assert deps.views() == []
    assert moto_aws.parked() == []  # retryable: Lambda retries it, it is not parked
    # Lambda's retry, once Cases has capacity again, processes it.
    assert run(load_event("related-item-comment"), deps)["outcome"] == "handled"


def test_server_errors_past_the_budget_propagate(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    emu.fail_next("GetCase", status=500, count=2)
    deps = real_deps(emu, moto_aws, repo_settings, max_attempts=2)
    with pytest.raises(CasesUnavailableError):
        run(load_event("related-item-file"), deps)
    assert emu.calls["GetCase"] == 2


def test_a_deleted_case_is_processed_with_what_the_event_carries(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings
) -> None:
    gone = "0d0d0d0d-1e1e-4f2f-8a3a-4b4b4b4b4b4b"
    settings = repo_settings.model_copy(update={"event_fields": []})
    deps = real_deps(emu, moto_aws, settings)
    result = run(retarget(load_event("case-updated"), case_id=gone), deps)
    assert result["outcome"] == "handled"
    assert emu.calls["GetCase"] == 1  # 404 is final: no retry
    case = only_case(deps)
    assert case.flags == ("case_not_found",)
    assert case.missing == ("customer_id", "reference_number")
    assert case.value("status") == "pending-customer"
    assert deps.counts["CaseNotFound"] == 1


# --- the container's own composition root --------------------------------------------------------


def test_the_container_reaches_the_emulator_through_the_environment(
    emu: CasesEmulator, moto_aws: Aws, repo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No app injected: `casewatch.bootstrap` builds the function from the environment the stack sets."""
    sns = boto3.client("sns", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="casewatch-enriched")
    target = moto_aws.sqs.create_queue(QueueName="enriched-subscriber")["QueueUrl"]
    target_arn = moto_aws.sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])
    events.put_rule(Name="all", EventBusName="casewatch-enriched", EventPattern='{"source": ["casewatch"]}')
    events.put_targets(
        Rule="all",
        EventBusName="casewatch-enriched",
        Targets=[{"Id": "q", "Arn": target_arn["Attributes"]["QueueArn"]}],
    )
    for name, value in {
        ENV_CONFIG: repo_settings.runtime_json(),
        ENV_SLA_TABLE: moto_aws.table,
        ENV_TOPIC_ARN: sns.create_topic(Name="casewatch-notifications")["TopicArn"],
        ENV_EVENT_BUS: "casewatch-enriched",
        ENV_DEAD_LETTER_QUEUE_URL: moto_aws.queue_url,
        ENV_CASES_ENDPOINT: emu.url,
    }.items():
        monkeypatch.setenv(name, value)
    context = LambdaContext(RELATED_ITEM_CREATED_FN.name)
    result = related_item_created.handler(load_event("related-item-sla"), context)
    assert (result["outcome"], result["getcaseCalls"]) == ("handled", 1)
    assert emu.calls["GetCase"] == 1
    assert related_item_created.handler(load_event("related-item-contact"), context)["getcaseCalls"] == 0
    assert (
        bootstrap.event_app(RELATED_ITEM_CREATED_FN.name).processor.function == RELATED_ITEM_CREATED_FN.name
    )
    received = [
        json.loads(m["Body"])
        for m in moto_aws.sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)["Messages"]
    ]
    views = [e["detail"]["case"] for e in received if e["detail-type"] == "Related Item Enriched"]
    assert [v["fields"]["status"]["value"] for v in views] == [
        "pending-customer"
    ] * 2  # GetCase, then the snapshot
    # SLA tracking ran too: the Cases SLA item is tracked; its target passed long ago (on the wall clock),
    # so no timer is set: the change feed's due sweep declares the breach on its next poll.
    assert [e["detail-type"] for e in received if e["detail-type"].startswith("Sla")] == []
    store = DynamoDbCaseStore(moto_aws.table, moto_aws.dynamodb, bootstrap.policies(repo_settings))
    states = store.load(DOMAIN, CASE_1).states()
    sla = load_event("related-item-sla")["detail"]["relatedItem"]["relatedItemId"]
    assert f"cases#{sla}" in states
    assert (DOMAIN, CASE_1) in store.due_before(datetime.now(UTC))
