"""The SLA state machine: pure, deterministic, and independent of delivery order.

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

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from casewatch.errors import CasewatchError
from casewatch.models.fields import PythonValue
from casewatch.settings import SlaPolicy

# Observations per case kept in the log (an item holds ~150 bytes each; DynamoDB items are <= 400 KB).
MAX_OBSERVATIONS: Final = 1000
# Observations this much older than the newest are settled (no delivery is that late): only those are
# compacted when the log is full.
SETTLED_AFTER: Final = timedelta(days=1)

Scalar = str | float | bool | None  # a field value as the fold sees it (None: empty)


class SlaConflictError(CasewatchError):
    """Another writer changed the case's SLAs first, more times than the retry budget. Retryable."""


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


class ObsKind(StrEnum):
    CASE = "case"  # case field values after a change (CASE.CREATED/UPDATED, or read by reconciliation)
    SLA = "sla"  # a Cases SLA related item exists (its definition)
    ITEM = "item"  # a related item of some type was added
    SLA_DONE = "sla_done"  # Cases reports that the SLA's field reached a target value at `at`
    DELETED = "deleted"  # the case was deleted


_KIND_RANK: Final = {
    ObsKind.CASE: 0,
    ObsKind.SLA: 1,
    ObsKind.ITEM: 2,
    ObsKind.SLA_DONE: 3,
    ObsKind.DELETED: 4,
}


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds and `Z`: sorts lexicographically, round-trips exactly."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def scalar(value: PythonValue | int) -> Scalar:
    """A field value for comparison: numbers as float (JSON has one number type)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def same_value(left: Scalar, right: Scalar) -> bool:
    """Typed equality: "1" is not 1.0, True is not 1.0, and empty matches nothing."""
    if left is None or right is None:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, float) and isinstance(right, float):
        return left == right
    return isinstance(left, str) and isinstance(right, str) and left == right


def one_of(value: Scalar, values: Iterable[Scalar]) -> bool:
    return any(same_value(value, v) for v in values)


# --- definitions ---------------------------------------------------------------------------------


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


# --- observations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about a case, true at `at`. Identity: (kind, at, source, ref); see `CaseSlaLog`."""

    at: datetime
    kind: ObsKind
    source: str = "event"  # "event" or "reconcile"
    fields: tuple[tuple[str, Scalar], ...] = ()  # CASE: field values known at `at` (None: empty)
    created: datetime | None = None  # CASE: the case's createdDateTime
    item_type: str | None = None  # ITEM: the related item type
    ref: str = ""  # ITEM/SLA/SLA_DONE: the related item id
    sla: CasesSlaSpec | None = None  # SLA: the definition

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.kind.value, iso(self.at), self.source, self.ref)

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _KIND_RANK[self.kind], self.to_json())

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal observations serialise equally."""
        return _observation_json(self)

    def _json(self) -> str:
        doc: dict[str, Any] = {"at": iso(self.at), "kind": self.kind.value}
        if self.source != "event":
            doc["src"] = self.source
        if self.fields:
            doc["fields"] = dict(self.fields)
        if self.created is not None:
            doc["created"] = iso(self.created)
        if self.item_type is not None:
            doc["type"] = self.item_type
        if self.ref:
            doc["ref"] = self.ref
        if self.sla is not None:
            doc["sla"] = {
                "name": self.sla.name,
                "field": self.sla.field_id,
                "values": list(self.sla.target_values),
                "target": iso(self.sla.target_time),
            }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Observation:
        return cls.from_doc(json.loads(text))

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Observation:
        """From the decoded canonical JSON."""
        sla = doc.get("sla")
        return cls(
            at=parse_iso(doc["at"]),
            kind=ObsKind(doc["kind"]),
            source=doc.get("src", "event"),
            fields=tuple(sorted((k, scalar(v)) for k, v in (doc.get("fields") or {}).items())),
            created=parse_iso(doc["created"]) if doc.get("created") else None,
            item_type=doc.get("type"),
            ref=doc.get("ref", ""),
            sla=CasesSlaSpec(
                name=sla["name"],
                field_id=sla["field"],
                target_values=tuple(scalar(v) for v in sla["values"]),
                target_time=parse_iso(sla["target"]),
            )
            if sla
            else None,
        )


_JSON_CACHE: dict[tuple[Any, ...], str] = {}
_JSON_CACHE_MAX = 1 << 16


def _observation_json(obs: Observation) -> str:
    """`Observation.to_json`, memoized: a case's log is merged and sorted on every event. The key adds
    the values' types: `True == 1 == 1.0` in Python, not in JSON."""
    key = (
        obs,
        tuple(type(v) for _, v in obs.fields),
        tuple(type(v) for v in obs.sla.target_values) if obs.sla is not None else (),
    )
    text = _JSON_CACHE.get(key)
    if text is None:
        if len(_JSON_CACHE) >= _JSON_CACHE_MAX:
            _JSON_CACHE.clear()
        text = _JSON_CACHE[key] = obs._json()
    return text


def case_fields(values: Mapping[str, Scalar]) -> tuple[tuple[str, Scalar], ...]:
    """The canonical (sorted) form of an observation's field values."""
    return tuple(sorted((k, scalar(v)) for k, v in values.items()))


