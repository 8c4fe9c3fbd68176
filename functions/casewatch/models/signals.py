"""Signals the SLA tracker emits for the notification sink."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
    sla_name: str
    origin: str  # "policy" (configured in casewatch) or "cases" (a Cases SLA related item)
    target_time: datetime
    at: datetime  # when it happened: the event's approximateChangeTime, or the timer's time

    @property
    def signal_id(self) -> str:
        return f"{self.case_id}:{self.sla_name}:{self.kind.value}:{self.target_time.isoformat()}"
