"""Reconciliation runs (issue 12, defect 4) on fakes: one case's failure is its own (logged, counted,
deferred) and the run goes on; a run lasts as long as the invocation has time, not a fixed count."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from types import SimpleNamespace

import pytest

from casewatch.app.sla import reconcile as reconcile_module
from casewatch.app.sla.reconcile import MIN_RESERVE_S, RECHECK_MIN
from casewatch.domain.sla.model import SlaItemTooLargeError, SlaStatus
from casewatch.errors import CasesRequestError
from casewatch.handlers import reconcile
from casewatch.observability import RECONCILE_CASE_ERRORS
from casewatch.ports import CaseFields
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader, InMemorySlaStore, RecordingTimers
from tests.apps import LambdaContext, SlaSystem
from tests.builders import DOMAIN, RESOLVE, SLA_SETTINGS, at, created

DUE = at(9 * 60)  # an hour after the 8-hour targets of cases created at T0 (+ a minute each)


class Reader(DictCasesReader):
    """GetCase over a dict; `failing` raises once for its case, `taking` advances `seconds` (a slow case)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: dict[str, Exception] = {}
        self.taking: dict[str, float] = {}
        self.seconds = 0.0

    def get_case_fields(self, domain_id: str, case_id: str, field_ids: Sequence[str]) -> CaseFields:
        self.seconds += self.taking.get(case_id, 0.0)
        if case_id in self.failing:
            self.requests.append((domain_id, case_id, tuple(field_ids)))
            raise self.failing.pop(case_id)
        return super().get_case_fields(domain_id, case_id, field_ids)

    def checked(self) -> list[str]:
        """The cases asked about, in order, and forgotten."""
        cases = [case_id for _, case_id, _ in self.requests]
        self.requests.clear()
        return cases


def open_cases(count: int) -> tuple[SlaSystem, Reader, list[str]]:
    """`count` open low-priority cases, created a minute apart (their resolve SLA due in that order),
    all still open in Cases; the clock at `DUE`, when every one of them is overdue."""
    clock = VirtualClock(at(-1))
    reader = Reader()
    system = SlaSystem(
        SLA_SETTINGS, store=InMemorySlaStore(), timers=RecordingTimers(), clock=clock, cases_reader=reader
    )
    case_ids = [f"c{i:02d}" for i in range(count)]
    for minute, case_id in enumerate(case_ids):
        system.deliver(created(case_id, minute))
        reader.add(case_id, {"status": "open"})
    clock.set(DUE)
    return system, reader, case_ids


def status(system: SlaSystem, case_id: str) -> SlaStatus:
    state = system.store.load(DOMAIN, case_id).slas[RESOLVE].state
    assert isinstance(state.status, SlaStatus)
    return state.status


def remaining(*seconds: float) -> Callable[[], float]:
    """A fake `remaining_s`: the invocation's time left each time it is asked, in turn."""
    left: Iterator[float] = iter(seconds)
    return lambda: next(left)


# -- one case's failure is its own -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    ["cases-refused", "store-refused"],
)
def test_a_failing_case_does_not_stop_the_cases_after_it_and_is_counted_and_deferred(failure: str) -> None:
    system, reader, (first, second, third) = open_cases(3)
    if failure == "cases-refused":  # GetCase refused for the first case (neither throttled nor down)
        reader.failing[first] = CasesRequestError(
            "GetCase refused: AccessDenied", code="AccessDeniedException"
        )
    else:  # its state cannot be written (the first save of the run is the first case's)

        def refuse() -> None:
            raise SlaItemTooLargeError(f"case {first}: too large")

        system.store.before_save = refuse

    report = system.reconcile()

    assert reader.checked() == [first, second, third]
    assert (report.due, report.cases_checked, report.case_errors, report.cases_left) == (3, 3, 1, 0)
    assert system.metrics.counts[RECONCILE_CASE_ERRORS] == 1
    assert (status(system, second), status(system, third)) == (SlaStatus.OVERDUE, SlaStatus.OVERDUE)
    # The next run at the same moment does not start with it again: it was deferred like the others.
    again = system.reconcile()
    assert (again.due, again.cases_checked, reader.checked()) == (0, 0, [])
    # At its next check (a quarter of its age, at least RECHECK_MIN) it is due again, and checked.
    system.clock.set(DUE + RECHECK_MIN + timedelta(seconds=1))
    later = system.reconcile()
    assert reader.checked()[0] == first
    assert (later.case_errors, status(system, first)) == (0, SlaStatus.OVERDUE)
    assert system.metrics.counts[RECONCILE_CASE_ERRORS] == 1


def test_a_case_that_cannot_even_be_deferred_stays_due_and_the_run_goes_on() -> None:
    system, reader, (first, second) = open_cases(2)
    saves: list[str] = []

    def refuse_twice() -> None:  # the check's save and the deferral's save of the first case
        saves.append("refused")
        if len(saves) < 2:
            system.store.before_save = refuse_twice
        raise SlaItemTooLargeError(f"case {first}: too large")

    system.store.before_save = refuse_twice
    report = system.reconcile()
    assert (report.cases_checked, report.case_errors, len(saves)) == (2, 1, 2)
    assert reader.checked() == [first, second]
    assert status(system, second) is SlaStatus.OVERDUE
    assert [sla.case_id for sla in system.store.due_before(DUE)] == [first]  # not deferred: due


# -- the invocation's time, not a count ------------------------------------------------------------------


def test_a_run_checks_more_than_fifty_cases_when_it_has_the_time() -> None:
    """The old fixed count stopped at 50: 51 due cases and time to spare are all checked."""
    system, reader, case_ids = open_cases(51)
    report = system.reconcile(remaining_s=lambda: 60.0)
    assert (report.due, report.cases_checked, report.cases_left) == (51, 51, 0)
    assert reader.checked() == case_ids


def test_a_run_stops_when_less_than_three_times_the_slowest_case_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system, reader, (first, second, third) = open_cases(3)
    monkeypatch.setattr(reconcile_module, "time", SimpleNamespace(monotonic=lambda: reader.seconds))
    reader.taking[first] = 4.0  # the slowest case so far: 12 s must be left before the next one
    report = system.reconcile(remaining_s=remaining(60.0, 12.0, 11.999))
    assert reader.checked() == [first, second]
    assert (report.due, report.cases_checked, report.cases_left) == (3, 2, 1)
    # What was left stays due (the checked cases are deferred): the next run takes it.
    assert status(system, third) is SlaStatus.ACTIVE
    again = system.reconcile()
    assert (again.due, again.cases_checked, reader.checked()) == (1, 1, [third])


@pytest.mark.parametrize(
    ("remaining_ms", "checked"), [(int(MIN_RESERVE_S * 1000), 1), (int(MIN_RESERVE_S * 1000) - 1, 0)]
)
def test_the_reconcile_handler_runs_on_the_invocations_remaining_time(
    remaining_ms: int, checked: int
) -> None:
    """The handler passes `context.get_remaining_time_in_millis()` in seconds: exactly the reserve left
    still checks a case, a millisecond less checks none and leaves it due."""
    system, reader, _ = open_cases(1)
    response = reconcile.handler(
        {"id": "r1", "detail": {}},
        LambdaContext("casewatch-reconcile", remaining_ms=remaining_ms),
        app=system.reconcile_app(),
    )
    assert (response["due"], response["casesChecked"], response["casesLeft"]) == (1, checked, 1 - checked)
    assert len(reader.checked()) == checked