@dataclass(frozen=True, slots=True)
class CaseSlaLog:
    """The observation log of one case: a set (merge is union, so it commutes) and a horizon (max)."""

    domain_id: str
    case_id: str
    observations: tuple[Observation, ...] = ()  # sorted by time, one per identity
    horizon: datetime | None = None

    @property
    def version(self) -> datetime | None:
        """The newest `approximateChangeTime` applied (the log's version)."""
        return self.observations[-1].at if self.observations else None

    def merge(self, new: Iterable[Observation], horizon: datetime | None = None) -> CaseSlaLog:
        """The union with `new` observations and the later horizon. Commutative and idempotent.

        Two observations with the same identity (one change seen twice, with different enrichment)
        keep the one whose canonical JSON sorts first, so the choice does not depend on order either.
        """
        by_identity: dict[tuple[str, str, str, str], Observation] = {}
        for obs in (*self.observations, *new):
            kept = by_identity.get(obs.identity)
            if kept is None or obs.to_json() < kept.to_json():
                by_identity[obs.identity] = obs
        merged = tuple(sorted(by_identity.values(), key=Observation.sort_key))
        if len(merged) > MAX_OBSERVATIONS:
            merged = compact(merged, MAX_OBSERVATIONS)
        latest = max((h for h in (self.horizon, horizon) if h is not None), default=None)
        return replace(self, observations=merged, horizon=latest)

    def with_horizon(self, moment: datetime) -> CaseSlaLog:
        return self.merge((), horizon=moment)

    def cases_sla_fields(self) -> frozenset[str]:
        return frozenset(o.sla.field_id for o in self.observations if o.sla is not None)


def compact(observations: Sequence[Observation], limit: int) -> tuple[Observation, ...]:
    """Shrink an oversized log: drop settled CASE observations that repeat their predecessor's values.

    Only observations older than the newest by `SETTLED_AFTER` are touched (no event arrives that late,
    so what is dropped cannot change the fold); if that is not enough, the oldest settled CASE
    observations beyond the limit are dropped (a pathological case: >1000 changes within a day).
    """
    if len(observations) <= limit:
        return tuple(observations)
    settled_before = observations[-1].at - SETTLED_AFTER
    kept: list[Observation] = []
    previous: dict[str, Scalar] = {}
    for obs in observations:
        if obs.kind is ObsKind.CASE and obs.at < settled_before:
            values = dict(obs.fields)
            if obs.created is None and all(
                k in previous and previous[k] == v and type(previous[k]) is type(v) for k, v in values.items()
            ):
                continue
            previous.update(values)
        kept.append(obs)
    excess = len(kept) - limit
    if excess > 0:
        droppable = [i for i, o in enumerate(kept) if o.kind is ObsKind.CASE and o.at < settled_before][
            1:  # keep the oldest: it carries the case's initial values
        ]
        drop = set(droppable[:excess])
        kept = [o for i, o in enumerate(kept) if i not in drop]
    return tuple(kept)


# --- SLA state -----------------------------------------------------------------------------------


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


# --- what changes mean: signals and timers -------------------------------------------------------


def new_transitions(old: SlaState | None, new: SlaState) -> list[Transition]:
    """Transitions of `new` that `old` had not recorded (by cycle and status, not time)."""
    seen = {(t.cycle, t.status) for t in old.history} if old is not None else set()
    return [t for t in new.history if (t.cycle, t.status) not in seen]


class TimerKind(StrEnum):
    BREACH = "breach"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A one-time timer of an SLA: fire at `fire_at`; `target_time` is the SLA's target."""

    kind: TimerKind
    domain_id: str
    case_id: str
    sla_key: str
    sla_name: str
    fire_at: datetime
    target_time: datetime


def desired_timers(
    domain_id: str, case_id: str, state: SlaState, warning_fraction: float | None, now: datetime
) -> dict[TimerKind, TimerSpec | None]:
    """The timers an SLA should have now: a breach timer at the target while Active and running, and
    a warning timer at `warning_fraction` of the duration (if still ahead). None: no timer of that kind."""
    wanted: dict[TimerKind, TimerSpec | None] = {TimerKind.BREACH: None, TimerKind.WARNING: None}
    if state.status is not SlaStatus.ACTIVE or state.paused:
        return wanted
    if state.target_time > now:
        wanted[TimerKind.BREACH] = TimerSpec(
            TimerKind.BREACH, domain_id, case_id, state.key, state.name, state.target_time, state.target_time
        )
    if warning_fraction is not None:
        seconds = math.floor(state.duration.total_seconds() * warning_fraction)
        warn_at = state.target_time - state.duration + timedelta(seconds=seconds)
        if now < warn_at < state.target_time:
            wanted[TimerKind.WARNING] = TimerSpec(
                TimerKind.WARNING, domain_id, case_id, state.key, state.name, warn_at, state.target_time
            )
    return wanted


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


__all__ = [
    "MAX_OBSERVATIONS",
    "CaseSlaLog",
    "CasesSlaSpec",
    "ObsKind",
    "Observation",
    "PolicySpec",
    "SlaConflictError",
    "SlaOrigin",
    "SlaOutcome",
    "SlaState",
    "SlaStatus",
    "SlaTransition",
    "TimerKind",
    "TimerSpec",
    "Transition",
    "case_fields",
    "compile_policies",
    "desired_timers",
    "due_without_timer",
    "evaluate",
    "iso",
    "new_transitions",
    "one_of",
    "parse_iso",
    "same_value",
]
