"""`casewatch replay --compare`, `casewatch diff` and `--html` on the sample archive (memory backend).

Three settings against cdk.json, each replayed with the same deliveries in a pipeline of its own: an
identical copy (through the CLI, with `--fail-on-change`, `--items` and `--html`), a copy without the
`comment-added` rule, and a copy whose `resolve-within-8h` policy has half the target. What each must
report is derived from the base run's own observation, not from the comparison's code.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from casewatch.settings import load_cdk_context
from casewatch_dev.cli import main
from casewatch_dev.replay import ReplayOptions, arrange, find_state, load_events
from casewatch_dev.replay_diff.changes import KINDS, Comparison, Side
from casewatch_dev.replay_diff.command import EXIT_CHANGED, exit_code, run_side
from casewatch_dev.replay_diff.observed import Observation, parse_time
from casewatch_dev.replay_diff.page import render_page, report_figures
from casewatch_dev.replay_diff.text import render
from tests.builders import ROOT

ARCHIVE = ROOT / "events" / "archive"
RESOLVE = "policy#resolve-within-8h"
SHORTER_BY = timedelta(minutes=240)  # 480 -> 240 minutes


def settings_copy(folder: Path, name: str, change: Any = None) -> Path:
    """cdk.json, with `change(casewatch_settings)` applied, as `folder/name`."""
    document = json.loads((ROOT / "cdk.json").read_text())
    if change is not None:
        change(document["context"]["casewatch"])
    path = folder / name
    path.write_text(json.dumps(document, indent=2))
    return path


def without_comment_rule(settings: dict[str, Any]) -> None:
    settings["notification_rules"] = [
        r for r in settings["notification_rules"] if r["name"] != "comment-added"
    ]


def shorter_resolve_target(settings: dict[str, Any]) -> None:
    (policy,) = [p for p in settings["sla_policies"] if p["name"] == "resolve-within-8h"]
    policy["target_minutes"] -= int(SHORTER_BY.total_seconds() // 60)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compare")


@pytest.fixture(scope="module")
def identical(folder: Path) -> tuple[int, dict[str, Any], str]:
    """The CLI against an identical copy: (exit code, the JSON report, the page)."""
    same = settings_copy(folder, "same.json")
    page = folder / "page.html"
    out = io.StringIO()
    argv = ["replay", str(ARCHIVE), "--backend", "memory", "--compare", str(same), "--fail-on-change"]
    code = main([*argv, "--report", "json", "--items", "--html", str(page)], out=out)
    return code, json.loads(out.getvalue()), page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def base(identical: tuple[int, dict[str, Any], str], folder: Path) -> Side:
    """The base run (cdk.json), as `casewatch diff` reads it from its JSON report."""
    _, report, _ = identical
    path = folder / "base.json"
    path.write_text(json.dumps(report["base"]))
    report_only = {k: v for k, v in report["base"].items() if k not in ("observed", "requests")}
    return Side("base", str(path), report_only, Observation.from_dict(report["base"]["observed"]))


def replayed(folder: Path, name: str, change: Any) -> Side:
    options = ReplayOptions(backend="memory")
    state_path = find_state([str(ARCHIVE)])
    assert state_path is not None
    settings_path = settings_copy(folder, name, change)
    _, side = run_side(
        label="other",
        name=str(settings_path),
        settings=load_cdk_context(settings_path),
        raws=arrange(load_events([str(ARCHIVE)]), options),
        options=options,
        state=json.loads(state_path.read_text()),
    )
    return side


@pytest.fixture(scope="module")
def no_comment(folder: Path) -> Side:
    return replayed(folder, "no-comment.json", without_comment_rule)


@pytest.fixture(scope="module")
def shorter(folder: Path) -> Side:
    return replayed(folder, "shorter.json", shorter_resolve_target)


def test_an_identical_copy_reports_no_change_and_fail_on_change_exits_0(
    identical: tuple[int, dict[str, Any], str],
) -> None:
    code, report, _ = identical
    assert code == 0
    assert report["summary"]["changed"] is False
    assert report["changes"] == {kind: {"added": [], "removed": [], "changed": []} for kind in KINDS}
    timing = {"name", "observed", "wall_seconds", "events_per_second"}
    assert {k: v for k, v in report["base"].items() if k not in timing} == {
        k: v for k, v in report["other"].items() if k not in timing
    }
    assert (
        report["base"]["requests"]["by_operation"]["connectcases.GetCase"] == report["base"]["getcase_calls"]
    )


def test_without_the_comment_added_rule_exactly_its_notifications_are_removed(
    base: Side, no_comment: Side, folder: Path
) -> None:
    comparison = Comparison.of(base, no_comment)
    changes = comparison.changes
    owed = {m.key for m in base.observation.notifications if m.label == "comment-added"}
    removed = changes["notifications"].removed
    assert len(owed) == base.report["notifications"]["comment-added"] > 0  # 34 on the sample archive
    assert {e["key"] for e in removed} == owed
    assert {e["rule"] for e in removed} == {"comment-added"}
    assert all(e["case_id"] and e["subject"].startswith("Comment added") for e in removed)
    assert not changes["notifications"].added and not changes["notifications"].changed
    assert all(not len(changes[kind]) for kind in ("sla", "bus_events", "dead_letters"))
    assert exit_code(comparison, fail_on_change=True) == EXIT_CHANGED
    text = render(comparison, show=5)
    assert text.splitlines()[0].endswith(f"memory backend): notifications {len(owed)} removed")
    assert f"notifications removed ({len(owed)})" in text and f"... and {len(owed) - 5} more" in text
    # `casewatch diff` over the two JSON reports says the same.
    other = folder / "no-comment-report.json"
    other.write_text(json.dumps({**no_comment.report, "observed": no_comment.observation.as_dict()}))
    out = io.StringIO()
    assert (
        main(["diff", base.name, str(other), "--report", "json", "--fail-on-change"], out=out) == EXIT_CHANGED
    )
    assert json.loads(out.getvalue())["changes"] == changes.as_dict()


def expected_new_breaches(base: Side) -> set[str]:
    """Cases whose resolve-within-8h was never breached in the base run but would be with the target
    moved `SHORTER_BY` earlier: a cycle met after its moved target, or still open after it at the end."""
    end = parse_time(base.observation.end)
    found = set()
    for o in base.observation.sla:
        if o.sla != RESOLVE or o.breached:
            continue
        steps = [s for s in base.observation.sla_steps if (s.case_id, s.sla) == (o.case_id, o.sla)]
        late_met = any(
            s.status == "Met" and parse_time(s.at) > parse_time(s.target) - SHORTER_BY  # type: ignore[operator]
            for s in steps
        )
        open_past = o.status == "Active" and end > parse_time(o.target) - SHORTER_BY  # type: ignore[operator]
        if late_met or open_past:
            found.add(o.case_id)
    return found


def test_a_shorter_target_shows_the_breaches_it_adds_per_case(base: Side, shorter: Side) -> None:
    comparison = Comparison.of(base, shorter)
    breaches = comparison.changes.breaches()
    appeared = {e["case_id"] for e in breaches["appeared"]}
    assert appeared == expected_new_breaches(base)
    assert len(appeared) >= 5
    assert not breaches["vanished"]
    assert {e["sla"] for e in breaches["appeared"]} == {RESOLVE}
    assert all(e["other"]["breach_at"] for e in breaches["appeared"])
    # Every resolve-within-8h target moved; nothing else about the SLAs did.
    assert {e["sla"] for e in comparison.changes["sla"].changed} == {RESOLVE}
    text = render(comparison, show=100)
    assert f"SLA breaches {len(appeared)} appeared" in text.splitlines()[0]
    section = text.split(f"SLA breaches appeared ({len(appeared)})", 1)[1].split("\n\n", 1)[0]
    assert {line.split()[1] for line in section.strip().splitlines()} == appeared


class Tables(HTMLParser):
    """The page's `#figures` cells by (key, side), its change rows, and its external resources."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.change_rows: list[tuple[str, str]] = []
        self.external: list[str] = []
        self._row: str | None = None
        self._side: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if (tag in ("script", "img", "iframe") and a.get("src")) or (tag == "link" and a.get("href")):
            self.external.append(str(a.get("src") or a.get("href")))
        if tag == "tr" and a.get("data-key"):
            self._row = a["data-key"]
        if tag == "tr" and a.get("data-change"):
            self.change_rows.append((str(a.get("data-kind")), str(a["data-change"])))
        self._side = a.get("data-side") if tag == "td" else None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._side is not None:
            self.cells[(self._row, self._side)] = data
            self._side = None


