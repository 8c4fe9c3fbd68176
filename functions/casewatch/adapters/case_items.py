"""The state table's items (`casewatch.tables`), as `DynamoDbCaseStore` writes and reads them: keys,
retention, the attribute codec, and item sizes as DynamoDB counts them.

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

An observation: `pk=CASE#<caseId>, sk=OBS#<time>#<rank>#<hash of its JSON>`, `o`: its canonical JSON.
The feed: `pk=FEED#<domainId>, sk=FEED`, `wm` (S): its watermark, `owed` (SS): triggers whose side
effects may still be owed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from casewatch.constants import IDEMPOTENCY_EXPIRY_DAYS
from casewatch.domain.case_record import CaseChange, CaseRecord, Claim, Outbox, StatusMark
from casewatch.domain.sla.fold import FoldState
from casewatch.domain.sla.log import Observation, json_bytes, json_bytes_after
from casewatch.domain.sla.model import PolicySpec, SlaItemTooLargeError
from casewatch.domain.values import parse_iso
from casewatch.domain.values import sortable_iso as iso
from casewatch.models.enriched import EnrichedCase
from casewatch.tables import DUE_SHARDS

CASE_PREFIX: Final = "CASE#"
CASE_SK: Final = "CASE"
OBS_PREFIX: Final = "OBS#"
FEED_PREFIX: Final = "FEED#"
FEED_SK: Final = "FEED"
RETENTION: Final = timedelta(days=400)  # a case silent this long is forgotten
DELETED_RETENTION: Final = timedelta(days=30)  # a deleted case's record (its view: case data) goes sooner
CLAIM_RETENTION: Final = timedelta(days=IDEMPOTENCY_EXPIRY_DAYS)  # outlives the dead-letter queues
MAX_ITEM_BYTES: Final = 400 * 1024  # DynamoDB's item size limit

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


def s_attr(value: str) -> dict[str, Any]:
    return {"S": value}


def n_attr(value: float) -> dict[str, Any]:
    return {"N": str(value)}


def str_of(item: Mapping[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return str(attr["S"]) if attr and "S" in attr else None


def num_of(item: Mapping[str, Any], name: str) -> int:
    attr = item.get(name)
    return int(float(attr["N"])) if attr and "N" in attr else 0


def claim_attr(claim: Claim) -> dict[str, Any]:
    attrs: dict[str, Any] = {"a": n_attr(int(claim.at.timestamp())), "d": {"BOOL": claim.done}}
    if claim.lease_until is not None:
        attrs["l"] = n_attr(int(claim.lease_until.timestamp() * 1000))
    if not claim.done and claim.outbox is not None:
        attrs["o"] = s_attr(json.dumps(claim.outbox.to_doc(), separators=(",", ":")))
    return {"M": attrs}


def claim_of(attr: Mapping[str, Any]) -> Claim:
    m = attr["M"]
    lease = m.get("l")
    outbox = m.get("o")
    return Claim(
        at=datetime.fromtimestamp(int(m["a"]["N"]), tz=UTC),
        done=bool(m["d"]["BOOL"]),
        lease_until=datetime.fromtimestamp(int(lease["N"]) / 1000, tz=UTC) if lease else None,
        outbox=Outbox.from_doc(json.loads(outbox["S"])) if outbox else None,
    )


def mark_of(text: str) -> StatusMark:
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


def observation_key(case_id: str, obs: Observation) -> dict[str, Any]:
    at, rank, text = obs.sort_key()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {"pk": s_attr(case_pk(case_id)), "sk": s_attr(f"{OBS_PREFIX}{iso(at)}#{rank}#{digest}")}


def observation_item(case_id: str, obs: Observation) -> Item:
    return {
        **observation_key(case_id, obs),
        "o": s_attr(obs.to_json()),
        "expires_at": n_attr(int((obs.at + RETENTION).timestamp())),
    }


def check_size(case_id: str, item: Item) -> None:
    size = item_bytes(item)
    if size > MAX_ITEM_BYTES:
        raise SlaItemTooLargeError(f"case {case_id}: the item would be {size} bytes, over DynamoDB's limit")


# --- records ------------------------------------------------------------------------------------


def record_of(
    domain_id: str, case_id: str, item: Item | None, claim_key: str | None, policies: Sequence[PolicySpec]
) -> CaseRecord:
    """The record an item holds (with the claim of `claim_key`, if it has one; the log not loaded)."""
    if item is None:
        return CaseRecord(domain_id, case_id)
    snap = str_of(item, "snap")
    fold_text = str_of(item, "fold")
    fold = FoldState.from_doc(json.loads(fold_text), policies) if fold_text else None
    horizon = str_of(item, "hz")
    claims = item.get("claims", {}).get("M", {})
    claim = claim_of(claims[claim_id(claim_key)]) if claim_key and claim_id(claim_key) in claims else None
    return CaseRecord(
        domain_id=str_of(item, "dom") or domain_id,
        case_id=case_id,
        revision=num_of(item, "rev"),
        snapshot=EnrichedCase.model_validate_json(snap) if snap else None,
        fold=fold,
        horizon=parse_iso(horizon) if horizon else None,
        status_order={k: mark_of(v["S"]) for k, v in item.get("so", {}).get("M", {}).items()},
        claim=claim,
        log_size=num_of(item, "nlog"),
        log_bytes=num_of(item, "blog"),
        claims_size=num_of(item, "nclaims"),
    )


def version_attrs(old: CaseRecord, change: CaseChange) -> dict[str, Any]:
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
    return {"ver": s_attr(iso(version)), "expires_at": n_attr(int((version + retention).timestamp()))}


def log_counts(old: CaseRecord, change: CaseChange) -> tuple[int, int]:
    """The log's size (observations, bytes of JSON) after `change`."""
    if old.revision == 0:
        return len(change.appended), json_bytes(change.appended)
    size = old.log_size + len(change.appended) - len(change.dropped)
    return size, json_bytes_after(old.log_bytes, old.log_size, change.appended, change.dropped)


def applied_record(old: CaseRecord, change: CaseChange, revision: int) -> CaseRecord:
    """The record as it is after `change` (what a load would now return, without the log)."""
    log_size, log_bytes = log_counts(old, change)
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
