"""[Vendored from main@22fc270, `functions/casewatch/tables.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

DynamoDB table definitions, shared by the CDK stack, the adapters and the local pipeline.

The state table is a single table holding, per case:
- `pk=CASE#<caseId>, sk=SNAPSHOT`: the latest enriched case view (versioned by approximateChangeTime);
- `pk=CASE#<caseId>, sk=SLALOG`: the case's SLA observation log (the facts SLA states are folded from);
- `pk=CASE#<caseId>, sk=SLA#policy#<name>` / `SLA#cases#<relatedItemId>`: one item per (case, SLA) with
  its state and history (see `casewatch.adapters.dynamodb_sla_store`);
- `pk=CASE#<caseId>, sk=NOTIFY#STATUS` (and `NOTIFY#STATUS#REPLAY#<replayName>` per replay): the latest
  status notification sent — `latest_at` (N, epoch ms of approximateChangeTime), `latest_status` (S, a
  hash of the status value), `notification_id` (S), `expires_at` (N, TTL) — written only forward in time
  (conditional `latest_at <= :t`), so a stale "open" is never sent after a "closed".
Active SLAs also carry `due_shard`/`due_at`, a sparse GSI (`due`) to query "SLAs due before T".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DUE_SHARDS = 4  # spread the sparse `due` index over a few partitions


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    type: str = "S"  # DynamoDB attribute type: S | N | B


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str
    partition_key: KeySpec
    sort_key: KeySpec | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    construct_id: str
    partition_key: KeySpec
    sort_key: KeySpec | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None

    def create_table_args(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3 `create_table` (moto, local pipeline) matching the CDK definition."""
        keys = [self.partition_key, *([self.sort_key] if self.sort_key else [])]
        attributes = {k.name: k.type for k in keys}
        for index in self.indexes:
            for k in (index.partition_key, index.sort_key):
                if k is not None:
                    attributes[k.name] = k.type
        args: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
            "KeySchema": [
                {"AttributeName": self.partition_key.name, "KeyType": "HASH"},
                *([{"AttributeName": self.sort_key.name, "KeyType": "RANGE"}] if self.sort_key else []),
            ],
        }
        if self.indexes:
            args["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key.name, "KeyType": "HASH"},
                        *(
                            [{"AttributeName": index.sort_key.name, "KeyType": "RANGE"}]
                            if index.sort_key
                            else []
                        ),
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        return args


STATE_TABLE = TableSpec(
    construct_id="StateTable",
    partition_key=KeySpec("pk"),
    sort_key=KeySpec("sk"),
    indexes=(IndexSpec("due", KeySpec("due_shard"), KeySpec("due_at")),),
    ttl_attribute="expires_at",
)

# Powertools Idempotency's DynamoDBPersistenceLayer defaults: key `id`, TTL attribute `expiration`.
IDEMPOTENCY_TABLE = TableSpec(
    construct_id="IdempotencyTable",
    partition_key=KeySpec("id"),
    ttl_attribute="expiration",
)
