"""A late redrive sends nothing twice (issue 12, defect 10, on the claims of issue 13): an event's claim is
its idempotency record, kept with the case; a case's claims are pruned only past `MAX_CLAIMS`, and then only
those done and older than `CLAIM_RETENTION` (15 days), longer than the dead-letter queues keep an event
(14 days): a redrive of a dead-lettered event, as late as the queues allow, in a new container, finds the
claim and sends nothing again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casewatch.adapters.dynamodb_case_store import CLAIM_RETENTION, MAX_CLAIMS
from casewatch.constants import DEAD_LETTER_RETENTION_DAYS, IDEMPOTENCY_EXPIRY_DAYS
from casewatch.settings import Settings
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import InMemoryCaseStore
from tests.apps import World
from tests.builders import CASE_1, DOMAIN, T0, comment, load_event

SETTINGS = Settings.from_mapping(
    {"domain_id": DOMAIN, "notification_rules": [{"name": "created", "on": "case_created"}]}
)
BUSY = 3  # claims a case keeps before old ones are pruned (MAX_CLAIMS in production), small here


def test_claims_outlive_the_dead_letter_queues() -> None:
    assert (
        timedelta(days=DEAD_LETTER_RETENTION_DAYS)
        < CLAIM_RETENTION
        == timedelta(days=IDEMPOTENCY_EXPIRY_DAYS)
    )
    assert MAX_CLAIMS == 500


@pytest.mark.parametrize(
    ("after", "sent_again"),
    [
        (timedelta(days=DEAD_LETTER_RETENTION_DAYS), False),  # the queues' last moment: the claim is found
        (CLAIM_RETENTION - timedelta(minutes=1), False),
        (CLAIM_RETENTION + timedelta(minutes=1), True),  # pruned: the event applies again (never redriven)
    ],
    ids=["dead-letter-retention", "just-before-expiry", "just-after-expiry"],
)
@pytest.mark.parametrize("busy", [True, False], ids=["busy-case", "quiet-case"])
def test_a_late_redrive_sends_nothing_twice(after: timedelta, sent_again: bool, busy: bool) -> None:
    """The event's notification went out; the event was dead-lettered too (a copy whose delivery failed). The
    case goes on (`BUSY` comments when `busy`: claims past the limit, the old ones pruned); then the copy is
    redriven, `after` the first delivery, to a new container."""
    store = InMemoryCaseStore((), max_claims=BUSY)
    first = World(SETTINGS, clock=VirtualClock(T0), store=store)
    raw = load_event("case-created")
    assert first.deliver(raw)["outcome"] == "handled"
    assert [n["rule"] for n in first.notifications()] == ["created"]
    first.clock.advance(after)
    for n in range(BUSY if busy else 0):
        first.deliver(comment(CASE_1, (after + timedelta(minutes=n)) / timedelta(minutes=1), f"cm{n}"))
    later = World(SETTINGS, clock=VirtualClock(first.clock.now()), store=store)  # a new container
    assert later.deliver(raw)["outcome"] == "handled"
    assert [n["rule"] for n in later.notifications()] == (["created"] if sent_again and busy else [])
    assert len(later.bus_events()) == (1 if sent_again and busy else 0)
