"""The item-by-item difference of two observed replays (base -> other), and its JSON.

`changes` has one object per kind (`KINDS`), each with `added` (in other only), `removed` (in base only)
and `changed` (in both, and different) lists; `summary` counts them, with the SLA breaches that appear
and vanish. The schema is README.md's "The JSON report of a comparison".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from casewatch_dev.replay_diff.observed import (
    LABELS,
    MESSAGE_KINDS,
    Json,
    Message,
    Observation,
    SlaOutcome,
)

SLA: Final = "sla"
KINDS: Final = ("notifications", SLA, "bus_events", "dead_letters")


@dataclass
class KindChanges:
    added: list[dict[str, Json]] = field(default_factory=list)
    removed: list[dict[str, Json]] = field(default_factory=list)
    changed: list[dict[str, Json]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)

    def as_dict(self) -> dict[str, list[dict[str, Json]]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


@dataclass
class Changes:
    """What differs, by kind (`KINDS`)."""

    kinds: dict[str, KindChanges] = field(default_factory=lambda: {k: KindChanges() for k in KINDS})

    @property
    def empty(self) -> bool:
        return not any(self.kinds.values())

    def __getitem__(self, kind: str) -> KindChanges:
        return self.kinds[kind]

    def breaches(self) -> dict[str, list[dict[str, Json]]]:
        """SLA entries whose breach appears in other, or vanishes from it."""
        sla = self.kinds[SLA]
        return {
            "appeared": [e for e in sla.added if e["breached"]]
            + [e for e in sla.changed if e["breach"] == "appeared"],
            "vanished": [e for e in sla.removed if e["breached"]]
            + [e for e in sla.changed if e["breach"] == "vanished"],
        }

    def summary(self) -> dict[str, Json]:
        breaches = self.breaches()
        return {
            "changed": not self.empty,
            "items": sum(len(k) for k in self.kinds.values()),
            **{kind: self.kinds[kind].counts() for kind in KINDS},
            "breaches": {name: len(entries) for name, entries in breaches.items()},
        }

    def as_dict(self) -> dict[str, Json]:
        return {kind: self.kinds[kind].as_dict() for kind in KINDS}


# --- messages ----------------------------------------------------------------------------------------


def message_entry(kind: str, message: Message, *, reveal: bool) -> dict[str, Json]:
    entry: dict[str, Json] = {
        "key": message.key,
        "source": message.source,
        LABELS[kind]: message.label,
        "case_id": message.case_id,
        "at": message.at,
    }
    if message.subject is not None:
        entry["subject"] = message.shown_subject(reveal=reveal)
    return entry


def _shown_first(path: str) -> tuple[bool, str]:
    """Ids derived from what changed (a signal's id holds its target) after what they derive from."""
    last = path.rsplit(".", 1)[-1]
    return (last in ("id", "notificationId"), path)


def _values(path: str, base: Mapping[str, Json], other: Mapping[str, Json]) -> dict[str, Json] | None:
    """`{path, base, other}` if the path differs (a side without it has no key), else None."""
    if base.get(path) == other.get(path) and (path in base) == (path in other):
        return None
    return {"path": path, **{side: v[path] for side, v in (("base", base), ("other", other)) if path in v}}


def message_differences(base: Message, other: Message, *, reveal: bool) -> list[dict[str, Json]]:
    """Paths that differ: with their values where they hold no case data (or `reveal`)."""
    found: list[dict[str, Json]] = []
    for path in sorted(base.safe.keys() | other.safe.keys(), key=_shown_first):
        if (difference := _values(path, base.safe, other.safe)) is not None:
            found.append(difference)
    both_withheld = base.withheld is not None and other.withheld is not None
    # The masked subjects, unless the subjects as sent are shown below (both revealed).
    masked_shown = base.subject != other.subject and not (reveal and both_withheld)
    if masked_shown:
        found.append({"path": "subject", "base": base.subject, "other": other.subject})
    if base.withheld is not None and other.withheld is not None:
        for path in sorted(base.withheld.keys() | other.withheld.keys()):
            difference = _values(path, base.withheld, other.withheld)
            if difference is None or (path == "subject" and masked_shown):
                continue
            found.append(difference if reveal else {"path": path, "withheld": True})
    elif base.digest != other.digest:
        found.append({"path": "(case data)", "withheld": True})
    return found


def diff_messages(
    kind: str, base: Sequence[Message], other: Sequence[Message], *, reveal: bool
) -> KindChanges:
    a = {m.key: m for m in base}
    b = {m.key: m for m in other}
    out = KindChanges(
        added=[message_entry(kind, b[k], reveal=reveal) for k in sorted(b.keys() - a.keys())],
        removed=[message_entry(kind, a[k], reveal=reveal) for k in sorted(a.keys() - b.keys())],
    )
    for key in sorted(a.keys() & b.keys()):
        differences = message_differences(a[key], b[key], reveal=reveal)
        if differences:
            out.changed.append({**message_entry(kind, b[key], reveal=reveal), "differences": differences})
    return out


# --- SLAs --------------------------------------------------------------------------------------------


def sla_entry(outcome: SlaOutcome) -> dict[str, Json]:
    return {
        "case_id": outcome.case_id,
        "sla": outcome.sla,
        "name": outcome.name,
        "origin": outcome.origin,
        **outcome.outcome(),
        "breach_at": outcome.breach_at,
    }


def diff_sla(base: Sequence[SlaOutcome], other: Sequence[SlaOutcome]) -> KindChanges:
    a = {o.key: o for o in base}
    b = {o.key: o for o in other}
    out = KindChanges(
        added=[sla_entry(b[k]) for k in sorted(b.keys() - a.keys())],
        removed=[sla_entry(a[k]) for k in sorted(a.keys() - b.keys())],
    )
    for key in sorted(a.keys() & b.keys()):
        was, now = a[key].outcome(), b[key].outcome()
        differences = [name for name in was if was[name] != now[name]]
        if not differences:
            continue
        breach = None
        if was["breached"] != now["breached"]:
            breach = "appeared" if now["breached"] else "vanished"
        out.changed.append(
            {
                "case_id": b[key].case_id,
                "sla": b[key].sla,
                "name": b[key].name,
                "origin": b[key].origin,
                "base": {**was, "breach_at": a[key].breach_at},
                "other": {**now, "breach_at": b[key].breach_at},
                "differences": differences,
                "breach": breach,
            }
        )
    return out


# --- two runs ----------------------------------------------------------------------------------------


def diff(base: Observation, other: Observation) -> Changes:
    """What differs from `base` to `other`. Values of case data appear only if both revealed them."""
    reveal = base.reveal and other.reveal
    kinds = {
        kind: diff_messages(kind, base.messages(kind), other.messages(kind), reveal=reveal)
        for kind in MESSAGE_KINDS
    }
    kinds[SLA] = diff_sla(base.sla, other.sla)
    return Changes({kind: kinds[kind] for kind in KINDS})


@dataclass
class Side:
    """One run of a comparison: its name (the settings file, or the report file), its usual report
    (`ReplayReport.as_dict()`), and its observation."""

    label: str  # base | other
    name: str
    report: dict[str, Any]
    observation: Observation

    def requests(self) -> dict[str, Json]:
        """Requests to AWS and Cases, in total, per event, by `service.Operation`."""
        counts = self.observation.request_counts()
        events = int(self.report.get("events") or 0)
        total = sum(counts.values())
        return {
            "total": total,
            "per_event": round(total / events, 3) if events else 0.0,
            "by_operation": counts,
            "backend": self.observation.backend,
        }


@dataclass
class Comparison:
    base: Side
    other: Side
    changes: Changes

    @classmethod
    def of(cls, base: Side, other: Side) -> Comparison:
        return cls(base, other, diff(base.observation, other.observation))

    def as_dict(self, *, items: bool = False) -> dict[str, Json]:
        """The `--report json` of a comparison: each side's usual report (with its requests, and with
        `items` its observation) beside `changes` and `summary`."""

        def side(s: Side) -> dict[str, Json]:
            data = {"name": s.name, **s.report, "requests": s.requests()}
            if items:
                data["observed"] = s.observation.as_dict()
            return data

        return {
            "base": side(self.base),
            "other": side(self.other),
            "summary": self.changes.summary(),
            "changes": self.changes.as_dict(),
        }


__all__ = ["KINDS", "SLA", "Changes", "Comparison", "KindChanges", "Side", "diff"]
