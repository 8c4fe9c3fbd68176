"""`make bench`: measure, write bench-results.json, print a table. Goals are reported, not tuned for.

Each figure is measured in one run beside its baseline (the machine may be shared: timings are medians
of repeats):

- **per-event handler cost**: the real `case-changed` / `related-item-created` handlers (Powertools
  logger at INFO, metrics flushed per invocation, output discarded) on every event of the sample
  archive, in order, with the memory backend's in-memory adapters (SLA store, snapshots, idempotency,
  SNS, EventBridge, Scheduler; GetCase answered from a dict) — parse + plan + sinks — against
  `json.loads` of the same event's text (the floor). p50 over all events of several rounds (each round
  starts from empty stores, so no event is a duplicate). Breakdown rows: parse alone, parse + plan.
- **GetCase calls per event** replaying the sample archive (memory backend, the Cases emulator), against
  a naive consumer that calls GetCase once per handled event.
- **cold import + client setup**: a fresh interpreter imports the handler module and creates the
  DynamoDB client its first event uses (`casewatch.adapters.clients`), against a boto3-only handler
  (import boto3, create a DynamoDB client). Median of 7 subprocesses each.
- **offline replay throughput** of the local pipeline on the sample archive (memory backend, median of
  3; moto backend, one run) and on a generated 2,000-event day (memory backend).
- **peak memory** (ru_maxrss, in a process forked from a small launcher: Linux keeps a forked child's
  high-water mark across exec) of a process that imports every handler, creates the clients they use
  and handles the sample events with the memory backend's adapters (its local modules make this an
  over-estimate), beside a boto3-only process; **asset size**: the function asset's own code
  (`functions/` without `casewatch/local`, `__main__.py` and caches), also zipped.
- **capacity under the GetCase quota** (`casewatch_dev.capacity`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from casewatch.models.events import parse_case_event

EVENTS = Path("events")
ARCHIVE = EVENTS / "archive"
RESULTS = Path("bench-results.json")
FUNCTIONS = Path(__file__).resolve().parents[2]  # .../functions
SUBPROCESS_RUNS = 7


def per_call_us(fn: Callable[[], object], *, repeat: int = 7, number: int = 2000) -> list[float]:
    """Microseconds per call, one figure per round (the median of rounds is reported)."""
    fn()  # warm up
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return rounds


def _row(  # noqa: PLR0917 - one table row, in the table's column order
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline: float | None,
    goal: str,
    met: bool | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline_name,
        "baseline_value": round(baseline, 3) if baseline is not None else None,
        "goal": goal,
        "met": met,
        **extra,
    }


# --- the sample archive ------------------------------------------------------------------------------


def archive_events() -> list[tuple[str, dict[str, Any]]]:
    """(text, event) of each distinct valid event of the sample archive, in delivery order."""
    seen: set[str] = set()
    found = []
    for path in sorted(ARCHIVE.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("id") not in seen:
                seen.add(event["id"])
                found.append((line, event))
    return found


def _cases_reader() -> Any:
    """GetCase from a dict: each case of the archive's state as it ended the day."""
    from casewatch_dev.fakes.ports import DictCasesReader

    reader = DictCasesReader()
    state = json.loads((ARCHIVE / "state" / "cases.json").read_text())
    for change in state.get("timeline", []):
        record = change.get("case")
        if record:
            reader.add(record["case_id"], record.get("fields", {}), template_id=record.get("template_id"))
    return reader


class _NoCasesSlas:
    def case_slas(self, domain_id: str, case_id: str) -> list[Any]:
        return []

    def related_items(self, domain_id: str, case_id: str, item_type: str) -> list[Any]:
        return []


def _memory_world(settings: Any, start: datetime) -> tuple[Any, Any]:
    """The event app of each event-routed function on the memory backend (Cases from a dict)."""
    from casewatch.bootstrap import build_event_app
    from casewatch.topology import EVENT_ROUTED
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.pipeline.memory_backend import MemoryBackend

    clock = VirtualClock(start)
    adapters = MemoryBackend(settings, clock).adapters(cases=_cases_reader(), cases_slas=_NoCasesSlas())
    return {spec.name: build_event_app(spec, settings, adapters) for spec in EVENT_ROUTED}, clock


