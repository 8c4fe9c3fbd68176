"""The DynamoDB snapshot store on moto: conditional versioned writes, the per-container cache, and
out-of-order events through the handlers (an older event never replaces a newer view)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from casewatch.adapters.dynamodb_snapshots import (
    DELETED_RETENTION,
    RETENTION,
    DynamoDbSnapshotStore,
    snapshot_key,
)

from casewatch.adapters.clients import dynamodb_client
from casewatch.domain.values import sortable_iso
from casewatch.handlers import case_changed, related_item_created
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.fields import FieldValue
from casewatch_dev.fakes.ports import (
    DictCasesReader,
    InMemorySnapshotStore,
)
from tests.apps import EventPath, FixedClock
from tests.builders import CASE_1, DOMAIN, load_event, repo_settings

T1 = datetime(2026, 11, 23, 9, 0, 0, 412000, tzinfo=UTC)  # case-created
T2 = datetime(2026, 11, 23, 9, 14, 37, 905000, tzinfo=UTC)  # case-updated
FETCHED = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock for the cache TTL, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class GetItemCounter:
    """Counts the GetItem requests a client sends (a botocore event hook: what the store reads)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        client.meta.events.register("before-call.dynamodb.GetItem", self._count)

    def _count(self, **_: Any) -> None:
        self.calls += 1


@pytest.fixture
def dynamodb(tables: Any) -> Any:
    return dynamodb_client()


@pytest.fixture
def table(tables: Any) -> str:
    """The state table, defined as the CDK stack defines it."""
    return str(tables.state)


def view(
    version: datetime, *, getcase_at: datetime | None = None, status: str = "open", deleted: bool = False
) -> EnrichedCase:
    return EnrichedCase(
        domain_id=DOMAIN,
        case_id=CASE_1,
        template_id="tpl",
        version=version,
        event_id="e",
        fields={
            "status": EnrichedField(value=FieldValue.of(status), source=Provenance.EVENT, as_of=version),
            "score": EnrichedField(value=FieldValue.of(2.5), source=Provenance.GETCASE, as_of=FETCHED),
            "vip": EnrichedField(value=FieldValue.of(True), source=Provenance.SNAPSHOT, as_of=T1),
            "case_reason": EnrichedField(value=FieldValue.of(None), source=Provenance.EVENT, as_of=version),
        },
        missing=("customer_id",),
        getcase_at=getcase_at,
        deleted=deleted,
        flags=("case_not_found",) if deleted else (),
    )


# --- the store ---------------------------------------------------------------------------------


def test_a_view_round_trips_exactly(dynamodb: Any, table: str) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0)
    stored = view(T2, getcase_at=FETCHED)
    assert store.get(DOMAIN, CASE_1) is None
    assert store.put(stored)
    assert store.get(DOMAIN, CASE_1) == stored
    assert store.get("another-domain", CASE_1) is None
    item = dynamodb.get_item(TableName=table, Key=snapshot_key(CASE_1))["Item"]
    assert item["pk"] == {"S": f"CASE#{CASE_1}"}
    assert item["sk"] == {"S": "SNAPSHOT"}
    assert item["version"] == {"S": "2026-11-23T09:14:37.905000Z"}
    assert item["getcase_at"] == {"S": "2026-11-23T17:00:00.000000Z"}
    assert item["deleted"] == {"BOOL": False}


def test_views_of_live_cases_expire_after_the_retention(dynamodb: Any, table: str) -> None:
    """A case silent for `RETENTION` (400 days) is forgotten; each newer version moves its expiry."""
    assert timedelta(days=400) == RETENTION
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0)

    def expires_at() -> int:
        return int(dynamodb.get_item(TableName=table, Key=snapshot_key(CASE_1))["Item"]["expires_at"]["N"])

    assert store.put(view(T1))
    assert expires_at() == int((T1 + RETENTION).timestamp())
    assert store.put(view(T2))
    assert expires_at() == int((T2 + RETENTION).timestamp())
    assert not store.put(view(T1 + timedelta(seconds=1)))  # an older event moves nothing
    assert expires_at() == int((T2 + RETENTION).timestamp())


def test_versions_sort_as_strings() -> None:
    moments = [T1, T1 + timedelta(microseconds=1), T2, datetime(2027, 1, 1, tzinfo=UTC)]
    assert sorted(sortable_iso(m) for m in moments) == [sortable_iso(m) for m in moments]


@pytest.mark.parametrize(
    ("first", "second", "written"),
    [
        ((T1, None), (T2, None), True),  # a newer event
        ((T2, None), (T1, None), False),  # an older event never overwrites a newer view
        ((T2, None), (T1, FETCHED), False),  # not even with fresher GetCase values
        ((T2, None), (T2, None), False),  # the same event redelivered
        ((T2, None), (T2, FETCHED), True),  # the same version, GetCase filled it in
        ((T2, FETCHED), (T2, FETCHED - timedelta(seconds=1)), False),  # fetched earlier
        ((T2, FETCHED), (T2, FETCHED + timedelta(seconds=1)), True),  # fetched later
    ],
)
def test_conditional_writes(
    dynamodb: Any,
    table: str,
    first: tuple[datetime, datetime | None],
    second: tuple[datetime, datetime | None],
    written: bool,
) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0)
    memory = InMemorySnapshotStore()  # the fake follows the same rule
    for target in (store, memory):
        assert target.put(view(first[0], getcase_at=first[1], status="first"))
        assert target.put(view(second[0], getcase_at=second[1], status="second")) is written
    expected = "second" if written else "first"
    assert store.get(DOMAIN, CASE_1).value("status") == expected  # type: ignore[union-attr]
    assert memory.get(DOMAIN, CASE_1).value("status") == expected  # type: ignore[union-attr]
    item = dynamodb.get_item(TableName=table, Key=snapshot_key(CASE_1))["Item"]
    assert item["version"] == {"S": sortable_iso(second[0] if written else first[0])}


