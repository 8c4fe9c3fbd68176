"""Every function runs under its synthesized IAM role in the local pipeline: take one grant away and the
function that needs it is denied, the invocation says so, and the replay fails with `access_denied`."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from casewatch.settings import load_cdk_context
from casewatch_dev.cli import main
from casewatch_dev.event_files import read_events
from casewatch_dev.iam import FunctionRoles, roles
from casewatch_dev.pipeline import LocalPipeline
from tests.builders import EVENTS, ROOT

SETTINGS = load_cdk_context(ROOT / "cdk.json")
ARCHIVE = ROOT / "events" / "archive"


@pytest.fixture(scope="module")
def synthesized() -> FunctionRoles:
    return roles.synthesized_roles(SETTINGS.domain_id)


def event(name: str) -> dict[str, Any]:
    (raw,) = read_events(EVENTS / name)
    assert isinstance(raw.raw, dict)
    return raw.raw


def arn(kind: str, name: str) -> str:
    return {
        "sqs": f"arn:aws:sqs:us-east-1:123456789012:{name}",
        "dynamodb": f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}",
    }[kind]


def test_the_roles_are_the_synthesized_ones(synthesized: FunctionRoles) -> None:
    r = synthesized.resources
    domain = f"arn:aws:cases:us-east-1:123456789012:domain/{SETTINGS.domain_id}"
    case_changed = set(synthesized["case-changed"].grants())
    assert ("sqs:SendMessage", arn("sqs", r.invalid_queue)) in case_changed
    assert ("dynamodb:PutItem", arn("dynamodb", r.state_table)) in case_changed  # a case's first record
    searches = {"cases:SearchRelatedItems", "cases:SearchCases", "cases:SearchAllRelatedItems"}
    assert not {a for a, _ in case_changed} & searches  # case-changed never searches
    assert ("cases:SearchRelatedItems", domain) in set(synthesized["related-item-created"].grants())
    reconcile = set(synthesized["reconcile"].grants())
    assert {("cases:SearchCases", domain), ("cases:SearchAllRelatedItems", domain)} <= reconcile  # the feed
    timer = set(synthesized["sla-timer"].grants())
    assert not {a for a, _ in timer if a.startswith("cases:")}  # the sla-timer asks Cases nothing
    assert not any(a == "sqs:SendMessage" and r.invalid_queue in res for a, res in timer)


# (function, grant taken away (action, resource or None: everywhere), event, outcome after the denial)
WITHOUT = {
    "case-changed parks nothing without sqs:SendMessage": (
        "case-changed",
        ("sqs:SendMessage", "invalid_queue"),
        "invalid/no-union-member.json",
        "failed",
    ),
    "case-changed publishes nothing without sns:Publish": (
        "case-changed",
        ("sns:Publish", None),
        "case-created.json",
        "parked",  # SNS refused for good: the event is parked with the reason
    ),
    "case-changed arms no timer without iam:PassRole": (
        "case-changed",
        ("iam:PassRole", None),
        "case-created.json",
        "failed",
    ),
    "related-item-created records no case without dynamodb:PutItem": (
        "related-item-created",
        ("dynamodb:PutItem", "state_table"),
        "related-item-comment.json",
        "failed",
    ),
    "related-item-created enriches nothing without cases:GetCase": (
        "related-item-created",
        ("cases:GetCase", None),
        "related-item-comment.json",
        "failed",
    ),
}


@pytest.mark.parametrize("name", list(WITHOUT))
def test_a_function_without_a_grant_is_denied_and_says_so(synthesized: FunctionRoles, name: str) -> None:
    function, (action, resource_of), event_file, outcome = WITHOUT[name]
    r = synthesized.resources
    resource = None
    if resource_of is not None:
        resource = arn("sqs" if "queue" in resource_of else "dynamodb", getattr(r, resource_of))
    cut = synthesized.without(function, action, resource)
    with LocalPipeline(SETTINGS, iam=cut) as pipeline:
        invocation = pipeline.invoke(function, event(event_file))
        assert invocation.outcome == outcome
        assert invocation.denials
        assert {(d.caller, d.action) for d in invocation.denials} == {(function, action)}
        if resource is not None:
            assert {d.resource for d in invocation.denials} == {resource}
        assert pipeline.counts["access_denied"] == 1
        described = pipeline.describe_invocation(invocation)
        assert described["access_denied"] and all(action in line for line in described["access_denied"])
    with LocalPipeline(SETTINGS, iam=synthesized) as pipeline:  # the role as synthesized: nothing denied
        invocation = pipeline.invoke(function, event(event_file))
        assert invocation.denials == ()
        assert invocation.outcome == ("invalid" if "invalid/" in event_file else "handled")


def test_a_replay_fails_when_a_function_lacks_a_grant(
    synthesized: FunctionRoles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`casewatch replay` on a slice of the sample archive: the reconcile function without cases:SearchCases
    cannot read the change feed (every poll denied, retried, then failed); the replay reports it and exits 1."""
    lines = (ARCHIVE / "day-2026-11-23.jsonl").read_text().splitlines()[:60]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "cases.json").write_text((ARCHIVE / "state" / "cases.json").read_text())
    (tmp_path / "part.jsonl").write_text("\n".join(lines) + "\n")

    def replay(backend: str) -> tuple[int, dict[str, Any]]:
        out = io.StringIO()
        code = main(
            ["replay", str(tmp_path), "--report", "json", "--no-drain", "--backend", backend], out=out
        )
        return code, json.loads(out.getvalue())

    code, granted = replay("memory")
    assert code == 0  # the synthesized roles: nothing denied
    cut = synthesized.without("reconcile", "cases:SearchCases")
    monkeypatch.setattr(roles, "synthesized_roles", lambda domain_id, config=None: cut)
    code, report = replay("memory")
    assert code == 1
    # Every poll of the schedule ran (each minute, once), its retries included, none inside another's.
    assert report["reconciliations"] == granted["reconciliations"] > 100
    assert report["lost"] == 0 and report["access_denied"] > 0
    assert report["access_denials"]
    assert all(
        d.startswith("reconcile: cases:SearchCases on arn:aws:cases:") for d in report["access_denials"]
    )
    assert report["lost"] == 0
    out = io.StringIO()
    assert main(["replay", str(tmp_path), "--no-drain", "--backend", "memory"], out=out) == 1
    text = out.getvalue()
    assert re.search(rf"^access denied \(invocations\) +{report['access_denied']}$", text, re.MULTILINE)
    assert "reconcile: cases:SearchCases" in text


def test_invoke_prints_the_denials_and_iam_can_be_turned_off(
    synthesized: FunctionRoles, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = synthesized.without("case-changed", "sns:Publish")
    monkeypatch.setattr(roles, "synthesized_roles", lambda domain_id, config=None: cut)
    out = io.StringIO()
    assert main(["invoke", "case-changed", "-e", str(EVENTS / "case-created.json")], out=out) == 1
    assert "  access denied: 1\n    case-changed: sns:Publish on arn:aws:sns:" in out.getvalue()
    out = io.StringIO()
    argv = ["invoke", "case-changed", "-e", str(EVENTS / "case-created.json"), "--json", "--no-iam"]
    assert main(argv, out=out) == 0
    assert json.loads(out.getvalue())["access_denied"] == []
    with LocalPipeline(SETTINGS, iam=False) as pipeline:
        assert pipeline.iam_mode == "off"
        assert pipeline.invoke("case-changed", event("case-created.json")).outcome == "handled"
