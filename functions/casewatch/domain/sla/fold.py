"""The SLA fold: pure, deterministic, and independent of delivery order.

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

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind
from casewatch.domain.sla.model import CasesSlaSpec, PolicySpec, SlaOrigin, SlaState, SlaStatus, Transition
from casewatch.domain.values import Scalar, one_of, parse_iso, scalar, sortable_iso


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

    # -- the checkpoint's form -------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        return {
            "k": self.key,
            "n": self.name,
            "o": self.origin.value,
            "d": self.duration.total_seconds(),
            "a": self.armed,
            "s": self.status.value,
            "c": self.cycle,
            "st": _time(self.started),
            "bt": _time(self.base_target),
            "ps": _time(self.paused_since),
            "pt": self.paused_total.total_seconds(),
            "cp": _time(self.completion),
            "h": [
                [sortable_iso(t.at), t.status.value, t.cycle, sortable_iso(t.target_time)]
                for t in self.history
            ],
        }

    def load_doc(self, doc: Mapping[str, Any]) -> None:
        self.armed = bool(doc["a"])
        self.status = SlaStatus(doc["s"])
        self.cycle = int(doc["c"])
        self.started = _parse(doc["st"])
        self.base_target = _parse(doc["bt"])
        self.paused_since = _parse(doc["ps"])
        self.paused_total = timedelta(seconds=float(doc["pt"]))
        self.completion = _parse(doc["cp"])
        self.history = [
            Transition(parse_iso(at), SlaStatus(status), int(cycle), parse_iso(target))
            for at, status, cycle, target in doc["h"]
        ]

    def result(self) -> SlaState:
        raise NotImplementedError

    def clone(self) -> Self:
        """An independent copy of the run's state."""
        other = copy.copy(self)
        other.history = list(self.history)
        if isinstance(other, _PolicyRun):
            other.items_before_arming = list(other.items_before_arming)
        return other

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

    def to_doc(self) -> dict[str, Any]:
        return {
            **super().to_doc(),
            "sn": self.seen_not_matching,
            "ib": [sortable_iso(at) for at in self.items_before_arming],
        }

    def load_doc(self, doc: Mapping[str, Any]) -> None:
        super().load_doc(doc)
        self.seen_not_matching = bool(doc["sn"])
        self.items_before_arming = [parse_iso(at) for at in doc["ib"]]

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
    def __init__(self, spec: CasesSlaSpec, ref: str, duration: timedelta) -> None:
        super().__init__(f"{SlaOrigin.CASES.value}#{ref}", spec.name, SlaOrigin.CASES, duration)
        self.spec = spec
        self.ref = ref

    @classmethod
    def defined(cls, obs: Observation, known: Mapping[str, Scalar]) -> _CasesRun:
        """The run of a Cases SLA, armed by its definition (an SLA observation)."""
        assert obs.sla is not None
        run = cls(obs.sla, obs.ref, obs.sla.target_time - obs.at)
        run.arm(obs.at, obs.sla.target_time)
        run._check(obs.at, known)
        return run

    def to_doc(self) -> dict[str, Any]:
        spec = self.spec
        return {
            **super().to_doc(),
            "ref": self.ref,
            "spec": [spec.name, spec.field_id, list(spec.target_values), sortable_iso(spec.target_time)],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> _CasesRun:
        name, field_id, values, target = doc["spec"]
        spec = CasesSlaSpec(name, field_id, tuple(scalar(v) for v in values), parse_iso(target))
        run = cls(spec, doc["ref"], timedelta(seconds=float(doc["d"])))
        run.load_doc(doc)
        return run

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


class FoldState:
    """The fold after some of a case's observations, resumable: `extend` it with later observations (in
    order), read the SLAs at a horizon with `states`. Kept with the log (its `to_doc` form), so an event
    that arrives in order costs the fold of its own observations only; one that arrives out of order (or
    a change of policies, or of the case's creation time) re-folds the whole log (`can_extend` says which).
    """

    def __init__(self, policies: Sequence[PolicySpec], created: datetime | None = None) -> None:
        self.policies = tuple(policies)
        self.fingerprint = policies_fingerprint(self.policies)
        self.created = created
        self.known: dict[str, Scalar] = {}
        self.policy_runs = [_PolicyRun(p) for p in self.policies]
        self.cases_runs: dict[str, _CasesRun] = {}
        self.deleted = False
        self.last: tuple[datetime, int, str] | None = None  # the sort key of the last observation folded
        self.last_ids: set[tuple[str, str, str, str]] = set()  # identities folded at the last time
        self.refs: set[str] = set()  # related items seen (a case has at most 200)
        self.count = 0

    # -- folding ---------------------------------------------------------------------------------
    def can_extend(self, observations: Iterable[Observation]) -> bool:
        """Whether folding `observations` on from here equals re-folding everything: each comes after
        the last one folded, and none changes the case's creation time the fold used."""
        last, ids = self.last, set(self.last_ids)
        for obs in observations:
            key = obs.sort_key()
            if last is not None and key <= last:
                return False
            if last is not None and obs.at == last[0]:
                if obs.identity in ids:
                    return False  # the same fact again (the log is a set): a re-fold keeps one
            else:
                ids = set()
            ids.add(obs.identity)
            last = key
            if obs.created is not None and obs.created != self.created:
                return False
        return True

    def extend(self, observations: Iterable[Observation]) -> None:
        """Fold `observations` (sorted, each after the last one folded: see `can_extend`)."""
        for obs in observations:
            key = obs.sort_key()
            if self.last is None or key[0] != self.last[0]:
                self.last_ids = set()
            self.last_ids.add(obs.identity)
            self.last = key
            self.count += 1
            if obs.kind in (ObsKind.ITEM, ObsKind.SLA) and obs.ref:
                self.refs.add(obs.ref)
            if self.deleted:
                continue  # nothing happens to a deleted case
            runs: list[_Run] = [*self.policy_runs, *self.cases_runs.values()]
            for run in runs:
                run.advance(obs.at)
            if obs.kind is ObsKind.DELETED:
                for run in runs:
                    run.cancel(obs.at)
                self.deleted = True
                continue
            if obs.kind is ObsKind.CASE:
                self.known.update(obs.fields)
            if obs.kind is ObsKind.SLA and obs.sla is not None and obs.ref not in self.cases_runs:
                self.cases_runs[obs.ref] = _CasesRun.defined(obs, self.known)
                continue
            for policy_run in self.policy_runs:
                policy_run.observe(obs, self.known, self.created)
            for cases_run in self.cases_runs.values():
                cases_run.observe(obs, self.known)

    def states(self, horizon: datetime | None = None) -> dict[str, SlaState]:
        """Every SLA of the case, by key, with time known to have reached `horizon` (the fold itself is
        left as it is: Overdue at a horizon is derived, not folded)."""
        states: dict[str, SlaState] = {}
        runs: list[_Run] = [*self.policy_runs, *self.cases_runs.values()]
        for folded in runs:
            if not folded.armed:
                continue
            run = folded
            if horizon is not None and folded.status is SlaStatus.ACTIVE:
                run = folded.clone()
                run.advance(horizon, inclusive=True)
            states[run.key] = run.result()
        return states

    def open_cases_sla(self, ref: str) -> bool:
        """Whether the Cases SLA of related item `ref` is known and still open."""
        run = self.cases_runs.get(ref)
        return run is not None and run.status.is_open

    def cases_sla_fields(self) -> frozenset[str]:
        """The fields of the case's Cases SLAs (tracked too)."""
        return frozenset(run.spec.field_id for run in self.cases_runs.values())

    def copy(self) -> FoldState:
        """An independent copy (to extend without touching this one)."""
        other = copy.copy(self)
        other.known = dict(self.known)
        other.policy_runs = [run.clone() for run in self.policy_runs]
        other.cases_runs = {ref: run.clone() for ref, run in self.cases_runs.items()}
        other.last_ids = set(self.last_ids)
        other.refs = set(self.refs)
        return other

    # -- the stored form -----------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        return {
            "fp": self.fingerprint,
            "cr": _time(self.created),
            "kn": [[k, v] for k, v in self.known.items()],
            "pr": [run.to_doc() for run in self.policy_runs],
            "cs": [run.to_doc() for run in self.cases_runs.values()],
            "del": self.deleted,
            "last": [sortable_iso(self.last[0]), self.last[1], self.last[2]] if self.last else None,
            "ids": sorted(list(identity) for identity in self.last_ids),
            "refs": sorted(self.refs),
            "n": self.count,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], policies: Sequence[PolicySpec]) -> FoldState | None:
        """The stored fold, or None when it was folded under other policies (re-fold the log)."""
        fold = cls(policies, _parse(doc.get("cr")))
        if doc.get("fp") != fold.fingerprint:
            return None
        fold.known = {str(k): scalar(v) for k, v in doc["kn"]}
        for run, run_doc in zip(fold.policy_runs, doc["pr"], strict=True):
            run.load_doc(run_doc)
        fold.cases_runs = {run_doc["ref"]: _CasesRun.from_doc(run_doc) for run_doc in doc["cs"]}
        fold.deleted = bool(doc["del"])
        last = doc.get("last")
        fold.last = (parse_iso(last[0]), int(last[1]), str(last[2])) if last else None
        fold.last_ids = {(str(a), str(b), str(c), str(d)) for a, b, c, d in doc.get("ids", [])}
        fold.refs = {str(ref) for ref in doc.get("refs", [])}
        fold.count = int(doc["n"])
        return fold


def policies_fingerprint(policies: Sequence[PolicySpec]) -> str:
    """Identifies the policies a fold ran under (a settings change invalidates a stored fold)."""
    return hashlib.sha256(repr(tuple(policies)).encode()).hexdigest()[:16]


def fold(log: CaseSlaLog, policies: Sequence[PolicySpec]) -> FoldState:
    """The fold of the whole log (its observations are in time order)."""
    created = min((o.created for o in log.observations if o.created is not None), default=None)
    state = FoldState(policies, created)
    state.extend(log.observations)
    return state


def evaluate(log: CaseSlaLog, policies: Sequence[PolicySpec]) -> dict[str, SlaState]:
    """Every SLA of the case, by key: the fold of the log's observations in time order, at its horizon."""
    return fold(log, policies).states(log.horizon)


def _time(moment: datetime | None) -> str | None:
    return sortable_iso(moment) if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


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
