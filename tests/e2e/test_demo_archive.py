"""`make demo`'s job: the sample archive through the whole local pipeline, checked against an oracle.

The oracle reads the archive itself (not casewatch's code) and derives what a correct consumer must
report: which notifications each rule owes, which SLAs are breached and which are met. The whole
archive runs on the memory backend (under a second, with sockets off: Cases is the emulator in process);
the moto backend (`make demo`'s default, ~80 ms an event) runs a slice of it through the CLI and must
report the same (the reliability suite holds the two backends to the same results on generated days,
clean and faulty).
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket

from casewatch.settings import load_cdk_context
from casewatch_dev.cli import main
from casewatch_dev.replay import ReplayOptions, ReplayReport, find_state, load_events, run_offline
from tests.builders import ROOT

ARCHIVE = ROOT / "events" / "archive"
SETTINGS = load_cdk_context(ROOT / "cdk.json")
PRIORITY = SETTINGS.field_id("priority")


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class CaseFacts:
    created: datetime | None = None
    priority: Any = None
    comments: list[datetime] = field(default_factory=list)
    statuses: list[tuple[datetime, str]] = field(default_factory=list)
    deleted: datetime | None = None
    cases_slas: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # id -> (created, target)

    def first_status(self, value: str, after: datetime) -> datetime | None:
        return min((t for t, s in self.statuses if s == value and t >= after), default=None)


def archive_events() -> list[dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    for line in (ARCHIVE / "day-2026-11-23.jsonl").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        events[event["id"]] = event
    return list(events.values())


def oracle() -> tuple[Counter[str], dict[tuple[str, str], bool]]:
    """Notifications owed per rule, and {(case, sla key): breached} for the SLAs the archive decides."""
    owed: Counter[str] = Counter()
    cases: dict[str, CaseFacts] = defaultdict(CaseFacts)
    for event in archive_events():
        detail = event["detail"]
        kind = detail["eventType"]
        at = _t(detail["approximateChangeTime"])
        if kind.startswith("CASE."):
            case_id = detail["case"]["caseId"]
            fields = {k: v["value"].get("stringValue") for k, v in detail["case"].get("fields", {}).items()}
            changed = detail.get("changedFieldIds", [])
            facts = cases[case_id]
            if kind == "CASE.CREATED":
                facts.created, facts.priority = at, fields.get(PRIORITY)
                owed["high-priority-created"] += fields.get(PRIORITY) == "high"
            if kind == "CASE.DELETED":
                facts.deleted = at
            if "status" in changed and "status" in fields:
                facts.statuses.append((at, fields["status"]))
                owed["case-closed"] += fields["status"] == "closed"
            owed["case-assigned"] += "assigned_user" in changed
        else:
            item = detail["relatedItem"]
            facts = cases[item["caseId"]]
            if item["relatedItemType"] == "Comment":
                facts.comments.append(at)
                owed["comment-added"] += 1
            if item["relatedItemType"] == "Sla":
                target = _t(item["sla"]["slaConfiguration"]["targetTime"])
                facts.cases_slas[item["relatedItemId"]] = (at, target)
    decided: dict[tuple[str, str], bool] = {}
    for case_id, facts in cases.items():
        assert facts.created is not None
        alive = facts.deleted or datetime.max.replace(tzinfo=facts.created.tzinfo)
        if facts.priority == "high":
            target = facts.created + timedelta(minutes=30)
            met = any(t <= target for t in facts.comments)
            if met or alive > target:
                decided[(case_id, "policy#first-response-high")] = not met
        for item_id, (created, target) in facts.cases_slas.items():
            closed = facts.first_status("closed", created)
            met = closed is not None and closed <= target
            if met or alive > target:
                decided[(case_id, f"cases#{item_id}")] = not met
        paused_or_reopened = (
            any(s != "closed" for _, s in facts.statuses if s != "open")
            or sum(s == "closed" for _, s in facts.statuses) > 1
        )
        if not paused_or_reopened:
            target = facts.created + timedelta(minutes=480)
            closed = facts.first_status("closed", facts.created)
            met = closed is not None and closed <= target
            if met or alive > target:
                decided[(case_id, "policy#resolve-within-8h")] = not met
    return owed, decided


@pytest.fixture(scope="module")
def replayed() -> tuple[ReplayReport, list[Any]]:
    paths = [str(ARCHIVE)]
    state_path = find_state(paths)
    assert state_path is not None
    captured: list[Any] = []
    from casewatch_dev import pipeline as pipeline_module

    original_fill = pipeline_module.LocalPipeline.fill_report

    def fill_and_keep(self: Any, report: Any) -> None:
        original_fill(self, report)
        captured.extend(self.sla_items())

    pipeline_module.LocalPipeline.fill_report = fill_and_keep  # type: ignore[method-assign]
    disable_socket(allow_unix_socket=True)  # the memory backend needs no network, not even 127.0.0.1
    try:
        report = run_offline(
            SETTINGS, load_events(paths), ReplayOptions(backend="memory"), json.loads(state_path.read_text())
        )
    finally:
        enable_socket()
        pipeline_module.LocalPipeline.fill_report = original_fill  # type: ignore[method-assign]
    return report, captured


def test_the_memory_backend_calls_cases_in_process(replayed: tuple[ReplayReport, list[Any]]) -> None:
    report, _ = replayed
    assert report.getcase_calls > 0  # through the real boto3 client, with sockets off (`replayed`)


def test_nothing_is_lost(replayed: tuple[ReplayReport, list[Any]]) -> None:
    report, _ = replayed
    lines = (ARCHIVE / "day-2026-11-23.jsonl").read_text().splitlines()
    assert report.events == len(lines)
    assert report.lost == 0
    assert report.invalid == 2  # the two malformed lines of the archive
    assert report.dead_lettered == report.invalid + report.failed
    assert report.handled + report.unhandled + report.unrouted + report.dead_lettered == report.events
    assert report.duplicates_delivered == len(lines) - 2 - len(archive_events())


def test_the_change_feed_polls_every_minute_of_the_replayed_day(
    replayed: tuple[ReplayReport, list[Any]],
) -> None:
    """cdk.json polls every minute: the archive's day (08:15 to the drain's end, ~17 h of virtual time) takes
    1,034 polls (68 at the old 15 minutes); the README's request counts quote it."""
    report, _ = replayed
    assert SETTINGS.reconcile_every_minutes == 1
    assert report.reconciliations == 1034


