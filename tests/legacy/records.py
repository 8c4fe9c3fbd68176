"""[Vendored from main@22fc270, `functions/casewatch/domain/sla/records.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

What the SLA store keeps about a case: its observation log and its SLA items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from casewatch.domain.sla.log import CaseSlaLog
from casewatch.domain.sla.model import SlaState


@dataclass(frozen=True, slots=True)
class StoredSla:
    """One (case, SLA) item: the fold's state plus what the store keeps about it."""

    domain_id: str
    case_id: str
    state: SlaState
    version: datetime | None  # the newest approximateChangeTime applied when it last changed
    revision: int  # the case log's revision that wrote it
    next_check_at: datetime | None = None  # reconciliation's next look at it (open SLAs)


@dataclass(frozen=True, slots=True)
class SlaCaseRecord:
    """Everything stored about a case's SLAs: its observation log and its SLA items."""

    log: CaseSlaLog
    slas: Mapping[str, StoredSla] = field(default_factory=dict)
    revision: int = 0  # 0: nothing stored yet

    @classmethod
    def empty(cls, domain_id: str, case_id: str) -> SlaCaseRecord:
        return cls(CaseSlaLog(domain_id, case_id))
