"""`DynamoDbCaseStore`: the `CaseStore` and `FeedState` ports on the state table (`casewatch.tables`).

One item per case, `pk=CASE#<caseId>, sk=CASE`:

| attribute | what |
| --- | --- |
| `rev` (N) | the revision every write is conditional on |
| `dom` (S) | the domain id |
| `snap` (S) | the enriched view (JSON; the needed fields only) |
| `fold` (S), `hz` (S) | the SLA fold (JSON, `FoldState.to_doc`) and the horizon |
| `nlog` (N), `blog` (N) | the size of the observation log (count, bytes of JSON) |
| `so` (M) | the status order: scope -> `<epoch ms>|<status hash>` |
| `claims` (M), `nclaims` (N) | the triggers applied: key hash -> `{a, d, l, o}` (when, done, lease, outbox) |
| `due_shard`, `due_at` (S) | the sparse `due` index: when the earliest open SLA is due a breach check |
| `ver` (S), `expires_at` (N) | the newest change applied; the TTL (`RETENTION` after it; 30 d if deleted) |

The observation log is one item per observation, `sk=OBS#<time>#<rank>#<hash of its JSON>` (`o`: its
canonical JSON), put before the case's write (a fact observed is true whether or not the write wins a
race; the same observation is the same item) and read (a Query) only to fold again when an observation
arrives out of order. So the case's item stays small (a write costs about as many WCU as the view, the
fold and the recent claims take KB), and a read asks only for what a trigger needs (`claims.<its key>`,
not the others): neither grows with the case's history. The first write of a case is a conditional
PutItem; later ones an UpdateItem conditional on `rev` that sets the changed attributes. Claims older
than `CLAIM_RETENTION` are removed from a case with more
than `MAX_CLAIMS` of them. The feed's item: `pk=FEED#<domainId>, sk=FEED`, `wm` (S): its watermark,
`owed` (SS): the feed's triggers whose side effects may still be owed (`<case id>\n<claim key>`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from casewatch.backoff import full_jitter
from casewatch.constants import IDEMPOTENCY_EXPIRY_DAYS
from casewatch.domain.case_record import CaseChange, CaseRecord, Claim, Outbox, StatusMark
from casewatch.domain.sla.fold import FoldState
from casewatch.domain.sla.log import Observation, json_bytes
from casewatch.domain.sla.model import PolicySpec, SlaConflictError, SlaItemTooLargeError
from casewatch.domain.values import parse_iso
from casewatch.domain.values import sortable_iso as iso
from casewatch.models.enriched import EnrichedCase
from casewatch.ports import FeedPosition
from casewatch.tables import DUE_SHARDS, STATE_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CASE_PREFIX: Final = "CASE#"
CASE_SK: Final = "CASE"
OBS_PREFIX: Final = "OBS#"
FEED_PREFIX: Final = "FEED#"
FEED_SK: Final = "FEED"
DUE_INDEX: Final = STATE_TABLE.indexes[0].name
RETENTION: Final = timedelta(days=400)  # a case silent this long is forgotten
DELETED_RETENTION: Final = timedelta(days=30)  # a deleted case's record (its view: case data) goes sooner
CLAIM_RETENTION: Final = timedelta(days=IDEMPOTENCY_EXPIRY_DAYS)  # outlives the dead-letter queues
MAX_CLAIMS: Final = 500  # claims kept before old ones are removed (a busy case: ~30 KB)
MAX_ITEM_BYTES: Final = 400 * 1024  # DynamoDB's item size limit
BATCH_GET_KEYS: Final = 100  # BatchGetItem's limit
BATCH_WRITE_ITEMS: Final = 25  # BatchWriteItem's limit
_OWED_SEPARATOR: Final = "\n"  # between a case id and a claim key in the feed's `owed` set
_BASE = ("#rev", "dom", "snap", "fold", "hz", "so", "nlog", "blog", "nclaims")
_NAMES: Final = {"#rev": "rev"}  # `rev` is not reserved; named anyway, with the claim's key

Item = dict[str, Any]


def case_pk(case_id: str) -> str:
    return f"{CASE_PREFIX}{case_id}"


def case_key(case_id: str) -> dict[str, Any]:
    return {"pk": {"S": case_pk(case_id)}, "sk": {"S": CASE_SK}}


def feed_key(domain_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{FEED_PREFIX}{domain_id}"}, "sk": {"S": FEED_SK}}


def claim_id(claim_key: str) -> str:
    """A claim's attribute name: a short, fixed-length hash of its key (keys are long, free text)."""
    return base64.urlsafe_b64encode(hashlib.sha256(claim_key.encode()).digest()[:15]).decode()