@contextlib.contextmanager
def _lambda_like_logging() -> Any:
    """Powertools logger at INFO (Lambda's default) writing to a discarded stream; EMF lines discarded."""
    import logging

    from casewatch.observability import logger

    handler = logger.registered_handler
    saved = (logger.log_level, getattr(handler, "stream", None))
    logger.setLevel(logging.INFO)
    sink = io.StringIO()
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sink)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(saved[0])
        if isinstance(handler, logging.StreamHandler) and saved[1] is not None:
            handler.setStream(saved[1])


def _event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


def bench_handler_cost(settings: Any, rounds: int = 5) -> list[dict[str, Any]]:
    from casewatch.handlers import case_changed, related_item_created
    from casewatch_dev.pipeline import FakeLambdaContext

    events = archive_events()
    first = _event_time(events[0][1]) - timedelta(minutes=1)
    handler_us: list[float] = []
    floor_us: list[float] = []
    parse_us: list[float] = []
    with _lambda_like_logging():
        for round_no in range(rounds + 1):  # round 0 warms up
            apps, clock = _memory_world(settings, first)
            timings = []
            for text, event in events:
                clock.set(max(clock.now(), _event_time(event)))
                module = (
                    case_changed if event["detail"]["eventType"].startswith("CASE.") else related_item_created
                )
                name = module.__name__.rsplit(".", 1)[-1].replace("_", "-")
                context = FakeLambdaContext(name, clock)
                start = time.perf_counter()
                module.handler(event, context, app=apps[name])
                timings.append(time.perf_counter() - start)
                start = time.perf_counter()
                json.loads(text)
                floor = time.perf_counter() - start
                start = time.perf_counter()
                parse_case_event(event)
                parsed = time.perf_counter() - start
                if round_no:
                    floor_us.append(floor * 1e6)
                    parse_us.append(parsed * 1e6)
            if round_no:
                handler_us += [t * 1e6 for t in timings]
    p50, floor_p50 = statistics.median(handler_us), statistics.median(floor_us)
    p90 = statistics.quantiles(handler_us, n=10)[-1]
    plan_p50 = _parse_and_plan_us(settings, events)
    return [
        _row(
            "per-event handler cost, p50 (parse + plan + sinks)",
            p50,
            "us",
            "json.loads of the event",
            floor_p50,
            "<= 150 us and <= 10x floor",
            p50 <= 150 and p50 <= 10 * floor_p50,
            p90=round(p90, 1),
            ratio=round(p50 / floor_p50, 1),
            events=len(events),
            rounds=rounds,
        ),
        _row(
            "  of which: parse (dict -> CaseEvent), p50",
            statistics.median(parse_us),
            "us",
            "json.loads of the event",
            floor_p50,
            "(breakdown)",
            None,
        ),
        _row(
            "  of which: parse + enrichment plan, p50",
            plan_p50,
            "us",
            "json.loads of the event",
            floor_p50,
            "(breakdown)",
            None,
        ),
    ]


def _parse_and_plan_us(settings: Any, events: list[tuple[str, dict[str, Any]]]) -> float:
    from casewatch.domain.enrichment import IncludedFields, plan

    needed = settings.needed_field_ids
    included = IncludedFields.from_settings(settings)
    samples = []
    for _ in range(5):
        for _, event in events:
            start = time.perf_counter()
            plan(parse_case_event(event), needed, None, included=included)
            samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


# --- replay: GetCase per event and throughput ----------------------------------------------------------


def _replay(settings: Any, paths: list[str], backend: str) -> Any:
    from casewatch_dev.replay import ReplayOptions, find_state, load_events, run_offline

    state_path = find_state(paths)
    state = json.loads(state_path.read_text()) if state_path else None
    with contextlib.redirect_stderr(io.StringIO()):
        return run_offline(settings, load_events(paths), ReplayOptions(backend=backend), state)


