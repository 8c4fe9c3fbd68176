"""[Vendored from main@22fc270, `functions/casewatch/adapters/dynamodb_sla_store.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

`DynamoDbSlaStore`: SLA state in the single state table (`casewatch.tables.STATE_TABLE`).

Items of a case (partition `CASE#<caseId>`):
- `sk=SLALOG`: the case's observation log (`observations`: a JSON array, in time order),
  `horizon`, `version` (newest approximateChangeTime), `revision` (optimistic lock), and a copy of
  the case's SLA items (`slas`, JSON) so that loading a case is one GetItem;
- `sk=SLA#policy#<name>` / `SLA#cases#<relatedItemId>`: one per SLA — `status`, `target_time`,
  `completion_time`, `history` (a JSON array of transitions), `version`, ... and, while open, the
  sparse `due` index keys (`due_shard`, `due_at`) that reconciliation queries for "SLAs due before T".
Both item kinds expire (`expires_at`) `RETENTION` after the case's last change.

A save is one TransactWriteItems: the log, conditional on the revision that was loaded (so two writers
cannot both win; the loser gets `SlaConflictError`, reloads and applies again), and the changed SLA
items, each conditional on its stored `version` not being newer (an older state never overwrites a
newer one). When no SLA changed, the log alone is written with a conditional PutItem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from casewatch.domain.sla.log import CaseSlaLog, Observation
from casewatch.domain.sla.model import (
    SlaConflictError,
    SlaItemTooLargeError,
    SlaOrigin,
    SlaState,
    SlaStatus,
    Transition,
)
from casewatch.domain.values import Scalar, parse_iso
from casewatch.domain.values import sortable_iso as iso
from tests.legacy.records import SlaCaseRecord, StoredSla
from tests.legacy.tables import DUE_SHARDS, STATE_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

CASE_PREFIX: Final = "CASE#"
SLA_PREFIX: Final = "SLA#"
LOG_SK: Final = "SLALOG"
SLA_RECORD: Final = "sla"
LOG_RECORD: Final = "sla_log"
RETENTION: Final = timedelta(days=400)
DUE_INDEX: Final = STATE_TABLE.indexes[0].name
MAX_ITEM_BYTES: Final = 400 * 1024  # DynamoDB's item size limit (names and values)

Item = dict[str, "AttributeValueTypeDef"]


def case_pk(case_id: str) -> str:
    return f"{CASE_PREFIX}{case_id}"


def sla_sk(sla_key: str) -> str:
    return f"{SLA_PREFIX}{sla_key}"


def due_shard(case_id: str) -> str:
    """The `due` index partition of a case: a stable hash over `DUE_SHARDS` partitions."""
    return str(int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % DUE_SHARDS)


# --- attribute values ----------------------------------------------------------------------------


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(Decimal(str(value)))}


def _scalar_attr(value: Scalar) -> AttributeValueTypeDef:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, float):
        return _n(value)
    return _s(value)


def _scalar(attr: Mapping[str, Any]) -> Scalar:
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "N" in attr:
        return float(attr["N"])
    if "S" in attr:
        return str(attr["S"])
    return None


def _str(item: Mapping[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return str(attr["S"]) if attr and "S" in attr else None


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    text = _str(item, name)
    return parse_iso(text) if text else None


def _num(item: Mapping[str, Any], name: str, default: float = 0) -> float:
    attr = item.get(name)
    return float(attr["N"]) if attr and "N" in attr else default


# --- items ---------------------------------------------------------------------------------------


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB documents it (CapacityUnitCalculations): names and strings in UTF-8
    bytes, binaries in raw bytes, a number one byte per two significant digits plus one, a flag or null
    one byte, a list or map 3 bytes plus its elements and a byte each, a set its elements."""
    return sum(len(name.encode()) + _value_bytes(attr) for name, attr in item.items())


def _value_bytes(attr: Mapping[str, Any]) -> int:
    [(kind, value)] = attr.items()
    if kind == "S":
        return len(str(value).encode())
    if kind == "N":
        digits = str(value).lstrip("+-").lower().split("e")[0].replace(".", "").strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(value if isinstance(value, bytes | bytearray) else str(value).encode())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: v}) for v in value)
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in value)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in value.items())
    return 1  # BOOL, NULL


def history_json(history: Sequence[Transition]) -> str:
    """The transitions as a compact JSON array: `[{"at", "status", "cycle", "target"}, ...]`."""
    return json.dumps(
        [
            {"at": iso(t.at), "status": t.status.value, "cycle": t.cycle, "target": iso(t.target_time)}
            for t in history
        ],
        separators=(",", ":"),
    )


def parse_history(text: str) -> tuple[Transition, ...]:
    return tuple(
        Transition(parse_iso(e["at"]), SlaStatus(e["status"]), int(e["cycle"]), parse_iso(e["target"]))
        for e in json.loads(text)
    )


