"""The `CaseStore` contract, held by both of its implementations: `DynamoDbCaseStore` on moto (tables built
from `casewatch.tables`) and the in-memory fake the unit tests and the memory backend use — one suite,
parametrized, so the fake cannot drift from the adapter. Then what only the DynamoDB layout can show
(items, attributes, the `due` index, BatchGetItem's limits, item sizes)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from casewatch.adapters import dynamodb_case_store
from casewatch.adapters.case_items import (
    CLAIM_RETENTION,
    DELETED_RETENTION,
    MAX_ITEM_BYTES,
    RETENTION,
    case_key,
    claim_id,
    due_shard,
    feed_key,
    item_bytes,
)
from casewatch.adapters.clients import dynamodb_client
from casewatch.adapters.dynamodb_case_store import MAX_CLAIMS, DynamoDbCaseStore
from casewatch.app.case_update import Trigger
from casewatch.app.process_event import claim_key
from casewatch.constants import IDEMPOTENCY_EXPIRY_DAYS
from casewatch.domain.case_record import LIVE_SCOPE, CaseChange, CaseRecord, Claim, Outbox, StatusMark
from casewatch.domain.sla.fold import fold
from casewatch.domain.sla.log import MAX_LOG_BYTES, CaseSlaLog, Observation, ObsKind, case_fields, json_bytes
from casewatch.domain.sla.model import PolicySpec, SlaConflictError, SlaItemTooLargeError, SlaStatus
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.ports import FeedPosition
from casewatch.tables import DUE_SHARDS, STATE_TABLE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import InMemoryCaseStore
from casewatch_dev.sla_cli import render_slas
from tests.apps import World
from tests.builders import (
    CASE_1,
    DOMAIN,
    FIRST,
    POLICIES,
    RESOLVE,
    SLA_SETTINGS,
    at,
    comment,
    created,
    deleted,
    load_event,
    repo_settings,
    updated,
)

GRACE = SLA_SETTINGS.breach_grace


class HookedDynamoDbCaseStore(DynamoDbCaseStore):
    """The real store with what the fake has for tests: a hook run once before the next commit, and counts
    of commits and conflicts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_commit: Any = None
        self.commits = 0
        self.conflicts = 0

    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        if self.before_commit is not None:
            hook, self.before_commit = self.before_commit, None
            hook()
        try:
            record = super().commit(old, change)
        except SlaConflictError:
            self.conflicts += 1
            raise
        self.commits += 1
        return record


class AtomicClient:
    """The moto client with one lock around each call: like DynamoDB, every request is atomic (moto itself
    does not lock, so its conditional writes could interleave across threads)."""

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name in ("get_paginator", "meta"):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


STORES = ["dynamodb", "memory"]


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    """Which store: `dynamodb` (its table created on moto) or `memory`."""
    if request.param == "dynamodb":
        request.getfixturevalue("state_table")
    return str(request.param)


def make_store(kind: str, policies: tuple[PolicySpec, ...] = POLICIES, **options: Any) -> Any:
    if kind == "dynamodb":
        client = options.pop("client", None) or dynamodb_client()
        return HookedDynamoDbCaseStore("casewatch-state", client, policies, **options)
    return InMemoryCaseStore(policies, **options)


@pytest.fixture
def store(kind: str) -> Any:
    return make_store(kind)


def world(store: Any, clock: VirtualClock | None = None) -> World:
    return World(SLA_SETTINGS, clock=clock or VirtualClock(at(-1)), store=store)


def raw_case(case_id: str) -> dict[str, Any]:
    return dict(
        dynamodb_client().get_item(TableName="casewatch-state", Key=case_key(case_id)).get("Item", {})
    )


def observation_items(case_id: str) -> list[dict[str, Any]]:
    return dynamodb_client().query(
        TableName="casewatch-state",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :obs)",
        ExpressionAttributeValues={":pk": {"S": f"CASE#{case_id}"}, ":obs": {"S": "OBS#"}},
    )["Items"]


def snapshot_of(record: CaseRecord) -> tuple[Any, ...]:
    """Everything a load returns of a case, comparable."""
    return (
        record.revision,
        record.snapshot,
        record.fold.to_doc() if record.fold is not None else None,
        record.horizon,
        dict(record.status_order),
        record.log_size,
        record.log_bytes,
        record.claims_size,
    )


# --- the contract: both stores ----------------------------------------------------------------------------


def test_a_case_never_written_is_revision_zero(store: Any) -> None:
    record = store.load(DOMAIN, "nobody", claim_key="event:x", with_log=True, with_watermark=True)
    assert (record.revision, record.snapshot, record.fold, record.claim, record.log) == (
        0,
        None,
        None,
        None,
        (),
    )
    assert (record.log_size, record.claims_size, record.watermark) == (0, 0, None)
    assert record.states() == {}
    assert store.load_many(DOMAIN, ["nobody"]) == {}


