"""Everything casewatch keeps about one case, in one record: the enriched view, the SLA fold and its
observation log, the status order of notifications, and the claims of the triggers already applied.

One record per case means one read and one conditional write per event: the claim that makes an
event's side effects happen once is written together with the state it produces (an outbox), and
marked done once the side effects were sent. The observation log is kept beside the record (each
observation on its own), read only to fold again when an observation arrives out of order.

A claim is keyed by its trigger (an event id, a timer, a feed poll). While *pending* it holds the
`Outbox` — what must be sent — and a lease (the claimant's invocation deadline): a duplicate that
finds a pending claim with a live lease is a concurrent delivery (retry later); one that finds the
lease expired is the retry of a claimant that died after its write, and sends the outbox again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casewatch.domain.sla.fold import FoldState
from casewatch.domain.sla.log import Observation
from casewatch.domain.sla.model import SlaState, SlaTransition
from casewatch.models.enriched import EnrichedCase
from casewatch.models.signals import SlaSignal

LIVE_SCOPE = "live"  # the status order of live events; a replay's is `replay#<name>`


def status_hash(status: str) -> str:
    """Status values are case data: the record keeps a hash of the last one notified."""
    return hashlib.sha256(status.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class StatusMark:
    """The latest status notification sent for a case (in one scope): when, and which status."""

    at_ms: int
    status_hash: str

    def allows(self, at_ms: int, status: str) -> bool:
        """A status notification at `at_ms` may go out unless a newer one said another status."""
        return at_ms >= self.at_ms or status_hash(status) == self.status_hash


@dataclass(frozen=True, slots=True)
class Outbox:
    """What a claim's side effects are, to send them again if the claimant died after its write: the
    SLA signals it raised (its event's notifications are re-derived from the redelivered event) and the
    SLAs whose timers must be brought in line."""

    signals: tuple[SlaSignal, ...] = ()
    timer_keys: tuple[str, ...] = ()
    pending: tuple[str, ...] | None = None  # notification ids and bus event keys still to send (None: all)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "sig": [s.model_dump(mode="json") for s in self.signals],
            "tim": list(self.timer_keys),
        }
        if self.pending is not None:
            doc["pen"] = list(self.pending)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Outbox:
        pending = doc.get("pen")
        return cls(
            tuple(SlaSignal.model_validate(s) for s in doc.get("sig", [])),
            tuple(str(k) for k in doc.get("tim", [])),
            tuple(str(k) for k in pending) if pending is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """One trigger applied to the case: done, or pending with its outbox until `lease_until`."""

    at: datetime
    done: bool
    lease_until: datetime | None = None
    outbox: Outbox | None = None

    def in_progress(self, now: datetime) -> bool:
        return not self.done and self.lease_until is not None and now < self.lease_until


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """What the store holds about a case (revision 0: nothing yet).

    `fold` is None when nothing was folded yet, or when the stored fold is unusable (folded under other
    policies): then `log` must be loaded to fold again. `log` is loaded only when asked for.
    """

    domain_id: str
    case_id: str
    revision: int = 0
    snapshot: EnrichedCase | None = None
    fold: FoldState | None = None
    horizon: datetime | None = None
    status_order: Mapping[str, StatusMark] = field(default_factory=dict)
    claim: Claim | None = None  # the claim asked for at load (by key), if there is one
    log: tuple[Observation, ...] | None = None  # the observation log, when loaded
    log_size: int = 0  # observations stored
    log_bytes: int = 0  # their JSON's bytes
    claims_size: int = 0  # claims stored
    watermark: datetime | None = None  # the change feed's, when asked for

    def states(self) -> dict[str, SlaState]:
        """The SLAs as stored (the fold at the stored horizon)."""
        return self.fold.states(self.horizon) if self.fold is not None else {}


@dataclass(frozen=True, slots=True)
class CaseChange:
    """One conditional write of a case: the new state, and the claim of the trigger that produced it."""

    claim_key: str
    claim: Claim
    snapshot: EnrichedCase | None = None  # None: unchanged
    fold: FoldState | None = None  # None: unchanged
    horizon: datetime | None = None
    appended: tuple[Observation, ...] = ()  # new observations (added to the stored log)
    dropped: tuple[Observation, ...] = ()  # observations a compaction removed from the log
    status_order: Mapping[str, StatusMark] = field(default_factory=dict)  # marks to set
    due_at: datetime | None = None  # when the case's earliest open SLA is due a breach check
    transitions: tuple[SlaTransition, ...] = ()  # what the change does to the SLAs (for logs, reports)


__all__ = ["LIVE_SCOPE", "CaseChange", "CaseRecord", "Claim", "Outbox", "StatusMark", "status_hash"]
