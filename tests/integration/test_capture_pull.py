"""`casewatch capture pull` against moto's CloudWatch Logs."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from casewatch_dev.capture import DEFAULT_LOG_GROUP, parse_since
from casewatch_dev.cli import main
from casewatch_dev.event_files import UsageError
from tests.builders import REGION, load_event


@pytest.fixture
def logs(moto: None) -> Any:
    client = boto3.client("logs", region_name=REGION)
    client.create_log_group(logGroupName=DEFAULT_LOG_GROUP)
    client.create_log_stream(logGroupName=DEFAULT_LOG_GROUP, logStreamName="s")
    return client


def test_pull_writes_cases_events_in_order_deduplicated(logs: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    created, updated = load_event("case-created"), load_event("case-updated")
    created["time"], updated["time"] = (
        (now - timedelta(minutes=20)).isoformat(),
        (now - timedelta(minutes=10)).isoformat(),
    )
    stamp = int((now - timedelta(minutes=5)).timestamp() * 1000)
    messages = [
        json.dumps(updated),
        json.dumps(created),
        json.dumps(updated),
        "not json",
        json.dumps({"a": 1}),
    ]
    logs.put_log_events(
        logGroupName=DEFAULT_LOG_GROUP,
        logStreamName="s",
        logEvents=[{"timestamp": stamp + n, "message": m} for n, m in enumerate(messages)],
    )
    out = io.StringIO()
    target = tmp_path / "captured.jsonl"
    assert main(["capture", "pull", "--since", "1h", "--out", str(target)], out=out) == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["id"] for e in lines] == [created["id"], updated["id"]]
    assert "2 other log line(s) skipped" in out.getvalue()
    assert main(["validate", str(target)], out=io.StringIO()) == 0


def test_since_forms() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-23T09:00:00Z", now) == datetime(2026, 11, 23, 9, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_since("yesterday", now)
