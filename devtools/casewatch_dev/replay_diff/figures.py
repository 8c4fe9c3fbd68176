"""The charts of the replay page (Bokeh): activity over virtual time, SLA timelines per case, breaches,
and requests and lag. Each function takes the sides (one run, or base and other) and the changes of a
comparison (None for one run), and returns a Bokeh figure; `page` embeds them."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bokeh.models import ColumnDataSource, HoverTool, Range1d
from bokeh.plotting import figure

from casewatch_dev.replay_diff.changes import SLA, Changes, Side
from casewatch_dev.replay_diff.observed import Json, Message, SlaOutcome, parse_time

SIDE_COLORS: Final = {"base": "#1f77b4", "other": "#ff7f0e"}
SIDE_DASH: Final = {"base": "solid", "other": "dashed"}
CHANGE_COLORS: Final = {"added": "#2ca02c", "removed": "#d62728", "changed": "#e6a700"}
STATUS_COLORS: Final = {
    "Active": "#6baed6",
    "Overdue": "#a50f15",
    "Met": "#74c476",
    "NotMet": "#fb6a4a",
    "Cancelled": "#bdbdbd",
}
BUCKETS: Final = (1, 5, 15, 30, 60, 120, 240, 720, 1440)  # minutes
MAX_BUCKETS: Final = 150
MAX_SLA_ROWS: Final = 120  # rows of the timeline: changed first, then breached, then the others
TOOLS: Final = "pan,xwheel_zoom,box_zoom,reset,save"
WIDTH_MODE: Final = "stretch_width"


def span(sides: Sequence[Side]) -> tuple[datetime, datetime]:
    """The virtual time the runs cover."""
    starts = [t for s in sides if (t := parse_time(s.observation.start))]
    ends = [t for s in sides if (t := parse_time(s.observation.end))]
    start = min(starts + ends, default=None) or datetime.now(UTC)
    end = max(ends, default=start)
    return start, max(end, start + timedelta(minutes=1))


def bucket_minutes(start: datetime, end: datetime) -> int:
    minutes = (end - start).total_seconds() / 60
    return next((b for b in BUCKETS if minutes / b <= MAX_BUCKETS), BUCKETS[-1])


def _bucketed(times: Iterable[datetime], start: datetime, size: int) -> tuple[list[datetime], list[int]]:
    counts = Counter(int((t - start).total_seconds() // (size * 60)) for t in times)
    if not counts:
        return [], []
    slots = range(min(counts), max(counts) + 1)
    return [start + timedelta(minutes=size * n) for n in slots], [counts.get(n, 0) for n in slots]


def _figure(title: str, height: int = 260, **kwargs: Any) -> Any:
    return figure(
        title=title, height=height, sizing_mode=WIDTH_MODE, tools=TOOLS, x_axis_type="datetime", **kwargs
    )


def _message_changes(changes: Changes | None, kind: str) -> dict[str, list[dict[str, Json]]]:
    if changes is None:
        return {}
    kc = changes[kind]
    return {"added": kc.added, "removed": kc.removed, "changed": kc.changed}


def activity(sides: Sequence[Side], changes: Changes | None) -> Any:
    """Deliveries and notifications per bucket of virtual time; changed notifications as markers."""
    start, end = span(sides)
    size = bucket_minutes(start, end)
    fig = _figure(f"Deliveries and notifications per {size} minutes of virtual time", y_axis_label="count")
    deliveries = [t for t in (parse_time(d.at) for d in sides[0].observation.deliveries) if t]
    xs, ys = _bucketed(deliveries, start, size)
    half = timedelta(minutes=size / 2)  # a bar over its bucket, as the steps are
    fig.vbar(
        x=[x + half for x in xs],
        top=ys,
        width=size * 60_000 * 0.9,
        color="#d9d9d9",
        legend_label="deliveries",
    )
    for side in sides:
        times = [t for t in (parse_time(m.at) for m in side.observation.notifications) if t]
        xs, ys = _bucketed(times, start, size)
        fig.step(
            x=xs,
            y=ys,
            mode="after",
            line_width=2,
            color=SIDE_COLORS[side.label],
            line_dash=SIDE_DASH[side.label],
            legend_label=f"notifications ({side.label}: {side.name})",
        )
    for change, entries in _message_changes(changes, "notifications").items():
        timed = [(t, e) for e in entries if (t := parse_time(e.get("at")))]
        if not timed:
            continue
        source = ColumnDataSource(
            {
                "at": [t for t, _ in timed],
                "y": [0] * len(timed),
                "rule": [e["rule"] for _, e in timed],
                "case": [e.get("case_id") or "" for _, e in timed],
                "subject": [e.get("subject") or "" for _, e in timed],
            }
        )
        marker = {"added": "triangle", "removed": "inverted_triangle", "changed": "diamond"}[change]
        glyph = fig.scatter(
            "at",
            "y",
            source=source,
            marker=marker,
            size=11,
            color=CHANGE_COLORS[change],
            legend_label=f"notification {change}",
        )
        fig.add_tools(
            HoverTool(
                renderers=[glyph],
                tooltips=[("rule", "@rule"), ("case", "@case"), ("subject", "@subject"), ("", change)],
            )
        )
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _at_risk(messages: Sequence[Message]) -> dict[tuple[str, str], list[datetime]]:
    """When each (case, origin:SLA name) was signalled at risk (the enriched bus's Sla At Risk events)."""
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for m in messages:
        if m.label != "Sla At Risk" or not m.case_id or not (at := parse_time(m.at)):
            continue
        name = f"{m.safe.get('detail.signal.origin')}:{m.safe.get('detail.signal.slaName')}"
        found[(m.case_id, name)].append(at)
    return found


def _sla_rows(sides: Sequence[Side], changes: Changes | None) -> tuple[list[tuple[str, str]], set[str]]:
    """(case, SLA key) rows in display order, and the keys of the changed ones."""
    outcomes: dict[str, SlaOutcome] = {}
    for side in sides:
        for o in side.observation.sla:
            outcomes.setdefault(o.key, o)
    changed: set[str] = set()
    if changes is not None:
        sla = changes[SLA]
        changed = {f"{e['case_id']}|{e['sla']}" for e in sla.added + sla.removed + sla.changed}
    breached = {o.key for side in sides for o in side.observation.sla if o.breached}
    order = sorted(
        outcomes.values(),
        key=lambda o: (o.key not in changed, o.key not in breached, o.armed_at or "", o.key),
    )
    return [(o.case_id, o.sla) for o in order], changed


def sla_timelines(sides: Sequence[Side], changes: Changes | None) -> tuple[Any, int]:
    """One row per (case, SLA): armed -> completed (or the end of the run), coloured by final status;
    at risk, breached and met marked. Changed rows first, on a yellow band. Returns (figure, rows left
    out)."""
    start, end = span(sides)
    rows, changed = _sla_rows(sides, changes)
    shown = rows[:MAX_SLA_ROWS]
    index = {f"{case}|{sla}": n for n, (case, sla) in enumerate(shown)}
    height = max(220, 22 * len(shown) + 80)
    fig = _figure("SLA timelines per case (armed -> completed; at risk, breached, met)", height=height)
    fig.y_range = Range1d(start=len(shown) - 0.5, end=-0.5)
    names = {o.key: o.name for side in sides for o in side.observation.sla}
    fig.yaxis.ticker = list(range(len(shown)))
    fig.yaxis.major_label_overrides = {
        n: ("* " if f"{c}|{s}" in changed else "") + f"{c[:8]} {names.get(f'{c}|{s}', s)}"
        for n, (c, s) in enumerate(shown)
    }
    fig.yaxis.major_label_text_font_size = "8pt"
    if changed:
        band = [index[k] for k in changed if k in index]
        fig.hbar(y=band, left=start, right=end, height=0.95, color="#fff3bf", legend_label="changed")
    offsets = {"base": -0.17, "other": 0.17} if len(sides) > 1 else {"base": 0.0}
    for side in sides:
        _side_timelines(fig, side=side, index=index, offset=offsets[side.label], end=end, thin=len(sides) > 1)
    fig.legend.location = "bottom_right"
    fig.legend.click_policy = "hide"
    return fig, len(rows) - len(shown)


def _side_timelines(
    fig: Any, *, side: Side, index: Mapping[str, int], offset: float, end: datetime, thin: bool
) -> None:
    bars: dict[str, list[Any]] = defaultdict(list)
    for o in side.observation.sla:
        if o.key not in index or not (armed := parse_time(o.armed_at)):
            continue
        bars["y"].append(index[o.key] + offset)
        bars["left"].append(armed)
        bars["right"].append(parse_time(o.completion) or end)
        bars["color"].append(STATUS_COLORS.get(o.status, "#969696"))
        bars["case"].append(o.case_id)
        bars["sla"].append(o.name)
        bars["status"].append(o.status)
        bars["target"].append(o.target or "")
        bars["side"].append(f"{side.label}: {side.name}")
    source = ColumnDataSource(bars)
    glyph = fig.hbar(
        y="y",
        left="left",
        right="right",
        height=0.3 if thin else 0.6,
        color="color",
        source=source,
        line_color=SIDE_COLORS[side.label] if thin else None,
    )
    fig.add_tools(
        HoverTool(
            renderers=[glyph],
            tooltips=[
                ("case", "@case"),
                ("SLA", "@sla"),
                ("status", "@status"),
                ("target", "@target"),
                ("run", "@side"),
            ],
        )
    )
    marks: dict[str, list[tuple[float, datetime]]] = defaultdict(list)
    names = {o.key: f"{o.origin}:{o.name}" for o in side.observation.sla}
    steps = side.observation.sla_steps
    went_overdue = {f"{s.case_id}|{s.sla}" for s in steps if s.status == "Overdue"}
    for step in steps:
        key = f"{step.case_id}|{step.sla}"
        # A breach is marked when it went Overdue; NotMet only when it never did (completed late at once).
        kind = {"Overdue": "breached", "NotMet": "breached", "Met": "met"}.get(step.status)
        if step.status == "NotMet" and key in went_overdue:
            kind = None
        if kind and key in index and (at := parse_time(step.at)):
            marks[kind].append((index[key] + offset, at))
    risks = _at_risk(side.observation.bus_events)
    for key, n in index.items():
        case = key.split("|", 1)[0]
        for at in risks.get((case, names.get(key, "")), []):
            marks["at risk"].append((n + offset, at))
    style = {"at risk": ("triangle", "#fd8d3c"), "breached": ("x", "#000000"), "met": ("circle", "#238b45")}
    for kind, points in marks.items():
        marker, color = style[kind]
        fig.scatter(
            x=[at for _, at in points],
            y=[y for y, _ in points],
            marker=marker,
            size=9,
            color=color,
            line_width=2,
            legend_label=kind,
        )


def breach_spans(side: Side) -> list[dict[str, Any]]:
    """Each breach of a run from its recorded SLA transitions: it is declared when the SLA goes Overdue
    (or ends NotMet without having gone Overdue) and lasts until the SLA's next transition (Met, NotMet,
    Cancelled, re-armed) or the end of the run."""
    steps: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for step in side.observation.sla_steps:
        steps[(step.case_id, step.sla)].append(step)
    names = {(o.case_id, o.sla): o.name for o in side.observation.sla}
    run_end = parse_time(side.observation.end)
    spans = []
    for key, history in steps.items():
        history.sort(key=lambda s: s.at or "")
        for n, step in enumerate(history):
            late_at_once = step.status == "NotMet" and (n == 0 or history[n - 1].status != "Overdue")
            if step.status != "Overdue" and not late_at_once:
                continue
            target, declared = parse_time(step.target), parse_time(step.at)
            if target is None or declared is None:
                continue
            after = parse_time(history[n + 1].at) if n + 1 < len(history) else None
            finished = declared if late_at_once else (after or run_end or declared)
            spans.append(
                {
                    "case": key[0],
                    "sla": names.get(key, key[1]),
                    "target": target,
                    "late": round((finished - target).total_seconds() / 60, 1),
                    "declared": round((declared - target).total_seconds() / 60, 1),
                    "ended": history[n + 1].status if n + 1 < len(history) else "open at the end",
                }
            )
    return spans


def breaches(sides: Sequence[Side]) -> Any:
    """Each breach: by its target time, how many minutes past the target it lasted (until the SLA was
    met, closed or re-armed, or the end of the run); hover for how long after the target it was declared."""
    fig = _figure("Breaches: minutes past the target until met or closed", y_axis_label="minutes")
    for side in sides:
        spans = breach_spans(side)
        data = {
            name: [s[name] for s in spans] for name in ("case", "sla", "target", "late", "declared", "ended")
        }
        glyph = fig.scatter(
            "target",
            "late",
            source=ColumnDataSource(data),
            size=9,
            color=SIDE_COLORS[side.label],
            marker="circle" if side.label == "base" else "square",
            fill_alpha=0.6,
            legend_label=f"{side.label}: {side.name} ({len(spans)} breaches)",
        )
        fig.add_tools(
            HoverTool(
                renderers=[glyph],
                tooltips=[
                    ("case", "@case"),
                    ("SLA", "@sla"),
                    ("target", "@target{%F %T}"),
                    ("minutes past target", "@late"),
                    ("declared after target (min)", "@declared"),
                    ("then", "@ended"),
                ],
                formatters={"@target": "datetime"},
            )
        )
    fig.legend.location = "top_left"
    return fig


def requests(sides: Sequence[Side]) -> Any:
    """Requests per bucket: each Cases operation, and AWS by service."""
    start, end = span(sides)
    size = bucket_minutes(start, end)
    fig = _figure(f"Requests to Cases and AWS per {size} minutes", y_axis_label="requests")
    series: list[dict[str, list[datetime]]] = []
    for side in sides:
        by_series: dict[str, list[datetime]] = defaultdict(list)
        for r in side.observation.requests:
            if at := parse_time(r.at):
                name = f"Cases {r.operation}" if r.service == "connectcases" else r.service
                by_series[name].append(at)
        series.append(by_series)
    colors = {name: _palette(n) for n, name in enumerate(sorted({name for s in series for name in s}))}
    for side, by_series in zip(sides, series, strict=True):
        for name, times in sorted(by_series.items()):
            xs, ys = _bucketed(times, start, size)
            fig.step(
                x=xs,
                y=ys,
                mode="after",
                line_width=2,
                line_dash=SIDE_DASH[side.label],
                color=colors[name],
                legend_label=f"{name} ({side.label})",
            )
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def lag(sides: Sequence[Side]) -> Any:
    """Each delivery's lag: virtual seconds from the event's time until the pipeline was done with it
    (retries after errors, botocore's back-off after throttling, late deliveries)."""
    fig = _figure("Delivery lag (virtual seconds until handled)", y_axis_label="seconds")
    for side in sides:
        data: dict[str, list[Any]] = defaultdict(list)
        for d in side.observation.deliveries:
            if (at := parse_time(d.at)) and (seconds := d.lag_seconds) is not None:
                data["at"].append(at)
                data["lag"].append(seconds)
                data["type"].append(d.event_type or "")
                data["outcome"].append(d.outcome)
        glyph = fig.scatter(
            "at",
            "lag",
            source=ColumnDataSource(data),
            size=5,
            color=SIDE_COLORS[side.label],
            fill_alpha=0.5,
            legend_label=f"{side.label}: {side.name}",
        )
        fig.add_tools(
            HoverTool(
                renderers=[glyph], tooltips=[("event", "@type"), ("outcome", "@outcome"), ("lag (s)", "@lag")]
            )
        )
    fig.legend.location = "top_left"
    return fig


def _palette(n: int) -> str:
    colors = ("#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#e377c2", "#2ca02c")
    return colors[n % len(colors)]


__all__ = ["activity", "breach_spans", "breaches", "lag", "requests", "sla_timelines", "span"]
