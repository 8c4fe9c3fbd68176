"""`casewatch invoke FUNCTION -e EVENT.json`: run one function on one event, offline (no Docker).

Like `sam local invoke`, on the local pipeline: moto for AWS services, the Cases emulator for Cases
(loaded with `state/cases.json` beside the event file when there is one), the real handler and adapters,
the function under its synthesized IAM role (`--no-iam`: without). Prints the outcome and every side
effect, and any request IAM denied; `--json` prints them as one object.

`--runtime-emulator`: the function runs from its synthesized asset and layer in the Lambda Runtime
Interface Emulator with awslambdaric, against moto's server (`casewatch_dev.lambda_runtime`), and the
REPORT figures are printed too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from casewatch.settings import load_cdk_context
from casewatch.topology import FUNCTIONS, SLA_TIMER, function_named
from casewatch_dev.event_files import UsageError, read_events
from casewatch_dev.replay import STATE_FILE

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
        "--state",
        help="Cases state for the emulator (default: state/cases.json beside the event or its folder)",
    )
    parser.add_argument(
        "--prime",
        action="append",
        default=[],
        metavar="EVENT.json",
        help="deliver these events through the pipeline first (e.g. the case event that armed an SLA timer)",
    )
    parser.add_argument("--config", default="cdk.json", help="cdk.json with the `casewatch` settings")
    parser.add_argument(
        "--runtime-emulator",
        action="store_true",
        help="run it in the real Lambda runtime (the Runtime Interface Emulator + awslambdaric; no Docker): "
        "the synthesized handler, memory, timeout, environment, asset and layer; prints the REPORT figures",
    )
    parser.add_argument(
        "--no-iam", action="store_true", help="run the function without its IAM role (the local pipeline's)"
    )
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
        # Not even an event: EventBridge could never deliver it, so no function runs.
        reason = raw.problem or "not a JSON object"
        if args.json:
            print(json.dumps({"function": spec.name, "outcome": "invalid", "reason": reason}), file=out)
        else:
            print(f"casewatch: {args.event}: invalid event: {reason}", file=out)
        return 1
    state_path = Path(args.state) if args.state else _find_state(path)
    state = json.loads(state_path.read_text()) if state_path is not None and state_path.is_file() else None
    primes = [p.raw for name in args.prime for p in read_events(Path(name)) if isinstance(p.raw, dict)]
    settings = load_cdk_context(args.config)
    if args.runtime_emulator:
        from casewatch_dev.lambda_runtime import invoke_in_runtime

        result = invoke_in_runtime(
            settings, Path(args.config), spec.name, raw.raw, state=state, primes=primes
        )
    else:
        result = invoke_once(settings, spec.name, raw.raw, state, primes, iam=not args.no_iam)
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str), file=out)
    else:
        print(render(result), file=out)
    return 0 if result["outcome"] in {"handled", "unhandled"} else 1


def _find_state(event_file: Path) -> Path | None:
    for folder in (event_file.parent, event_file.parent.parent):
        if (folder / STATE_FILE).is_file():
            return folder / STATE_FILE
    return None


def invoke_once(
    settings: Any,
    function: str,
    event: dict[str, Any],
    state: dict[str, Any] | None,
    primes: list[dict[str, Any]] | None = None,
    *,
    iam: bool = True,
) -> dict[str, Any]:
    """Run `function` on `event` in a fresh local pipeline; report what that invocation did."""
    from casewatch_dev.pipeline import LocalPipeline

    with LocalPipeline(settings, cases_state=state, iam=iam) as pipeline:
        for prime in primes or []:
            pipeline.deliver(prime, at=_time(prime["time"]) if isinstance(prime.get("time"), str) else None)
        if primes:
            pipeline.effects()  # what priming did is not this invocation's
            pipeline.transitions.clear()
            pipeline.emulator.reset_counters()
        # The invocation happens at the event's time (a breach timer's: `breach_grace` after its target, when
        # Scheduler fires it). The clock is set, not advanced, so no schedule fires on its own: only this
        # invocation's effects are reported.
        moment = event.get("time") or event.get("targetTime")
        if isinstance(moment, str):
            when = _time(moment)
            if function == SLA_TIMER.name and event.get("kind") == "breach":
                when += settings.breach_grace
            if when > pipeline.clock.now():
                pipeline.clock.set(when)
        if function == SLA_TIMER.name:
            # In the stack the change feed polls every `reconcile_every_minutes`: by the time a timer fires,
            # it has read Cases up to then (a breach is declared once it passed the target).
            pipeline.reconcile()
            pipeline.effects()
            pipeline.transitions.clear()
            pipeline.emulator.reset_counters()
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
    denied = result.get("access_denied", [])
    if denied:
        lines.append(f"  access denied: {len(denied)}")
        lines += [f"    {d}" for d in denied]
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
    if "runtime" in result:
        from casewatch_dev.lambda_runtime import render_runtime

        lines.append(render_runtime(result["runtime"]))
    return "\n".join(lines)
