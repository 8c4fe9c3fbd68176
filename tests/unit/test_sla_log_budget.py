"""The SLA log's byte budget (issue 12, defect 9, on the one-record-per-case store): a log whose JSON
passes `MAX_LOG_BYTES` compacts on merge (settled repeats first, then the oldest settled, then the oldest
CASE observations; never the first); a case written event after event keeps its log within the budget
(the fold is extended while there is room, folded again and compacted when there is not, the dropped
observations deleted); and the case store refuses a case item over DynamoDB's 400 KB before calling
DynamoDB. Both stores' behaviour at the budget's edge: tests/integration/test_case_store.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from casewatch.adapters.case_items import MAX_ITEM_BYTES, item_bytes
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.app.case_update import Trigger
from casewatch.domain.case_record import CaseChange, CaseRecord, Claim
from casewatch.domain.sla.log import (
    MAX_LOG_BYTES,
    SETTLED_AFTER,
    CaseSlaLog,
    Observation,
    ObsKind,
    case_fields,
    json_bytes,
)
from casewatch.domain.sla.model import PolicySpec, SlaItemTooLargeError, SlaStatus
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.fields import FieldValue
from casewatch.models.signals import SlaSignalKind
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import InMemoryCaseStore
from tests.apps import World
from tests.builders import DOMAIN, POLICIES, RESOLVE, SLA_SETTINGS, T0

CASE = "c1"


def case_obs(minutes: float, title: str, *, first: bool = False) -> Observation:
    """A CASE observation `minutes` after T0 (the case's first one carries its creation time)."""
    return Observation(
        T0 + timedelta(minutes=minutes),
        ObsKind.CASE,
        fields=case_fields({"status": "open", "title": title}),
        created=T0 if first else None,
    )


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


def test_json_bytes_is_the_json_array_of_the_stored_observations() -> None:
    """Each observation is stored as its canonical JSON (the `o` of its item): the log's bytes are those of
    the JSON array of them, in UTF-8 (a non-ASCII character counts its bytes)."""
    observations = [case_obs(0, "ünïcode", first=True), case_obs(1, "b")]
    for some in ([], observations[:1], observations):
        array = "[" + ",".join(o.to_json() for o in some) + "]"
        assert json.loads(array) == [json.loads(o.to_json()) for o in some]
        assert json_bytes(some) == len(array.encode())
    assert "\\u00fc" in observations[0].to_json()  # canonical JSON escapes it: one character, six bytes


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


def padded_view(fields: int, pad: int) -> EnrichedCase:
    """A view of `fields` text fields of 4,000 characters (a value's limit: 4,100) and one of `pad`."""

    def text(value: str) -> EnrichedField:
        return EnrichedField(value=FieldValue.of(value), source=Provenance.EVENT, as_of=T0)

    values = {f"f{n:03d}": text("x" * 4_000) for n in range(fields)}
    return EnrichedCase(domain_id=DOMAIN, case_id=CASE, version=T0, fields={**values, "pad": text("p" * pad)})


def first_write(store: DynamoDbCaseStore, view: EnrichedCase) -> None:
    """The case's first write (a PutItem) with its view, no observation (no log item written)."""
    store.commit(CaseRecord(DOMAIN, CASE), CaseChange("event:e1", Claim(T0, done=True), snapshot=view))


def item_size(view: EnrichedCase) -> int:
    """The bytes of the case item the store would put for `view`."""
    client = RecordingDynamoDb()
    first_write(DynamoDbCaseStore("casewatch-state", client, POLICIES), view)  # type: ignore[arg-type]
    [put] = client.puts
    return item_bytes(put["Item"])


def view_of_item_size(total: int) -> EnrichedCase:
    """A view whose case item is exactly `total` bytes (one ASCII character of `pad`: one byte of `snap`;
    measured up to the limit, the store refusing to put more)."""
    measurable = min(total, MAX_ITEM_BYTES)
    per_field = item_size(padded_view(1, 0)) - item_size(padded_view(0, 0))
    fields = (measurable - item_size(padded_view(0, 0))) // per_field
    pad = measurable - item_size(padded_view(fields, 0))
    assert 0 <= pad <= 4_000
    assert item_size(padded_view(fields, pad)) == measurable
    return padded_view(fields, pad + total - measurable)


@pytest.mark.parametrize(("total", "written"), [(MAX_ITEM_BYTES, True), (MAX_ITEM_BYTES + 1, False)])
def test_the_store_refuses_a_case_item_over_the_limit_before_calling_dynamodb(
    total: int, written: bool
) -> None:
    client = RecordingDynamoDb()
    store = DynamoDbCaseStore("casewatch-state", client, POLICIES)  # type: ignore[arg-type]
    view = view_of_item_size(total)
    if written:
        first_write(store, view)
        [put] = client.puts
        assert item_bytes(put["Item"]) == MAX_ITEM_BYTES
    else:
        with pytest.raises(
            SlaItemTooLargeError, match=f"case {CASE}: the item would be {MAX_ITEM_BYTES + 1} bytes"
        ):
            first_write(store, view)
        assert client.puts == []


# -- a case written event after event --------------------------------------------------------------------

NOTES = PolicySpec(name="notes", target=timedelta(minutes=60), match=(("note", ("y",)),))
HOURS = 5 * 24  # ~370 KB of observations: the budget is reached after about 50


def write_hourly_notes(hours: int, on_write: Callable[[int, CaseRecord], None]) -> World:
    """A policy reads a long text field (`note`, ~3 KB a change): one change an hour, the case closed in
    its third hour (resolve met at T0 + 2 h). `on_write(hour, record)` after each write (the record with
    its log)."""
    policies = (*POLICIES, NOTES)
    store = InMemoryCaseStore(policies)
    world = World(SLA_SETTINGS, clock=VirtualClock(T0), store=store)
    updater = world.timer_app().timer.updater
    updater.policies = policies
    for hour in range(hours):
        at = T0 + timedelta(hours=hour)
        world.clock.set(at)
        status = "closed" if hour >= 2 else "open"
        note = f"{hour:04d}" + "n" * 3_000
        obs = Observation(at, ObsKind.CASE, fields=case_fields({"note": note, "status": status}), created=T0)
        update = updater.apply(DOMAIN, CASE, f"event:{hour}", lambda _r, o=obs: Trigger(observations=(o,)))
        assert update.kind == "applied"
        on_write(hour, store.load(DOMAIN, CASE, with_log=True))
    return world


def test_a_case_written_event_after_event_keeps_its_log_within_the_budget() -> None:
    """The fold is extended while the log has room; past the budget the log is folded again and compacted
    (the dropped observations deleted): the log stays within `MAX_LOG_BYTES`, its counted size is its
    real size, its first observation (the initial values) and its newest are kept."""
    sizes: list[int] = []

    def check(hour: int, record: CaseRecord) -> None:
        assert record.log is not None
        assert record.log_bytes == json_bytes(record.log) <= MAX_LOG_BYTES
        assert record.log_size == len(record.log)
        assert record.log[0].at == T0 and record.log[-1].at == T0 + timedelta(hours=hour)
        sizes.append(record.log_size)

    write_hourly_notes(HOURS, check)
    full = max(sizes)
    assert sizes.index(full) < HOURS // 2  # the budget was reached early ...
    assert sizes[-1] in (full, full - 1)  # ... and the log stays full, not emptied
    assert json_bytes([]) == 2


def test_compacting_the_log_leaves_a_settled_sla_as_it_was() -> None:
    """Once the log is full, each in-order write extends the stored fold while the log is compacted: a
    re-fold of the compacted log (its closing dropped) would move the met SLA's completion later, then
    declare it Overdue and NotMet."""
    world = write_hourly_notes(HOURS, lambda _hour, _record: None)
    resolve = world.state(CASE, RESOLVE)
    assert (resolve.status, resolve.completion_time) == (SlaStatus.MET, T0 + timedelta(hours=2))
    assert world.signals() == [("resolve-within-8h", SlaSignalKind.MET)]


@pytest.mark.parametrize(
    "under",
    [pytest.param(1, id="a-byte-under"), pytest.param(0, id="exactly-at-the-budget")],
)
def test_a_write_that_fills_the_log_up_to_the_budget_extends_the_fold(under: int) -> None:
    policies = (*POLICIES, NOTES)
    store = InMemoryCaseStore(policies)
    updater = World(SLA_SETTINGS, clock=VirtualClock(T0), store=store).timer_app().timer.updater
    updater.policies = policies
    head = [case_obs(n, f"{n:03d}" + "h" * 1_500, first=n == 0) for n in range(100)]
    updater.apply(DOMAIN, CASE, "event:head", lambda _r: Trigger(observations=tuple(head)))
    filler = case_obs(200, "")
    filler = case_obs(200, "f" * (MAX_LOG_BYTES - under - json_bytes([*head, filler])))
    assert json_bytes([*head, filler]) == MAX_LOG_BYTES - under
    update = updater.apply(DOMAIN, CASE, "event:filler", lambda _r: Trigger(observations=(filler,)))
    assert (update.kind, update.attempts) == ("applied", 1)  # extended: the log was not read
