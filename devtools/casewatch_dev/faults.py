"""Fault injection for the local pipeline: the faults AWS really produces, each a rate, all seeded.

`casewatch replay --faults duplicates=0.2,reorder=0.1,throttle=0.05,malformed=0.01,drop=0.005`

Delivery faults (applied to the stream by `arrange_deliveries`, as `casewatch replay` delivers it):
- `duplicates`: the share of events delivered twice (at-least-once); the copy arrives up to `window`
  deliveries later.
- `reorder`: the share of events delivered late, 1 to `window` deliveries after their place.
- `window`: the bound of reordering and duplicate distance, in deliveries (default 20).
- `drop`: the share of events never delivered (Cases' delivery is best effort). Cases' own state still
  changes (the ground-truth timeline), so breach timers and reconciliation must repair.
- `malformed`: the share of events *also* delivered corrupted, just before the intact copy: half as
  truncated JSON (a broken export line), half as an envelope of the wrong shape (an unreadable change
  time, resources not a list, ...) that still routes to a function, which must park it with its reason.

Service faults:
- `throttle` / `errors`: GetCase answered 429 ThrottlingException / 500 InternalServerException (the
  Cases emulator's `throttle_rate` / `error_rate`, restricted to GetCase); botocore retries them.
- `timeouts`: the invocation dies (a Lambda timeout) right after Powertools saved the in-progress
  record of a notification or enriched-event side effect, before the side effect ran. The record stays
  INPROGRESS; Lambda's retries (1 and 2 minutes of virtual time later) meet
  `IdempotencyAlreadyInProgressError` until its in-progress expiry (the invocation's remaining time,
  on the virtual clock) has passed, then run the side effect once.

`seed` seeds every choice (default: the replay's `--seed`).

A timeout is `SimulatedTimeout`, a `BaseException`: like Lambda killing the runtime, no `except
Exception` (Powertools' cleanup of the record, the sink's error collection) sees it. It needs the memory
backend: Powertools' DynamoDB layer compares in-progress expiry with the wall clock, which a replay on a
virtual clock cannot move.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from casewatch.domain.notifications.render import Notification
from casewatch.ports import Notifier
from casewatch_dev.event_files import RawEvent, UsageError

RATES = ("duplicates", "reorder", "drop", "malformed", "throttle", "errors", "timeouts")
CASES_READS = ("GetCase", "SearchCases", "SearchAllRelatedItems", "SearchRelatedItems")


class SimulatedTimeout(BaseException):
    """The invocation was killed (a Lambda timeout): nothing after this point of it ran."""


@dataclass(frozen=True)
class Faults:
    duplicates: float = 0.0
    reorder: float = 0.0
    window: int = 20
    drop: float = 0.0
    malformed: float = 0.0
    throttle: float = 0.0
    errors: float = 0.0
    timeouts: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--faults {name}={value}: a rate between 0 and 1")
        if self.window < 1:
            raise UsageError("--faults window: at least 1 delivery")

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in RATES)

    def with_seed(self, seed: int) -> Faults:
        return self if self.seed is not None else replace(self, seed=seed)

    def emulator_options(self) -> dict[str, Any]:
        """The Cases emulator's knobs for `throttle` and `errors`: every read casewatch makes of Cases
        (GetCase on the event path, the change feed's searches, an Sla item's SearchRelatedItems)."""
        if not (self.throttle or self.errors):
            return {}
        return {
            "throttle_rate": self.throttle,
            "error_rate": self.errors,
            "fault_operations": list(CASES_READS),
        }

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_faults(text: str) -> Faults:
    """`duplicates=0.2,reorder=0.1,window=30,seed=3` -> `Faults`."""
    known = {f.name for f in fields(Faults)}
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in known:
            names = ", ".join(sorted(known))
            raise UsageError(f"--faults: {part!r} is not NAME=VALUE with NAME one of {names}")
        try:
            values[name] = int(value) if name in ("window", "seed") else float(value)
        except ValueError:
            raise UsageError(f"--faults {name}: {value!r} is not a number") from None
    return Faults(**values)


@dataclass
class DeliveryPlan:
    """What `arrange_deliveries` did: the deliveries, and the ids behind each fault (for tests)."""

    deliveries: list[RawEvent]
    dropped: list[str] = field(default_factory=list)  # event ids never delivered
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # ids delivered corrupted (and intact)


def arrange_deliveries(raws: list[RawEvent], faults: Faults) -> DeliveryPlan:
    """Apply the delivery faults to `raws` (in their order), deterministically for `faults.seed`."""
    rng = random.Random(faults.seed or 0)  # noqa: S311 - reproducible chaos, not security
    plan = DeliveryPlan([])
    slots: list[tuple[float, int, RawEvent]] = []  # (position, tie-break, delivery)
    order = 0

    def put(position: float, raw: RawEvent) -> None:
        nonlocal order
        order += 1
        slots.append((position, order, raw))

    for index, raw in enumerate(raws):
        event_id = _event_id(raw)
        if event_id is None:  # not an event (a malformed line of the input): delivered as it is
            put(index, raw)
            continue
        if faults.drop and rng.random() < faults.drop:
            plan.dropped.append(event_id)
            continue
        position = float(index)
        if faults.reorder and rng.random() < faults.reorder:
            position += rng.randint(1, faults.window) + 0.5
            plan.reordered.append(event_id)
        if faults.malformed and rng.random() < faults.malformed:
            put(position - 0.25, corrupt(raw, rng))
            plan.malformed.append(event_id)
        put(position, raw)
        if faults.duplicates and rng.random() < faults.duplicates:
            put(position + rng.randint(0, faults.window) + 0.75, raw)
            plan.duplicated.append(event_id)
    slots.sort(key=lambda slot: (slot[0], slot[1]))
    plan.deliveries = [raw for _, _, raw in slots]
    return plan


def _event_id(raw: RawEvent) -> str | None:
    if raw.problem is not None or not isinstance(raw.raw, dict):
        return None
    event_id = raw.raw.get("id")
    return event_id if isinstance(event_id, str) else None


# Corruptions of an envelope that keep it routable (source, detail-type, eventType intact), so the
# handler receives it and must park it with its reason.
_SHAPE_CORRUPTIONS: tuple[Callable[[dict[str, Any]], None], ...] = (
    lambda e: e["detail"].__setitem__("approximateChangeTime", "yesterday afternoon"),
    lambda e: e.__setitem__("resources", "not a list"),
    lambda e: e["detail"].__setitem__("version", {"major": 0}),
    lambda e: e.__setitem__("time", "half past nine"),
    lambda e: e.__setitem__("account", 42),
)


def corrupt(raw: RawEvent, rng: random.Random) -> RawEvent:
    """A corrupted delivery of `raw`: truncated JSON text, or an envelope of the wrong shape."""
    assert isinstance(raw.raw, dict)
    origin = f"{raw.origin} (corrupted)"
    if rng.random() < 0.5:
        text = json.dumps(raw.raw, separators=(",", ":"))
        cut = text[: rng.randrange(1, max(2, len(text) // 2))]
        try:
            return RawEvent(origin, json.loads(cut))
        except ValueError as exc:
            return RawEvent(origin, None, f"not valid JSON ({type(exc).__name__})")
    damaged = copy.deepcopy(raw.raw)
    rng.choice(_SHAPE_CORRUPTIONS)(damaged)
    return RawEvent(origin, damaged)


class TimeoutInjector:
    """Wraps the notifier: with probability `rate`, the invocation dies (`SimulatedTimeout`) as it sends a
    notification — after its state and its claim were written, before the claim is done."""

    def __init__(self, inner: Notifier, rate: float, rng: random.Random) -> None:
        self.inner = inner
        self.rate = rate
        self._rng = rng
        self.injected = 0

    def publish(self, notification: Notification) -> str:
        if self._rng.random() < self.rate:
            self.injected += 1
            raise SimulatedTimeout("task timed out while sending a notification")
        return self.inner.publish(notification)


__all__ = [
    "DeliveryPlan",
    "Faults",
    "SimulatedTimeout",
    "TimeoutInjector",
    "arrange_deliveries",
    "corrupt",
    "parse_faults",
]
