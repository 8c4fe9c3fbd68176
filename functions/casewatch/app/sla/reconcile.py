"""Reconciliation: repair open SLAs that are due from what Cases says now (covers undelivered events)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from casewatch.app.sla.apply import NextChecks, SlaApplier
from casewatch.app.sla.cases_check import CasesCheck
from casewatch.domain.sla.model import SlaState, SlaTransition
from casewatch.domain.sla.records import StoredSla
from casewatch.errors import CasesThrottledError, CasesUnavailableError
from casewatch.observability import RECONCILE_CASE_ERRORS, logger
from casewatch.ports import MetricsRecorder

# Reconciliation looks again at an open SLA after a quarter of its age, between these bounds.
RECHECK_MIN: Final = timedelta(minutes=30)
RECHECK_MAX: Final = timedelta(hours=24)
# Time kept free at the end of an invocation (at least three times the slowest case so far).
MIN_RESERVE_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """One reconciliation run: ids and counts only."""

    due: int = 0  # open SLAs due before now (read from the index)
    cases_checked: int = 0
    cases_left: int = 0  # due cases left for the next run (time or quota ran out)
    cases_calls: int = 0  # Cases API calls made
    repairs: int = 0  # SLAs whose state changed because of what Cases said (or time passing)
    case_errors: int = 0  # cases whose check failed (logged, counted, deferred)
    transitions: tuple[SlaTransition, ...] = ()
    throttled: bool = False

    def response(self) -> dict[str, object]:
        return {
            "due": self.due,
            "casesChecked": self.cases_checked,
            "casesLeft": self.cases_left,
            "casesCalls": self.cases_calls,
            "repairs": self.repairs,
            "caseErrors": self.case_errors,
            "transitions": len(self.transitions),
            "throttled": self.throttled,
        }


class Reconciliation:
    """`run` checks due cases one by one while the invocation has time (`remaining_s`): each case's
    failure is its own (logged, counted, its SLAs deferred so it does not come first again); Cases
    throttling or unavailability ends the run (the quota is shared), the rest stays due."""

    def __init__(self, *, applier: SlaApplier, check: CasesCheck, metrics: MetricsRecorder) -> None:
        self.applier = applier
        self.check = check
        self.metrics = metrics

    def run(
        self,
        *,
        now: datetime | None = None,
        remaining_s: Callable[[], float] | None = None,
        max_due: int = 500,
    ) -> ReconcileReport:
        now = now or self.applier.clock.now()
        due = self.applier.store.due_before(now, limit=max_due)
        by_case: dict[tuple[str, str], list[StoredSla]] = {}
        for sla in due:
            by_case.setdefault((sla.domain_id, sla.case_id), []).append(sla)
        checked = calls = repairs = errors = 0
        transitions: list[SlaTransition] = []
        throttled = False
        slowest = 0.0
        for (domain_id, case_id), slas in by_case.items():
            if remaining_s is not None and remaining_s() < max(MIN_RESERVE_S, 3 * slowest):
                break  # what is left stays due: the next run takes it
            started = time.monotonic()
            try:
                check = self.check.check(domain_id, case_id, slas, now)
                outcome = self.applier.apply(
                    domain_id, case_id, check.observe, tick=now, next_checks=_next_checks(slas, now)
                )
            except (CasesThrottledError, CasesUnavailableError) as exc:
                throttled = True
                logger.warning("reconciliation stopped: Cases", case_id=case_id, error=type(exc).__name__)
                break
            except Exception as exc:  # one case's failure must not hold up every later run
                errors += 1
                checked += 1
                self.metrics.count(RECONCILE_CASE_ERRORS)
                logger.exception(
                    "reconciliation of a case failed: deferred", case_id=case_id, error=type(exc).__name__
                )
                self._defer(domain_id, case_id, slas, now)
                continue
            finally:
                slowest = max(slowest, time.monotonic() - started)
            calls += check.calls
            checked += 1
            changed = {t.sla_key for t in outcome.transitions}
            repairs += len(changed)
            transitions += outcome.transitions
            if changed:
                logger.info("sla repaired", case_id=case_id, slas=sorted(changed))
        return ReconcileReport(
            due=len(due),
            cases_checked=checked,
            cases_left=len(by_case) - checked,
            cases_calls=calls,
            repairs=repairs,
            case_errors=errors,
            transitions=tuple(transitions),
            throttled=throttled,
        )

    def _defer(self, domain_id: str, case_id: str, slas: list[StoredSla], now: datetime) -> None:
        try:
            self.applier.apply(domain_id, case_id, lambda _log: [], next_checks=_next_checks(slas, now))
        except Exception as exc:  # the case stays due; the error was counted already
            logger.warning("could not defer a failed case", case_id=case_id, error=type(exc).__name__)


def _next_checks(slas: list[StoredSla], now: datetime) -> NextChecks:
    keys = {sla.state.key for sla in slas}

    def next_checks(states: Mapping[str, SlaState]) -> dict[str, datetime]:
        return {
            key: now + recheck_after(state, now)
            for key, state in states.items()
            if key in keys and state.status.is_open
        }

    return next_checks


def recheck_after(state: SlaState, now: datetime) -> timedelta:
    age = max(now - state.target_time, timedelta())
    return min(max(age / 4, RECHECK_MIN), RECHECK_MAX)


__all__ = ["ReconcileReport", "Reconciliation", "recheck_after"]
