"""The fold's working state per SLA: a run arms, pauses, completes, goes overdue or is cancelled as the
fold (`casewatch.domain.sla.fold`) feeds it observations in time order, and stores itself compactly
with the fold (`to_doc`/`load_doc`).

- `PolicyRun`: an SLA of a configured policy (`settings.sla_policies`);
- `CasesRun`: an Amazon Connect Cases SLA related item.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from casewatch.domain.sla.log import Observation, ObsKind
from casewatch.domain.sla.model import CasesSlaSpec, PolicySpec, SlaOrigin, SlaState, SlaStatus, Transition
from casewatch.domain.values import Scalar, one_of, parse_iso, scalar, sortable_iso


class Run:
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
            "st": time_text(self.started),
            "bt": time_text(self.base_target),
            "ps": time_text(self.paused_since),
            "pt": self.paused_total.total_seconds(),
            "cp": time_text(self.completion),
            "h": [
                [sortable_iso(t.at), t.status.value, t.cycle, sortable_iso(t.target_time)]
                for t in self.history
            ],
        }

    def load_doc(self, doc: Mapping[str, Any]) -> None:
        self.armed = bool(doc["a"])
        self.status = SlaStatus(doc["s"])
        self.cycle = int(doc["c"])
        self.started = parse_time(doc["st"])
        self.base_target = parse_time(doc["bt"])
        self.paused_since = parse_time(doc["ps"])
        self.paused_total = timedelta(seconds=float(doc["pt"]))
        self.completion = parse_time(doc["cp"])
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
        if isinstance(other, PolicyRun):
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


class PolicyRun(Run):
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


class CasesRun(Run):
    def __init__(self, spec: CasesSlaSpec, ref: str, duration: timedelta) -> None:
        super().__init__(f"{SlaOrigin.CASES.value}#{ref}", spec.name, SlaOrigin.CASES, duration)
        self.spec = spec
        self.ref = ref

    @classmethod
    def defined(cls, obs: Observation, known: Mapping[str, Scalar]) -> CasesRun:
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
    def from_doc(cls, doc: Mapping[str, Any]) -> CasesRun:
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


def time_text(moment: datetime | None) -> str | None:
    return sortable_iso(moment) if moment is not None else None


def parse_time(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None
