"""`DynamoDbCaseStore`: the `CaseStore` and `FeedState` ports on the state table (`casewatch.tables`).

One item per case, one per observation and one for the change feed (their layout and the attribute
codec: `casewatch.adapters.case_items`). Observations are put before the case's write (a fact observed
is true whether or not the write wins a race; the same observation is the same item) and read (a
Query) only to fold again when an observation arrives out of order. So the case's item stays small (a
write costs about as many WCU as the view, the fold and the recent claims take KB), and a read asks
only for what a trigger needs (`claims.<its key>`, not the others): neither grows with the case's
history. The first write of a case is a conditional PutItem; later ones an UpdateItem conditional on
`rev` that sets the changed attributes. Claims older than `CLAIM_RETENTION` are removed from a case
with more than `MAX_CLAIMS` of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from casewatch.adapters.case_items import (
    CASE_PREFIX,
    CASE_SK,
    CLAIM_RETENTION,
    OBS_PREFIX,
    Item,
    applied_record,
    case_key,
    case_pk,
    check_size,
    claim_attr,
    claim_id,
    claim_of,
    due_shard,
    feed_key,
    log_counts,
    n_attr,
    observation_item,
    observation_key,
    record_of,
    s_attr,
    str_of,
    version_attrs,
)
from casewatch.backoff import full_jitter
from casewatch.domain.case_record import CaseChange, CaseRecord, Outbox
from casewatch.domain.sla.log import Observation, json_bytes
from casewatch.domain.sla.model import PolicySpec, SlaConflictError, SlaItemTooLargeError
from casewatch.domain.values import parse_iso
from casewatch.domain.values import sortable_iso as iso
from casewatch.ports import FeedPosition
from casewatch.tables import DUE_SHARDS, STATE_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX: Final = STATE_TABLE.indexes[0].name
MAX_CLAIMS: Final = 500  # claims kept before old ones are removed (a busy case: ~30 KB)
BATCH_GET_KEYS: Final = 100  # BatchGetItem's limit
BATCH_WRITE_ITEMS: Final = 25  # BatchWriteItem's limit
_OWED_SEPARATOR: Final = "\n"  # between a case id and a claim key in the feed's `owed` set
_BASE = ("#rev", "dom", "snap", "fold", "hz", "so", "nlog", "blog", "nclaims")
_NAMES: Final = {"#rev": "rev"}  # `rev` is not reserved; named anyway, with the claim's key


class DynamoDbCaseStore:
    """`CaseStore` and `FeedState` on the state table (a low-level DynamoDB client, injected)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        policies: Sequence[PolicySpec],
        *,
        max_claims: int = MAX_CLAIMS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.policies = tuple(policies)
        self.max_claims = max_claims

    # -- reading -----------------------------------------------------------------------------------
    def load(
        self,
        domain_id: str,
        case_id: str,
        *,
        claim_key: str | None = None,
        with_log: bool = False,
        with_watermark: bool = False,
    ) -> CaseRecord:
        names = dict(_NAMES)
        projection = list(_BASE)
        if claim_key is not None:
            names["#claim"] = claim_id(claim_key)
            projection.append("claims.#claim")
        if with_watermark:
            projection.append("wm")
            found = self._client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": [case_key(case_id), feed_key(domain_id)],
                        "ConsistentRead": True,
                        "ProjectionExpression": ", ".join(projection),
                        "ExpressionAttributeNames": names,
                    }
                }
            )
            items = found.get("Responses", {}).get(self.table_name, [])
            if found.get("UnprocessedKeys"):  # throttled: read them one by one instead
                keys = (case_key(case_id), feed_key(domain_id))
                items = [i for k in keys if (i := self._get(k, projection, names)) is not None]
            # BatchGetItem returns the projected attributes only: tell the items apart by what they hold.
            case_item = next((i for i in items if "rev" in i), None)
            feed_item = next((i for i in items if "wm" in i), None)
            record = record_of(domain_id, case_id, case_item, claim_key, self.policies)
            watermark = str_of(feed_item, "wm") if feed_item else None
            record = replace(record, watermark=parse_iso(watermark) if watermark else None)
            return self._with_log(record) if with_log else record
        item = self._get(case_key(case_id), projection, names)
        record = record_of(domain_id, case_id, item, claim_key, self.policies)
        return self._with_log(record) if with_log else record

    def _with_log(self, record: CaseRecord) -> CaseRecord:
        """The record with its observation log, counted as read: the items are the truth (a writer that
        lost a race may have put an observation its retry then found stored), `nlog`/`blog` follow."""
        log = self._log(record.case_id)
        return replace(record, log=log, log_size=len(log), log_bytes=json_bytes(log))

    def _log(self, case_id: str) -> tuple[Observation, ...]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :obs)",
            ExpressionAttributeValues={":pk": s_attr(case_pk(case_id)), ":obs": s_attr(OBS_PREFIX)},
            ConsistentRead=True,
        )
        return tuple(
            Observation.from_json(item["o"]["S"]) for page in pages for item in page.get("Items", [])
        )

    def _get(self, key: dict[str, Any], projection: list[str], names: dict[str, str]) -> Item | None:
        # DynamoDB refuses an empty ExpressionAttributeNames: send it only when the projection names some.
        found: Item | None = self._client.get_item(
            TableName=self.table_name,
            Key=key,
            ConsistentRead=True,
            ProjectionExpression=", ".join(projection),
            **({"ExpressionAttributeNames": names} if names else {}),  # type: ignore[arg-type]
        ).get("Item")
        return found

    def load_many(self, domain_id: str, case_ids: Sequence[str]) -> dict[str, CaseRecord]:
        found: dict[str, CaseRecord] = {}
        ids = list(dict.fromkeys(case_ids))
        for start in range(0, len(ids), BATCH_GET_KEYS):
            pending: list[dict[str, Any]] = [case_key(c) for c in ids[start : start + BATCH_GET_KEYS]]
            attempt = 0
            while pending:
                response = self._client.batch_get_item(
                    RequestItems={
                        self.table_name: {
                            "Keys": pending,
                            "ConsistentRead": True,
                            "ProjectionExpression": ", ".join([*_BASE, "pk"]),
                            "ExpressionAttributeNames": dict(_NAMES),
                        }
                    }
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    case_id = str(item["pk"]["S"]).removeprefix(CASE_PREFIX)
                    found[case_id] = record_of(domain_id, case_id, item, None, self.policies)
                unprocessed: Mapping[str, Any] = response.get("UnprocessedKeys") or {}
                pending = list(unprocessed.get(self.table_name, {}).get("Keys", []))
                attempt += 1
                if pending:  # throttled keys: botocore does not retry them
                    time.sleep(full_jitter(attempt, base_s=0.05, cap_s=1.0))
        return found

    # -- writing -----------------------------------------------------------------------------------
    def commit(self, old: CaseRecord, change: CaseChange) -> CaseRecord:
        revision = old.revision + 1
        self._write_log(old.case_id, change)
        try:
            if old.revision == 0:
                self._put_new(old, change, revision)
            else:
                self._update(old, change, revision)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SlaConflictError(f"case {old.case_id}: changed concurrently") from exc
            raise
        if old.claims_size + 1 > self.max_claims:
            self._prune_claims(old.case_id, change)
        return applied_record(old, change, revision)

    def _write_log(self, case_id: str, change: CaseChange) -> None:
        """Put the new observations and delete the dropped ones (BatchWriteItem, 25 at a time)."""
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": observation_item(case_id, o)}} for o in change.appended
        ] + [{"DeleteRequest": {"Key": observation_key(case_id, o)}} for o in change.dropped]
        for start in range(0, len(requests), BATCH_WRITE_ITEMS):
            pending = requests[start : start + BATCH_WRITE_ITEMS]
            attempt = 0
            while pending:
                response = self._client.batch_write_item(RequestItems={self.table_name: pending})  # type: ignore[dict-item]
                unprocessed: Mapping[str, Any] = response.get("UnprocessedItems") or {}
                pending = list(unprocessed.get(self.table_name, []))
                attempt += 1
                if pending:  # throttled items: botocore does not retry them
                    time.sleep(full_jitter(attempt, base_s=0.05, cap_s=1.0))

    def _put_new(self, old: CaseRecord, change: CaseChange, revision: int) -> None:
        log = change.appended
        item: Item = {
            **case_key(old.case_id),
            "rev": n_attr(revision),
            "dom": s_attr(old.domain_id),
            "nlog": n_attr(len(log)),
            "blog": n_attr(json_bytes(log)),
            "so": {"M": {k: s_attr(f"{m.at_ms}|{m.status_hash}") for k, m in change.status_order.items()}},
            "claims": {"M": {claim_id(change.claim_key): claim_attr(change.claim)}},
            "nclaims": n_attr(1),
        }
        if change.snapshot is not None:
            item["snap"] = s_attr(change.snapshot.model_dump_json(exclude_none=True))
        if change.fold is not None:
            item["fold"] = s_attr(json.dumps(change.fold.to_doc(), separators=(",", ":")))
        if change.horizon is not None:
            item["hz"] = s_attr(iso(change.horizon))
        item.update(version_attrs(old, change))
        if change.due_at is not None:
            item["due_shard"], item["due_at"] = s_attr(due_shard(old.case_id)), s_attr(iso(change.due_at))
        check_size(old.case_id, item)
        self._client.put_item(
            TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def _update(self, old: CaseRecord, change: CaseChange, revision: int) -> None:
        sets = ["#rev = :rev", "claims.#claim = :claim"]
        removes: list[str] = []
        names = {**_NAMES, "#claim": claim_id(change.claim_key)}
        values: dict[str, Any] = {
            ":rev": n_attr(revision),
            ":old": n_attr(old.revision),
            ":claim": claim_attr(change.claim),
        }
        if old.claim is None:
            sets.append("nclaims = nclaims + :one")
            values[":one"] = n_attr(1)
        if change.snapshot is not None:
            sets.append("snap = :snap")
            values[":snap"] = s_attr(change.snapshot.model_dump_json(exclude_none=True))
        if change.fold is not None:
            sets.append("fold = :fold")
            values[":fold"] = s_attr(json.dumps(change.fold.to_doc(), separators=(",", ":")))
        if change.horizon is not None:
            sets.append("hz = :hz")
            values[":hz"] = s_attr(iso(change.horizon))
        if change.appended or change.dropped:
            # Absolute counts (the write is conditional on the revision): a record loaded with its log
            # counts what is stored, so a count that drifted is set right by the next re-fold.
            log_size, log_bytes = log_counts(old, change)
            sets += ["nlog = :nobs", "blog = :bobs"]
            values[":nobs"], values[":bobs"] = n_attr(log_size), n_attr(log_bytes)
        for n, (scope, mark) in enumerate(sorted(change.status_order.items())):
            names[f"#so{n}"] = scope
            sets.append(f"so.#so{n} = :so{n}")
            values[f":so{n}"] = s_attr(f"{mark.at_ms}|{mark.status_hash}")
        for name, value in version_attrs(old, change).items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = value
        if change.due_at is not None:
            sets += ["due_shard = :shard", "due_at = :due"]
            values[":shard"], values[":due"] = s_attr(due_shard(old.case_id)), s_attr(iso(change.due_at))
        else:
            removes += ["due_shard", "due_at"]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=case_key(old.case_id),
                UpdateExpression=expression,
                ConditionExpression="#rev = :old",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if exc.response.get("Error", {}).get("Code") == "ValidationException" and "size" in message:
                raise SlaItemTooLargeError(
                    f"case {old.case_id}: the item would outgrow DynamoDB's limit"
                ) from exc
            raise

    def complete(self, case_id: str, claim_key: str, *, pending: Sequence[str] | None = None) -> None:
        names = {"#claim": claim_id(claim_key)}
        if pending is None:
            expression = "SET claims.#claim.d = :done REMOVE claims.#claim.o"
            values: dict[str, Any] = {":done": {"BOOL": True}}
        else:
            expression = "SET claims.#claim.o = :outbox"
            values = {":outbox": s_attr("")}
            current = self._get(case_key(case_id), ["claims.#claim"], names)
            claims = (current or {}).get("claims", {}).get("M", {})
            claim = claim_of(claims[names["#claim"]]) if names["#claim"] in claims else None
            outbox = claim.outbox if claim is not None and claim.outbox is not None else Outbox()
            remaining = Outbox(outbox.signals, outbox.timer_keys, tuple(pending))
            values[":outbox"] = s_attr(json.dumps(remaining.to_doc(), separators=(",", ":")))
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=case_key(case_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(claims.#claim)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:  # the claim was pruned meanwhile: nothing left to mark
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _prune_claims(self, case_id: str, change: CaseChange) -> None:
        """Remove the claims older than `CLAIM_RETENTION` (and done), in batches of REMOVEs."""
        item = self._get(case_key(case_id), ["claims"], {})
        claims = (item or {}).get("claims", {}).get("M", {})
        cutoff = change.claim.at - CLAIM_RETENTION
        old = sorted(k for k, v in claims.items() if claim_of(v).done and claim_of(v).at < cutoff)
        for start in range(0, len(old), 100):
            batch = old[start : start + 100]
            names = {f"#c{n}": key for n, key in enumerate(batch)}
            self._client.update_item(
                TableName=self.table_name,
                Key=case_key(case_id),
                UpdateExpression="REMOVE "
                + ", ".join(f"claims.{name}" for name in names)
                + " ADD nclaims :minus",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":minus": n_attr(-len(batch))},
            )

    # -- the due index, tools ------------------------------------------------------------------------
    def due_before(
        self, moment: datetime, limit: int = 100, domain_id: str | None = None
    ) -> list[tuple[str, str]]:
        found: list[tuple[str, str, str]] = []
        for shard in range(DUE_SHARDS):
            values = {":shard": s_attr(str(shard)), ":moment": s_attr(iso(moment))}
            query: dict[str, Any] = {}
            if domain_id is not None:  # another domain's open SLAs (a domain change) never crowd it out
                query["FilterExpression"] = "dom = :dom"
                values[":dom"] = s_attr(domain_id)
            pages = self._client.get_paginator("query").paginate(
                TableName=self.table_name,
                IndexName=DUE_INDEX,
                KeyConditionExpression="due_shard = :shard AND due_at < :moment",
                ExpressionAttributeValues=values,
                PaginationConfig={"MaxItems": limit},
                **query,
            )
            for page in pages:
                for item in page.get("Items", []):
                    case_id = str(item["pk"]["S"]).removeprefix(CASE_PREFIX)
                    found.append((str(item["due_at"]["S"]), str(item.get("dom", {}).get("S", "")), case_id))
        found.sort()
        return [(domain_id, case_id) for _, domain_id, case_id in found[:limit]]

    def case_ids(self) -> list[tuple[str, str]]:
        found = []
        pages = self._client.get_paginator("scan").paginate(
            TableName=self.table_name, ProjectionExpression="pk, sk, dom"
        )
        for page in pages:
            for item in page.get("Items", []):
                pk = str(item["pk"]["S"])
                if pk.startswith(CASE_PREFIX) and str(item.get("sk", {}).get("S")) == CASE_SK:
                    found.append((str(item.get("dom", {}).get("S", "")), pk.removeprefix(CASE_PREFIX)))
        return sorted(found)

    # -- the feed's watermark ----------------------------------------------------------------------------
    def watermark(self, domain_id: str) -> datetime | None:
        return self.position(domain_id).watermark

    def position(self, domain_id: str) -> FeedPosition:
        item = self._client.get_item(
            TableName=self.table_name, Key=feed_key(domain_id), ConsistentRead=True
        ).get("Item")
        text = str_of(item, "wm") if item else None
        entries = sorted((item or {}).get("owed", {}).get("SS", []))
        owed = tuple((case_id, key) for case_id, _, key in (e.partition(_OWED_SEPARATOR) for e in entries))
        return FeedPosition(parse_iso(text) if text else None, owed)

    def advance(self, domain_id: str, watermark: datetime, previous: datetime | None) -> None:
        condition = "attribute_not_exists(wm)" if previous is None else "wm = :prev"
        values: dict[str, Any] = {":wm": s_attr(iso(watermark))}
        if previous is not None:
            values[":prev"] = s_attr(iso(previous))
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=feed_key(domain_id),
                UpdateExpression="SET wm = :wm",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:  # another poll moved it meanwhile: it is at least as far
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    # The triggers owed: a string set on the feed's item (ADD and DELETE of a set are safe side by side).
    def owed(self, domain_id: str) -> list[tuple[str, str]]:
        return list(self.position(domain_id).owed)

    def owe(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        if triggers:
            self._owed_update(domain_id, "ADD", triggers)

    def settle(self, domain_id: str, triggers: Sequence[tuple[str, str]]) -> None:
        if triggers:
            self._owed_update(domain_id, "DELETE", triggers)

    def _owed_update(self, domain_id: str, action: str, triggers: Sequence[tuple[str, str]]) -> None:
        entries = sorted({f"{case_id}{_OWED_SEPARATOR}{key}" for case_id, key in triggers})
        self._client.update_item(
            TableName=self.table_name,
            Key=feed_key(domain_id),
            UpdateExpression=f"{action} owed :entries",
            ExpressionAttributeValues={":entries": {"SS": entries}},
        )


__all__ = ["MAX_CLAIMS", "DynamoDbCaseStore"]
