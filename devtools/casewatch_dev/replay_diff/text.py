"""A comparison for people: a summary line, the differences grouped by kind (the first `show` of each
group, with a count of the rest), then the requests to AWS and Cases of each side."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Final

from casewatch_dev.replay_diff.changes import SLA, Comparison, Side
from casewatch_dev.replay_diff.observed import LABELS, MESSAGE_KINDS, Json, parse_time

KIND_NAMES: Final = {
    "notifications": "notifications",
    SLA: "SLA outcomes",
    "bus_events": "enriched bus events",
    "dead_letters": "dead letters",
}
DIFFERENCES_SHOWN: Final = 4  # paths listed under a changed message
VALUE_SHOWN: Final = 100  # characters of a value in a difference


def shown(difference: dict[str, Json], side: str) -> str:
    """One side of a difference on one line: `(absent)`, or the value (JSON for lists), shortened."""
    if side not in difference:
        return "(absent)"
    value = difference[side]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 3] + "..."


def when(value: Json) -> str:
    """A time without its fraction: 2026-11-23T08:52:12Z."""
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def summary_line(comparison: Comparison) -> str:
    summary = comparison.changes.summary()
    head = f"{comparison.base.name} -> {comparison.other.name}"
    deliveries = comparison.base.report.get("events", 0)
    backend = comparison.base.observation.backend
    if not summary["changed"]:
        return f"{head}: no change ({deliveries} deliveries, {backend} backend)"
    parts = []
    for kind in KIND_NAMES:
        counts = summary[kind]
        said = ", ".join(f"{n} {part}" for part, n in counts.items() if n)
        if said:
            parts.append(f"{KIND_NAMES[kind]} {said}")
    breaches = summary["breaches"]
    said = ", ".join(f"{n} {part}" for part, n in breaches.items() if n)
    if said:
        parts.append(f"SLA breaches {said}")
    return f"{head}: {summary['items']} changes ({deliveries} deliveries, {backend} backend): " + "; ".join(
        parts
    )


def _message_line(kind: str, entry: dict[str, Json]) -> str:
    subject = f"  {entry['subject']}" if entry.get("subject") else ""
    case = f"case {entry['case_id']}  " if entry.get("case_id") else ""
    return f"  {entry[LABELS[kind]]:<22} {case}{entry['source']}  {when(entry['at'])}{subject}"


def _difference_lines(entry: dict[str, Json]) -> list[str]:
    differences = entry.get("differences", [])
    lines = []
    for d in differences[:DIFFERENCES_SHOWN]:
        if d.get("withheld"):
            lines.append(f"      {d['path']}: differs (case data; log_case_data: true shows values)")
        else:
            lines.append(f"      {d['path']}: {shown(d, 'base')} -> {shown(d, 'other')}")
    if len(differences) > DIFFERENCES_SHOWN:
        lines.append(f"      ... and {len(differences) - DIFFERENCES_SHOWN} more paths")
    return lines


def _sla_line(entry: dict[str, Json]) -> str:
    if "base" in entry:
        a, b = entry["base"], entry["other"]
        said = []
        for name in entry["differences"]:
            if name == "breached":  # said by the group, and by "breached at"
                continue
            show = when if name in ("target", "completion") else str
            said.append(f"{name} {show(a[name])} -> {show(b[name])}")
        if entry.get("breach") == "appeared":
            said.append(f"breached at {when(b['breach_at'])}")
        elif entry.get("breach") == "vanished":
            said.append(f"no longer breached (was at {when(a['breach_at'])})")
        return f"  case {entry['case_id']}  {entry['name']:<22} " + ", ".join(said)
    breach = f", breached at {when(entry['breach_at'])}" if entry["breached"] else ""
    return (
        f"  case {entry['case_id']}  {entry['name']:<22} {entry['status']}, target {when(entry['target'])}"
        f"{breach}"
    )


def _group(
    title: str, entries: Sequence[dict[str, Json]], line: Callable[[dict[str, Json]], list[str]], show: int
) -> list[str]:
    if not entries:
        return []
    out = ["", f"{title} ({len(entries)})"]
    for entry in entries[:show]:
        out += line(entry)
    if len(entries) > show:
        out.append(f"  ... and {len(entries) - show} more (--show N lists more; --report json lists all)")
    return out


def requests_table(sides: Sequence[Side]) -> list[str]:
    """Requests to AWS and Cases by operation, per side: count (per event)."""
    counts = [s.requests() for s in sides]
    operations = sorted({op for c in counts for op in c["by_operation"]})
    rows = [("requests (per event)", *[f"{s.label}: {s.name}" for s in sides])]
    for op in operations:
        cells = []
        for side, c in zip(sides, counts, strict=True):
            n = c["by_operation"].get(op, 0)
            events = int(side.report.get("events") or 0)
            cells.append(f"{n} ({n / events:.3f})" if events else str(n))
        rows.append((f"  {op}", *cells))
    rows.append(("  total", *[f"{c['total']} ({c['per_event']})" for c in counts]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if any(c["backend"] == "memory" for c in counts):
        lines.append("  (memory backend: AWS is in process, only the requests to Cases are real)")
    return lines


def render(comparison: Comparison, show: int = 10) -> str:
    changes = comparison.changes
    out = [summary_line(comparison)]
    for kind in MESSAGE_KINDS:
        name = KIND_NAMES[kind]
        kc = changes[kind]

        def plain(entry: dict[str, Json], kind: str = kind) -> list[str]:
            return [_message_line(kind, entry)]

        def detailed(entry: dict[str, Json], kind: str = kind) -> list[str]:
            return [_message_line(kind, entry), *_difference_lines(entry)]

        out += _group(f"{name} removed", kc.removed, plain, show)
        out += _group(f"{name} added", kc.added, plain, show)
        out += _group(f"{name} changed", kc.changed, detailed, show)
        if kind == "notifications":
            out += _sla_groups(comparison, show)
    out += ["", *requests_table([comparison.base, comparison.other])]
    return "\n".join(out)


def _sla_groups(comparison: Comparison, show: int) -> list[str]:
    sla = comparison.changes[SLA]
    breaches = comparison.changes.breaches()

    def line(entry: dict[str, Json]) -> list[str]:
        return [_sla_line(entry)]

    listed = {(e["case_id"], e["sla"]) for group in breaches.values() for e in group}
    rest = [e for e in sla.changed if (e["case_id"], e["sla"]) not in listed]
    return [
        *_group("SLA breaches appeared", breaches["appeared"], line, show),
        *_group("SLA breaches vanished", breaches["vanished"], line, show),
        *_group("SLAs added", [e for e in sla.added if not e["breached"]], line, show),
        *_group("SLAs removed", [e for e in sla.removed if not e["breached"]], line, show),
        *_group("SLA outcomes changed", rest, line, show),
    ]


__all__ = ["render", "requests_table", "shown", "summary_line", "when"]