def test_every_function_runs_under_its_role_and_nothing_is_denied(
    replayed: tuple[ReplayReport, list[Any]],
) -> None:
    report, _ = replayed
    assert report.iam == "cases"  # the memory backend: Cases is authorized (AWS is in memory)
    assert (report.access_denied, report.access_denials) == (0, [])
    assert report.ok


def test_notifications_are_the_ones_the_archive_implies(replayed: tuple[ReplayReport, list[Any]]) -> None:
    report, slas = replayed
    owed, _ = oracle()
    for rule in ("high-priority-created", "case-closed", "case-assigned", "comment-added"):
        assert report.notifications.get(rule, 0) == owed[rule], rule
    overdue = sum(any(t.status.value == "Overdue" for t in item.state.history) for item in slas)
    assert report.notifications["sla-breached"] == overdue
    assert report.bus_events["Sla Breached"] == overdue


def test_sla_breaches_are_the_ones_the_archive_implies(replayed: tuple[ReplayReport, list[Any]]) -> None:
    _, slas = replayed
    _, decided = oracle()
    by_key = {(item.case_id, item.state.key): item.state for item in slas}
    assert len(decided) > 30  # the archive decides enough SLAs for this to mean something
    assert sum(decided.values()) >= 5
    for key, breached in decided.items():
        state = by_key.get(key)
        assert state is not None, key
        assert (state.status.value in {"Overdue", "NotMet"}) == breached, (key, state.status)


def test_replay_cli_json_report_keys_and_both_backends_agree(tmp_path: Path) -> None:
    lines = (ARCHIVE / "day-2026-11-23.jsonl").read_text().splitlines()[:25]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "cases.json").write_text((ARCHIVE / "state" / "cases.json").read_text())
    (tmp_path / "part.jsonl").write_text("\n".join(lines) + "\n")
    reports = {}
    for backend in ("moto", "memory"):
        out = io.StringIO()
        argv = ["replay", str(tmp_path), "--report", "json", "--no-drain", "--backend", backend]
        assert main(argv, out=out) == 0
        reports[backend] = json.loads(out.getvalue())
    by_backend = {"backend", "wall_seconds", "events_per_second", "iam"}
    assert {k: v for k, v in reports["moto"].items() if k not in by_backend} == {
        k: v for k, v in reports["memory"].items() if k not in by_backend
    }
    assert (reports["moto"]["iam"], reports["memory"]["iam"]) == ("aws+cases", "cases")
    report = reports["moto"]
    for key in (
        "events",
        "handled",
        "unhandled",
        "invalid",
        "dead_lettered",
        "lost",
        "duplicates_suppressed",
        "getcase_calls",
        "sla_transitions",
        "notifications",
        "wall_seconds",
        "events_per_second",
        "iam",
        "access_denied",
    ):
        assert key in report
    assert report["events"] == 25
    assert report["lost"] == 0
    assert report["access_denied"] == 0  # every function under its synthesized role, nothing denied
