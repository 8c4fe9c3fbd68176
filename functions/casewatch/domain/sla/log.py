"""The observation log of a case: the facts SLA tracking folds, and their canonical JSON (the stored form).

An observation is a fact true at its time (field values after a change, a related item added, a Cases
SLA defined or reported met, the case deleted). The log is a set keyed by identity, in time order, plus
a *horizon* (a moment time is known to have reached: a breach timer fired, or reconciliation ran).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from casewatch.domain.sla.model import CasesSlaSpec
from casewatch.domain.values import Scalar, parse_iso, scalar, sortable_iso

# Observations per case kept in the log (an item holds ~150 bytes each; DynamoDB items are <= 400 KB).
MAX_OBSERVATIONS: Final = 1000
# Bytes of the log's JSON: room is left in the case's 400 KB item for the enriched view, the fold and the
# claims. Long field values (a policy on a text field) reach it before the count does.
MAX_LOG_BYTES: Final = 160 * 1024
# Observations this much older than the newest are settled (no delivery is that late): only those are
# compacted when the log is full.
SETTLED_AFTER: Final = timedelta(days=1)


class ObsKind(StrEnum):
    CASE = "case"  # case field values after a change (CASE.CREATED/UPDATED, or read by reconciliation)
    SLA = "sla"  # a Cases SLA related item exists (its definition)
    ITEM = "item"  # a related item of some type was added
    SLA_DONE = "sla_done"  # Cases reports that the SLA's field reached a target value at `at`
    DELETED = "deleted"  # the case was deleted


_KIND_RANK: Final = {
    ObsKind.CASE: 0,
    ObsKind.SLA: 1,
    ObsKind.ITEM: 2,
    ObsKind.SLA_DONE: 3,
    ObsKind.DELETED: 4,
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about a case, true at `at`. Identity: (kind, at, source, ref); see `CaseSlaLog`.

    Its canonical JSON (the stored form, and the tie-break of the time order) is computed once per
    observation, on first use, or taken as read from the store."""

    at: datetime
    kind: ObsKind
    source: str = "event"  # "event" or "reconcile"
    fields: tuple[tuple[str, Scalar], ...] = ()  # CASE: field values known at `at` (None: empty)
    created: datetime | None = None  # CASE: the case's createdDateTime
    item_type: str | None = None  # ITEM: the related item type
    ref: str = ""  # ITEM/SLA/SLA_DONE: the related item id
    sla: CasesSlaSpec | None = None  # SLA: the definition
    _text: str | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.kind.value, sortable_iso(self.at), self.source, self.ref)

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _KIND_RANK[self.kind], self.to_json())

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal observations serialise equally."""
        text = self._text
        if text is None:
            text = self._json()
            object.__setattr__(self, "_text", text)
        return text

    def _json(self) -> str:
        doc: dict[str, Any] = {"at": sortable_iso(self.at), "kind": self.kind.value}
        if self.source != "event":
            doc["src"] = self.source
        if self.fields:
            doc["fields"] = dict(self.fields)
        if self.created is not None:
            doc["created"] = sortable_iso(self.created)
        if self.item_type is not None:
            doc["type"] = self.item_type
        if self.ref:
            doc["ref"] = self.ref
        if self.sla is not None:
            doc["sla"] = {
                "name": self.sla.name,
                "field": self.sla.field_id,
                "values": list(self.sla.target_values),
                "target": sortable_iso(self.sla.target_time),
            }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Observation:
        """From its canonical JSON (as stored), which it keeps."""
        obs = cls.from_doc(json.loads(text))
        object.__setattr__(obs, "_text", text)
        return obs

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Observation:
        """From the decoded canonical JSON."""
        sla = doc.get("sla")
        return cls(
            at=parse_iso(doc["at"]),
            kind=ObsKind(doc["kind"]),
            source=doc.get("src", "event"),
            fields=tuple(sorted((k, scalar(v)) for k, v in (doc.get("fields") or {}).items())),
            created=parse_iso(doc["created"]) if doc.get("created") else None,
            item_type=doc.get("type"),
            ref=doc.get("ref", ""),
            sla=CasesSlaSpec(
                name=sla["name"],
                field_id=sla["field"],
                target_values=tuple(scalar(v) for v in sla["values"]),
                target_time=parse_iso(sla["target"]),
            )
            if sla
            else None,
        )


def case_fields(values: Mapping[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    """The canonical (sorted) form of an observation's field values."""
    return tuple(sorted((k, scalar(v)) for k, v in values.items()))