def sla_item(
    domain_id: str,
    case_id: str,
    state: SlaState,
    *,
    version: datetime | None,
    revision: int,
    next_check_at: datetime | None = None,
) -> Item:
    """The DynamoDB item of one (case, SLA)."""
    item: Item = {
        "pk": _s(case_pk(case_id)),
        "sk": _s(sla_sk(state.key)),
        "record": _s(SLA_RECORD),
        "domain_id": _s(domain_id),
        "case_id": _s(case_id),
        "sla_key": _s(state.key),
        "name": _s(state.name),
        "origin": _s(state.origin.value),
        "status": _s(state.status.value),
        "cycle": _n(state.cycle),
        "started_at": _s(iso(state.started_at)),
        "target_time": _s(iso(state.target_time)),
        "duration_s": _n(state.duration.total_seconds()),
        "paused_s": _n(state.paused_seconds),
        "history": _s(history_json(state.history)),
        "revision": _n(revision),
    }
    if state.paused_since is not None:
        item["paused_since"] = _s(iso(state.paused_since))
    if state.completion_time is not None:
        item["completion_time"] = _s(iso(state.completion_time))
    if state.complete_field is not None:
        item["complete_field"] = _s(state.complete_field)
        item["complete_values"] = {"L": [_scalar_attr(v) for v in state.complete_values]}
    if state.complete_item is not None:
        item["complete_item"] = _s(state.complete_item)
    if version is not None:
        item["version"] = _s(iso(version))
        item["expires_at"] = _n(int((version + RETENTION).timestamp()))
    if next_check_at is not None:
        item["next_check_at"] = _s(iso(next_check_at))
    if state.status.is_open:
        due_at = max(state.target_time, next_check_at) if next_check_at is not None else state.target_time
        item["due_shard"] = _s(due_shard(case_id))
        item["due_at"] = _s(iso(due_at))
    return item


def stored_sla(item: Mapping[str, Any]) -> StoredSla:
    """A `StoredSla` from its item."""
    history = parse_history(_str(item, "history") or "[]")
    started = _time(item, "started_at")
    target = _time(item, "target_time")
    assert started is not None
    assert target is not None
    state = SlaState(
        key=str(item["sla_key"]["S"]),
        name=str(item["name"]["S"]),
        origin=SlaOrigin(item["origin"]["S"]),
        status=SlaStatus(item["status"]["S"]),
        cycle=int(_num(item, "cycle")),
        started_at=started,
        target_time=target,
        duration=timedelta(seconds=_num(item, "duration_s")),
        paused_since=_time(item, "paused_since"),
        paused_seconds=_num(item, "paused_s"),
        completion_time=_time(item, "completion_time"),
        history=history,
        complete_field=_str(item, "complete_field"),
        complete_values=tuple(_scalar(v) for v in item.get("complete_values", {}).get("L", [])),
        complete_item=_str(item, "complete_item"),
    )
    return StoredSla(
        domain_id=str(item["domain_id"]["S"]),
        case_id=str(item["case_id"]["S"]),
        state=state,
        version=_time(item, "version"),
        revision=int(_num(item, "revision")),
        next_check_at=_time(item, "next_check_at"),
    )


def log_item(log: CaseSlaLog, revision: int, slas: Mapping[str, Item] | None = None) -> Item:
    """The log item; `slas` embeds the case's SLA items too, so a load is one GetItem."""
    item: Item = {
        "pk": _s(case_pk(log.case_id)),
        "sk": _s(LOG_SK),
        "record": _s(LOG_RECORD),
        "domain_id": _s(log.domain_id),
        "case_id": _s(log.case_id),
        "observations": _s("[" + ",".join(o.to_json() for o in log.observations) + "]"),
        "revision": _n(revision),
    }
    if slas is not None:
        item["slas"] = _s(json.dumps(slas, sort_keys=True, separators=(",", ":")))
    if log.horizon is not None:
        item["horizon"] = _s(iso(log.horizon))
    if log.version is not None:
        item["version"] = _s(iso(log.version))
        item["expires_at"] = _n(int((log.version + RETENTION).timestamp()))
    return item


def case_log(item: Mapping[str, Any]) -> CaseSlaLog:
    return CaseSlaLog(
        domain_id=str(item["domain_id"]["S"]),
        case_id=str(item["case_id"]["S"]),
        observations=tuple(Observation.from_doc(d) for d in json.loads(_str(item, "observations") or "[]")),
        horizon=_time(item, "horizon"),
    )


