"""The functions as Lambda runs them: no app injected, `casewatch.bootstrap` builds each from the
environment the stack sets, on moto (DynamoDB, SNS, EventBridge, SQS, Scheduler), Cases the emulator
(`CASEWATCH_CASES_ENDPOINT`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from casewatch.adapters.clients import dynamodb_client, scheduler_client
from casewatch.adapters.scheduler_timers import schedule_name
from casewatch.constants import (
    ENV_CASES_ENDPOINT,
    ENV_CONFIG,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.domain.sla.timers import TimerKind
from casewatch.errors import SettingsError
from casewatch.handlers import case_changed, reconcile, sla_timer
from casewatch.settings import Settings
from casewatch_dev.emulator import CasesEmulator
from tests.apps import SCHEDULE_GROUP, SCHEDULER_ROLE_ARN, SLA_TIMER_ARN, LambdaContext
from tests.builders import DOMAIN, FIRST, PRIORITY, REGION, RESOLVE, SLA_SETTINGS, case_event_raw


def created_now(case_id: str) -> dict[str, Any]:
    """A high-priority case created now (the functions run on the wall clock: targets in the future)."""
    return case_event_raw("CASE.CREATED", case_id, datetime.now(UTC), {"status": "open", PRIORITY: "high"})


@pytest.fixture
def cases_endpoint(moto: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[CasesEmulator]:
    """The Cases emulator on 127.0.0.1, where the functions' Cases client goes."""
    with CasesEmulator(seed=1) as emu:
        emu.seed_domain(domain_id=DOMAIN)
        emu.seed_field(DOMAIN, "Priority", "SingleSelect", field_id=PRIORITY)
        monkeypatch.setenv(ENV_CASES_ENDPOINT, emu.url)
        yield emu


@pytest.fixture
def stack_env(
    state_table: str, cases_endpoint: CasesEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The stack's resources on moto and the functions' environment naming them (no dead-letter queue:
    each test adds it where the function has one)."""
    settings = Settings.from_mapping(
        {
            **json.loads(SLA_SETTINGS.model_dump_json()),
            "notification_rules": [{"name": "breached", "on": "sla_breached"}],
        }
    )
    scheduler_client().create_schedule_group(Name=SCHEDULE_GROUP)
    boto3.client("events", region_name=REGION).create_event_bus(Name="casewatch-enriched")
    env = {
        ENV_CONFIG: settings.runtime_json(),
        ENV_SLA_TABLE: state_table,
        ENV_TOPIC_ARN: boto3.client("sns", region_name=REGION).create_topic(Name="n")["TopicArn"],
        ENV_EVENT_BUS: "casewatch-enriched",
        ENV_SCHEDULE_GROUP: SCHEDULE_GROUP,
        ENV_SLA_TIMER_ARN: SLA_TIMER_ARN,
        ENV_SCHEDULER_ROLE_ARN: SCHEDULER_ROLE_ARN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="casewatch-invalid")["QueueUrl"]
    monkeypatch.setenv(ENV_DEAD_LETTER_QUEUE_URL, url)
    return str(url)


def test_the_event_function_tracks_slas_and_sets_timers(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    dead_letter_queue(monkeypatch)
    result = case_changed.handler(created_now("c1"), lambda_context)
    assert result["outcome"] == "handled"
    schedules = {s["Name"] for s in scheduler_client().list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"]}
    assert schedules == {schedule_name("c1", key, kind) for key in (FIRST, RESOLVE) for kind in TimerKind}
    items = dynamodb_client().query(
        TableName=stack_env[ENV_SLA_TABLE],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "CASE#c1"}},
    )["Items"]
    assert [i["sk"]["S"].split("#")[0] for i in items] == ["CASE", "OBS"]  # one case item, one observation


def test_the_timer_and_reconcile_functions_run_without_a_dead_letter_queue(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    dead_letter_queue(monkeypatch)
    case_changed.handler(created_now("c1"), lambda_context)
    monkeypatch.delenv(ENV_DEAD_LETTER_QUEUE_URL)  # the stack gives the other two functions none
    from casewatch import bootstrap

    bootstrap.forget_apps()  # other containers
    name = schedule_name("c1", FIRST, TimerKind.BREACH)
    payload = json.loads(
        scheduler_client().get_schedule(Name=name, GroupName=SCHEDULE_GROUP)["Target"]["Input"]
    )
    response = sla_timer.handler(payload, lambda_context)
    assert (response["outcome"], response["caseId"]) == ("handled", "c1")
    assert response["slaChanges"] == []  # fired early (on the wall clock, its target is 30 minutes away)
    polled = reconcile.handler({"id": "r1"}, lambda_context)
    assert (polled["outcome"], polled["throttled"], polled["caseErrors"]) == ("handled", False, 0)
    assert polled["searchRequests"] == 2  # SearchCases and SearchAllRelatedItems, on the emulator
    with pytest.raises(SettingsError, match=ENV_DEAD_LETTER_QUEUE_URL):
        case_changed.handler(created_now("c2"), lambda_context)