def test_a_record_round_trips(store: Any) -> None:
    w = world(store)
    first, second = created("c1", 0, "high"), comment("c1", 10)
    w.deliver(first)
    w.deliver(second)
    record = store.load(DOMAIN, "c1", claim_key=claim_key(parse_case_event(second)), with_log=True)
    assert record.revision == 2
    assert record.claims_size == 2
    assert record.claim is not None and record.claim.done and record.claim.outbox is None
    assert record.log is not None and len(record.log) == 2 == record.log_size
    assert record.log_bytes == json_bytes(record.log)
    scratch = fold(CaseSlaLog(DOMAIN, "c1", record.log), POLICIES)
    assert record.fold is not None and record.fold.to_doc() == scratch.to_doc()
    assert record.states()[FIRST].status is SlaStatus.MET
    assert record.states()[RESOLVE].status is SlaStatus.ACTIVE
    assert record.snapshot is not None and record.snapshot.value("status") == "open"
    again = store.load(DOMAIN, "c1")
    assert again.claim is None and again.log is None  # only what was asked for
    assert snapshot_of(again) == snapshot_of(record)
    assert snapshot_of(store.load_many(DOMAIN, ["c1", "c1", "nobody"])["c1"]) == snapshot_of(record)


def test_a_commit_that_loses_a_race_raises_and_writes_nothing(store: Any) -> None:
    w = world(store)
    w.deliver(created("c1", 0))
    stale = store.load(DOMAIN, "c1", claim_key="timer:x")
    w.deliver(updated("c1", 100, "closed"))  # another writer commits in between
    before = store.load(DOMAIN, "c1", with_log=True)
    snapshot = EnrichedCase(domain_id=DOMAIN, case_id="c1", version=at(200), fields={})
    change = CaseChange(
        claim_key="timer:x",
        claim=Claim(at(0), done=False, lease_until=at(1), outbox=Outbox(timer_keys=(RESOLVE,))),
        snapshot=snapshot,
        fold=stale.fold,
        horizon=at(300),
        status_order={LIVE_SCOPE: StatusMark(int(at(200).timestamp() * 1000), "f" * 16)},
        due_at=at(400),
    )
    with pytest.raises(SlaConflictError):
        store.commit(stale, change)
    after = store.load(DOMAIN, "c1", claim_key="timer:x", with_log=True)
    assert snapshot_of(after) == snapshot_of(before)
    assert after.claim is None  # the loser's claim is not there: its retry applies the trigger afresh
    assert after.log == before.log
    assert store.due_before(at(10_000)) == []  # the loser's `due_at` is not there either
    assert after.states()[RESOLVE].status is SlaStatus.MET


def test_a_first_write_that_loses_the_race_to_create_the_case_raises(store: Any) -> None:
    empty = store.load(DOMAIN, "c1")
    change = CaseChange("timer:a", Claim(at(0), done=True))
    store.commit(empty, change)
    with pytest.raises(SlaConflictError):
        store.commit(empty, CaseChange("timer:b", Claim(at(0), done=True)))
    record = store.load(DOMAIN, "c1", claim_key="timer:b")
    assert (record.revision, record.claims_size, record.claim) == (1, 1, None)


def test_two_writers_race_one_wins_the_loser_reloads_and_reapplies(store: Any) -> None:
    w = world(store)
    w.deliver(created("c1", 0, "high"))
    w.on_commit(
        lambda: w.deliver(comment("c1", 10))
    )  # a comment commits between this event's load and commit
    w.deliver(updated("c1", 100, "closed", "high"))
    assert store.conflicts == 1
    record = store.load(DOMAIN, "c1", with_log=True)
    assert record.revision == 3
    assert record.states()[FIRST].status is SlaStatus.MET  # the comment
    assert record.states()[RESOLVE].status is SlaStatus.MET  # the closing, applied after reloading
    assert record.log is not None and len(record.log) == 3 == record.log_size
    assert record.log_bytes == json_bytes(record.log)


def test_an_older_event_losing_the_race_to_a_newer_one_is_folded_in_order(store: Any) -> None:
    """The loser's observation is older than the winner's: it cannot extend the fold, the case's log is
    read and folded again; the counts stay those of the log."""
    w = world(store)
    w.deliver(created("c1", 0))
    w.on_commit(lambda: w.deliver(updated("c1", 100, "closed")))
    w.deliver(updated("c1", 50, "pending-customer"))
    record = store.load(DOMAIN, "c1", with_log=True)
    assert record.log is not None and [o.at for o in record.log] == [at(0), at(50), at(100)]
    assert (record.log_size, record.log_bytes) == (3, json_bytes(record.log))
    resolve = record.states()[RESOLVE]
    assert (resolve.status, resolve.paused_seconds, resolve.completion_time) == (
        SlaStatus.MET,
        50 * 60,
        at(100),
    )


