"""`casewatch capture pull`: fetch captured Cases events from CloudWatch Logs into a `.jsonl` file.

An EventBridge archive cannot be read directly. With `capture_events: true` the stack adds a rule that
copies every Cases event on the default bus into a log group (`CaptureLogGroupName` output); this
command pulls a time window of them, de-duplicated by event id and in time order, so that
`casewatch replay FILE.jsonl` can replay real traffic offline.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from casewatch.constants import DETAIL_TYPE
from casewatch_dev.event_files import UsageError

DEFAULT_LOG_GROUP = "/aws/events/casewatch-capture"
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """`2h`, `30m`, `1d` (before now) or an ISO-8601 time."""
    match = _RELATIVE.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{value!r}: expected e.g. 2h, 30m, 1d or an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pull(logs: Any, log_group: str, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], int]:
    """Captured Cases events in [start, end): (events in time order, lines that were not events)."""
    events: dict[str, dict[str, Any]] = {}
    skipped = 0
    paginator = logs.get_paginator("filter_log_events")
    pages = paginator.paginate(
        logGroupName=log_group,
        startTime=int(start.timestamp() * 1000),
        endTime=int(end.timestamp() * 1000),
    )
    for page in pages:
        for record in page.get("events", []):
            try:
                event = json.loads(record.get("message", ""))
            except ValueError:
                skipped += 1
                continue
            if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE or "id" not in event:
                skipped += 1
                continue
            events[str(event["id"])] = event
    ordered = sorted(events.values(), key=lambda e: (str(e.get("time", "")), str(e["id"])))
    return ordered, skipped


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "capture",
        help="pull captured Cases events from CloudWatch Logs (for offline replay)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    pull_parser = actions.add_parser("pull", help="write captured events of a time window to a .jsonl file")
    pull_parser.add_argument("--since", required=True, help="start: 2h, 30m, 1d (before now) or an ISO time")
    pull_parser.add_argument("--until", help="end (default: now): an ISO time")
    pull_parser.add_argument("--log-group", default=DEFAULT_LOG_GROUP, help="the stack's CaptureLogGroupName")
    pull_parser.add_argument("--out", default="captured.jsonl", help="output file (default captured.jsonl)")
    pull_parser.set_defaults(run=run_pull)


def run_pull(args: argparse.Namespace, out: TextIO) -> int:
    from casewatch.adapters import clients

    now = datetime.now(UTC)
    start = parse_since(args.since, now)
    end = parse_since(args.until, now) if args.until else now
    if start >= end:
        raise UsageError("--since must be before --until")
    events, skipped = pull(clients.logs_client(), args.log_group, start, end)
    target = Path(args.out)
    target.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    print(f"wrote {len(events)} event(s) to {target} ({skipped} other log line(s) skipped)", file=out)
    return 0