def bench_getcase(settings: Any) -> list[dict[str, Any]]:
    report = _replay(settings, [str(ARCHIVE)], "memory")
    naive = report.handled  # one GetCase per handled event
    per_event = report.getcase_calls / report.events
    naive_per_event = naive / report.events
    return [
        _row(
            "GetCase calls per event (sample archive)",
            per_event,
            "calls/event",
            "naive consumer: one per handled event",
            naive_per_event,
            "< half the naive",
            per_event < naive_per_event / 2,
            calls=report.getcase_calls,
            naive_calls=naive,
            events=report.events,
        )
    ]


def bench_throughput(settings: Any, generated_events: int = 2000) -> list[dict[str, Any]]:
    memory = [_replay(settings, [str(ARCHIVE)], "memory") for _ in range(3)]
    rate = statistics.median(r.events_per_second for r in memory)
    moto = _replay(settings, [str(ARCHIVE)], "moto")
    rows = [
        _row(
            "offline replay throughput, memory backend (sample archive)",
            rate,
            "events/s",
            "moto backend, same archive",
            moto.events_per_second,
            ">= 2,000 events/s",
            rate >= 2000,
            events=memory[0].events,
        )
    ]
    day = _generated_day(settings, generated_events)
    report = _replay(settings, [str(day)], "memory")
    rows.append(
        _row(
            f"offline replay throughput, memory backend (generated day, {report.events} events)",
            report.events_per_second,
            "events/s",
            "moto backend, sample archive",
            moto.events_per_second,
            ">= 2,000 events/s",
            report.events_per_second >= 2000,
            events=report.events,
        )
    )
    return rows


def _generated_day(settings: Any, events: int) -> Path:
    import tempfile

    from casewatch_dev.generate import run_day, write_day

    out = Path(tempfile.mkdtemp(prefix="casewatch-bench-"))
    write_day(run_day(settings, max(4, round(events / 6.1)), seed=8), out, "day")
    return out


# --- subprocesses: cold start and peak memory ------------------------------------------------------------


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_SERVICE_NAME": "casewatch",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "",
            "PYTHONPATH": str(FUNCTIONS),
        }
    )
    return env


def _timed_subprocess(code: str) -> float:
    out = subprocess.run(  # noqa: S603 - our own interpreter on our own snippet
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env(), check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


# Linux keeps a forked child's ru_maxrss across exec: a child forked from this (large) process would
# report this process's memory. A small launcher forks the measured interpreter instead.
_LAUNCH = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1]]).returncode)"


