"""What one replay observed at AWS's edges, item by item: the model and its JSON (`--items`).

Everything is what a subscriber of the deployed stack would see: the notifications at the topic's
subscriber, the enriched events at the bus's subscriber, the messages of the dead-letter and failure
queues (read into `Message`s by `messages`), the SLA table's final items and the SLA transitions the
pipeline recorded, plus what `recording.Recorder` saw during the run (each delivery and every request to
AWS and Cases). Nothing comes from casewatch's internals, so the same observation compares two settings
files or two versions of casewatch.

Each item has a `key` that names it across two runs (see `messages` for messages; an SLA outcome is
(case, SLA key)). Case data is withheld: written only as a digest unless the run's settings have
`log_case_data: true` (`reveal`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

Json = Any

NOTIFICATIONS: Final = "notifications"
BUS_EVENTS: Final = "bus_events"
DEAD_LETTERS: Final = "dead_letters"
MESSAGE_KINDS: Final = (NOTIFICATIONS, BUS_EVENTS, DEAD_LETTERS)
# What each kind's `label` is called in JSON.
LABELS: Final[Mapping[str, str]] = {
    NOTIFICATIONS: "rule",
    BUS_EVENTS: "detail_type",
    DEAD_LETTERS: "function",
}


def iso(moment: datetime | None) -> str | None:
    """One spelling of a time in every observation: UTC, `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normal_time(value: object) -> str | None:
    """A time as any message spells it, in `iso`'s spelling."""
    return iso(parse_time(value))


# --- messages ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A notification, an enriched bus event or a dead letter, as its subscriber received it."""

    key: str
    source: str  # what it is about, for people: "event <id>", "sla_breached first-response-high"
    label: str  # the rule | the detail-type | the function
    case_id: str | None
    at: str | None  # the time it is about (the source event's change time, the signal's time)
    safe: Mapping[str, Json]  # path -> value, no case data
    digest: str  # of the withheld content
    subject: str | None = None  # notifications: the subject with the case's values masked
    withheld: Mapping[str, Json] | None = None  # path -> value: in memory, or written when revealed

    def shown_subject(self, *, reveal: bool) -> str | None:
        """The subject as sent when `reveal` (and known), else masked."""
        if reveal and self.withheld is not None and isinstance(self.withheld.get("subject"), str):
            return str(self.withheld["subject"])
        return self.subject

    def as_dict(self, kind: str, *, reveal: bool) -> dict[str, Json]:
        data: dict[str, Json] = {
            "key": self.key,
            "source": self.source,
            LABELS[kind]: self.label,
            "case_id": self.case_id,
            "at": self.at,
        }
        if self.subject is not None:
            data["subject"] = self.subject
        data["safe"] = dict(self.safe)
        data["digest"] = self.digest
        if reveal and self.withheld is not None:
            data["withheld"] = dict(self.withheld)
        return data

    @classmethod
    def from_dict(cls, kind: str, data: Mapping[str, Json]) -> Message:
        return cls(
            key=str(data["key"]),
            source=str(data.get("source", "")),
            label=str(data.get(LABELS[kind], "")),
            case_id=data.get("case_id"),
            at=data.get("at"),
            safe=dict(data.get("safe", {})),
            digest=str(data.get("digest", "")),
            subject=data.get("subject"),
            withheld=data.get("withheld"),
        )


# --- SLAs, deliveries, requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """One (case, SLA) at the end of the run: the SLA table's item and its recorded transitions."""

    case_id: str
    sla: str  # the SLA key: "policy#<name>" or "cases#<related item id>"
    name: str
    origin: str
    status: str
    cycle: int
    armed_at: str | None
    target: str | None
    completion: str | None
    breached: bool  # went Overdue, or ended NotMet
    breach_at: str | None  # first Overdue transition (else the NotMet completion)

    @property
    def key(self) -> str:
        return f"{self.case_id}|{self.sla}"

    def outcome(self) -> dict[str, Json]:
        """What the comparison compares."""
        return {
            "status": self.status,
            "target": self.target,
            "completion": self.completion,
            "breached": self.breached,
            "cycle": self.cycle,
        }


@dataclass(frozen=True, slots=True)
class SlaStep:
    """A recorded SLA transition (armed: Active, breached: Overdue, Met, NotMet, Cancelled)."""

    case_id: str
    sla: str
    status: str
    at: str | None
    cycle: int
    target: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of the replay: the event's time, when the pipeline was done with it, the outcome."""

    at: str | None
    done_at: str | None
    event_type: str | None
    outcome: str  # handled | unhandled | unrouted | invalid | parked | failed | malformed

    @property
    def lag_seconds(self) -> float | None:
        start, end = parse_time(self.at), parse_time(self.done_at)
        return (end - start).total_seconds() if start and end else None


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of the functions to AWS or Cases (botocore's view), at a virtual time."""

    at: str | None
    service: str
    operation: str
    status: int | None


# --- one run -----------------------------------------------------------------------------------------


@dataclass
class Observation:
    """Everything one replay observed. `reveal`: the run's `log_case_data` (withheld values written)."""

    backend: str = "memory"
    reveal: bool = False
    start: str | None = None
    end: str | None = None
    notifications: list[Message] = field(default_factory=list)
    bus_events: list[Message] = field(default_factory=list)
    dead_letters: list[Message] = field(default_factory=list)
    sla: list[SlaOutcome] = field(default_factory=list)
    sla_steps: list[SlaStep] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def messages(self, kind: str) -> list[Message]:
        found: list[Message] = getattr(self, kind)
        return found

    def request_counts(self) -> dict[str, int]:
        """Requests by `service.Operation`, sorted."""
        counts: dict[str, int] = defaultdict(int)
        for r in self.requests:
            counts[f"{r.service}.{r.operation}"] += 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Json]:
        return {
            "version": 1,
            "backend": self.backend,
            "reveal": self.reveal,
            "start": self.start,
            "end": self.end,
            **{
                kind: [m.as_dict(kind, reveal=self.reveal) for m in self.messages(kind)]
                for kind in MESSAGE_KINDS
            },
            "sla": [_record(s) for s in self.sla],
            "sla_steps": [_record(s) for s in self.sla_steps],
            "deliveries": [_record(d) for d in self.deliveries],
            "requests": [_record(r) for r in self.requests],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Json]) -> Observation:
        return cls(
            backend=str(data.get("backend", "")),
            reveal=bool(data.get("reveal", False)),
            start=data.get("start"),
            end=data.get("end"),
            notifications=[Message.from_dict(NOTIFICATIONS, m) for m in data.get(NOTIFICATIONS, [])],
            bus_events=[Message.from_dict(BUS_EVENTS, m) for m in data.get(BUS_EVENTS, [])],
            dead_letters=[Message.from_dict(DEAD_LETTERS, m) for m in data.get(DEAD_LETTERS, [])],
            sla=[_known(SlaOutcome, s) for s in data.get("sla", [])],
            sla_steps=[_known(SlaStep, s) for s in data.get("sla_steps", [])],
            deliveries=[_known(Delivery, d) for d in data.get("deliveries", [])],
            requests=[_known(Request, r) for r in data.get("requests", [])],
        )


_Record = TypeVar("_Record", SlaOutcome, SlaStep, Delivery, Request)


def _record(item: SlaOutcome | SlaStep | Delivery | Request) -> dict[str, Json]:
    return asdict(item)


def _known(cls: type[_Record], data: Mapping[str, Json]) -> _Record:
    """`cls` from a record, the names it does not know (another version's) left out."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


__all__ = [
    "BUS_EVENTS",
    "DEAD_LETTERS",
    "LABELS",
    "MESSAGE_KINDS",
    "NOTIFICATIONS",
    "Delivery",
    "Json",
    "Message",
    "Observation",
    "Request",
    "SlaOutcome",
    "SlaStep",
    "iso",
    "normal_time",
    "parse_time",
]
