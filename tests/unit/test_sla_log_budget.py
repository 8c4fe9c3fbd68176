"""The SLA log's byte budget (issue 12, defect 9): a log whose JSON passes `MAX_LOG_BYTES` compacts on
merge (settled repeats first, then the oldest settled, then the oldest CASE observations; never the
first), and the store refuses an item over DynamoDB's 400 KB before calling DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from casewatch.adapters.dynamodb_sla_store import MAX_ITEM_BYTES, DynamoDbSlaStore, item_bytes, log_item
from casewatch.domain.sla.log import (
    MAX_LOG_BYTES,
    SETTLED_AFTER,
    CaseSlaLog,
    Observation,
    ObsKind,
    case_fields,
    json_bytes,
)
from casewatch.domain.sla.model import SlaItemTooLargeError
from casewatch.domain.sla.records import SlaCaseRecord
from tests.builders import DOMAIN, T0

CASE = "c1"


def case_obs(minutes: float, title: str, *, first: bool = False) -> Observation:
    """A CASE observation `minutes` after T0 (the case's first one carries its creation time)."""
    return Observation(
        T0 + timedelta(minutes=minutes),
        ObsKind.CASE,
        fields=case_fields({"status": "open", "title": title}),
        created=T0 if first else None,
    )


def stored_json(observations: Sequence[Observation]) -> str:
    """The log item's `observations` attribute, as the store writes it."""
    return str(log_item(CaseSlaLog(DOMAIN, CASE, tuple(observations)), 1)["observations"]["S"])


def filled(head: Sequence[Observation], total: int, *, step: float = 1.0) -> list[Observation]:
    """`head`, then observations of ~8 KB each, `step` minutes apart, the last one padded so that the
    log's JSON is exactly `total` bytes."""
    out = list(head)

    def later() -> float:
        return (out[-1].at - T0).total_seconds() / 60 + step

    while json_bytes(out) + 2 * 9_000 < total:
        out.append(case_obs(later(), f"{len(out):04d}" + "x" * 8_000))
    unpadded = case_obs(later(), "")
    out.append(case_obs(later(), "x" * (total - json_bytes([*out, unpadded]))))
    assert json_bytes(out) == total
    return out


def test_json_bytes_is_the_stored_json() -> None:
    observations = [case_obs(0, "ünïcode", first=True), case_obs(1, "b")]
    for some in ([], observations[:1], observations):
        assert json_bytes(some) == len(stored_json(some).encode())


# -- exactly at the budget ---------------------------------------------------------------------------------


def test_a_log_of_exactly_the_budget_is_kept_whole() -> None:
    observations = filled([case_obs(0, "first", first=True)], MAX_LOG_BYTES)
    assert CaseSlaLog(DOMAIN, CASE).merge(observations).observations == tuple(observations)


def test_a_log_one_byte_over_the_budget_drops_its_oldest_case_observation_but_the_first() -> None:
    observations = filled([case_obs(0, "first", first=True)], MAX_LOG_BYTES + 1)
    merged = CaseSlaLog(DOMAIN, CASE).merge(observations).observations
    assert merged == (observations[0], *observations[2:])  # nothing is settled: the oldest goes
    assert json_bytes(merged) <= MAX_LOG_BYTES


# -- what goes first ---------------------------------------------------------------------------------------

NEWEST_AFTER = SETTLED_AFTER + timedelta(days=1)  # the recent observations start here, after T0


def budget_scenario(over: int) -> tuple[list[Observation], dict[str, list[Observation]]]:
    """A log `over` bytes above the budget: the first observation, three settled repeats of its status
    (redundant), two settled big changes, then recent big changes (never settled)."""
    first = case_obs(0, "first", first=True)
    repeats = [
        Observation(T0 + timedelta(hours=h), ObsKind.CASE, fields=case_fields({"status": "open"}))
        for h in (1, 2, 3)
    ]
    settled = [case_obs(24 * 60 + m, f"settled-{m}" + "s" * 6_000) for m in (0, 60)]
    recent_start = case_obs(NEWEST_AFTER.total_seconds() / 60, "recent-0" + "r" * 6_000)
    log = filled([first, *repeats, *settled, recent_start], MAX_LOG_BYTES + over, step=10)
    assert log[-1].at - SETTLED_AFTER > settled[-1].at  # the settled ones are settled
    return log, {"first": [first], "repeats": repeats, "settled": settled, "recent": log[6:]}


def size(observations: Sequence[Observation]) -> int:
    """The bytes these observations take in a log's JSON (each with its comma)."""
    return sum(len(o.to_json().encode()) + 1 for o in observations)


def test_settled_repeats_go_first() -> None:
    log, part = budget_scenario(over=1)
    merged = CaseSlaLog(DOMAIN, CASE).merge(log).observations
    assert merged == (*part["first"], *part["settled"], *part["recent"])
    assert json_bytes(merged) <= MAX_LOG_BYTES


def test_then_the_oldest_settled_observations() -> None:
    _, part = budget_scenario(over=1)
    log, part = budget_scenario(over=size(part["repeats"]) + 1)
    merged = CaseSlaLog(DOMAIN, CASE).merge(log).observations
    assert merged == (*part["first"], part["settled"][1], *part["recent"])
    assert json_bytes(merged) <= MAX_LOG_BYTES


def test_then_the_oldest_case_observations_at_all_but_never_the_first() -> None:
    _, part = budget_scenario(over=1)
    log, part = budget_scenario(over=size(part["repeats"]) + size(part["settled"]) + 1)
    merged = CaseSlaLog(DOMAIN, CASE).merge(log).observations
    assert merged == (*part["first"], *part["recent"][1:])
    assert json_bytes(merged) <= MAX_LOG_BYTES


# -- the item: DynamoDB's 400 KB ---------------------------------------------------------------------------


def test_item_bytes_of_a_known_item() -> None:
    """Sizes as DynamoDB documents them (names and values in UTF-8 bytes; a number one byte per two
    significant digits plus one; a flag or null one byte; a list or map 3 bytes plus a byte per element)."""
    item: dict[str, Any] = {
        "pk": {"S": "case#c1"},  # 2 + 7
        "é": {"S": "ü"},  # 2 + 2
        "revision": {"N": "7"},  # 8 + 2
        "expires_at": {"N": "1798450000"},  # 10 + 4 (6 significant digits)
        "done": {"BOOL": True},  # 4 + 1
        "gone": {"NULL": True},  # 4 + 1
        "refs": {"L": [{"S": "ab"}, {"N": "12"}]},  # 4 + 3 + (2 + 1) + (2 + 1)
        "meta": {"M": {"k": {"S": "v"}}},  # 4 + 3 + (1 + 1 + 1)
        "tags": {"SS": ["a", "bc"]},  # 4 + 3
        "raw": {"B": b"\x00\x01\x02"},  # 3 + 3
    }
    assert item_bytes(item) == 9 + 4 + 10 + 14 + 5 + 5 + 13 + 10 + 7 + 6


class RecordingDynamoDb:
    """A DynamoDB client that records the writes it is asked for (and accepts them)."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.puts.append(request)
        return {}


def log_of_item_size(total: int) -> CaseSlaLog:
    """A log (built directly, never merged: no compaction) whose first item is exactly `total` bytes."""
    first = case_obs(0, "first", first=True)
    huge = [case_obs(1 + i, f"{i:02d}" + "x" * 100_000) for i in range(3)]

    def log_with(pad: int) -> CaseSlaLog:
        return CaseSlaLog(DOMAIN, CASE, (first, *huge, case_obs(4, "x" * pad)))

    log = log_with(total - item_bytes(log_item(log_with(0), 1, {})))
    assert item_bytes(log_item(log, 1, {})) == total
    return log


@pytest.mark.parametrize(("total", "written"), [(MAX_ITEM_BYTES, True), (MAX_ITEM_BYTES + 1, False)])
def test_the_store_refuses_an_item_over_the_limit_before_calling_dynamodb(total: int, written: bool) -> None:
    client = RecordingDynamoDb()
    store = DynamoDbSlaStore("casewatch-state", client)  # type: ignore[arg-type]
    log = log_of_item_size(total)
    empty = SlaCaseRecord(CaseSlaLog(DOMAIN, CASE), {}, 0)
    if written:
        store.save(empty, log, [])
        [put] = client.puts
        assert item_bytes(put["Item"]) == MAX_ITEM_BYTES
    else:
        with pytest.raises(SlaItemTooLargeError, match=f"{MAX_ITEM_BYTES + 1} bytes"):
            store.save(empty, log, [])
        assert client.puts == []
