"""The memory backend is trustworthy: the same scenario on moto and in memory gives the same results.

The moto backend runs the real boto3 adapters on moto (DynamoDB condition expressions, SNS, SQS,
EventBridge, Scheduler); the memory backend runs the same handlers and adapters on in-memory services
with the same semantics. On the faulty small day (duplicates, reordering, drops, malformed events,
GetCase throttles) and on the clean one, they must agree on the SLA table, every notification (id and
rule), every dead letter (reason, function, event id) and the report's counts.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.scenario import SMALL_DAY_FAULTS, Run, issue_scenario, replay_day

COUNTS = (
    "events",
    "routed",
    "handled",
    "unhandled",
    "invalid",
    "dead_lettered",
    "failed",
    "lost",
    "access_denied",
)


def _dead_letters(run: Run) -> Counter[tuple[str, str, str | None]]:
    return Counter((d["reason"], d.get("function", ""), d.get("eventId")) for d in run.dead_letters)


def _assert_same(memory: Run, moto: Run) -> None:
    assert memory.sla == moto.sla
    assert memory.by_rule() == moto.by_rule()
    assert memory.notification_ids() == moto.notification_ids()
    assert _dead_letters(memory) == _dead_letters(moto)
    assert memory.failures == moto.failures == []
    for name in COUNTS:
        assert getattr(memory.report, name) == getattr(moto.report, name), name
    assert memory.report.duplicates_suppressed == moto.report.duplicates_suppressed
    assert memory.report.bus_events == moto.report.bus_events
    assert memory.report.getcase_calls == moto.report.getcase_calls


@pytest.mark.parametrize("kind", ["clean", "faulty"])
def test_memory_and_moto_backends_agree(kind: str) -> None:
    day, moto_clean, moto_faulty = issue_scenario("moto")
    if kind == "clean":
        _assert_same(replay_day(day, backend="memory"), moto_clean)
    else:
        _assert_same(replay_day(day, backend="memory", faults=SMALL_DAY_FAULTS), moto_faulty)
