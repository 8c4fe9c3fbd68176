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
from datetime import datetime
from typing import Any

from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind
from casewatch.domain.sla.model import PolicySpec, SlaState, SlaStatus, Transition
from casewatch.domain.sla.runs import CasesRun, PolicyRun, Run, parse_time, time_text
from casewatch.domain.values import Scalar, parse_iso, scalar, sortable_iso


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
        self.policy_runs = [PolicyRun(p) for p in self.policies]
        self.cases_runs: dict[str, CasesRun] = {}
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
            runs: list[Run] = [*self.policy_runs, *self.cases_runs.values()]
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
                self.cases_runs[obs.ref] = CasesRun.defined(obs, self.known)
                continue
            for policy_run in self.policy_runs:
                policy_run.observe(obs, self.known, self.created)
            for cases_run in self.cases_runs.values():
                cases_run.observe(obs, self.known)

    def states(self, horizon: datetime | None = None) -> dict[str, SlaState]:
        """Every SLA of the case, by key, with time known to have reached `horizon` (the fold itself is
        left as it is: Overdue at a horizon is derived, not folded)."""
        states: dict[str, SlaState] = {}
        runs: list[Run] = [*self.policy_runs, *self.cases_runs.values()]
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
            "cr": time_text(self.created),
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
        fold = cls(policies, parse_time(doc.get("cr")))
        if doc.get("fp") != fold.fingerprint:
            return None
        fold.known = {str(k): scalar(v) for k, v in doc["kn"]}
        for run, run_doc in zip(fold.policy_runs, doc["pr"], strict=True):
            run.load_doc(run_doc)
        fold.cases_runs = {run_doc["ref"]: CasesRun.from_doc(run_doc) for run_doc in doc["cs"]}
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
