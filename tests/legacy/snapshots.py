"""[Vendored from main@22fc270, `functions/casewatch/adapters/dynamodb_snapshots.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

`DynamoDbSnapshotStore`: the latest enriched view of each case in the state table.

Item `pk=CASE#<caseId>, sk=SNAPSHOT`: the view as JSON (`view`), its `version` (the
approximateChangeTime of the newest case event applied, fixed-width ISO-8601 so strings sort by
time), `getcase_at` (when GetCase last refreshed it) and `expires_at` (TTL: `RETENTION` after the
case's last change, `DELETED_RETENTION` once it is deleted). `put` is a conditional PutItem: it writes
only over nothing, an older version, or the same version fetched earlier (`supersedes`), so an
older event never overwrites a newer view; losing the condition is not an error (`False`).

A small per-container LRU cache sits in front: read-through, refreshed by this container's
successful writes (so it never serves a view older than one this container wrote) and dropped on
a lost condition. Entries expire after `cache_ttl_seconds`, bounding how stale a view written by
another container can be (the case-changed and related-item-created functions are different
containers).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from casewatch.domain.values import sortable_iso
from casewatch.models.enriched import EnrichedCase
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SNAPSHOT_SK = "SNAPSHOT"
RETENTION = timedelta(days=400)  # a case silent this long is forgotten (the SLA items' retention too)
DELETED_RETENTION = timedelta(days=30)  # deleted cases' views expire (TTL) after this
_CONDITION_NEWER = "attribute_not_exists(pk) OR #version < :version"
_CONDITION_REFETCHED = (
    " OR (#version = :version AND (attribute_not_exists(#getcase_at) OR #getcase_at < :getcase_at))"
)


def snapshot_key(case_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": SNAPSHOT_SK}}


class DynamoDbSnapshotStore:
    """The `SnapshotStore` port on the state table (`casewatch.tables.STATE_TABLE`)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        cache_size: int = 512,
        *,
        cache_ttl_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl_seconds
        self._monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, EnrichedCase | None]] = OrderedDict()

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            from casewatch.adapters import clients

            self._client = clients.dynamodb_client()
        return self._client

    # -- cache ---------------------------------------------------------------------------------
    def _cached(self, case_id: str) -> tuple[bool, EnrichedCase | None]:
        entry = self._cache.get(case_id)
        if entry is None:
            return False, None
        stored_at, view = entry
        if self._monotonic() - stored_at > self._cache_ttl:
            del self._cache[case_id]
            return False, None
        self._cache.move_to_end(case_id)
        return True, view

    def _remember(self, case_id: str, view: EnrichedCase | None) -> None:
        if self._cache_size <= 0:
            return
        self._cache[case_id] = (self._monotonic(), view)
        self._cache.move_to_end(case_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- the port ------------------------------------------------------------------------------
    def get(self, domain_id: str, case_id: str) -> EnrichedCase | None:
        hit, view = self._cached(case_id)
        if not hit:
            item = self.client.get_item(
                TableName=self.table_name,
                Key=snapshot_key(case_id),
                ConsistentRead=True,
                ProjectionExpression="#view",
                ExpressionAttributeNames={"#view": "view"},
            ).get("Item")
            view = EnrichedCase.model_validate_json(item["view"]["S"]) if item and "view" in item else None
            self._remember(case_id, view)
        return view if view is not None and view.domain_id == domain_id else None

    def put(self, case: EnrichedCase) -> bool:
        item: dict[str, Any] = {
            **snapshot_key(case.case_id),
            "domain_id": {"S": case.domain_id},
            "version": {"S": sortable_iso(case.version)},
            "view": {"S": case.model_dump_json(exclude_none=True)},
            "deleted": {"BOOL": case.deleted},
        }
        values: dict[str, Any] = {":version": item["version"]}
        names = {"#version": "version"}
        condition = _CONDITION_NEWER
        if case.getcase_at is not None:
            item["getcase_at"] = {"S": sortable_iso(case.getcase_at)}
            values[":getcase_at"] = item["getcase_at"]
            names["#getcase_at"] = "getcase_at"
            condition += _CONDITION_REFETCHED
        retention = DELETED_RETENTION if case.deleted else RETENTION
        item["expires_at"] = {"N": str(int((case.version + retention).timestamp()))}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self._cache.pop(case.case_id, None)  # a newer view is stored: read it next time
            logger.debug("snapshot not written: a newer view is stored", case_id=case.case_id)
            return False
        self._remember(case.case_id, case)
        return True


__all__ = ["SNAPSHOT_SK", "DynamoDbSnapshotStore", "snapshot_key"]