def test_the_page_holds_the_figures_of_the_json_report_and_opens_offline(
    identical: tuple[int, dict[str, Any], str], base: Side
) -> None:
    _, report, page = identical
    assert page.startswith("<!DOCTYPE html>")
    tables = Tables()
    tables.feed(page)
    assert tables.external == []  # BokehJS is inlined: no CDN, no network
    assert len(page.encode()) < 3_000_000
    for side in ("base", "other"):
        data = report[side]
        figures = {k: v for k, v in data.items() if k not in ("name", "observed", "requests")}
        wanted = report_figures(figures, data["requests"])
        assert wanted["notifications_total"] == sum(data["notifications"].values())
        for key, value in wanted.items():
            assert tables.cells[(key, side)] == str(value), (key, side)
    assert len(re.findall(r'data-root-id="', page)) == 5  # the five charts
    assert all(o.case_id in page for o in base.observation.sla)  # every (case, SLA) on the timeline


def test_the_page_of_a_comparison_highlights_the_changes(base: Side, no_comment: Side) -> None:
    comparison = Comparison.of(base, no_comment)
    page = render_page([base, no_comment], comparison.changes)
    tables = Tables()
    tables.feed(page)
    removed = base.report["notifications"]["comment-added"]
    assert tables.change_rows == [("notifications", "removed")] * removed
    assert f'id="changes" data-items="{removed}"' in page
    assert tables.cells[("notifications.comment-added", "base")] == str(removed)
    assert ("notifications.comment-added", "other") not in tables.cells or tables.cells[
        ("notifications.comment-added", "other")
    ] in ("", "None")
