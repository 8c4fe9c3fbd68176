"""`casewatch replay`: replay archived events through the whole local pipeline, or in AWS.

Offline (`casewatch replay PATH`): events from `.jsonl`/`.json` files or a directory (an export of a real
archive, see `casewatch capture pull`, or `events/archive/`) go through the local pipeline in delivery
order on a virtual clock; SLA timers fire as the clock passes them and reconciliation runs on its
schedule. Every function runs under its synthesized IAM role (`--no-iam`: without). A report follows.
Exit 1 if any event was lost (neither handled, deliberately ignored (unhandled eventType, no matching rule)
nor dead-lettered with its reason) or any request was denied by IAM (`access_denied`).

`--backend memory` runs the same code on in-memory AWS services (hundreds of events per second instead
of ~10; see `casewatch_dev.memory_backend`); `--faults duplicates=0.2,reorder=0.1,throttle=0.05,
malformed=0.01,drop=0.005` injects the faults AWS really produces (see `casewatch_dev.faults`).

`--compare OTHER.json` replays the same deliveries again, in a pipeline of its own, with OTHER.json's
settings and reports what differs item by item (`--fail-on-change`: exit 3); `--html PAGE.html` draws
the run (or the comparison) on one page; `--report json --items` adds every observed item, for
`casewatch diff A.json B.json` (see `casewatch_dev.replay_diff`, and README.md "Test a change with replay").

In AWS (`casewatch replay --archive NAME --from T --to T`): StartReplay from the stack's archive to the
rules casewatch owns (FilterArns), then DescribeReplay until it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from casewatch.settings import load_cdk_context
from casewatch_dev.event_files import RawEvent, UsageError, expand_paths, read_events
from casewatch_dev.faults import CASES_READS, Faults, arrange_deliveries, parse_faults
from casewatch_dev.replay_diff.command import add_replay_flags, check_replay_args, observing, run_observed

if TYPE_CHECKING:
    from casewatch_dev.replay_diff.recording import Recorder

STATE_FILE = Path("state") / "cases.json"
_IAM_MODES = {
    "aws+cases": "enforced: AWS (moto) and Cases, each function under its role",
    "cases": "enforced on Cases (the memory backend has no AWS to authorize)",
    "off": "off (--no-iam)",
}
_DENIALS_SHOWN = 10


@dataclass
class ReplayOptions:
    shuffle: bool = False
    duplicates: float = 0.0
    seed: int = 0
    start: datetime | None = None
    end: datetime | None = None
    speed: float | None = None  # None: instant; else virtual seconds per wall second
    drain: bool = True
    progress: bool = False
    backend: str = "moto"  # moto | memory (see casewatch_dev.pipeline)
    iam: bool = True  # every function under its synthesized role
    faults: Faults = field(default_factory=Faults)
    injected: dict[str, int] = field(default_factory=dict)  # set by `arrange`: delivery faults applied


@dataclass
class ReplayReport:
    events: int = 0
    routed: int = 0
    handled: int = 0
    unhandled: int = 0
    unrouted: int = 0
    invalid: int = 0
    parked: int = 0
    dead_lettered: int = 0
    failed: int = 0
    lost: int = 0
    duplicates_delivered: int = 0
    duplicates_suppressed: int = 0
    getcase_calls: int = 0
    sla_transitions: int = 0
    sla_breaches: int = 0
    timers_fired: int = 0
    reconciliations: int = 0
    notifications: dict[str, int] = field(default_factory=dict)
    bus_events: dict[str, int] = field(default_factory=dict)
    sla_status: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    backend: str = "moto"
    faults: dict[str, Any] = field(default_factory=dict)  # what was injected (counts), when asked
    iam: str = "off"  # what IAM was enforced on: aws+cases (moto backend), cases (memory backend), off
    access_denied: int = 0  # invocations with a request IAM denied (AWS or Cases)
    access_denials: list[str] = field(default_factory=list)  # distinct denials: function, action, resource

    @property
    def ok(self) -> bool:
        """Nothing lost and nothing denied: the exit code is 0."""
        return not self.lost and not self.access_denied

    @property
    def events_per_second(self) -> float:
        return round(self.events / self.wall_seconds, 1) if self.wall_seconds else 0.0

    @property
    def getcase_per_event(self) -> float:
        return round(self.getcase_calls / self.events, 3) if self.events else 0.0

    def tally(self, outcomes: set[str]) -> None:
        """Count one routed delivery by the outcomes of the functions it reached."""
        self.routed += 1
        if "failed" in outcomes:
            self.failed += 1
            self.dead_lettered += 1
        elif "invalid" in outcomes:
            self.invalid += 1
            self.dead_lettered += 1
        elif "parked" in outcomes:  # a delivery failed for good: parked with its reason
            self.parked += 1
            self.dead_lettered += 1
        elif "handled" in outcomes:
            self.handled += 1
        elif "unhandled" in outcomes:
            self.unhandled += 1
        else:
            self.lost += 1

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["notifications_total"] = sum(self.notifications.values())
        data["events_per_second"] = self.events_per_second
        data["getcase_per_event"] = self.getcase_per_event
        data["wall_seconds"] = round(self.wall_seconds, 3)
        return data

    def render(self) -> str:
        rows = [
            ("events read", self.events),
            ("  routed to a function", self.routed),
            ("  handled", self.handled),
            ("  unhandled (eventType not handled)", self.unhandled),
            ("  matched no rule", self.unrouted),
            ("  invalid", self.invalid),
            ("  parked (a delivery failed for good)", self.parked),
            ("  dead-lettered (with reason)", self.dead_lettered),
            ("  lost", self.lost),
            ("IAM", _IAM_MODES.get(self.iam, self.iam)),
            ("access denied (invocations)", self.access_denied),
            *[("  ", denial) for denial in self.access_denials[:_DENIALS_SHOWN]],
            *(
                [("  ", f"... and {len(self.access_denials) - _DENIALS_SHOWN} more")]
                if len(self.access_denials) > _DENIALS_SHOWN
                else []
            ),
            ("duplicate deliveries", self.duplicates_delivered),
            ("duplicate notifications suppressed", self.duplicates_suppressed),
            ("GetCase calls", f"{self.getcase_calls} ({self.getcase_per_event} per event)"),
            ("SLA transitions", self.sla_transitions),
            ("SLA breaches", self.sla_breaches),
            ("SLA timers fired", self.timers_fired),
            ("reconciliation runs", self.reconciliations),
            ("notifications", sum(self.notifications.values())),
            *[(f"  {rule}", n) for rule, n in sorted(self.notifications.items())],
            ("enriched bus events", sum(self.bus_events.values())),
            *[(f"  {kind}", n) for kind, n in sorted(self.bus_events.items())],
            (
                "SLAs by final status",
                ", ".join(f"{k} {v}" for k, v in sorted(self.sla_status.items())) or "-",
            ),
            ("wall time", f"{self.wall_seconds:.2f} s ({self.events_per_second} events/s, {self.backend})"),
        ]
        if self.faults:
            rows.insert(
                -1,
                ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "-"),
            )
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _event_time(raw: RawEvent) -> datetime | None:
    if not isinstance(raw.raw, dict):
        return None
    value = raw.raw.get("time")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_events(paths: list[str]) -> list[RawEvent]:
    return [raw for path in expand_paths(paths) for raw in read_events(path)]


def find_state(paths: list[str]) -> Path | None:
    """The Cases state that goes with an archive: `state/cases.json` beside (or in) the first path."""
    first = Path(paths[0])
    base = first if first.is_dir() else first.parent
    candidate = base / STATE_FILE
    return candidate if candidate.is_file() else None


def arrange(raws: list[RawEvent], options: ReplayOptions) -> list[RawEvent]:
    """Filter by time, then the chaos options: duplicates and shuffling (seeded)."""
    rng = random.Random(options.seed)  # noqa: S311 - reproducible chaos, not security
    chosen = []
    for raw in raws:
        at = _event_time(raw)
        if at is not None and ((options.start and at < options.start) or (options.end and at >= options.end)):
            continue
        chosen.append(raw)
    if options.duplicates > 0:
        doubled: list[RawEvent] = []
        for raw in chosen:
            doubled.append(raw)
            if rng.random() < options.duplicates:
                doubled.append(raw)
        chosen = doubled
    if options.shuffle:
        rng.shuffle(chosen)
    if options.faults.any:
        plan = arrange_deliveries(chosen, options.faults.with_seed(options.seed))
        chosen = plan.deliveries
        options.injected = {
            "dropped": len(plan.dropped),
            "duplicated": len(plan.duplicated),
            "reordered": len(plan.reordered),
            "malformed": len(plan.malformed),
        }
    return chosen


def replay(
    raws: list[RawEvent],
    pipeline: Any,
    options: ReplayOptions,
    err: TextIO | None = None,
    recorder: Recorder | None = None,
) -> ReplayReport:
    """Deliver every event through `pipeline` (a started LocalPipeline) and build the report; a
    `recorder` (`casewatch_dev.replay_diff`) also records each delivery and the requests made."""
    report = ReplayReport(events=len(raws), backend=str(getattr(pipeline, "backend_name", "moto")))
    seen: Counter[str] = Counter()
    started = time.perf_counter()
    last_virtual: datetime | None = None
    if recorder is not None:
        recorder.begin()
    for n, raw in enumerate(raws, start=1):
        if options.progress and err is not None and (n % 50 == 0 or n == len(raws)):
            _progress(err, n, len(raws), started)
        at = _event_time(raw)
        if options.speed and at is not None and last_virtual is not None and at > last_virtual:
            time.sleep(min((at - last_virtual).total_seconds() / options.speed, 5.0))
        if at is not None:
            last_virtual = at if last_virtual is None else max(last_virtual, at)
        if raw.problem is not None or not isinstance(raw.raw, dict):
            # Not an event at all (a malformed line): EventBridge would never deliver it. Park it.
            reason = raw.problem or "not a JSON object"
            pipeline.park_malformed(raw.origin, raw.raw, reason)
            report.invalid += 1
            report.dead_lettered += 1
            if recorder is not None:
                recorder.delivered(raw.raw, at, pipeline.clock.now(), {"malformed"})
            continue
        event_id = raw.raw.get("id")
        if isinstance(event_id, str):
            seen[event_id] += 1
            if seen[event_id] > 1:
                report.duplicates_delivered += 1
        # Out-of-order delivery never moves the virtual clock backwards.
        invocations = pipeline.deliver(raw.raw, at=at)
        if recorder is not None:
            recorder.delivered(raw.raw, at, pipeline.clock.now(), {inv.outcome for inv in invocations})
        if not invocations:
            report.unrouted += 1
            continue
        report.tally({inv.outcome for inv in invocations})
    if options.drain:
        pipeline.drain()
    if recorder is not None:
        recorder.stop()
    report.wall_seconds = time.perf_counter() - started
    pipeline.fill_report(report)
    if options.faults.any:
        counts = getattr(pipeline, "counts", {})
        report.faults = {
            **options.injected,
            "cases_faults": _cases_faults(pipeline) if hasattr(pipeline, "emulator") else 0,
            "timeouts": int(counts.get("timeouts", 0)),
            "retries": int(counts.get("retries", 0)),
        }
    return report


def _cases_faults(pipeline: Any) -> int:
    """Reads of Cases (GetCase, the searches) the emulator answered with a fault (429 or 500)."""
    return sum(
        1 for call in pipeline.emulator.call_log if call.operation in CASES_READS and call.status >= 429
    )


def _progress(err: TextIO, done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.perf_counter() - started, 1e-9)
    end = "\n" if done == total else "\r"
    err.write(f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} events  {rate:,.0f}/s{end}")
    err.flush()


def _faults_arg(value: str) -> Faults:
    try:
        return parse_faults(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{value!r}: not an ISO-8601 time (e.g. 2026-11-23T09:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay events through the local pipeline (offline), or start an EventBridge replay (AWS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help=".jsonl/.json files or directories (offline)"
    )
    parser.add_argument("--archive", help="in AWS: the EventBridge archive to replay from")
    parser.add_argument("--from", dest="start", type=_parse_time, help="first event time (inclusive)")
    parser.add_argument("--to", dest="end", type=_parse_time, help="last event time (exclusive)")
    parser.add_argument(
        "--rule-arn", action="append", default=[], help="in AWS: rules to replay to (default: the stack's)"
    )
    parser.add_argument(
        "--stack", default="Casewatch", help="in AWS: the stack whose ReplayFilterArns output names the rules"
    )
    parser.add_argument(
        "--outputs",
        help="in AWS: read the stack's outputs from this file (make deploy writes cdk.out/outputs.json)",
    )
    parser.add_argument("--dry-run", action="store_true", help="in AWS: print the StartReplay request only")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--speed", default="instant", help="'instant' (default) or virtual seconds per second"
    )
    parser.add_argument("--shuffle", action="store_true", help="deliver in a random order (chaos)")
    parser.add_argument(
        "--duplicates", type=float, default=0.0, metavar="RATE", help="deliver this share twice"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --shuffle/--duplicates/--faults")
    parser.add_argument(
        "--backend",
        choices=("moto", "memory"),
        default="moto",
        help="AWS for the local pipeline: moto (default, full fidelity) or memory (fast)",
    )
    parser.add_argument(
        "--faults",
        type=_faults_arg,
        default=Faults(),
        metavar="NAME=RATE,...",
        help="inject faults: duplicates, reorder (window=N), drop, malformed, throttle, errors, "
        "timeouts (memory backend), seed; e.g. duplicates=0.2,reorder=0.1,throttle=0.05",
    )
    parser.add_argument(
        "--state", help="Cases state for the emulator (default: state/cases.json beside PATH)"
    )
    parser.add_argument("--config", default="cdk.json", help="cdk.json with the `casewatch` settings")
    parser.add_argument("--no-drain", action="store_true", help="stop the clock at the last event")
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="run the functions without their IAM roles (by default each runs under its synthesized role)",
    )
    parser.add_argument("--report", choices=("text", "json"), default="text")
    add_replay_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    check_replay_args(args)
    if args.archive:
        from casewatch_dev.aws_replay import run_aws_replay

        return run_aws_replay(args, out)
    if not args.paths:
        raise UsageError("replay needs PATH (offline) or --archive NAME (in AWS)")
    if args.speed == "instant":
        speed = None
    else:
        try:
            speed = float(args.speed)
        except ValueError:
            raise UsageError("--speed takes 'instant' or a number") from None
    if not 0 <= args.duplicates <= 1:
        raise UsageError("--duplicates takes a rate between 0 and 1")
    options = ReplayOptions(
        shuffle=args.shuffle,
        duplicates=args.duplicates,
        seed=args.seed,
        start=args.start,
        end=args.end,
        speed=speed,
        drain=not args.no_drain,
        progress=sys.stderr.isatty(),
        backend=args.backend,
        iam=not args.no_iam,
        faults=args.faults,
    )
    if options.faults.timeouts and options.backend != "memory":
        raise UsageError("--faults timeouts=... needs --backend memory")
    settings = load_cdk_context(args.config)
    raws = arrange(load_events(args.paths), options)
    state_path = Path(args.state) if args.state else find_state(args.paths)
    state = json.loads(state_path.read_text()) if state_path else None
    if observing(args):
        return run_observed(args, settings=settings, raws=raws, options=options, state=state, out=out)
    report = run_offline(settings, raws, options, state)
    if args.report == "json":
        print(json.dumps(report.as_dict(), sort_keys=True), file=out)
    else:
        print(report.render(), file=out)
    return 0 if report.ok else 1


def run_offline(
    settings: Any,
    raws: list[RawEvent],
    options: ReplayOptions,
    state: dict[str, Any] | None,
    recorder: Recorder | None = None,
) -> ReplayReport:
    """One replay in a pipeline of its own; with a `recorder`, its observation is `recorder.observation`."""
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.pipeline import LocalPipeline

    first = min((t for raw in raws if (t := _event_time(raw)) is not None), default=None)
    clock = VirtualClock(first - timedelta(minutes=1)) if first else VirtualClock()
    listening = recorder.listening(clock) if recorder is not None else contextlib.nullcontext()
    with (
        listening,
        LocalPipeline(
            settings,
            clock=clock,
            cases_state=state,
            seed=options.seed,
            backend="memory" if options.backend == "memory" else "moto",
            faults=options.faults,
            iam=options.iam,
        ) as pipeline,
    ):
        report = replay(raws, pipeline, options, sys.stderr, recorder)
        if recorder is not None:
            recorder.finish(pipeline)
        return report
