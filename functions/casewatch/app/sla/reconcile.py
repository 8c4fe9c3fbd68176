"""Reconciliation: repair open SLAs that are due from what Cases says now (covers undelivered events)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from casewatch.app.sla.apply import SlaApplier
from casewatch.app.sla.cases_check import CasesCheck
from casewatch.domain.sla.model import SlaState, SlaTransition
from casewatch.domain.sla.records import StoredSla
from casewatch.errors import CasesThrottledError, CasesUnavailableError
from casewatch.observability import logger

# Reconciliation looks again at an open SLA after a quarter of its age, between these bounds.
RECHECK_MIN: Final = timedelta(minutes=30)
RECHECK_MAX: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """One reconciliation run: ids and counts only."""

    due: int = 0  # open SLAs due before now (read from the index)
    cases_checked: int = 0
    cases_left: int = 0  # due cases left for the next run (budget spent)
    cases_calls: int = 0  # Cases API calls made
    repairs: int = 0  # SLAs whose state changed because of what Cases said (or time passing)
    transitions: tuple[SlaTransition, ...] = ()
    throttled: bool = False

    def response(self) -> dict[str, object]:
        return {
            "due": self.due,
            "casesChecked": self.cases_checked,
            "casesLeft": self.cases_left,
            "casesCalls": self.cases_calls,
            "repairs": self.repairs,
            "transitions": len(self.transitions),
            "throttled": self.throttled,
        }


class Reconciliation:
    def __init__(self, *, applier: SlaApplier, check: CasesCheck) -> None:
        self.applier = applier
        self.check = check

    def run(self, *, now: datetime | None = None, max_cases: int = 50, max_due: int = 500) -> ReconcileReport:
        """Repair SLAs that are due (target passed, still open) from what Cases says now: at most
        `max_cases` cases per run (the Cases quotas are shared); the rest stay due for the next run."""
        now = now or self.applier.clock.now()
        due = self.applier.store.due_before(now, limit=max_due)
        by_case: dict[tuple[str, str], list[StoredSla]] = {}
        for sla in due:
            by_case.setdefault((sla.domain_id, sla.case_id), []).append(sla)
        checked = calls = repairs = 0
        transitions: list[SlaTransition] = []
        throttled = False
        cases = list(by_case.items())
        for (domain_id, case_id), slas in cases[:max_cases]:
            try:
                check = self.check.check(domain_id, case_id, slas, now)
            except (CasesThrottledError, CasesUnavailableError) as exc:
                throttled = True
                logger.warning("reconciliation stopped: Cases", case_id=case_id, error=type(exc).__name__)
                break
            calls += check.calls
            checked += 1
            keys = {sla.state.key for sla in slas}

            def next_checks(states: Mapping[str, SlaState], keys: set[str] = keys) -> dict[str, datetime]:
                return {
                    key: now + recheck_after(state, now)
                    for key, state in states.items()
                    if key in keys and state.status.is_open
                }

            outcome = self.applier.apply(domain_id, case_id, check.observe, tick=now, next_checks=next_checks)
            changed = {t.sla_key for t in outcome.transitions}
            repairs += len(changed)
            transitions += outcome.transitions
            if changed:
                logger.info("sla repaired", case_id=case_id, slas=sorted(changed))
        return ReconcileReport(
            due=len(due),
            cases_checked=checked,
            cases_left=len(cases) - checked,
            cases_calls=calls,
            repairs=repairs,
            transitions=tuple(transitions),
            throttled=throttled,
        )


def recheck_after(state: SlaState, now: datetime) -> timedelta:
    age = max(now - state.target_time, timedelta())
    return min(max(age / 4, RECHECK_MIN), RECHECK_MAX)


__all__ = ["ReconcileReport", "Reconciliation", "recheck_after"]
