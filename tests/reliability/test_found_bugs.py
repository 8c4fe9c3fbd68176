"""Small regression tests for what the fault-injected replays found (each fixed in product code).

1. A timed-out invocation must not leave its side effects blocked: the event's claim is leased for the
   invocation's remaining time only, so Lambda's retry of a timed-out invocation sends the outbox its
   write left (it used to be an idempotency record in progress for Lambda's 15-minute maximum: both
   async retries met it and the event ended in the failure queue, its notifications unsent — the
   `timeouts` fault: 57 timeouts -> 44 failed events on a 1,200-event day).
2. A policy SLA armed retroactively — from the case's creation, by a later event, because the
   CASE.CREATED event was dropped — ignored a completing related item added between the creation and
   that later event: the first comment was never counted, the SLA stayed Overdue, and reconciliation
   (which re-reads the same comment) could not repair it (the `drop` fault, 10,000-event day).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casewatch.app.process_event import claim_key
from casewatch.bootstrap import build_event_app
from casewatch.domain.sla.fold import evaluate
from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind, case_fields
from casewatch.domain.sla.model import SlaStatus, compile_policies
from casewatch.handlers import case_changed
from casewatch.models.events import parse_case_event
from casewatch.topology import CASE_CHANGED
from casewatch_dev.clock import VirtualClock
from casewatch_dev.faults import SimulatedTimeout
from tests.apps import LambdaContext, memory_adapters
from tests.builders import load_event
from tests.reliability.scenario import SETTINGS

T0 = datetime(2026, 11, 23, 13, 14, 56, tzinfo=UTC)


class DiesOnce:
    """The notifier, but the invocation sending the first notification is killed (a timeout)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.died = False

    def publish(self, notification: Any) -> str:
        if not self.died:
            self.died = True
            raise SimulatedTimeout("task timed out")
        return str(self.inner.publish(notification))


def test_the_retry_of_a_timed_out_invocation_sends_its_notifications() -> None:
    clock = VirtualClock(T0)
    aws = memory_adapters(clock, SETTINGS)
    app = build_event_app(
        CASE_CHANGED, SETTINGS, replace(aws.adapters, notifier=DiesOnce(aws.adapters.notifier))
    )
    event = load_event("case-created")
    parsed = parse_case_event(event)
    assert parsed.case_id is not None
    with pytest.raises(SimulatedTimeout):
        case_changed.handler(event, LambdaContext("case-changed", 30_000), app=app)
    claim = aws.store.load(parsed.domain_id, parsed.case_id, claim_key=claim_key(parsed)).claim
    assert claim is not None and not claim.done  # the killed invocation left its claim pending
    assert claim.lease_until == T0 + timedelta(seconds=30)  # for its own remaining time only
    clock.advance(timedelta(minutes=1))  # Lambda's first retry
    result = case_changed.handler(event, LambdaContext("case-changed"), app=app)
    assert result["outcome"] == "handled"
    claim = aws.store.load(parsed.domain_id, parsed.case_id, claim_key=claim_key(parsed)).claim
    assert claim is not None and claim.done
    sent = aws.sns.take()
    ids = [m["MessageAttributes"]["notificationId"]["StringValue"] for m in sent]
    assert sent and len(ids) == len(set(ids))
    bodies = [json.loads(m["Body"]) for m in sent]
    assert {b["event"]["id"] for b in bodies if b.get("event")} == {event["id"]}
    assert len(aws.events.take()) == 1  # its enriched event, once


def test_a_policy_armed_from_the_creation_counts_an_earlier_completing_item() -> None:
    policies = compile_policies(SETTINGS.sla_policies, SETTINGS.field_id)
    priority = SETTINGS.field_id("priority")
    comment = Observation(T0 + timedelta(minutes=6), ObsKind.ITEM, item_type="Comment", ref="comment-1")
    update = Observation(  # the first case event casewatch sees: CASE.CREATED was dropped
        T0 + timedelta(minutes=17),
        ObsKind.CASE,
        fields=case_fields({"status": "open", priority: "high"}),
        created=T0,
    )
    created = Observation(
        T0, ObsKind.CASE, fields=case_fields({"status": "open", priority: "high"}), created=T0
    )
    in_order = evaluate(CaseSlaLog("d", "c").merge([created, comment, update]), policies)
    without_created = evaluate(CaseSlaLog("d", "c").merge([comment, update]), policies)
    key = "policy#first-response-high"
    assert in_order[key].status is SlaStatus.MET
    assert without_created[key].status is SlaStatus.MET
    assert without_created[key].completion_time == in_order[key].completion_time == comment.at
    assert without_created[key].target_time == in_order[key].target_time
