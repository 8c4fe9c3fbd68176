"""[Vendored from main@22fc270, `functions/casewatch/domain/sla/fold.py`: the state before issue 13, as it was deployed.
Only imports of modules that no longer exist point into `tests.legacy`; nothing else changed.]

The SLA fold: pure, deterministic, and independent of delivery order.

Every SLA of a case is a function of one thing: the case's *observation log* — the set of facts
casewatch has seen about the case, each at the `approximateChangeTime` it is true at (field values
after a change, a related item added, a Cases SLA defined or reported met, the case deleted), plus a
*horizon* (a moment time is known to have reached: a breach timer fired, or reconciliation ran).
`evaluate(log, policies)` folds the observations in time order and derives each SLA's state, so
that out-of-order and duplicate delivery give exactly the state in-order delivery gives: the log is
a set (a duplicate adds nothing), and the fold never looks at the order things arrived in.

Per (case, SLA), with `target` = start + duration + time spent paused:

    Active --(completion at t <= target)--> Met
    Active --(completion at t >  target)--> NotMet     (via Overdue: see below)
    Active --(time passes target, not paused)--> Overdue --(completion)--> NotMet
    Active | Overdue --(case deleted)--> Cancelled
    Met | NotMet --(completion field leaves its values; policy `rearm_on_reopen`)--> Active (next cycle)

Overdue is derived: it is recorded at the target time whenever any observation later than the
target (or the horizon) is folded while the SLA is still Active and not paused. Completion is judged
at the observation's time, never at processing time. A paused SLA (a `pause_when` field holds one of
its values) stops its clock: the target moves by the paused duration.

Two kinds of SLA:
- *policy* SLAs (`settings.sla_policies`), armed by the first case observation whose fields satisfy
  `match` — from the case's creation time unless an earlier observation showed the case not matching;
  completed when a field reaches one of the values, or when a related item of a type is added;
- *cases* SLAs: Amazon Connect Cases SLA related items (RELATED_ITEM.CREATED of type Sla, or found by
  reconciliation), armed at their creation with their `targetTime`; completed when their field first
  holds one of `targetFieldValues` (or when Cases reports a `completionTime`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind
from casewatch.domain.sla.model import PolicySpec, SlaOrigin, SlaState, SlaStatus, Transition
from casewatch.domain.values import Scalar, one_of


class _Run:
    """The fold's working state for one SLA."""

    def __init__(self, key: str, name: str, origin: SlaOrigin, duration: timedelta) -> None:
        self.key, self.name, self.origin, self.duration = key, name, origin, duration
        self.armed = False
        self.status = SlaStatus.ACTIVE
        self.cycle = 0
        self.started: datetime | None = None
        self.base_target: datetime | None = None
        self.paused_since: datetime | None = None
        self.paused_total = timedelta()
        self.completion: datetime | None = None
        self.history: list[Transition] = []

    @property
    def target(self) -> datetime:
        assert self.base_target is not None
        return self.base_target + self.paused_total

    def arm(self, start: datetime, target: datetime) -> None:
        self.armed = True
        self.cycle += 1
        self.status = SlaStatus.ACTIVE
        self.started, self.base_target = start, target
        self.paused_since, self.paused_total, self.completion = None, timedelta(), None
        self.history.append(Transition(start, SlaStatus.ACTIVE, self.cycle, target))

    def advance(self, now: datetime, *, inclusive: bool = False) -> None:
        """Time reached `now`: an Active, running SLA past its target becomes Overdue (at the target)."""
        if not self.armed or self.status is not SlaStatus.ACTIVE or self.paused_since is not None:
            return
        if now > self.target or (inclusive and now >= self.target):
            self.status = SlaStatus.OVERDUE
            self.history.append(Transition(self.target, SlaStatus.OVERDUE, self.cycle, self.target))

    def complete(self, at: datetime) -> None:
        if not self.status.is_open:
            return
        if self.paused_since is not None:  # completed while paused: the clock stopped at the pause
            self.paused_total += at - self.paused_since
            self.paused_since = None
        self.completion = at
        self.status = SlaStatus.MET if at <= self.target else SlaStatus.NOT_MET
        self.history.append(Transition(at, self.status, self.cycle, self.target))

    def cancel(self, at: datetime) -> None:
        if self.armed and self.status.is_open:
            self.status = SlaStatus.CANCELLED
            self.history.append(Transition(at, SlaStatus.CANCELLED, self.cycle, self.target))

    def set_paused(self, paused: bool, at: datetime) -> None:
        if self.status is not SlaStatus.ACTIVE:
            return
        if paused and self.paused_since is None:
            self.paused_since = at
        elif not paused and self.paused_since is not None:
            self.paused_total += at - self.paused_since
            self.paused_since = None

    def state(self, **definition: Any) -> SlaState:
        assert self.started is not None
        return SlaState(
            key=self.key,
            name=self.name,
            origin=self.origin,
            status=self.status,
            cycle=self.cycle,
            started_at=self.started,
            target_time=self.target,
            duration=self.duration,
            paused_since=self.paused_since,
            paused_seconds=self.paused_total.total_seconds(),
            completion_time=self.completion,
            history=tuple(self.history),
            **definition,
        )


