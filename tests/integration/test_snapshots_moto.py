"""The DynamoDB snapshot store on moto: conditional versioned writes, the per-container cache, and
out-of-order events through the handlers (an older event never replaces a newer view)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from casewatch.adapters.dynamodb_snapshots import DynamoDbSnapshotStore, snapshot_key, sortable
from casewatch.adapters.memory import (
    CountingMetrics,
    DictCasesReader,
    InMemorySnapshotStore,
    ListDeadLetters,
    RecordingSink,
)
from casewatch.handlers import case_changed, related_item_created
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.fields import FieldValue
from casewatch.settings import Settings, load_cdk_context
from casewatch.tables import STATE_TABLE
from casewatch.wiring import Dependencies
from tests.conftest import ROOT, load_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

REGION = "us-east-1"
DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
CASE_1 = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
T1 = datetime(2026, 11, 23, 9, 0, 0, 412000, tzinfo=UTC)  # case-created
T2 = datetime(2026, 11, 23, 9, 14, 37, 905000, tzinfo=UTC)  # case-updated
FETCHED = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
_TABLES = itertools.count()


class FixedClock:
    def now(self) -> datetime:
        return FETCHED


class Ticks:
    """A monotonic clock for the cache TTL, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LambdaContext:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(dynamodb: Any) -> str:
    """A fresh state table, defined as the CDK stack defines it."""
    name = f"casewatch-state-{next(_TABLES)}"
    dynamodb.create_table(**STATE_TABLE.create_table_args(name))
    return name


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
    assert "expires_at" not in item


def test_versions_sort_as_strings() -> None:
    moments = [T1, T1 + timedelta(microseconds=1), T2, datetime(2027, 1, 1, tzinfo=UTC)]
    assert sorted(sortable(m) for m in moments) == [sortable(m) for m in moments]


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
    assert store.rejected == (0 if written else 1)


def test_deleted_views_expire(dynamodb: Any, table: str) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb)
    assert store.put(view(T2, deleted=True))
    item = dynamodb.get_item(TableName=table, Key=snapshot_key(CASE_1))["Item"]
    assert item["deleted"] == {"BOOL": True}
    assert int(item["expires_at"]["N"]) == int((T2 + timedelta(days=30)).timestamp())


# --- the per-container cache -------------------------------------------------------------------


def test_reads_go_through_the_cache_and_writes_refresh_it(dynamodb: Any, table: str) -> None:
    ticks = Ticks()
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=2, cache_ttl_seconds=10, monotonic=ticks)
    assert store.get(DOMAIN, CASE_1) is None
    assert store.get(DOMAIN, CASE_1) is None
    assert store.reads == 1  # "no snapshot" is cached too
    store.put(view(T1))
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert store.reads == 1  # served what this container wrote
    ticks.now = 11
    assert store.get(DOMAIN, CASE_1) == view(T1)
    assert store.reads == 2  # expired: read again
    for other in ("case-x", "case-y"):
        store.get(DOMAIN, other)
    store.get(DOMAIN, CASE_1)
    assert store.reads == 5  # evicted by the two newer entries (LRU of 2)


def test_no_cache_when_its_size_is_zero(dynamodb: Any, table: str) -> None:
    store = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0)
    store.put(view(T1))
    store.get(DOMAIN, CASE_1)
    store.get(DOMAIN, CASE_1)
    assert store.reads == 2


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


@pytest.fixture(scope="module")
def repo_settings() -> Settings:
    return load_cdk_context(ROOT / "cdk.json")


def deps_for(
    store: DynamoDbSnapshotStore, settings: Settings, reader: DictCasesReader | None = None
) -> Dependencies:
    return Dependencies(
        cases=reader or DictCasesReader(),
        snapshots=store,
        dead_letters=ListDeadLetters(),
        sinks=[RecordingSink()],
        settings=settings,
        clock=FixedClock(),
        metrics=CountingMetrics(),
    )


def handle(module: Any, stem: str, deps: Dependencies) -> dict[str, Any]:
    result: dict[str, Any] = module.handler(load_event(stem), LambdaContext(module.__name__), deps=deps)
    return result


def last_case(deps: Dependencies) -> EnrichedCase:
    sink = deps.sinks[0]
    assert isinstance(sink, RecordingSink)
    return sink.received[-1][1]


@pytest.mark.parametrize("containers", ["one", "two"])
def test_out_of_order_events_leave_the_newer_view(
    dynamodb: Any, table: str, repo_settings: Settings, containers: str
) -> None:
    changed = deps_for(DynamoDbSnapshotStore(table, client=dynamodb), repo_settings)
    related = (
        changed
        if containers == "one"
        else deps_for(DynamoDbSnapshotStore(table, client=dynamodb), repo_settings, DictCasesReader())
    )
    assert handle(case_changed, "case-updated", changed)["getcaseCalls"] == 0  # t2 first
    assert handle(case_changed, "case-created", changed)["outcome"] == "handled"  # then t1, late
    assert last_case(changed).value("status") == "open"  # t1's own view goes to the sinks ...
    assert changed.snapshots.get(DOMAIN, CASE_1).version == T2  # type: ignore[union-attr]  # ... not to the store

    result = handle(related_item_created, "related-item-comment", related)
    assert result["getcaseCalls"] == 0  # the snapshot has every needed field
    comment_view = last_case(related)
    assert comment_view.version == T2  # t2's view
    assert comment_view.value("status") == "pending-customer"
    assert comment_view.value("assigned_user") is not None
    assert set(comment_view.sources().values()) == {Provenance.SNAPSHOT}
    stored = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0).get(DOMAIN, CASE_1)
    assert stored is not None
    assert stored.version == T2
    assert stored.value("status") == "pending-customer"


def test_a_late_update_after_the_deletion_does_not_resurrect_the_case(
    dynamodb: Any, table: str, repo_settings: Settings
) -> None:
    deps = deps_for(DynamoDbSnapshotStore(table, client=dynamodb), repo_settings)
    handle(case_changed, "case-deleted", deps)  # case 2, 16:45
    result = handle(case_changed, "case-updated-metadata-only", deps)  # case 2, 10:02, delivered late
    assert result["getcaseCalls"] == 0  # the snapshot says the case is gone: no GetCase (it would 404)
    late = last_case(deps)
    assert late.deleted
    assert late.flags == ("case_deleted",)
    stored = DynamoDbSnapshotStore(table, client=dynamodb, cache_size=0).get(DOMAIN, late.case_id)
    assert stored is not None
    assert stored.deleted
