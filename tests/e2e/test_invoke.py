"""`casewatch invoke FUNCTION -e EVENT`: every function on every sample event, offline."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from casewatch_dev.cli import main
from tests.builders import EVENTS, INVALID_FILES, SAMPLE_FILES

SCHEDULER_FILES = sorted((EVENTS / "scheduler").glob("*.json"))
KEYS = {
    "function",
    "outcome",
    "getcase_calls",
    "access_denied",
    "sla_changes",
    "notifications",
    "bus_events",
    "dead_letters",
}


def expected(function: str, path: Path) -> str:
    if path.parent.name == "scheduler":
        return {
            "sla-timer": "handled" if "sla-timer" in path.stem else "invalid",
            "reconcile": "handled",
        }.get(function, "invalid")
    if function == "reconcile":
        return "handled"  # it runs on its schedule whatever the event says
    if function == "sla-timer":
        return "invalid"  # a Cases event is not a timer payload
    if "unhandled" in path.stem:
        return "unhandled"
    related = path.stem.startswith("related-item")
    return "handled" if related == (function == "related-item-created") else "unhandled"


def invoke(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["invoke", *argv, "--json"], out=out)
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("function", ["case-changed", "related-item-created", "sla-timer", "reconcile"])
def test_every_function_on_every_sample_event(function: str) -> None:
    for path in [*SAMPLE_FILES, *SCHEDULER_FILES]:
        code, result = invoke(function, "-e", str(path))
        want = expected(function, path)
        assert set(result) >= KEYS, path
        assert (result["function"], result["outcome"]) == (function, want), path.name
        assert code == (1 if want == "invalid" else 0), path.name
        assert result["access_denied"] == [], path.name  # under its synthesized role: nothing denied
        if want == "invalid":
            assert result["reason"], path.name


def test_case_created_effects() -> None:
    code, result = invoke("case-changed", "-e", str(EVENTS / "case-created.json"))
    assert code == 0
    assert result["getcase_calls"] == 0  # the event carries every field the sinks need
    assert {c["sla"] for c in result["sla_changes"]} == {
        "policy#first-response-high",
        "policy#resolve-within-8h",
    }
    assert [n["rule"] for n in result["notifications"]] == ["high-priority-created"]
    assert result["notifications"][0]["attributes"]["priority"] == "high"
    assert [b["detail-type"] for b in result["bus_events"]] == ["Case Enriched"]


def test_a_related_item_without_a_snapshot_needs_one_getcase() -> None:
    code, result = invoke("related-item-created", "-e", str(EVENTS / "related-item-comment.json"))
    assert code == 0
    assert result["getcase_calls"] == 1
    assert [n["rule"] for n in result["notifications"]] == ["comment-added"]


def test_a_primed_timer_breaches() -> None:
    code, result = invoke(
        "sla-timer",
        "-e",
        str(EVENTS / "scheduler" / "sla-timer-breach.json"),
        "--prime",
        str(EVENTS / "case-created.json"),
    )
    assert code == 0
    assert [(c["sla"], c["status"]) for c in result["sla_changes"]] == [
        ("policy#first-response-high", "Overdue")
    ]
    assert [n["rule"] for n in result["notifications"]] == ["sla-breached"]


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_events_exit_1_with_their_reason(path: Path) -> None:
    code, result = invoke("case-changed", "-e", str(path))
    assert code == 1
    assert result["outcome"] == "invalid"
    assert result["reason"]
    if path.stem not in {"not-json", "not-an-object"}:  # those never reach a function
        assert [d["reason"] for d in result["dead_letters"]] == [result["reason"]]


def test_an_event_of_another_domain_is_unhandled_with_the_reason(tmp_path: Path) -> None:
    sample = (EVENTS / "case-created.json").read_text()
    domain = json.loads(sample)["resources"][0].rsplit("/", 1)[1]
    other = tmp_path / "other-domain.json"
    other.write_text(sample.replace(domain, "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"))
    code, result = invoke("case-changed", "-e", str(other))
    assert code == 0
    assert (result["outcome"], result.get("reason")) == (
        "unhandled",
        "event of another Cases domain than the configured domain_id",
    )
    assert result["getcase_calls"] == 0
    assert result["sla_changes"] == result["notifications"] == result["bus_events"] == []
    assert result["dead_letters"] == []


def test_unknown_function_and_missing_file_exit_2() -> None:
    assert main(["invoke", "nope", "-e", str(EVENTS / "case-created.json")], out=io.StringIO()) == 2
    assert main(["invoke", "case-changed", "-e", "no/such.json"], out=io.StringIO()) == 2
