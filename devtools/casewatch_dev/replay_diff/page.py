"""The replay page (`--html PAGE.html`): one self-contained HTML file that opens offline.

The figures of each run's JSON report as a table (`<tr data-key="notifications.comment-added">`, one
`<td data-side=...>` per run), with a comparison the changes as tables (rows `data-kind`,
`data-change`: added / removed / changed), and the charts of `figures`, drawn by Bokeh with its
JavaScript inlined (BokehJS core only, about 1.3 MB): no CDN, no network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Final

from casewatch_dev.replay_diff import figures
from casewatch_dev.replay_diff.changes import KINDS, SLA, Changes, Comparison, Side
from casewatch_dev.replay_diff.observed import LABELS, Json
from casewatch_dev.replay_diff.text import KIND_NAMES, shown, summary_line, when

MAX_CHANGE_ROWS: Final = 300  # per list; the JSON report has them all
OPEN_ROWS: Final = 40  # a kind's table starts folded beyond this many rows
_STYLE: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; }
.summary { font-size: 1.05em; padding: .6em .8em; background: #f4f6f8; border-left: 4px solid #1f77b4; }
.summary.changed { border-left-color: #e6a700; background: #fff8e1; }
table { border-collapse: collapse; margin: .5em 0; font-size: 12.5px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: #fff3bf; }
tr.added td:first-child { border-left: 4px solid #2ca02c; }
tr.removed td:first-child { border-left: 4px solid #d62728; }
tr.changed td:first-child { border-left: 4px solid #e6a700; }
.note { color: #666; font-size: .92em; } code { font-size: .95em; }
details { margin: .4em 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def report_figures(report: dict[str, Any], requests: dict[str, Any]) -> dict[str, Json]:
    """A run's JSON report as `key` (or `key.name` inside a mapping) -> value, requests included."""
    out: dict[str, Json] = {}
    for key, value in sorted(report.items()):
        if isinstance(value, dict):
            out.update({f"{key}.{name}": v for name, v in sorted(value.items())})
        elif not isinstance(value, list):
            out[key] = value
    out["requests.total"] = requests["total"]
    out["requests.per_event"] = requests["per_event"]
    out.update({f"requests.{op}": n for op, n in requests["by_operation"].items()})
    return out


def _figures_table(sides: Sequence[Side]) -> str:
    columns = [report_figures(s.report, s.requests()) for s in sides]
    keys = sorted({k for c in columns for k in c}, key=lambda k: (k.count("."), k))
    head = "".join(f"<th>{_e(s.label)}: {_e(s.name)}</th>" for s in sides)
    rows = []
    for key in keys:
        values = [c.get(key) for c in columns]
        differs = len(sides) > 1 and len({repr(v) for v in values}) > 1
        cells = "".join(
            f'<td class="n" data-side="{_e(s.label)}">{_e(v)}</td>'
            for s, v in zip(sides, values, strict=True)
        )
        rows.append(
            f'<tr data-key="{_e(key)}"{" class=differs" if differs else ""}><th>{_e(key)}</th>{cells}</tr>'
        )
    return f'<table id="figures"><tr><th>figure</th>{head}</tr>{"".join(rows)}</table>'


def _differences(entry: dict[str, Json]) -> str:
    said = []
    for d in entry.get("differences", []):
        if isinstance(d, str):  # an SLA outcome's name
            said.append(f"{_e(d)}: {_e(entry['base'][d])} &rarr; {_e(entry['other'][d])}")
        elif d.get("withheld"):
            said.append(f"{_e(d['path'])}: differs (case data)")
        else:
            said.append(f"{_e(d['path'])}: {_e(shown(d, 'base'))} &rarr; {_e(shown(d, 'other'))}")
    return "<br>".join(said)


def _message_rows(kind: str, change: str, entries: Sequence[dict[str, Json]]) -> list[str]:
    return [
        f'<tr class="{change}" data-kind="{kind}" data-change="{change}"><td>{change}</td>'
        f"<td>{_e(e[LABELS[kind]])}</td><td>{_e(e.get('case_id'))}</td><td>{_e(e['source'])}</td>"
        f"<td>{_e(when(e.get('at')))}</td><td>{_e(e.get('subject'))}</td><td>{_differences(e)}</td></tr>"
        for e in entries[:MAX_CHANGE_ROWS]
    ]


def _sla_rows(change: str, entries: Sequence[dict[str, Json]]) -> list[str]:
    rows = []
    for e in entries[:MAX_CHANGE_ROWS]:
        outcome = e.get("other", e)
        breach = e.get("breach") or ("breached" if e.get("breached") else "")
        rows.append(
            f'<tr class="{change}" data-kind="sla" data-change="{change}"><td>{change}</td>'
            f"<td>{_e(e['case_id'])}</td><td>{_e(e['name'])}</td><td>{_e(outcome['status'])}</td>"
            f"<td>{_e(when(outcome['target']))}</td><td>{_e(breach)}</td><td>{_differences(e)}</td></tr>"
        )
    return rows