def _measured_subprocess(code: str) -> float:
    out = subprocess.run(  # noqa: S603 - our own interpreter on our own snippet
        [sys.executable, "-c", _LAUNCH, code],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


_COLD_CASEWATCH = """
import time
start = time.perf_counter()
import casewatch.handlers.{module} as handler
from casewatch.adapters import clients
clients.dynamodb_client()
print(time.perf_counter() - start)
"""
_COLD_BOTO3 = """
import time
start = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(time.perf_counter() - start)
"""


def bench_cold_start() -> list[dict[str, Any]]:
    rows = []
    baseline_runs: list[float] = []
    for module in ("case_changed", "related_item_created", "sla_timer", "reconcile"):
        runs = []
        for _ in range(SUBPROCESS_RUNS):  # interleaved with the baseline: same machine load
            runs.append(_timed_subprocess(_COLD_CASEWATCH.format(module=module)))
            baseline_runs.append(_timed_subprocess(_COLD_BOTO3))
        value = statistics.median(runs) * 1000
        baseline = statistics.median(baseline_runs) * 1000
        rows.append(
            _row(
                f"cold import + client setup: {module}",
                value,
                "ms",
                "boto3-only handler (import boto3, a DynamoDB client)",
                baseline,
                "<= 1.5x baseline",
                value <= 1.5 * baseline,
                ratio=round(value / baseline, 2),
                runs=SUBPROCESS_RUNS,
            )
        )
    return rows


_PEAK_MEMORY = """
import contextlib, io, json, resource, sys
from pathlib import Path
sys.path.insert(0, {functions!r})
from casewatch.adapters import clients
from casewatch.handlers import case_changed, reconcile, related_item_created, sla_timer
from casewatch_dev import bench
from casewatch_dev.pipeline import FakeLambdaContext
from casewatch.settings import load_cdk_context
for make in (clients.dynamodb_client, clients.sns_client, clients.events_client, clients.sqs_client,
             clients.scheduler_client):
    make()
clients.cases_client()
settings = load_cdk_context("cdk.json")
events = [e for _, e in bench.archive_events()] + [
    json.loads(p.read_text()) for p in sorted(Path("events").glob("*.json"))
]
apps, clock = bench._memory_world(settings, bench._event_time(events[0]))
with contextlib.redirect_stdout(io.StringIO()):
    for event in events:
        kind = str(event.get("detail", {{}}).get("eventType", ""))
        name = "case-changed" if kind.startswith("CASE.") else "related-item-created"
        module = case_changed if name == "case-changed" else related_item_created
        module.handler(event, FakeLambdaContext(name, clock), app=apps[name])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench_peak_memory() -> list[dict[str, Any]]:
    mb = _measured_subprocess(_PEAK_MEMORY.format(functions=str(FUNCTIONS)))
    baseline = _measured_subprocess(
        "import resource, boto3; boto3.client('dynamodb'); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return [
        _row(
            "peak memory of a handler process (sample events)",
            mb,
            "MB",
            "boto3-only process with a DynamoDB client",
            baseline,
            "fits a 128 MB function",
            mb < 128,
        )
    ]


def asset_bytes(root: Path = FUNCTIONS) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if _in_asset(p, p.relative_to(root).as_posix()))


def zipped_asset_bytes(root: Path = FUNCTIONS) -> int:
    """The same files as a deflated zip (what Lambda stores and loads)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if _in_asset(path, relative):
                archive.write(path, relative)
    return len(buffer.getvalue())


def _in_asset(path: Path, relative: str) -> bool:
    return (
        path.is_file()
        and "__pycache__" not in path.parts
        and not relative.startswith("casewatch/local/")
        and relative != "casewatch/__main__.py"
        and path.suffix not in (".pyc", ".pyo")
    )


def bench_asset_size() -> list[dict[str, Any]]:
    kb = asset_bytes() / 1024
    return [
        _row(
            "function asset, own code (source bytes)",
            kb,
            "KB",
            "",
            None,
            "< 200 KB",
            kb < 200,
            zipped_kb=round(zipped_asset_bytes() / 1024, 1),
        )
    ]


def bench_capacity(settings: Any) -> tuple[list[dict[str, Any]], str]:
    from casewatch_dev.capacity import capacity_table, render

    rows = capacity_table(settings)
    return rows, render(rows)


# --- main --------------------------------------------------------------------------------------------


def render(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'benchmark':<68} {'value':>16} {'baseline':>16}  {'goal':<28} met"]
    for row in rows:
        value = f"{row['value']:,.2f} {row['unit']}"
        baseline = "" if row["baseline_value"] is None else f"{row['baseline_value']:,.2f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO (missed)")
        lines.append(f"{row['name']:<68} {value:>16} {baseline:>16}  {row['goal']:<28} {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from casewatch.settings import load_cdk_context

    args = argv if argv is not None else sys.argv[1:]
    settings = load_cdk_context("cdk.json")
    started = time.perf_counter()
    rows = bench_handler_cost(settings)
    rows += bench_getcase(settings)
    rows += bench_cold_start()
    if "--quick" not in args:
        rows += bench_throughput(settings)
    rows += bench_peak_memory()
    rows += bench_asset_size()
    capacity, capacity_text = bench_capacity(settings)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 1),
                "results": rows,
                "capacity": capacity,
            },
            indent=2,
        )
        + "\n"
    )
    print(render(rows))
    print()
    print(capacity_text)
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
