"""The items of the old state table (`StateTable`, before issue 13), read back into what a case record needs.

Every item of a case has `pk=CASE#<caseId>`; the formats are main's adapters', exactly:

- `SNAPSHOT` (main's `DynamoDbSnapshotStore`): `view`, the enriched view (JSON), and `domain_id`;
- `SLALOG` (`DynamoDbSlaStore`): `observations` (canonical observations, a JSON array), `horizon`;
- `SLA#policy#<name>`, `SLA#cases#<itemId>` (`DynamoDbSlaStore`): `sla_key`, `status`, `target_time`, read
  to check the new fold against;
- `NOTIFY#STATUS`, `NOTIFY#STATUS#REPLAY#<name>` (`DynamoDbStatusOrder`): `latest_at` (epoch ms) and
  `latest_status` (a hash of the status), the status order of live events and of each replay.

Items past their TTL (`expires_at`; DynamoDB deletes them within days) are left out, as the product would
never have read them again. Anything else (another key shape) is counted by its shape and skipped. A
known item that cannot be read raises `OldItemError`, whose reason names the item and what is wrong with
it, never a value: views and logs hold case field values (customer data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from casewatch.domain.case_record import LIVE_SCOPE, StatusMark
from casewatch.domain.sla.log import CaseSlaLog, Observation
from casewatch.domain.sla.model import SlaStatus
from casewatch.domain.values import parse_iso
from casewatch.models.enriched import EnrichedCase

CASE_PREFIX: Final = "CASE#"
SNAPSHOT_SK: Final = "SNAPSHOT"
LOG_SK: Final = "SLALOG"
SLA_PREFIX: Final = "SLA#"
STATUS_SK: Final = "NOTIFY#STATUS"
REPLAY_STATUS_PREFIX: Final = "NOTIFY#STATUS#REPLAY#"

Item = Mapping[str, Any]


class OldItemError(Exception):
    """An item of a known kind that cannot be read (the reason holds no value of the item)."""


@dataclass(frozen=True, slots=True)
class OldSla:
    """An SLA as the old table stored it: what the migrated fold is checked against."""

    key: str
    status: SlaStatus
    target_time: datetime


@dataclass
class OldCase:
    """What the old table holds about one case (the items still alive)."""

    case_id: str
    domain_id: str | None = None  # from the view or the log (the status order items do not say)
    snapshot: EnrichedCase | None = None
    log: CaseSlaLog | None = None
    status_order: dict[str, StatusMark] = field(default_factory=dict)
    slas: dict[str, OldSla] = field(default_factory=dict)
    expired_items: int = 0
    unknown_items: dict[str, int] = field(default_factory=dict)  # shape -> count

    @property
    def empty(self) -> bool:
        """Nothing to carry over (every item expired, or of an unknown shape)."""
        return self.snapshot is None and self.log is None and not self.status_order


def case_id_of(item: Item) -> str | None:
    """The case an item belongs to (None: not a case's item)."""
    pk = _str(item, "pk")
    if pk is None or not pk.startswith(CASE_PREFIX) or pk == CASE_PREFIX:
        return None
    return pk.removeprefix(CASE_PREFIX)


def shape(item: Item) -> str:
    """An item's key shape without its ids, e.g. `CASE#* / SLA#policy#*`, `OTHER#* / *` (for the report)."""
    pk, sk = _str(item, "pk") or "?", _str(item, "sk") or "?"
    return f"{pk.split('#', 1)[0]}#* / {sk.split('#', 1)[0]}{'#*' if '#' in sk else ''}"


def read_case(case_id: str, items: Iterable[Item], now: datetime) -> OldCase:
    """The case from its items (OldItemError: one of them cannot be read)."""
    case = OldCase(case_id)
    for item in items:
        sk = _str(item, "sk") or ""
        if _expired(item, now):
            case.expired_items += 1
        elif sk == SNAPSHOT_SK:
            case.snapshot = _snapshot(item)
            case.domain_id = case.domain_id or case.snapshot.domain_id
        elif sk == LOG_SK:
            case.log = _log(case_id, item)
            case.domain_id = case.log.domain_id or case.domain_id
        elif sk.startswith(SLA_PREFIX):
            sla = _sla(item)
            case.slas[sla.key] = sla
        elif sk == STATUS_SK or sk.startswith(REPLAY_STATUS_PREFIX):
            replay = sk.removeprefix(REPLAY_STATUS_PREFIX) if sk != STATUS_SK else None
            case.status_order[LIVE_SCOPE if replay is None else f"replay#{replay}"] = _mark(item)
        else:
            kind = shape(item)
            case.unknown_items[kind] = case.unknown_items.get(kind, 0) + 1
    return case


# --- one item each ---------------------------------------------------------------------------------


def _snapshot(item: Item) -> EnrichedCase:
    view = _str(item, "view")
    if view is None:
        raise OldItemError("SNAPSHOT: no view")
    try:
        return EnrichedCase.model_validate_json(view)
    except ValidationError as exc:
        raise OldItemError(f"SNAPSHOT: the view does not validate ({_problems(exc)})") from None


def _log(case_id: str, item: Item) -> CaseSlaLog:
    text = _str(item, "observations")
    if text is None:
        raise OldItemError("SLALOG: no observations")
    try:
        docs = json.loads(text)
    except ValueError:
        raise OldItemError("SLALOG: the observations are not JSON") from None
    if not isinstance(docs, list):
        raise OldItemError("SLALOG: the observations are not a list")
    observations = []
    for n, doc in enumerate(docs):
        try:
            observations.append(Observation.from_doc(doc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise OldItemError(f"SLALOG: observation {n} cannot be read ({type(exc).__name__})") from None
    horizon = _str(item, "horizon")
    return CaseSlaLog(
        domain_id=_str(item, "domain_id") or "",
        case_id=case_id,
        observations=tuple(observations),
        horizon=_time(horizon, "SLALOG: horizon") if horizon else None,
    )


def _sla(item: Item) -> OldSla:
    key, status, target = _str(item, "sla_key"), _str(item, "status"), _str(item, "target_time")
    if key is None or status is None or target is None:
        raise OldItemError("SLA#: no sla_key, status or target_time")
    try:
        return OldSla(key, SlaStatus(status), _time(target, "SLA#: target_time"))
    except ValueError:
        raise OldItemError("SLA#: an unknown status") from None


def _mark(item: Item) -> StatusMark:
    at, digest = item.get("latest_at", {}).get("N"), _str(item, "latest_status")
    if at is None or digest is None:
        raise OldItemError("NOTIFY#STATUS: no latest_at or latest_status")
    try:
        return StatusMark(int(at), digest)
    except ValueError:
        raise OldItemError("NOTIFY#STATUS: latest_at is not an integer") from None


# --- attribute values ------------------------------------------------------------------------------


def _str(item: Item, name: str) -> str | None:
    attr = item.get(name)
    return str(attr["S"]) if isinstance(attr, Mapping) and "S" in attr else None


def _time(text: str, what: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError:
        raise OldItemError(f"{what} is not a time") from None


def _expired(item: Item, now: datetime) -> bool:
    attr = item.get("expires_at")
    try:
        return isinstance(attr, Mapping) and "N" in attr and float(attr["N"]) <= now.timestamp()
    except ValueError:
        return False


def _problems(exc: ValidationError) -> str:
    """Where and what, without the input (the view's values are case data)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    listed = [f"{'.'.join(str(part) for part in e['loc']) or '(root)'}: {e['type']}" for e in errors[:3]]
    more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "; ".join(listed) + more


__all__ = ["OldCase", "OldItemError", "OldSla", "case_id_of", "read_case", "shape"]