def _holds_any(conditions: Sequence[tuple[str, tuple[Scalar, ...]]], known: Mapping[str, Scalar]) -> bool:
    """Some listed field holds one of its values (`pause_when`)."""
    return any(field_id in known and one_of(known[field_id], values) for field_id, values in conditions)


def _matches(
    conditions: Sequence[tuple[str, tuple[Scalar, ...]]], known: Mapping[str, Scalar]
) -> bool | None:
    """True/False when decidable from the known values; None while a needed field is unknown."""
    undecided = False
    for field_id, values in conditions:
        if field_id not in known:
            undecided = True
        elif not one_of(known[field_id], values):
            return False
    return None if undecided else True


class _PolicyRun(_Run):
    def __init__(self, policy: PolicySpec) -> None:
        super().__init__(policy.key, policy.name, SlaOrigin.POLICY, policy.target)
        self.policy = policy
        self.seen_not_matching = False
        self.items_before_arming: list[datetime] = []  # completing related items seen while unarmed

    def observe(self, obs: Observation, known: Mapping[str, Scalar], created: datetime | None) -> None:
        policy = self.policy
        if not self.armed:
            item = obs.item_type if obs.kind is ObsKind.ITEM else None
            if item is not None and item == policy.complete_item:
                self.items_before_arming.append(obs.at)
            if obs.kind is not ObsKind.CASE:
                return
            matched = _matches(policy.match, known)
            if matched is False:
                self.seen_not_matching = True
            if not matched:
                return
            from_creation = created is not None and created <= obs.at and not self.seen_not_matching
            start = created if from_creation and created is not None else obs.at
            self.arm(start, start + policy.target)
            # Armed from the creation by a later observation (the CASE.CREATED event never came): a
            # completing item added since the start counts, as it would have in order.
            done = min((at for at in self.items_before_arming if at >= start), default=None)
            if done is not None:
                self.advance(done)
                self.complete(done)
            self.advance(obs.at)
        if self.status.is_open:
            if (
                obs.kind is ObsKind.CASE
                and policy.complete_field is not None
                and policy.complete_field in known
                and one_of(known[policy.complete_field], policy.complete_values)
            ) or (
                obs.kind is ObsKind.ITEM
                and policy.complete_item is not None
                and obs.item_type == policy.complete_item
            ):
                self.complete(obs.at)
        elif (
            self.status in (SlaStatus.MET, SlaStatus.NOT_MET)
            and policy.rearm_on_reopen
            and obs.kind is ObsKind.CASE
            and policy.complete_field is not None
            and policy.complete_field in dict(obs.fields)
            and not one_of(known.get(policy.complete_field), policy.complete_values)
        ):
            self.arm(obs.at, obs.at + policy.target)
        if obs.kind is ObsKind.CASE and policy.pause:
            self.set_paused(_holds_any(policy.pause, known), obs.at)

    def result(self) -> SlaState:
        return self.state(
            complete_field=self.policy.complete_field,
            complete_values=self.policy.complete_values,
            complete_item=self.policy.complete_item,
        )