def due_shard(case_id: str) -> str:
    """The `due` index partition of a case: a stable hash over `DUE_SHARDS` partitions."""
    return str(int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % DUE_SHARDS)


# --- attribute values ----------------------------------------------------------------------------


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: float) -> dict[str, Any]:
    return {"N": str(value)}


def _str(item: Mapping[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return str(attr["S"]) if attr and "S" in attr else None


def _num(item: Mapping[str, Any], name: str) -> int:
    attr = item.get(name)
    return int(float(attr["N"])) if attr and "N" in attr else 0


def _claim_attr(claim: Claim) -> dict[str, Any]:
    attrs: dict[str, Any] = {"a": _n(int(claim.at.timestamp())), "d": {"BOOL": claim.done}}
    if claim.lease_until is not None:
        attrs["l"] = _n(int(claim.lease_until.timestamp() * 1000))
    if not claim.done and claim.outbox is not None:
        attrs["o"] = _s(json.dumps(claim.outbox.to_doc(), separators=(",", ":")))
    return {"M": attrs}


def _claim(attr: Mapping[str, Any]) -> Claim:
    m = attr["M"]
    lease = m.get("l")
    outbox = m.get("o")
    return Claim(
        at=datetime.fromtimestamp(int(m["a"]["N"]), tz=UTC),
        done=bool(m["d"]["BOOL"]),
        lease_until=datetime.fromtimestamp(int(lease["N"]) / 1000, tz=UTC) if lease else None,
        outbox=Outbox.from_doc(json.loads(outbox["S"])) if outbox else None,
    )


def _mark(text: str) -> StatusMark:
    at_ms, _, digest = text.partition("|")
    return StatusMark(int(at_ms), digest)


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
            record = self._record(domain_id, case_id, case_item, claim_key)
            watermark = _str(feed_item, "wm") if feed_item else None
            record = replace(record, watermark=parse_iso(watermark) if watermark else None)
            return self._with_log(record) if with_log else record
        item = self._get(case_key(case_id), projection, names)
        record = self._record(domain_id, case_id, item, claim_key)
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
            ExpressionAttributeValues={":pk": _s(case_pk(case_id)), ":obs": _s(OBS_PREFIX)},
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
                    found[case_id] = self._record(domain_id, case_id, item, None)
                unprocessed: Mapping[str, Any] = response.get("UnprocessedKeys") or {}
                pending = list(unprocessed.get(self.table_name, {}).get("Keys", []))
                attempt += 1
                if pending:  # throttled keys: botocore does not retry them
                    time.sleep(full_jitter(attempt, base_s=0.05, cap_s=1.0))
        return found

    def _record(self, domain_id: str, case_id: str, item: Item | None, claim_key: str | None) -> CaseRecord:
        if item is None:
            return CaseRecord(domain_id, case_id)
        snap = _str(item, "snap")
        fold_text = _str(item, "fold")
        fold = FoldState.from_doc(json.loads(fold_text), self.policies) if fold_text else None
        horizon = _str(item, "hz")
        claims = item.get("claims", {}).get("M", {})
        claim = _claim(claims[claim_id(claim_key)]) if claim_key and claim_id(claim_key) in claims else None
        return CaseRecord(
            domain_id=_str(item, "dom") or domain_id,
            case_id=case_id,
            revision=_num(item, "rev"),
            snapshot=EnrichedCase.model_validate_json(snap) if snap else None,
            fold=fold,
            horizon=parse_iso(horizon) if horizon else None,
            status_order={k: _mark(v["S"]) for k, v in item.get("so", {}).get("M", {}).items()},
            claim=claim,
            log_size=_num(item, "nlog"),
            log_bytes=_num(item, "blog"),
            claims_size=_num(item, "nclaims"),
        )

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
        return _applied(old, change, revision)

    def _write_log(self, case_id: str, change: CaseChange) -> None:
        """Put the new observations and delete the dropped ones (BatchWriteItem, 25 at a time)."""
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": _observation_item(case_id, o)}} for o in change.appended
        ] + [{"DeleteRequest": {"Key": _observation_key(case_id, o)}} for o in change.dropped]
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
            "rev": _n(revision),
            "dom": _s(old.domain_id),
            "nlog": _n(len(log)),
            "blog": _n(json_bytes(log)),
            "so": {"M": {k: _s(f"{m.at_ms}|{m.status_hash}") for k, m in change.status_order.items()}},
            "claims": {"M": {claim_id(change.claim_key): _claim_attr(change.claim)}},
            "nclaims": _n(1),
        }
        if change.snapshot is not None:
            item["snap"] = _s(change.snapshot.model_dump_json(exclude_none=True))
        if change.fold is not None:
            item["fold"] = _s(json.dumps(change.fold.to_doc(), separators=(",", ":")))
        if change.horizon is not None:
            item["hz"] = _s(iso(change.horizon))
        item.update(self._version(old, change))
        if change.due_at is not None:
            item["due_shard"], item["due_at"] = _s(due_shard(old.case_id)), _s(iso(change.due_at))
        _check_size(old.case_id, item)
        self._client.put_item(
            TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def _update(self, old: CaseRecord, change: CaseChange, revision: int) -> None:
        sets = ["#rev = :rev", "claims.#claim = :claim"]
        removes: list[str] = []
        names = {**_NAMES, "#claim": claim_id(change.claim_key)}
        values: dict[str, Any] = {
            ":rev": _n(revision),
            ":old": _n(old.revision),
            ":claim": _claim_attr(change.claim),
        }
        if old.claim is None:
            sets.append("nclaims = nclaims + :one")
            values[":one"] = _n(1)
        if change.snapshot is not None:
            sets.append("snap = :snap")
            values[":snap"] = _s(change.snapshot.model_dump_json(exclude_none=True))
        if change.fold is not None:
            sets.append("fold = :fold")
            values[":fold"] = _s(json.dumps(change.fold.to_doc(), separators=(",", ":")))
        if change.horizon is not None:
            sets.append("hz = :hz")
            values[":hz"] = _s(iso(change.horizon))
        if change.appended or change.dropped:
            # Absolute counts (the write is conditional on the revision): a record loaded with its log
            # counts what is stored, so a count that drifted is set right by the next re-fold.
            log_size, log_bytes = _log_counts(old, change)
            sets += ["nlog = :nobs", "blog = :bobs"]
            values[":nobs"], values[":bobs"] = _n(log_size), _n(log_bytes)
        for n, (scope, mark) in enumerate(sorted(change.status_order.items())):
            names[f"#so{n}"] = scope
            sets.append(f"so.#so{n} = :so{n}")
            values[f":so{n}"] = _s(f"{mark.at_ms}|{mark.status_hash}")
        for name, value in self._version(old, change).items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = value
        if change.due_at is not None:
            sets += ["due_shard = :shard", "due_at = :due"]
            values[":shard"], values[":due"] = _s(due_shard(old.case_id)), _s(iso(change.due_at))
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

    @staticmethod
    def _version(old: CaseRecord, change: CaseChange) -> dict[str, Any]:
        """`ver` (the newest change applied) and the TTL that follows it, when `change` brings a newer
        one: an older event delivered late moves neither back."""
        latest = [o.at for o in change.appended]
        if change.snapshot is not None:
            latest.append(change.snapshot.version)
        if not latest:
            if old.revision:  # nothing newer: the TTL stays
                return {}
            latest.append(change.claim.at)  # a first record from a timer or the feed: it expires too
        version = max(latest)
        # What `ver` holds now: the newest observation folded and the stored view's version.
        applied = [old.snapshot.version] if old.snapshot is not None else []
        if old.fold is not None and old.fold.last is not None:
            applied.append(old.fold.last[0])
        if applied and version <= max(applied):
            return {}
        view = change.snapshot if change.snapshot is not None else old.snapshot
        deleted = view is not None and view.deleted  # a later fact about a deleted case does not extend it
        retention = DELETED_RETENTION if deleted else RETENTION
        return {"ver": _s(iso(version)), "expires_at": _n(int((version + retention).timestamp()))}

    def complete(self, case_id: str, claim_key: str, *, pending: Sequence[str] | None = None) -> None:
        names = {"#claim": claim_id(claim_key)}
        if pending is None:
            expression = "SET claims.#claim.d = :done REMOVE claims.#claim.o"
            values: dict[str, Any] = {":done": {"BOOL": True}}
        else:
            expression = "SET claims.#claim.o = :outbox"
            values = {":outbox": _s("")}
            current = self._get(case_key(case_id), ["claims.#claim"], names)
            claims = (current or {}).get("claims", {}).get("M", {})
            claim = _claim(claims[names["#claim"]]) if names["#claim"] in claims else None
            outbox = claim.outbox if claim is not None and claim.outbox is not None else Outbox()
            remaining = Outbox(outbox.signals, outbox.timer_keys, tuple(pending))
            values[":outbox"] = _s(json.dumps(remaining.to_doc(), separators=(",", ":")))
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
        old = sorted(k for k, v in claims.items() if _claim(v).done and _claim(v).at < cutoff)
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
                ExpressionAttributeValues={":minus": _n(-len(batch))},
            )

    # -- the due index, tools ------------------------------------------------------------------------
    def due_before(
        self, moment: datetime, limit: int = 100, domain_id: str | None = None
    ) -> list[tuple[str, str]]:
        found: list[tuple[str, str, str]] = []
        for shard in range(DUE_SHARDS):
            values = {":shard": _s(str(shard)), ":moment": _s(iso(moment))}
            query: dict[str, Any] = {}
            if domain_id is not None:  # another domain's open SLAs (a domain change) never crowd it out
                query["FilterExpression"] = "dom = :dom"
                values[":dom"] = _s(domain_id)
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
        text = _str(item, "wm") if item else None
        entries = sorted((item or {}).get("owed", {}).get("SS", []))
        owed = tuple((case_id, key) for case_id, _, key in (e.partition(_OWED_SEPARATOR) for e in entries))
        return FeedPosition(parse_iso(text) if text else None, owed)

    def advance(self, domain_id: str, watermark: datetime, previous: datetime | None) -> None:
        condition = "attribute_not_exists(wm)" if previous is None else "wm = :prev"
        values: dict[str, Any] = {":wm": _s(iso(watermark))}
        if previous is not None:
            values[":prev"] = _s(iso(previous))
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


