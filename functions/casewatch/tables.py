"""DynamoDB table definitions, shared by the CDK stack, the adapters and the local pipeline.

The state table holds one item per case (`pk=CASE#<caseId>, sk=CASE`): the enriched view, the SLA
fold and its observation log, the status order, the claims of the triggers applied (see
`casewatch.adapters.dynamodb_case_store`), and one item per domain for the change feed
(`pk=FEED#<domainId>, sk=FEED`: its watermark). A case with an open SLA carries `due_shard`/`due_at`,
a sparse GSI (`due`) that projects only what the feed's due sweep reads: the keys and the domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Partitions of the sparse `due` index. It is written only when a case's earliest due time moves (an SLA
# armed, met or breached), a few writes per case, so one partition (1,000 WCU/s) is far from full at the
# rates the change feed sustains (see the README, Performance), and the due sweep is one Query a poll.
DUE_SHARDS = 1


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    type: str = "S"  # DynamoDB attribute type: S | N | B


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str
    partition_key: KeySpec
    sort_key: KeySpec | None = None
    projected: tuple[str, ...] = ()  # non-key attributes projected (INCLUDE); the keys always are


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
                    "Projection": (
                        {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projected)}
                        if index.projected
                        else {"ProjectionType": "KEYS_ONLY"}
                    ),
                }
                for index in self.indexes
            ]
        return args


STATE_TABLE = TableSpec(
    # Not StateTable: a new table (the `due` index projects differently; see the README, Upgrading).
    construct_id="CaseTable",
    partition_key=KeySpec("pk"),
    sort_key=KeySpec("sk"),
    indexes=(IndexSpec("due", KeySpec("due_shard"), KeySpec("due_at"), projected=("dom",)),),
    ttl_attribute="expires_at",
)