class _CasesRun(_Run):
    def __init__(self, obs: Observation, known: Mapping[str, Scalar]) -> None:
        assert obs.sla is not None
        self.spec = obs.sla
        super().__init__(
            f"{SlaOrigin.CASES.value}#{obs.ref}", obs.sla.name, SlaOrigin.CASES, obs.sla.target_time - obs.at
        )
        self.ref = obs.ref
        self.arm(obs.at, obs.sla.target_time)
        self._check(obs.at, known)

    def _check(self, at: datetime, known: Mapping[str, Scalar]) -> None:
        if self.spec.field_id in known and one_of(known[self.spec.field_id], self.spec.target_values):
            self.complete(at)

    def observe(self, obs: Observation, known: Mapping[str, Scalar]) -> None:
        if not self.status.is_open:
            return
        if obs.kind is ObsKind.CASE:
            self._check(obs.at, known)
        elif obs.kind is ObsKind.SLA_DONE and obs.ref == self.ref:
            self.complete(obs.at)

    def result(self) -> SlaState:
        return self.state(complete_field=self.spec.field_id, complete_values=self.spec.target_values)


def evaluate(log: CaseSlaLog, policies: Sequence[PolicySpec]) -> dict[str, SlaState]:
    """Every SLA of the case, by key: the fold of the log's observations in time order."""
    created = min((o.created for o in log.observations if o.created is not None), default=None)
    known: dict[str, Scalar] = {}
    policy_runs = [_PolicyRun(p) for p in policies]
    cases_runs: dict[str, _CasesRun] = {}
    for obs in log.observations:  # already in time order
        runs: list[_Run] = [*policy_runs, *cases_runs.values()]
        for run in runs:
            run.advance(obs.at)
        if obs.kind is ObsKind.DELETED:
            for run in runs:
                run.cancel(obs.at)
            break  # nothing happens to a deleted case
        if obs.kind is ObsKind.CASE:
            known.update(obs.fields)
        if obs.kind is ObsKind.SLA and obs.sla is not None and obs.ref not in cases_runs:
            cases_runs[obs.ref] = _CasesRun(obs, known)
            continue
        for policy_run in policy_runs:
            policy_run.observe(obs, known, created)
        for cases_run in cases_runs.values():
            cases_run.observe(obs, known)
    states: dict[str, SlaState] = {}
    for policy_run in policy_runs:
        if policy_run.armed:
            if log.horizon is not None:
                policy_run.advance(log.horizon, inclusive=True)
            states[policy_run.key] = policy_run.result()
    for cases_run in cases_runs.values():
        if log.horizon is not None:
            cases_run.advance(log.horizon, inclusive=True)
        states[cases_run.key] = cases_run.result()
    return states


def due_without_timer(states: Iterable[SlaState], now: datetime) -> datetime | None:
    """The latest target already reached by an Active, running SLA (its timer cannot fire anymore)."""
    due = [
        s.target_time
        for s in states
        if s.status is SlaStatus.ACTIVE and not s.paused and s.target_time <= now
    ]
    return max(due, default=None)


def new_transitions(old: SlaState | None, new: SlaState) -> list[Transition]:
    """Transitions of `new` that `old` had not recorded (by cycle and status, not time)."""
    seen = {(t.cycle, t.status) for t in old.history} if old is not None else set()
    return [t for t in new.history if (t.cycle, t.status) not in seen]