def _observation_key(case_id: str, obs: Observation) -> dict[str, Any]:
    at, rank, text = obs.sort_key()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {"pk": _s(case_pk(case_id)), "sk": _s(f"{OBS_PREFIX}{iso(at)}#{rank}#{digest}")}


def _observation_item(case_id: str, obs: Observation) -> Item:
    return {
        **_observation_key(case_id, obs),
        "o": _s(obs.to_json()),
        "expires_at": _n(int((obs.at + RETENTION).timestamp())),
    }


def _check_size(case_id: str, item: Item) -> None:
    size = item_bytes(item)
    if size > MAX_ITEM_BYTES:
        raise SlaItemTooLargeError(f"case {case_id}: the item would be {size} bytes, over DynamoDB's limit")


def _log_counts(old: CaseRecord, change: CaseChange) -> tuple[int, int]:
    """The log's size (observations, bytes of JSON) after `change`."""
    if old.revision == 0:
        return len(change.appended), json_bytes(change.appended)
    size = old.log_size + len(change.appended) - len(change.dropped)
    added = sum(len(o.to_json().encode()) + 1 for o in change.appended) - sum(
        len(o.to_json().encode()) + 1 for o in change.dropped
    )
    # `json_bytes` is 1 + each text and its comma (or bracket), and 2 for an empty log: not additive.
    return size, old.log_bytes + added - (old.log_size == 0) + (size == 0)


def _applied(old: CaseRecord, change: CaseChange, revision: int) -> CaseRecord:
    """The record as it is after `change` (what a load would now return, without the log)."""
    log_size, log_bytes = _log_counts(old, change)
    return replace(
        old,
        revision=revision,
        snapshot=change.snapshot if change.snapshot is not None else old.snapshot,
        fold=change.fold if change.fold is not None else old.fold,
        horizon=change.horizon if change.horizon is not None else old.horizon,
        status_order={**old.status_order, **change.status_order},
        claim=change.claim,
        log=None,
        log_size=log_size,
        log_bytes=log_bytes,
        claims_size=old.claims_size + (0 if old.claim is not None else 1),
    )


__all__ = ["DynamoDbCaseStore", "case_key", "claim_id", "due_shard", "feed_key", "item_bytes"]