def test_concurrent_writers_lose_nothing(kind: str) -> None:
    clock = VirtualClock(at(-1))
    if kind == "dynamodb":
        stores = [make_store(kind, client=AtomicClient(dynamodb_client())) for _ in range(6)]
    else:
        shared = make_store(kind)
        stores = [shared] * 6
    world(stores[0], clock).deliver(created("c1", 0, "high"))
    worlds = [world(s, clock) for s in stores]
    for w in worlds:
        w.adapters.store  # noqa: B018 - built before the threads start
    barrier = threading.Barrier(len(worlds))
    errors: list[BaseException] = []

    def run(n: int, w: World) -> None:
        try:
            barrier.wait()
            w.deliver(updated("c1", 10 + n, "open" if n % 2 else "pending-customer", "high"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in enumerate(worlds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    record = stores[0].load(DOMAIN, "c1", with_log=True)
    assert record.log is not None and len(record.log) == 1 + len(worlds) == record.log_size
    assert record.revision == 1 + len(worlds)  # every writer's event is in, each after its conflicts
    assert record.states() == fold(CaseSlaLog(DOMAIN, "c1", record.log), POLICIES).states(record.horizon)


def test_observations_are_loaded_in_time_order(store: Any) -> None:
    """Whatever order they were written in (events out of order, several writes)."""
    w = world(store)
    for minutes in (300, 0, 200, 100, 250, 50):
        w.deliver(updated("c1", minutes, "open" if minutes % 100 else "pending-customer", created_at=0))
    w.deliver(comment("c1", 100, "cm1"))  # the same time as a field change: ranks after it
    record = store.load(DOMAIN, "c1", with_log=True)
    assert record.log is not None
    assert [(o.at, o.kind) for o in record.log] == sorted((o.at, o.kind) for o in record.log)
    assert [o.at for o in record.log] == [at(m) for m in (0, 50, 100, 100, 200, 250, 300)]
    assert [o.kind for o in record.log if o.at == at(100)] == [ObsKind.CASE, ObsKind.ITEM]


def test_load_many_reads_more_than_one_batch(store: Any) -> None:
    """BatchGetItem takes 100 keys: 130 cases (and ids not stored, and repeats) in one call."""
    updater = world(store).timer_app().timer.updater
    ids = [f"case-{n:03d}" for n in range(130)]
    for case_id in ids:
        updater.apply(DOMAIN, case_id, "timer:t", lambda _r: Trigger(observations=(opened(0),)))
    wanted = [*ids, *ids[:10], "nobody", "nobody-else"]
    found = store.load_many(DOMAIN, wanted)
    assert sorted(found) == ids
    assert all(r.revision == 1 and r.log_size == 1 and r.claim is None for r in found.values())
    assert found["case-129"].states()[RESOLVE].status is SlaStatus.ACTIVE


def opened(minutes: float, status: str = "open") -> Observation:
    return Observation(at(minutes), ObsKind.CASE, fields=case_fields({"status": status}), created=at(0))


def test_due_before_is_strictly_before_the_due_time(store: Any) -> None:
    """A case is due a breach check `breach_grace` after its earliest open, running SLA's target."""
    w = world(store)
    cases = [f"case-{n}" for n in range(12)]
    assert len({due_shard(c) for c in cases}) == DUE_SHARDS  # every shard of the index is read
    for n, case_id in enumerate(cases):
        w.deliver(created(case_id, n, "high"))  # first response due at n + 30 (+ the grace)
    w.deliver(comment("case-0", 5))  # first response met: due at resolve's target
    due_1 = at(31) + GRACE
    assert store.due_before(due_1) == []  # exactly at the due time: not yet
    assert store.due_before(due_1 + timedelta(microseconds=1)) == [(DOMAIN, "case-1")]
    assert store.due_before(at(36) + GRACE) == [(DOMAIN, f"case-{n}") for n in range(1, 6)]  # oldest first
    assert store.due_before(at(36) + GRACE, limit=2) == [(DOMAIN, "case-1"), (DOMAIN, "case-2")]
    assert (DOMAIN, "case-0") in store.due_before(at(481) + GRACE)
    w.deliver(updated("case-1", 40, "pending-customer", "high"))  # paused resolve, first overdue... still due
    w.deliver(comment("case-1", 41, "cm-late"))
    w.deliver(updated("case-1", 42, "closed", "high"))  # nothing open: out of the index
    assert (DOMAIN, "case-1") not in store.due_before(at(10_000))


def test_complete_marks_the_claim_done_or_keeps_the_pending_ids(store: Any) -> None:
    empty = store.load(DOMAIN, "c1")
    outbox = Outbox(timer_keys=(RESOLVE,))
    store.commit(empty, CaseChange("event:e1", Claim(at(0), done=False, lease_until=at(1), outbox=outbox)))
    store.complete("c1", "event:e1", pending=["n-2", "bus-1"])
    claim = store.load(DOMAIN, "c1", claim_key="event:e1").claim
    assert (claim.done, claim.outbox.pending, claim.outbox.timer_keys, claim.lease_until) == (
        False,
        ("n-2", "bus-1"),
        (RESOLVE,),
        at(1),
    )
    store.complete("c1", "event:e1")
    claim = store.load(DOMAIN, "c1", claim_key="event:e1").claim
    assert (claim.done, claim.outbox) == (True, None)
    store.complete("c1", "event:never-claimed")  # pruned meanwhile, or never there: nothing to mark
    store.complete("nobody", "event:e1")
    assert store.load(DOMAIN, "c1", claim_key="event:never-claimed").claim is None
    assert store.load(DOMAIN, "nobody").revision == 0


def test_claims_are_pruned_beyond_max_claims_when_older_than_the_idempotency_window(kind: str) -> None:
    """A case keeps every claim up to `max_claims`; the commit that takes it past removes the claims done
    before the window (`CLAIM_RETENTION`: the dead-letter queues' retention and a day), never newer ones
    nor pending ones."""
    assert MAX_CLAIMS == 500
    assert timedelta(days=IDEMPOTENCY_EXPIRY_DAYS) == CLAIM_RETENTION
    store = make_store(kind, max_claims=3)
    day0 = at(0)
    cutoff_base = day0 + CLAIM_RETENTION  # a claim at day0 is exactly at the cutoff of a commit then

    def commit(key: str, when: datetime, *, done: bool = True) -> None:
        record = store.load(DOMAIN, "c1", claim_key=key)
        assert record.claim is None
        store.commit(record, CaseChange(key, Claim(when, done=done, lease_until=when)))

    commit("old-1", day0 - timedelta(seconds=1))
    commit("old-pending", day0 - timedelta(days=30), done=False)
    commit("at-cutoff", day0)
    assert store.load(DOMAIN, "c1").claims_size == 3  # exactly max_claims: nothing pruned
    commit("new", cutoff_base)  # the 4th: past max_claims, pruning what is older than day0
    kept = {
        key
        for key in ("old-1", "old-pending", "at-cutoff", "new")
        if store.load(DOMAIN, "c1", claim_key=key).claim
    }
    assert kept == {"old-pending", "at-cutoff", "new"}
    assert store.load(DOMAIN, "c1").claims_size == 3
    commit("newer", cutoff_base + timedelta(seconds=1))  # at-cutoff is now older than the window
    kept = {
        key
        for key in ("old-pending", "at-cutoff", "new", "newer")
        if store.load(DOMAIN, "c1", claim_key=key).claim
    }
    assert kept == {"old-pending", "new", "newer"}
    assert store.load(DOMAIN, "c1").claims_size == 3


def test_within_the_window_a_redelivered_event_is_a_duplicate_even_past_max_claims(kind: str) -> None:
    store = make_store(kind, max_claims=2)
    w = world(store)
    events = [updated("c1", n, "open") for n in range(4)]
    for raw in events:
        w.deliver(raw)
    assert store.load(DOMAIN, "c1").claims_size == 4  # all within the window: none pruned
    commits = store.commits
    w.deliver(events[0])
    assert store.commits == commits


def log_of(sizes: list[int]) -> list[Observation]:
    """Case observations a minute apart, two days before the last (settled), with a `note` of each size."""
    return [
        Observation(
            at(-3000 + n),
            ObsKind.CASE,
            fields=case_fields({"note": "x" * size, "status": "open"}),
            created=at(-3000),
        )
        for n, size in enumerate(sizes)
    ]


@pytest.mark.parametrize("over", [0, 1], ids=["exactly-at-the-limit", "one-byte-over"])
def test_a_log_exactly_at_max_log_bytes_is_kept_one_byte_more_is_compacted(store: Any, over: int) -> None:
    notes = PolicySpec(name="notes", target=timedelta(minutes=60), match=(("note", ("y",)),))
    policies = (*POLICIES, notes)
    store.policies = policies
    updater = world(store).timer_app().timer.updater
    updater.policies = policies
    first = log_of([1500] * 100)
    updater.apply(DOMAIN, "c1", "t:1", lambda _r: Trigger(observations=tuple(first)))
    stored = store.load(DOMAIN, "c1")
    assert stored.log_bytes == json_bytes(first) < MAX_LOG_BYTES
    # the last observation, sized so that the log is exactly MAX_LOG_BYTES (or one byte more)
    base = Observation(at(0), ObsKind.CASE, fields=case_fields({"note": "", "status": "closed"}))
    room = MAX_LOG_BYTES - stored.log_bytes - (len(base.to_json().encode()) + 1)
    assert room > 0
    last = Observation(
        at(0), ObsKind.CASE, fields=case_fields({"note": "z" * (room + over), "status": "closed"})
    )
    assert json_bytes([*first, last]) == MAX_LOG_BYTES + over
    update = updater.apply(DOMAIN, "c1", "t:2", lambda _r: Trigger(observations=(last,)))
    assert update.kind == "applied"
    record = store.load(DOMAIN, "c1", with_log=True)
    assert record.log is not None
    assert (record.log_size, record.log_bytes) == (len(record.log), json_bytes(record.log))
    if over:
        assert len(record.log) < 101  # settled repeats dropped (their items deleted)
        assert json_bytes(record.log) <= MAX_LOG_BYTES
    else:
        assert len(record.log) == 101  # kept whole: the fold extended
        assert json_bytes(record.log) == MAX_LOG_BYTES
    assert record.log[-1] == last
    scratch = fold(CaseSlaLog(DOMAIN, "c1", record.log), policies)
    assert record.fold is not None and record.fold.states() == scratch.states()
    assert record.states()[RESOLVE].status is SlaStatus.NOT_MET  # closed two days after its creation


def test_the_counted_log_size_follows_every_write(store: Any) -> None:
    """`nlog`/`blog` are kept by each write without reading the log (counts of what it adds and drops):
    after observations are added, dropped (to an empty log) and added again, they are the log's own
    (`json_bytes`: 2 for an empty log, 1 + each text with its comma or bracket)."""
    a, b, c = (opened(m, "ünïcode" * m) for m in (1, 2, 3))
    writes = [((a,), ()), ((b, c), ()), ((), (a,)), ((), (b, c)), ((a,), ()), ((c,), (a,))]
    for n, (appended, dropped) in enumerate(writes):
        old = store.load(DOMAIN, "c1")
        store.commit(old, CaseChange(f"t:{n}", Claim(at(n), done=True), appended=appended, dropped=dropped))
        log = store.load(DOMAIN, "c1", with_log=True).log
        counted = store.load(DOMAIN, "c1")  # the stored counts, not the log
        assert (counted.log_size, counted.log_bytes) == (len(log), json_bytes(log)), n
    assert log == (c,)


@pytest.mark.parametrize(
    ("first", "second", "written"),
    [
        ((at(10), None), (at(20), None), True),  # a newer event
        ((at(20), None), (at(10), None), False),  # an older event never overwrites a newer view
        ((at(20), None), (at(10), at(500)), False),  # not even with fresher GetCase values
        ((at(20), None), (at(20), None), False),  # the same event redelivered
        ((at(20), None), (at(20), at(500)), True),  # the same version, GetCase filled it in
        ((at(20), at(500)), (at(20), at(499)), False),  # fetched earlier
        ((at(20), at(500)), (at(20), at(501)), True),  # fetched later
    ],
)
def test_the_stored_view_is_replaced_only_by_a_newer_one(
    store: Any,
    first: tuple[datetime, datetime | None],
    second: tuple[datetime, datetime | None],
    written: bool,
) -> None:
    updater = world(store).timer_app().timer.updater
    for n, (version, fetched) in enumerate((first, second)):
        snapshot = view(version, fetched, status=f"v{n}")
        updater.apply(DOMAIN, "c1", f"t:{n}", lambda _r, s=snapshot: Trigger(snapshot=s))
    stored = store.load(DOMAIN, "c1").snapshot
    assert stored is not None
    assert stored.value("status") == ("v1" if written else "v0")


def view(version: datetime, fetched: datetime | None, *, status: str) -> EnrichedCase:
    source = Provenance.GETCASE if fetched is not None else Provenance.EVENT
    return EnrichedCase(
        domain_id=DOMAIN,
        case_id="c1",
        version=version,
        getcase_at=fetched,
        fields={"status": EnrichedField(value=FieldValue.of(status), source=source, as_of=version)},
    )


@pytest.mark.parametrize("containers", ["one", "two"])
def test_out_of_order_events_leave_the_newer_view(kind: str, containers: str) -> None:
    one = make_store(kind)
    changed = World(repo_settings(), clock=VirtualClock(at(480)), store=one)
    related = (
        changed
        if containers == "one"
        else World(
            repo_settings(),
            clock=VirtualClock(at(480)),
            store=make_store(kind) if kind == "dynamodb" else one,
        )
    )
    assert changed.deliver(load_event("case-updated"))["getcaseCalls"] == 0  # t2 first
    assert changed.deliver(load_event("case-created"))["outcome"] == "handled"  # then t1, late
    assert changed.views()[-1].value("status") == "open"  # t1's own view goes into its messages ...
    stored = one.load(repo_settings().domain_id, CASE_1).snapshot
    assert stored is not None and stored.value("status") == "pending-customer"  # ... not into the store
    result = related.deliver(load_event("related-item-comment"))
    assert result["getcaseCalls"] == 0  # the stored view has every needed field
    comment_view = related.views()[-1]
    assert comment_view.value("status") == "pending-customer"
    assert comment_view.value("assigned_user") is not None
    assert set(comment_view.sources().values()) == {Provenance.SNAPSHOT}


def test_a_late_update_after_the_deletion_does_not_resurrect_the_case(kind: str) -> None:
    w = World(repo_settings(), clock=VirtualClock(at(480)), store=make_store(kind))
    w.deliver(load_event("case-deleted"))  # case 2, 16:45
    result = w.deliver(load_event("case-updated-metadata-only"))  # case 2, 10:02, delivered late
    assert result["getcaseCalls"] == 0  # the stored view says the case is gone: no GetCase (it would 404)
    assert w.cases.calls == 0
    late = w.views()[-1]
    assert late.deleted and late.flags == ("case_deleted",)
    stored = w.store.load(repo_settings().domain_id, late.case_id).snapshot
    assert stored is not None and stored.deleted


def test_the_feed_watermark_only_moves_from_where_it_was_read(store: Any) -> None:
    assert store.watermark(DOMAIN) is None
    store.advance(DOMAIN, at(10), None)
    assert store.watermark(DOMAIN) == at(10)
    store.advance(DOMAIN, at(5), None)  # a poll that read "none" lost the race: nothing moves
    assert store.watermark(DOMAIN) == at(10)
    store.advance(DOMAIN, at(20), at(9))  # read something else: nothing moves
    assert store.watermark(DOMAIN) == at(10)
    store.advance(DOMAIN, at(20) + timedelta(microseconds=7), at(10))
    assert store.watermark(DOMAIN) == at(20) + timedelta(microseconds=7)  # exactly, to the microsecond
    assert store.watermark("another-domain") is None
    record = store.load(DOMAIN, "c1", with_watermark=True)
    assert record.watermark == at(20) + timedelta(microseconds=7) and record.revision == 0
    assert store.case_ids() == []  # the feed's item is no case


def test_render_slas_prints_state_and_time_left(store: Any) -> None:
    w = world(store)
    w.deliver(created("c1", 0, "high"))
    w.deliver(updated("c1", 20, "pending-customer", "high"))
    states = sorted(store.load(DOMAIN, "c1").states().values(), key=lambda s: s.key)
    text = render_slas(states, at(40))
    assert text.splitlines()[0].split() == [
        "SLA",
        "ORIGIN",
        "STATUS",
        "TARGET",
        "(UTC)",
        "TIME",
        "LEFT",
        "COMPLETED",
        "(UTC)",
    ]
    assert "first-response-high  policy  Active" in text
    assert "due 10m 00s ago" in text  # Active, 10 minutes past its target (the breach not declared yet)
    assert "7h 40m left (paused)" in text  # resolve: paused at 09:20 with 7h 40m to go
    assert render_slas([], at(0)) == "no SLAs tracked"
    assert store.case_ids() == [(DOMAIN, "c1")]


# --- expiry (the item's TTL) and the due sweep of a domain: both stores ------------------------------------


def expiry(store: Any, case_id: str) -> datetime | None:
    """When the case's record expires: the `expires_at` TTL of its item (whole seconds), or the fake's."""
    if isinstance(store, InMemoryCaseStore):
        moment = store.expiry(case_id)
        return None if moment is None else datetime.fromtimestamp(int(moment.timestamp()), tz=moment.tzinfo)
    item = raw_case(case_id)
    return (
        datetime.fromtimestamp(int(item["expires_at"]["N"]), tz=at(0).tzinfo)
        if "expires_at" in item
        else None
    )


def test_a_deleted_case_expires_30_days_after_its_deletion_and_late_facts_do_not_extend_it(
    store: Any,
) -> None:
    assert timedelta(days=30) == DELETED_RETENTION
    w = world(store, VirtualClock(at(0)))
    w.deliver(created("c1", 0, "high"))
    assert expiry(store, "c1") == at(0) + RETENTION
    w.clock.set(at(100))
    w.deliver(deleted("c1", 100))
    assert expiry(store, "c1") == at(100) + DELETED_RETENTION  # its view is case data: it goes sooner
    w.clock.set(at(100) + timedelta(days=3))  # delivered late, days after the deletion, dated before it
    w.deliver(updated("c1", 50, "closed", "high"))
    w.deliver(comment("c1", 60, "cm-late"))
    record = store.load(DOMAIN, "c1")
    assert record.revision == 4 and record.log_size == 4  # applied (facts true at their time) ...
    assert expiry(store, "c1") == at(100) + DELETED_RETENTION  # ... without moving the expiry
    w.deliver(comment("c1", 101, "cm-skewed"))  # dated after the deletion (a skewed clock): still 30 days
    assert expiry(store, "c1") == at(101) + DELETED_RETENTION


def test_a_case_first_heard_of_by_its_deletion_expires_30_days_after_it(store: Any) -> None:
    w = world(store, VirtualClock(at(100)))
    w.deliver(deleted("c1", 100))
    assert store.load(DOMAIN, "c1").snapshot.deleted  # type: ignore[union-attr]
    assert expiry(store, "c1") == at(100) + DELETED_RETENTION


def test_a_first_record_without_facts_expires_after_its_claim_and_keeps_that(store: Any) -> None:
    """A timer or the feed may write a case's first record without an observation or a view (a horizon, a
    claim): it expires `RETENTION` after its claim; a later write without facts leaves that as it is."""
    empty = store.load(DOMAIN, "c1")
    store.commit(empty, CaseChange("timer:a", Claim(at(5), done=True), horizon=at(5)))
    assert expiry(store, "c1") == at(5) + RETENTION
    again = store.load(DOMAIN, "c1")
    store.commit(again, CaseChange("timer:b", Claim(at(500), done=True), horizon=at(500)))
    assert expiry(store, "c1") == at(5) + RETENTION
    later = store.load(DOMAIN, "c1")
    store.commit(later, CaseChange("event:e", Claim(at(600), done=True), appended=(opened(600),)))
    assert expiry(store, "c1") == at(600) + RETENTION  # its first fact


def due_case(store: Any, domain_id: str, case_id: str, minutes: float) -> None:
    """A case of `domain_id` with an open SLA due a breach check at `minutes`."""
    empty = store.load(domain_id, case_id)
    store.commit(empty, CaseChange(f"t:{case_id}", Claim(at(0), done=True), due_at=at(minutes)))


def test_the_due_sweep_of_a_domain_returns_only_its_cases_up_to_the_limit(store: Any) -> None:
    """A previous domain's open SLAs (the stack moved to another domain) are due earlier: they never crowd
    the domain's own out of a limited sweep (the index holds every domain's cases)."""
    old = [f"old-{n}" for n in range(6)]
    ours = [f"ours-{n}" for n in range(4)]
    for n, case_id in enumerate(old):
        due_case(store, "old-domain", case_id, n)
    for n, case_id in enumerate(ours):
        due_case(store, DOMAIN, case_id, 10 + n)
    moment = at(100)
    assert store.due_before(moment, limit=3) == [("old-domain", c) for c in old[:3]]  # no domain: earliest
    assert store.due_before(moment, limit=2, domain_id=DOMAIN) == [(DOMAIN, c) for c in ours[:2]]
    assert store.due_before(moment, limit=4, domain_id=DOMAIN) == [(DOMAIN, c) for c in ours]
    assert store.due_before(moment, limit=5, domain_id=DOMAIN) == [(DOMAIN, c) for c in ours]
    assert store.due_before(at(12), domain_id=DOMAIN) == [(DOMAIN, c) for c in ours[:2]]  # strictly before
    assert store.due_before(moment, domain_id="old-domain") == [("old-domain", c) for c in old]
    assert store.due_before(moment, domain_id="a-third-domain") == []


# --- the DynamoDB layout ------------------------------------------------------------------------------------


@pytest.fixture
def dynamo(state_table: str) -> HookedDynamoDbCaseStore:
    return make_store("dynamodb")


def test_one_item_per_case_and_one_per_observation(dynamo: HookedDynamoDbCaseStore) -> None:
    w = world(dynamo)
    first = created("c1", 0, "high")
    w.deliver(first)
    w.deliver(comment("c1", 10))
    item = raw_case("c1")
    assert set(item) == {
        "pk", "sk", "rev", "dom", "snap", "fold", "nlog", "blog", "so", "claims", "nclaims",
        "due_shard", "due_at", "ver", "expires_at",
    }  # fmt: skip
    assert (item["pk"], item["sk"], item["rev"], item["dom"]) == (
        {"S": "CASE#c1"},
        {"S": "CASE"},
        {"N": "2"},
        {"S": DOMAIN},
    )
    assert item["due_shard"] == {"S": due_shard("c1")}
    assert item["due_at"] == {"S": "2026-11-23T17:01:25.000000Z"}  # resolve's target + the grace
    assert item["ver"] == {"S": "2026-11-23T09:10:00.000000Z"}
    assert int(item["expires_at"]["N"]) == int((at(10) + RETENTION).timestamp())
    assert json.loads(item["fold"]["S"])["fp"] == dynamo.load(DOMAIN, "c1").fold.fingerprint  # type: ignore[union-attr]
    claims = item["claims"]["M"]
    assert set(claims) == {
        claim_id(claim_key(parse_case_event(first))),
        claim_id(claim_key(parse_case_event(comment("c1", 10)))),
    }
    assert all(len(k) == 20 for k in claims)  # a hash of the key: keys are long, free text
    assert all(c["M"]["d"] == {"BOOL": True} and "o" not in c["M"] for c in claims.values())
    assert "obslog" not in item and "log" not in item  # the log is not in the case's item
    obs = observation_items("c1")
    assert [o["sk"]["S"].rsplit("#", 1)[0] + "#" for o in obs] == [
        "OBS#2026-11-23T09:00:00.000000Z#0#",
        "OBS#2026-11-23T09:10:00.000000Z#2#",
    ]
    assert [Observation.from_json(o["o"]["S"]).kind for o in obs] == [ObsKind.CASE, ObsKind.ITEM]
    assert int(obs[1]["expires_at"]["N"]) == int((at(10) + RETENTION).timestamp())
    assert int(item["nlog"]["N"]) == 2
    assert int(item["blog"]["N"]) == json_bytes([Observation.from_json(o["o"]["S"]) for o in obs])
    w.deliver(updated("c1", 20, "closed", "high"))  # nothing open: out of the sparse index
    assert "due_at" not in raw_case("c1") and "due_shard" not in raw_case("c1")


def test_the_due_index_projects_only_the_domain() -> None:
    [index] = STATE_TABLE.create_table_args("t")["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "due"
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["dom"]}


def test_a_newer_version_moves_the_expiry_an_older_one_does_not(dynamo: HookedDynamoDbCaseStore) -> None:
    assert timedelta(days=400) == RETENTION
    w = world(dynamo)
    w.deliver(updated("c1", 20, "open"))
    assert int(raw_case("c1")["expires_at"]["N"]) == int((at(20) + RETENTION).timestamp())
    w.deliver(updated("c1", 10, "closed"))  # older, late
    assert int(raw_case("c1")["expires_at"]["N"]) == int((at(20) + RETENTION).timestamp())
    w.deliver(updated("c1", 30, "open"))
    assert int(raw_case("c1")["expires_at"]["N"]) == int((at(30) + RETENTION).timestamp())


def test_a_read_asks_only_for_the_claim_of_its_trigger(dynamo: HookedDynamoDbCaseStore) -> None:
    """A busy case's other claims are not read: the load's projection names one claim."""
    requests: list[dict[str, Any]] = []
    client = dynamodb_client()
    client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: requests.append(dict(params))
    )
    w = world(dynamo)
    for n in range(5):
        w.deliver(updated("c1", n, "open"))
    requests.clear()
    dynamo.load(DOMAIN, "c1", claim_key="event:x")
    [request] = requests
    assert "claims.#claim" in request["ProjectionExpression"]
    assert request["ExpressionAttributeNames"]["#claim"] == claim_id("event:x")
    assert request["ConsistentRead"] is True


def test_a_case_item_over_400_kb_is_refused_before_dynamodb_is_asked(dynamo: HookedDynamoDbCaseStore) -> None:
    calls: list[str] = []
    dynamodb_client().meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )

    def case_of(fields: int) -> EnrichedCase:  # text fields of 4,000 characters (a value's limit: 4,100)
        value = EnrichedField(value=FieldValue.of("x" * 4_000), source=Provenance.EVENT, as_of=at(0))
        return EnrichedCase(
            domain_id=DOMAIN, case_id="c1", version=at(0), fields={f"f{n:03d}": value for n in range(fields)}
        )

    huge = case_of(105)
    empty = dynamo.load(DOMAIN, "c1")
    calls.clear()
    with pytest.raises(SlaItemTooLargeError, match="case c1: the item would be"):
        dynamo.commit(empty, CaseChange("event:e", Claim(at(0), done=True), snapshot=huge))
    assert calls == []
    assert raw_case("c1") == {}
    calls.clear()
    dynamo.commit(empty, CaseChange("event:e", Claim(at(0), done=True), snapshot=case_of(90)))
    assert calls == ["PutItem"]
    assert item_bytes(raw_case("c1")) <= MAX_ITEM_BYTES


def test_a_later_write_that_would_outgrow_the_item_is_refused_with_the_typed_error(
    dynamo: HookedDynamoDbCaseStore,
) -> None:
    """An UpdateItem cannot be sized before DynamoDB is asked: its refusal (ValidationException, the item
    size) is the typed error (DynamoDB refuses the whole write; moto applies part of it, so the item is not
    compared here)."""

    def case_of(fields: int, version: datetime) -> EnrichedCase:
        value = EnrichedField(value=FieldValue.of("x" * 4_000), source=Provenance.EVENT, as_of=version)
        return EnrichedCase(
            domain_id=DOMAIN,
            case_id="c1",
            version=version,
            fields={f"f{n:03d}": value for n in range(fields)},
        )

    dynamo.commit(
        dynamo.load(DOMAIN, "c1"),
        CaseChange("event:e1", Claim(at(0), done=True), snapshot=case_of(60, at(0))),
    )
    old = dynamo.load(DOMAIN, "c1")
    with pytest.raises(SlaItemTooLargeError, match="case c1: the item would outgrow DynamoDB's limit"):
        dynamo.commit(old, CaseChange("event:e2", Claim(at(1), done=True), snapshot=case_of(105, at(1))))


class Unprocessing:
    """The moto client, but BatchGetItem leaves `unprocessed` keys unprocessed on its first call (as
    DynamoDB does when it throttles) — botocore does not retry them."""

    def __init__(self, client: Any, unprocessed: int) -> None:
        self._client = client
        self.unprocessed = unprocessed
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.batches.append(len(keys))
        assert len(keys) <= 100  # BatchGetItem's limit
        held, asked = keys[: self.unprocessed], keys[self.unprocessed :]
        self.unprocessed = 0
        response = dict(self._client.batch_get_item(RequestItems={table: {**request, "Keys": asked}}))
        if held:
            response["UnprocessedKeys"] = {table: {**request, "Keys": held}}
        return response


def test_load_many_retries_unprocessed_keys(
    dynamo: HookedDynamoDbCaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    updater = world(dynamo).timer_app().timer.updater
    ids = [f"case-{n:03d}" for n in range(101)]
    for case_id in ids:
        updater.apply(DOMAIN, case_id, "t", lambda _r: Trigger(observations=(opened(0),)))
    sleeps: list[float] = []
    monkeypatch.setattr(dynamodb_case_store.time, "sleep", sleeps.append)
    client = Unprocessing(dynamodb_client(), unprocessed=30)
    reader = DynamoDbCaseStore("casewatch-state", client, POLICIES)  # type: ignore[arg-type]
    found = reader.load_many(DOMAIN, ids)
    assert sorted(found) == ids
    assert client.batches == [100, 30, 1]  # the first batch, its unprocessed keys again, the 101st
    assert len(sleeps) == 1  # a backoff before asking for the unprocessed keys again


def test_the_feed_keeps_what_failed_polls_owe_beside_its_watermark(store: Any) -> None:
    assert store.owed(DOMAIN) == []
    store.owe(DOMAIN, [("c1", "feed:p1:c1"), ("c2", "feed:p1:c2:due")])
    store.owe(DOMAIN, [("c1", "feed:p1:c1")])  # a set: the same trigger once
    store.advance(DOMAIN, at(10), None)  # the first watermark, beside what is owed
    assert store.watermark(DOMAIN) == at(10)
    assert store.owed(DOMAIN) == [("c1", "feed:p1:c1"), ("c2", "feed:p1:c2:due")]
    store.advance(DOMAIN, at(20), at(10))
    store.settle(DOMAIN, [("c1", "feed:p1:c1"), ("c9", "never-owed")])
    assert store.owed(DOMAIN) == [("c2", "feed:p1:c2:due")]
    assert store.watermark(DOMAIN) == at(20)
    store.owe(DOMAIN, [])
    store.settle(DOMAIN, [])
    store.settle(DOMAIN, [("c2", "feed:p1:c2:due")])
    assert store.owed(DOMAIN) == [] and store.owed("another-domain") == []
    assert store.load(DOMAIN, "c1", with_watermark=True).watermark == at(20)


def test_a_poll_reads_the_feed_s_position_in_one_get_item(dynamo: HookedDynamoDbCaseStore) -> None:
    """The watermark and what is owed are one item, read once (strongly consistent) per poll."""
    requests: list[tuple[str, dict[str, Any]]] = []
    client = dynamodb_client()
    client.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda params, model, **_: requests.append((model.name, dict(params))),
    )
    dynamo.owe(DOMAIN, [("c1", "feed:p1:c1"), ("c2", "feed:p1:c2:due")])
    dynamo.advance(DOMAIN, at(10), None)
    requests.clear()
    position = dynamo.position(DOMAIN)
    assert position == FeedPosition(at(10), (("c1", "feed:p1:c1"), ("c2", "feed:p1:c2:due")))
    [(operation, request)] = requests
    assert (operation, request["Key"], request["ConsistentRead"]) == ("GetItem", feed_key(DOMAIN), True)
    requests.clear()
    assert dynamo.position("another-domain") == FeedPosition()
    assert [operation for operation, _ in requests] == ["GetItem"]
    dynamo.settle(DOMAIN, [("c1", "feed:p1:c1"), ("c2", "feed:p1:c2:due")])
    w = world(dynamo, VirtualClock(at(20)))
    requests.clear()
    w.poll("p2")  # nothing changed, nothing due: the feed's item read once, its watermark moved
    feed_reads = [op for op, r in requests if r.get("Key") == feed_key(DOMAIN) and op != "UpdateItem"]
    assert feed_reads == ["GetItem"]
    assert dynamo.watermark(DOMAIN) == at(20) - SLA_SETTINGS.index_lag
