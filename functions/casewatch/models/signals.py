"""What the SLA tracker tells the notification sink, and what a breach or warning timer sends."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from casewatch.models.base import UtcDatetime


class SlaSignalKind(StrEnum):
    AT_RISK = "sla_at_risk"
    BREACHED = "sla_breached"
    MET = "sla_met"
    NOT_MET = "sla_not_met"


class SlaSignal(BaseModel):
    """Something happened to one (case, SLA). `signal_id` is stable across retries and replays."""

    model_config = ConfigDict(frozen=True)

    kind: SlaSignalKind
    domain_id: str
    case_id: str
    sla_key: str  # "policy#<name>" or "cases#<relatedItemId>": unique per SLA of the case
    sla_name: str
    origin: str  # "policy" (configured in casewatch) or "cases" (a Cases SLA related item)
    target_time: UtcDatetime
    at: UtcDatetime  # when it happened: the event's approximateChangeTime, or the timer's time

    @property
    def signal_id(self) -> str:
        """By SLA key, not name: a policy and a Cases SLA may share a name and a target."""
        return f"{self.case_id}:{self.sla_key}:{self.kind.value}:{self.target_time.isoformat()}"


class SlaTimerPayload(BaseModel):
    """What a breach or warning schedule sends to the sla-timer function."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    kind: Literal["breach", "warning"]
    domain_id: str = Field(min_length=1)
    case_id: str = Field(min_length=1)
    sla_name: str = Field(min_length=1)
    sla_key: str | None = None  # "policy#<name>" / "cases#<relatedItemId>"; else found by name
    target_time: UtcDatetime

    def wire(self) -> dict[str, str]:
        body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return {k: str(v) for k, v in body.items()}


__all__ = ["SlaSignal", "SlaSignalKind", "SlaTimerPayload"]
