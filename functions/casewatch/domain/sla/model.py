"""The SLA model: statuses, definitions (policies, Cases SLAs), derived states and what an apply did."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from casewatch.domain.values import Scalar, scalar
from casewatch.errors import CasewatchError
from casewatch.settings import SlaPolicy


class SlaConflictError(CasewatchError):
    """Another writer changed the case's SLAs first, more times than the retry budget. Retryable."""


class SlaItemTooLargeError(CasewatchError):
    """A case's SLA state would not fit in one DynamoDB item (400 KB), even compacted. Not retryable."""


class SlaStatus(StrEnum):
    ACTIVE = "Active"
    OVERDUE = "Overdue"
    MET = "Met"
    NOT_MET = "NotMet"
    CANCELLED = "Cancelled"

    @property
    def is_open(self) -> bool:
        return self in (SlaStatus.ACTIVE, SlaStatus.OVERDUE)


class SlaOrigin(StrEnum):
    POLICY = "policy"  # configured in casewatch (`settings.sla_policies`)
    CASES = "cases"  # an Amazon Connect Cases SLA related item


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A configured SLA policy with every field reference resolved to a field id."""

    name: str
    target: timedelta
    match: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    complete_field: str | None = None
    complete_values: tuple[Scalar, ...] = ()
    complete_item: str | None = None  # a RelatedItemType value, e.g. "Comment"
    pause: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    rearm_on_reopen: bool = False

    @classmethod
    def from_policy(cls, policy: SlaPolicy, field_id: Callable[[str], str] | None = None) -> PolicySpec:
        """Compile a `SlaPolicy`; `field_id` resolves friendly names (e.g. `Settings.field_id`)."""
        resolve: Callable[[str], str] = field_id or str

        def conditions(spec: Mapping[str, Sequence[Any]]) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
            return tuple(
                sorted((resolve(ref), tuple(scalar(v) for v in values)) for ref, values in spec.items())
            )

        complete = policy.complete_when
        return cls(
            name=policy.name,
            target=timedelta(minutes=policy.target_minutes),
            match=conditions(policy.match),
            complete_field=resolve(complete.field) if complete.field else None,
            complete_values=tuple(scalar(v) for v in complete.values),
            complete_item=complete.related_item,
            pause=conditions(policy.pause_when),
            rearm_on_reopen=policy.rearm_on_reopen,
        )

    @property
    def key(self) -> str:
        return f"{SlaOrigin.POLICY.value}#{self.name}"

    @property
    def field_ids(self) -> frozenset[str]:
        """The case fields this policy reads (match, completion, pause)."""
        ids = {fid for fid, _ in self.match} | {fid for fid, _ in self.pause}
        if self.complete_field:
            ids.add(self.complete_field)
        return frozenset(ids)


def compile_policies(
    policies: Iterable[SlaPolicy], field_id: Callable[[str], str] | None = None
) -> tuple[PolicySpec, ...]:
    return tuple(PolicySpec.from_policy(p, field_id) for p in policies)


@dataclass(frozen=True, slots=True)
class CasesSlaSpec:
    """A Cases SLA related item: completed when `field_id` holds one of `target_values`."""

    name: str
    field_id: str
    target_values: tuple[Scalar, ...]
    target_time: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    status: SlaStatus
    cycle: int
    target_time: datetime


@dataclass(frozen=True, slots=True)
class SlaState:
    """One (case, SLA) as the fold derives it. Everything here is a function of the log."""

    key: str  # "policy#<name>" or "cases#<relatedItemId>"
    name: str
    origin: SlaOrigin
    status: SlaStatus
    cycle: int
    started_at: datetime
    target_time: datetime  # start + duration + paused time so far
    duration: timedelta
    paused_since: datetime | None = None
    paused_seconds: float = 0.0
    completion_time: datetime | None = None
    history: tuple[Transition, ...] = ()
    complete_field: str | None = None
    complete_values: tuple[Scalar, ...] = ()
    complete_item: str | None = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    @property
    def timing(self) -> tuple[SlaStatus, int, datetime, datetime | None]:
        """What the timers depend on."""
        return (self.status, self.cycle, self.target_time, self.paused_since)

    def time_left(self, now: datetime) -> timedelta:
        """Until the target (negative: overdue by); while paused, frozen at the pause start."""
        reference = self.paused_since if self.paused_since is not None and now > self.paused_since else now
        return self.target_time - reference


@dataclass(frozen=True, slots=True)
class SlaTransition:
    """A transition applied to a stored SLA (what the local pipeline reports as "SLA transitions")."""

    domain_id: str
    case_id: str
    sla_key: str
    sla_name: str
    origin: SlaOrigin
    status: SlaStatus
    at: datetime
    cycle: int
    target_time: datetime


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """What one apply did: the transitions newly recorded and whether the store was written."""

    case_id: str
    transitions: tuple[SlaTransition, ...] = ()
    written: bool = False
    attempts: int = 0
    states: Mapping[str, SlaState] = field(default_factory=dict)
