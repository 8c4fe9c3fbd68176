"""`casewatch replay --archive`: StartReplay against moto's EventBridge (archives and replays exist there)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from casewatch.topology import EVENT_ROUTED, archive_pattern, domain_arn
from casewatch_dev.aws_replay import build_request, wait_for
from casewatch_dev.cli import main
from casewatch_dev.event_files import UsageError
from tests.builders import REGION, load_event

DOMAIN_ARN = domain_arn(
    "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c", partition="aws", region=REGION, account="123456789012"
)


@pytest.fixture
def events(moto: None) -> Any:
    client = boto3.client("events", region_name=REGION)
    bus_arn = client.describe_event_bus(Name="default")["Arn"]
    client.create_archive(
        ArchiveName="casewatch-archive",
        EventSourceArn=bus_arn,
        EventPattern=json.dumps(archive_pattern(DOMAIN_ARN)),
    )
    for spec in EVENT_ROUTED:
        client.put_rule(
            Name=f"Casewatch-Routing{spec.construct_id}",
            EventPattern=json.dumps(spec.event_pattern(DOMAIN_ARN)),
        )
    client.put_rule(Name="Other-team-rule", EventPattern=json.dumps({"source": ["aws.cases"]}))
    return client


def routing_rules(events: Any) -> list[str]:
    return sorted(r["Arn"] for r in events.list_rules()["Rules"] if ":rule/Casewatch-Routing" in r["Arn"])


@pytest.fixture
def outputs(events: Any, tmp_path: Path) -> Path:
    """The outputs file `make deploy` writes: the stack's ReplayFilterArns are its routing rules."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"Casewatch": {"ReplayFilterArns": ",".join(routing_rules(events))}}))
    return path


def test_request_targets_only_the_given_rules(events: Any) -> None:
    start, end = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    rules = routing_rules(events)
    assert len(rules) == len(EVENT_ROUTED)
    request = build_request(
        events, archive="casewatch-archive", start=start, end=end, rule_arns=rules, name="r1"
    )
    assert request["Destination"]["FilterArns"] == rules
    assert request["ReplayName"] == "r1"
    assert request["EventSourceArn"].endswith(":archive/casewatch-archive")
    assert request["Destination"]["Arn"].endswith(":event-bus/default")
    assert (request["EventStartTime"], request["EventEndTime"]) == (start, end)
    with pytest.raises(UsageError, match="ReplayFilterArns"):
        build_request(events, archive="casewatch-archive", start=start, end=end, rule_arns=[])


def test_dry_run_prints_the_request_and_starts_nothing(events: Any, outputs: Path) -> None:
    out = io.StringIO()
    code = main(
        [
            "replay",
            "--archive",
            "casewatch-archive",
            "--from",
            "2026-11-23T00:00:00Z",
            "--to",
            "2026-11-24T00:00:00Z",
            "--outputs",
            str(outputs),
            "--dry-run",
        ],
        out=out,
    )
    assert code == 0
    printed = json.loads(out.getvalue())
    assert printed["Destination"]["FilterArns"] == routing_rules(events)  # never the other team's rule
    assert events.list_replays()["Replays"] == []


def test_the_stack_outputs_must_name_the_rules(events: Any, tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text(json.dumps({"Casewatch": {"TopicArn": "arn:t"}}))
    argv = ["replay", "--archive", "casewatch-archive", "--dry-run", "--outputs"]
    assert main([*argv, str(tmp_path / "outputs.json")], out=io.StringIO()) == 2
    assert main([*argv, str(tmp_path / "missing.json")], out=io.StringIO()) == 2


def test_replay_runs_to_completion(events: Any, outputs: Path) -> None:
    sample = load_event("case-created")
    events.put_events(
        Entries=[
            {
                "Source": sample["source"],
                "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]),
                "Resources": sample["resources"],
            }
        ]
    )
    out = io.StringIO()
    code = main(
        [
            "replay",
            "--archive",
            "casewatch-archive",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--poll-seconds",
            "0",
            "--outputs",
            str(outputs),
        ],
        out=out,
    )
    assert code == 0, out.getvalue()
    assert "replay completed" in out.getvalue()
    (replay,) = events.list_replays()["Replays"]
    assert replay["State"] == "COMPLETED"


def test_wait_for_polls_until_a_terminal_state() -> None:
    states = iter(["STARTING", "RUNNING", "FAILED"])

    class Events:
        def describe_replay(self, ReplayName: str) -> dict[str, Any]:
            return {"State": next(states), "StateReason": "boom"}

    slept: list[float] = []
    final = wait_for(Events(), "r", io.StringIO(), 2.0, sleep=slept.append)
    assert final["State"] == "FAILED"
    assert slept == [2.0, 2.0]


def test_usage_errors(events: Any) -> None:
    assert main(["replay"], out=io.StringIO()) == 2
    assert (
        main(
            [
                "replay",
                "--archive",
                "casewatch-archive",
                "--from",
                "2026-11-24T00:00:00Z",
                "--to",
                "2026-11-23T00:00:00Z",
            ],
            out=io.StringIO(),
        )
        == 2
    )
