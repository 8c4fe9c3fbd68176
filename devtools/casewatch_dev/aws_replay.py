"""`casewatch replay --archive NAME`: a real EventBridge replay from casewatch's archive.

EventBridge delivers replayed events (with `replay-name`) only to the rules listed in the replay's
`FilterArns`: by default the stack's routing rules, its `ReplayFilterArns` output (never rules found by
name: a name prefix also matches other stacks, and the capture rule must not get replays), so other
consumers of the bus never see the replay. The functions treat replayed events per the `replays` setting.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from casewatch_dev.event_files import UsageError
from casewatch_dev.stack_outputs import required, stack_outputs

TERMINAL_STATES = {"COMPLETED", "CANCELLED", "FAILED"}


def build_request(
    events: Any,
    *,
    archive: str,
    start: datetime,
    end: datetime,
    rule_arns: list[str],
    name: str | None = None,
) -> dict[str, Any]:
    """The StartReplay request: from the archive, to its bus, only to `rule_arns`."""
    if not rule_arns:
        raise UsageError("no rules to replay to: the stack's ReplayFilterArns output, or --rule-arn")
    described = events.describe_archive(ArchiveName=archive)
    bus_arn = described["EventSourceArn"]
    return {
        "ReplayName": name or f"casewatch-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        "Description": "casewatch replay",
        "EventSourceArn": described["ArchiveArn"],
        "EventStartTime": start,
        "EventEndTime": end,
        "Destination": {"Arn": bus_arn, "FilterArns": rule_arns},
    }


def replay_rules(stack: str, *, outputs_file: str | None = None, cloudformation: Any = None) -> list[str]:
    """The stack's routing rules, from its `ReplayFilterArns` output."""
    outputs = stack_outputs(stack, outputs_file=outputs_file, cloudformation=cloudformation)
    return [arn for arn in required(outputs, "ReplayFilterArns", stack).split(",") if arn]


def wait_for(
    events: Any, name: str, out: TextIO, poll_seconds: float, sleep: Any = time.sleep
) -> dict[str, Any]:
    """Poll DescribeReplay until the replay ends, showing its progress."""
    while True:
        state: dict[str, Any] = events.describe_replay(ReplayName=name)
        done = state.get("EventLastReplayedTime")
        print(f"  {state['State']:<12} last replayed event: {done or '-'}", file=out)
        if state["State"] in TERMINAL_STATES:
            return state
        sleep(poll_seconds)


def run_aws_replay(args: argparse.Namespace, out: TextIO) -> int:
    from casewatch.adapters import clients

    end = args.end or datetime.now(UTC)
    start = args.start or end - timedelta(hours=1)
    if start >= end:
        raise UsageError("--from must be before --to")
    events = clients.events_client()
    rule_arns = list(args.rule_arn) or replay_rules(args.stack, outputs_file=args.outputs)
    request = build_request(events, archive=args.archive, start=start, end=end, rule_arns=rule_arns)
    if args.dry_run:
        print(json.dumps(request, default=str, indent=2), file=out)
        return 0
    events.start_replay(**request)
    print(
        f"started replay {request['ReplayName']} of {args.archive} ({start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ})",  # noqa: E501
        file=out,
    )
    final = wait_for(events, request["ReplayName"], out, args.poll_seconds)
    print(
        f"replay {final['State'].lower()}"
        + (f": {final['StateReason']}" if final.get("StateReason") else ""),
        file=out,
    )
    return 0 if final["State"] == "COMPLETED" else 1