class DynamoDbSlaStore:
    """`SlaStore` on the state table (a low-level DynamoDB client, injected, typed)."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        pages = self._client.get_paginator("query").paginate(TableName=self.table_name, **kwargs)
        return [item for page in pages for item in page.get("Items", [])]

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        found = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": _s(case_pk(case_id)), "sk": _s(LOG_SK)},
            ConsistentRead=True,
        ).get("Item")
        if found is None:
            return SlaCaseRecord(CaseSlaLog(domain_id, case_id), {}, 0)
        embedded = _str(found, "slas")
        if embedded is not None:
            items = list(json.loads(embedded).values())
        else:  # written without the embedded copy: read the SLA items themselves
            items = self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :sla)",
                ExpressionAttributeValues={":pk": _s(case_pk(case_id)), ":sla": _s(SLA_PREFIX)},
                ConsistentRead=True,
            )
        slas = {stored.state.key: stored for stored in map(stored_sla, items)}
        return SlaCaseRecord(case_log(found), slas, int(_num(found, "revision")))

    def save(
        self,
        old: SlaCaseRecord,
        log: CaseSlaLog,
        changed: Sequence[SlaState],
        *,
        next_checks: Mapping[str, datetime] | None = None,
    ) -> SlaCaseRecord:
        revision = old.revision + 1
        next_checks = next_checks or {}
        log_put: dict[str, Any] = {"TableName": self.table_name}
        if old.revision == 0:
            log_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            log_put["ConditionExpression"] = "revision = :rev"
            log_put["ExpressionAttributeValues"] = {":rev": _n(old.revision)}
        writes: list[TransactWriteItemTypeDef] = [{"Put": log_put}]  # type: ignore[typeddict-item]
        slas = dict(old.slas)
        embedded = {
            key: sla_item(
                s.domain_id,
                s.case_id,
                s.state,
                version=s.version,
                revision=s.revision,
                next_check_at=s.next_check_at,
            )
            for key, s in old.slas.items()
        }
        states = {state.key: (state, log.version) for state in changed}
        for key in next_checks.keys() - states.keys():  # only the next check moves: the same state
            if key in old.slas:
                states[key] = (old.slas[key].state, old.slas[key].version)
        for key, (state, version) in states.items():
            before = old.slas.get(key)
            next_check = next_checks.get(key, before.next_check_at if before is not None else None)
            item = sla_item(
                log.domain_id,
                log.case_id,
                state,
                version=version,
                revision=revision,
                next_check_at=next_check,
            )
            put: dict[str, Any] = {"TableName": self.table_name, "Item": item}
            if version is not None:
                put["ConditionExpression"] = "attribute_not_exists(pk) OR version <= :version"
                put["ExpressionAttributeValues"] = {":version": _s(iso(version))}
            writes.append({"Put": put})  # type: ignore[typeddict-item]
            slas[key] = StoredSla(log.domain_id, log.case_id, state, version, revision, next_check)
            embedded[key] = item
        log_put["Item"] = log_item(log, revision, embedded)
        size = item_bytes(log_put["Item"])
        if size > MAX_ITEM_BYTES:  # the log compacts itself well below this: only many huge SLAs get here
            raise SlaItemTooLargeError(
                f"case {log.case_id}: the SLA log item would be {size} bytes, over DynamoDB's limit"
            )
        try:
            if len(writes) == 1:  # only the log changed: one conditional put (a transaction costs double)
                self._client.put_item(**log_put)
            else:
                self._client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            ):
                reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]  # type: ignore[attr-defined]
                if not reasons or set(reasons) <= {
                    "None",
                    "ConditionalCheckFailed",
                    "TransactionConflict",
                    "",
                }:
                    raise SlaConflictError(f"case {log.case_id}: SLA state changed concurrently") from exc
            raise
        return SlaCaseRecord(log, slas, revision)

    def case_slas(self, case_id: str) -> list[StoredSla]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sla)",
            ExpressionAttributeValues={":pk": _s(case_pk(case_id)), ":sla": _s(SLA_PREFIX)},
        )
        return sorted((stored_sla(i) for i in items), key=lambda s: (s.state.started_at, s.state.key))

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        found: list[StoredSla] = []
        for shard in range(DUE_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": DUE_INDEX,
                "KeyConditionExpression": "due_shard = :shard AND due_at < :moment",
                "ExpressionAttributeValues": {":shard": _s(str(shard)), ":moment": _s(iso(moment))},
                "Limit": limit,
            }
            page = self._client.query(**kwargs)
            found += [
                stored_sla(i) for i in page.get("Items", []) if i.get("record", {}).get("S") == SLA_RECORD
            ]
        found.sort(key=lambda s: (s.next_check_at or s.state.target_time, s.case_id, s.state.key))
        return found[:limit]


__all__ = [
    "DynamoDbSlaStore",
    "case_log",
    "case_pk",
    "due_shard",
    "log_item",
    "sla_item",
    "sla_sk",
    "stored_sla",
]