@dataclass(frozen=True, slots=True)
class CaseSlaLog:
    """The observation log of one case: a set (merge is union, so it commutes) and a horizon (max)."""

    domain_id: str
    case_id: str
    observations: tuple[Observation, ...] = ()  # sorted by time, one per identity
    horizon: datetime | None = None

    @property
    def version(self) -> datetime | None:
        """The newest `approximateChangeTime` applied (the log's version)."""
        return self.observations[-1].at if self.observations else None

    def merge(self, new: Iterable[Observation], horizon: datetime | None = None) -> CaseSlaLog:
        """The union with `new` observations and the later horizon. Commutative and idempotent.

        Two observations with the same identity (one change seen twice, with different enrichment)
        keep the one whose canonical JSON sorts first, so the choice does not depend on order either.
        """
        by_identity: dict[tuple[str, str, str, str], Observation] = {}
        for obs in (*self.observations, *new):
            kept = by_identity.get(obs.identity)
            if kept is None or obs.to_json() < kept.to_json():
                by_identity[obs.identity] = obs
        merged = tuple(sorted(by_identity.values(), key=Observation.sort_key))
        if len(merged) > MAX_OBSERVATIONS or json_bytes(merged) > MAX_LOG_BYTES:
            merged = compact(merged, MAX_OBSERVATIONS, MAX_LOG_BYTES)
        latest = max((h for h in (self.horizon, horizon) if h is not None), default=None)
        return replace(self, observations=merged, horizon=latest)

    def with_horizon(self, moment: datetime) -> CaseSlaLog:
        return self.merge((), horizon=moment)

    def cases_sla_fields(self) -> frozenset[str]:
        return frozenset(o.sla.field_id for o in self.observations if o.sla is not None)


def json_bytes(observations: Sequence[Observation]) -> int:
    """Bytes of the observations as the stored JSON array: `[`, the texts with a comma between, `]`."""
    if not observations:
        return 2
    return 1 + sum(len(o.to_json().encode()) + 1 for o in observations)


def json_bytes_after(
    log_bytes: int, log_size: int, added: Sequence[Observation], dropped: Sequence[Observation] = ()
) -> int:
    """`json_bytes` of a log of `log_size` observations (`log_bytes` of JSON) once `added` join it and
    `dropped` leave it, without encoding the rest: each text counts its bytes and one separator (a comma,
    or the closing `]` for the last), plus the opening `[`; an empty log is `[]`."""
    body = log_bytes - 1 if log_size else 0
    body += sum(len(o.to_json().encode()) + 1 for o in added)
    body -= sum(len(o.to_json().encode()) + 1 for o in dropped)
    return body + 1 if log_size + len(added) - len(dropped) else 2


def compact(
    observations: Sequence[Observation], limit: int, max_bytes: int = MAX_LOG_BYTES
) -> tuple[Observation, ...]:
    """Shrink an oversized log (more than `limit` observations or `max_bytes` of JSON).

    First, drop settled CASE observations that repeat their predecessor's values: only observations
    older than the newest by `SETTLED_AFTER` are touched (no event arrives that late, so what is dropped
    cannot change the fold). If that is not enough, the oldest settled CASE observations go (a
    pathological case: >1000 changes within a day), and as a last resort, for the byte budget, the oldest
    CASE observations at all. The oldest CASE observation stays: it carries the case's initial values.
    """
    if len(observations) <= limit and json_bytes(observations) <= max_bytes:
        return tuple(observations)
    settled_before = observations[-1].at - SETTLED_AFTER
    kept: list[Observation] = []
    previous: dict[str, Scalar] = {}
    for obs in observations:
        if obs.kind is ObsKind.CASE and obs.at < settled_before:
            values = dict(obs.fields)
            if obs.created is None and all(
                k in previous and previous[k] == v and type(previous[k]) is type(v) for k, v in values.items()
            ):
                continue
            previous.update(values)
        kept.append(obs)
    size = json_bytes(kept)
    for settled_only in (True, False):
        if len(kept) <= limit and size <= max_bytes:
            break
        droppable = [
            i
            for i, o in enumerate(kept)
            if o.kind is ObsKind.CASE and (o.at < settled_before or not settled_only)
        ][1:]
        drop: set[int] = set()
        count = len(kept)
        for i in droppable:
            if count <= limit and size <= max_bytes:
                break
            drop.add(i)
            count -= 1
            size -= len(kept[i].to_json().encode()) + 1
        kept = [o for i, o in enumerate(kept) if i not in drop]
    return tuple(kept)