def _changes_section(changes: Changes) -> str:
    parts = []
    for kind in KINDS:
        kc = changes[kind]
        if not len(kc):
            parts.append(f"<p>{_e(KIND_NAMES[kind])}: no change.</p>")
            continue
        if kind == SLA:
            head = _head("", "case", "SLA", "status", "target", "breach", "differences")
            rows = [
                r
                for change in ("added", "removed", "changed")
                for r in _sla_rows(change, getattr(kc, change))
            ]
        else:
            head = _head("", LABELS[kind], "case", "source", "at", "subject", "differences")
            rows = [
                r
                for change in ("removed", "added", "changed")
                for r in _message_rows(kind, change, getattr(kc, change))
            ]
        counts = ", ".join(f"{n} {part}" for part, n in kc.counts().items() if n)
        more = sum(max(0, n - MAX_CHANGE_ROWS) for n in kc.counts().values())
        note = f'<p class="note">{more} more rows in the JSON report.</p>' if more else ""
        opened = " open" if len(kc) <= OPEN_ROWS else ""
        parts.append(
            f"<details{opened}><summary>{_e(KIND_NAMES[kind])}: {_e(counts)}</summary>"
            f'<table data-kind="{kind}"><tr>{head}</tr>{"".join(rows)}</table>{note}</details>'
        )
    items = changes.summary()["items"]
    return f'<section id="changes" data-items="{items}"><h2>Changes</h2>{"".join(parts)}</section>'


def _head(*names: str) -> str:
    return "".join(f"<th>{_e(name)}</th>" for name in names)


def render_page(sides: Sequence[Side], changes: Changes | None) -> str:
    """The page for one run (`sides` of one) or a comparison (base, other and their `changes`)."""
    from bokeh.embed import components
    from bokeh.resources import Resources

    timelines, left_out = figures.sla_timelines(sides, changes)
    charts = {
        "activity": figures.activity(sides, changes),
        "sla": timelines,
        "breaches": figures.breaches(sides),
        "requests": figures.requests(sides),
        "lag": figures.lag(sides),
    }
    script, divs = components(charts)
    bokeh_js = Resources(mode="inline", components=["bokeh"]).render_js()
    start, end = figures.span(sides)
    if len(sides) > 1:
        assert changes is not None
        summary = summary_line(Comparison(sides[0], sides[1], changes))
        changed = " changed" if not changes.empty else ""
    else:
        side = sides[0]
        summary = (
            f"{side.name}: {side.report.get('events')} deliveries, "
            f"{side.report.get('notifications_total', 0)} notifications, "
            f"{side.report.get('sla_breaches', 0)} SLA breaches ({side.observation.backend} backend)"
        )
        changed = ""
    left_note = ""
    if left_out:
        left_note = (
            f'<p class="note">{left_out} more (case, SLA) rows not drawn (changed, breached first).</p>'
        )
    bars_note = "Upper bar: base; lower bar: other. Rows marked * changed." if len(sides) > 1 else ""
    body = f"""
<h1>casewatch replay</h1>
<p class="note">Virtual time {_e(when(start.isoformat()))} to {_e(when(end.isoformat()))} (UTC).
Case field values are never shown unless the run's settings have <code>log_case_data: true</code>.</p>
<p class="summary{changed}">{_e(summary)}</p>
<h2>Deliveries and notifications</h2>
<p class="note">Notifications are placed at the time they are about (the event's change, the SLA signal).</p>
{divs["activity"]}
<h2>SLAs per case</h2>
<p class="note">Bars run from armed to completed (or the end of the run), coloured by final status:
<span style="color:#74c476">Met</span>, <span style="color:#fb6a4a">NotMet</span>,
<span style="color:#a50f15">Overdue</span>, <span style="color:#6baed6">Active</span>,
<span style="color:#bdbdbd">Cancelled</span>. {bars_note}</p>
{divs["sla"]}{left_note}
<h2>Breaches and their delay</h2>
{divs["breaches"]}
<h2>Requests and lag</h2>
{divs["requests"]}
{divs["lag"]}
{_changes_section(changes) if changes is not None else ""}
<h2>Figures</h2>
<p class="note">The figures of each run's JSON report (<code>--report json</code>);
rows that differ between the runs are highlighted.</p>
{_figures_table(sides)}
"""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>casewatch replay</title>
<style>{_STYLE}</style>
{bokeh_js}
</head>
<body>
{body}
{script}
</body>
</html>
"""


__all__ = ["render_page", "report_figures"]
