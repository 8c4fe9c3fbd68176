"""`casewatch invoke FUNCTION -e EVENT.json`: run one function on one event, offline (no Docker).

Like `sam local invoke`, on the local pipeline: moto for AWS services, the Cases emulator for Cases
(loaded with `state/cases.json` beside the event file when there is one), the real handler and adapters.
Prints the outcome and every side effect; `--json` prints them as one object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from casewatch.local.event_files import UsageError, read_events
from casewatch.local.replay import STATE_FILE
from casewatch.settings import load_cdk_context
from casewatch.topology import FUNCTIONS, function_named

NAMES = [spec.name for spec in FUNCTIONS]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "invoke",
        help="run one function on one event, offline (like sam local invoke, no Docker)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("function", metavar="FUNCTION", help=f"one of: {', '.join(NAMES)}")
    parser.add_argument("-e", "--event", required=True, help="the event file (.json)")
    parser.add_argument(
        "--state", help="Cases state for the emulator (default: state/cases.json beside the event)"
    )
    parser.add_argument("--config", default="cdk.json", help="cdk.json with the `casewatch` settings")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        spec = function_named(args.function)
    except KeyError:
        raise UsageError(f"unknown function {args.function!r}: expected one of {', '.join(NAMES)}") from None
    path = Path(args.event)
    if not path.is_file():
        raise UsageError(f"{args.event}: no such file")
    raws = list(read_events(path))
    if len(raws) != 1:
        raise UsageError(f"{args.event}: expected one event, found {len(raws)}")
    raw = raws[0]
    if raw.problem is not None or not isinstance(raw.raw, dict):
        print(f"casewatch: {args.event}: invalid event: {raw.problem or 'not a JSON object'}", file=out)
        return 1
    state_path = Path(args.state) if args.state else path.parent / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    result = invoke_once(load_cdk_context(args.config), spec.name, raw.raw, state)
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str), file=out)
    else:
        print(render(result), file=out)
    return 0 if result["outcome"] in {"handled", "unhandled"} else 1


def invoke_once(
    settings: Any, function: str, event: dict[str, Any], state: dict[str, Any] | None
) -> dict[str, Any]:
    from casewatch.local.pipeline import LocalPipeline

    with LocalPipeline(settings, cases_state=state) as pipeline:
        if isinstance(event.get("time"), str):
            pipeline.advance_to(_time(event["time"]))
        invocation = pipeline.invoke(function, event)
        return pipeline.describe_invocation(invocation)


def _time(value: str) -> Any:
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['function']}: {result['outcome']}"
        + (f" ({result['reason']})" if result.get("reason") else "")
    ]
    lines.append(f"  GetCase calls: {result['getcase_calls']}")
    lines.append(f"  SLA changes: {len(result['sla_changes'])}")
    lines += [
        f"    {c['sla']}: {c['status']} (target {c.get('target_time', '-')})" for c in result["sla_changes"]
    ]
    lines.append(f"  notifications: {len(result['notifications'])}")
    lines += [f"    [{n['rule']}] {n['subject']}" for n in result["notifications"]]
    lines.append(f"  enriched bus events: {len(result['bus_events'])}")
    lines += [f"    {b['detail-type']} case={b.get('caseId')}" for b in result["bus_events"]]
    lines.append(f"  dead letters: {len(result['dead_letters'])}")
    lines += [f"    {d.get('reason')}" for d in result["dead_letters"]]
    return "\n".join(lines)