def test_deleted_views_expire(dynamodb: Any, table: str) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb)
    assert store.put(view(T2, deleted=True))
    item = dynamodb.get_item(TableName=table, Key=snapshot_key(CASE_1))["Item"]
    assert item["deleted"] == {"BOOL": True}
    assert timedelta(days=30) == DELETED_RETENTION
    assert int(item["expires_at"]["N"]) == int((T2 + DELETED_RETENTION).timestamp())


# --- the per-container cache -------------------------------------------------------------------


def test_reads_go_through_the_cache_and_writes_refresh_it(dynamodb: Any, table: str) -> None:
    ticks = Ticks()
    reads = GetItemCounter(dynamodb)
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=2, cache_ttl_seconds=10, monotonic=ticks)
    assert store.get(DOMAIN, CASE_1) is None
    assert store.get(DOMAIN, CASE_1) is None
    assert reads.calls == 1  # "no snapshot" is cached too
    store.put(view(T1))
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert reads.calls == 1  # served what this container wrote
    ticks.now = 10
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert reads.calls == 1  # exactly at its time to live: still served
    ticks.now = 10.001
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert reads.calls == 2  # expired: read again
    for other in ("case-x", "case-y"):
        store.get(DOMAIN, other)
    store.get(DOMAIN, CASE_1)
    assert reads.calls == 5  # evicted by the two newer entries (LRU of 2)


def test_no_cache_when_its_size_is_zero(dynamodb: Any, table: str) -> None:
    reads = GetItemCounter(dynamodb)
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0)
    store.put(view(T1))
    store.get(DOMAIN, CASE_1)
    store.get(DOMAIN, CASE_1)
    assert reads.calls == 2


def test_a_lost_condition_drops_the_cached_view(dynamodb: Any, table: str) -> None:
    mine = DynamoDbSnapshotStore(table, client=dynamodb, cache_ttl_seconds=3600)
    other = DynamoDbSnapshotStore(table, client=dynamodb)  # another container
    assert mine.put(view(T1, status="open"))
    assert other.put(view(T2, status="pending-customer"))
    assert mine.get(DOMAIN, CASE_1).value("status") == "open"  # type: ignore[union-attr]  # cached, stale
    assert not mine.put(view(T1 + timedelta(seconds=1), status="stale"))
    assert mine.get(DOMAIN, CASE_1).value("status") == "pending-customer"  # type: ignore[union-attr]


def test_the_cache_never_serves_a_view_older_than_this_container_wrote(dynamodb: Any, table: str) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_ttl_seconds=3600)
    store.get(DOMAIN, CASE_1)  # caches "none"
    assert store.put(view(T1))
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert store.put(view(T2, status="closed"))
    assert store.get(DOMAIN, CASE_1).value("status") == "closed"  # type: ignore[union-attr]


# --- out-of-order events through the handlers --------------------------------------------------


def container(store: DynamoDbSnapshotStore, reader: DictCasesReader | None = None) -> EventPath:
    """One function's container: the event path over a DynamoDB snapshot store, sinks recorded."""
    return EventPath(
        repo_settings(), cases=reader or DictCasesReader(), snapshots=store, clock=FixedClock(FETCHED)
    )


def handle(path: EventPath, module: Any, stem: str) -> dict[str, Any]:
    return path.invoke(load_event(stem), module.__name__.rsplit(".", 1)[1].replace("_", "-"))


@pytest.mark.parametrize("containers", ["one", "two"])
def test_out_of_order_events_leave_the_newer_view(dynamodb: Any, table: str, containers: str) -> None:
    changed = container(DynamoDbSnapshotStore(table, client=dynamodb))
    related = changed if containers == "one" else container(DynamoDbSnapshotStore(table, client=dynamodb))
    assert handle(changed, case_changed, "case-updated")["getcaseCalls"] == 0  # t2 first
    assert handle(changed, case_changed, "case-created")["outcome"] == "handled"  # then t1, late
    assert changed.cases_seen[-1].value("status") == "open"  # t1's own view goes to the sinks ...
    assert changed.snapshots.get(DOMAIN, CASE_1).version == T2  # type: ignore[union-attr]  # ... not to the store

    result = handle(related, related_item_created, "related-item-comment")
    assert result["getcaseCalls"] == 0  # the snapshot has every needed field
    comment_view = related.cases_seen[-1]
    assert comment_view.version == T2  # t2's view
    assert comment_view.value("status") == "pending-customer"
    assert comment_view.value("assigned_user") is not None
    assert set(comment_view.sources().values()) == {Provenance.SNAPSHOT}
    stored = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0).get(DOMAIN, CASE_1)
    assert stored is not None
    assert stored.version == T2
    assert stored.value("status") == "pending-customer"


def test_a_late_update_after_the_deletion_does_not_resurrect_the_case(dynamodb: Any, table: str) -> None:
    path = container(DynamoDbSnapshotStore(table, client=dynamodb))
    handle(path, case_changed, "case-deleted")  # case 2, 16:45
    result = handle(path, case_changed, "case-updated-metadata-only")  # case 2, 10:02, delivered late
    assert result["getcaseCalls"] == 0  # the snapshot says the case is gone: no GetCase (it would 404)
    assert path.cases.calls == 0  # type: ignore[attr-defined]
    late = path.cases_seen[-1]
    assert late.deleted
    assert late.flags == ("case_deleted",)
    stored = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0).get(DOMAIN, late.case_id)
    assert stored is not None
    assert stored.deleted
