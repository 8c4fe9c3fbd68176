"""`python -m casewatch_dev.bench [--quick]`: see `casewatch_dev.bench`."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casewatch_dev.bench import SUMMARY_KEYS

RESULTS = Path("bench-results.json")
# Issue 13's figures for main before it (naive consumer where it says so): the "before" column.
BEFORE: dict[str, Any] = {
    "capacity_events_per_s": {"metadata_only": 5.2, "system_fields": 6.5, "sink_fields": 4.0},
    "aws_requests_per_event": {"all_per_handled_event": 15.0},
    "aws_requests_minimum": {"all_per_handled_event": 9.7},
    "dynamodb_wcu_per_event": 14.5,
    "lambda_ms_per_event_estimate": 360.0,
    "per_event_us_p50": [2400.0, 3000.0],
    "per_event_us_by_history": {"500": [12000.0, 13000.0]},
    "replay_events_per_s_memory": [125.0, 157.0],
    "replay_events_per_s_moto": 6.0,
    # main's own `make bench`, run on this machine beside this branch's (its harness, its definitions):
    "main_bench": {
        "capacity_events_per_s": {"metadata_only": 5.2, "system_fields": 6.5, "sink_fields": 29.9},
        "per_event_us_p50": 966.4,
        "replay_events_per_s_memory": 138.6,
        "replay_events_per_s_moto": 5.0,
        "cold_init_ratio_max": 1.62,
        "peak_rss_mb": 70.3,
        "asset_kb_zipped": 102.2,
    },
}


def summary(parts: dict[str, Any]) -> dict[str, Any]:
    """The `summary` object: exactly `SUMMARY_KEYS`, each a measured number (or an object of them)."""
    from casewatch_dev.bench.requests import ALL

    counts = parts["requests"]
    steady = parts["steady"]
    capacity = {row["configuration"]: row for row in parts["capacity"]}
    values = {
        "capacity_events_per_s": {
            name: capacity[name]["capacity_events_per_s"]
            for name in ("metadata_only", "system_fields", "sink_fields")
        },
        "breach_delay_s_p99": capacity["sink_fields"]["breach_delay_s_p99"],
        # Per handled event at a steady rate (the sink-fields capacity; `casewatch_dev.bench.steady`): the
        # sample archive's own figures (267 events over 17 hours, a poll a minute) are in `requests`.
        "aws_requests_per_event": {**counts.per_kind, ALL: steady["requests"]},
        "aws_requests_minimum": {**counts.minimum, ALL: steady["minimum"]},
        "dynamodb_wcu_per_event": steady["wcu"],
        "lambda_ms_per_event_estimate": steady["lambda_ms"],
        "per_event_us_p50": round(parts["per_event"]["p50"], 1),
        "per_event_us_by_history": {k: round(v, 1) for k, v in parts["history"].items()},
        "replay_events_per_s_memory": parts["throughput"]["sample"],
        "replay_events_per_s_moto": parts["throughput"]["moto"],
        "cold_init_ratio_max": round(parts["cold_ratio"], 2),
        "peak_rss_mb": round(parts["peak_mb"], 1),
        "asset_kb_zipped": round(parts["asset_kb"], 1),
    }
    assert tuple(values) == SUMMARY_KEYS
    return values


def render(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'benchmark':<76} {'value':>16} {'baseline':>12}  {'goal':<30} met"]
    for row in rows:
        value = f"{row['value']:,.2f} {row['unit']}"
        baseline = "" if row["baseline_value"] is None else f"{row['baseline_value']:,.2f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO (missed)")
        lines.append(f"{row['name']:<76} {value:>16} {baseline:>12}  {row['goal']:<30} {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - the run, in order
    from casewatch.settings import load_cdk_context
    from casewatch_dev import capacity
    from casewatch_dev.bench import handler_cost, lambda_time, processes, requests, throughput
    from casewatch_dev.bench.common import row
    from casewatch_dev.bench.steady import at_rate
    from casewatch_dev.capacity.demand import Demand
    from casewatch_dev.capacity.model import Model, search_page_sizes

    warnings.simplefilter("ignore")  # Powertools warns of invocations that published no metric
    args = argv if argv is not None else sys.argv[1:]
    settings = load_cdk_context("cdk.json")
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"  {name}: {timings[name]} s", file=sys.stderr)

    parts: dict[str, Any] = {}
    t0 = time.perf_counter()
    rows, parts["per_event"] = handler_cost.bench_per_event(settings, rounds=9)
    history_rows, parts["history"] = handler_cost.bench_by_history(settings, cases=7)
    rows += history_rows
    step("per-event cost", t0)

    t0 = time.perf_counter()
    counts = requests.count_requests(settings)
    parts["requests"] = counts
    memory = lambda_time.memory_mb()
    parts["lambda"] = lambda_time.per_handled_event(counts.invocation_log, counts.handled, memory)
    kinds = lambda_time.by_kind(counts.invocation_log, memory)
    costs = capacity.costs_from(counts, memory)
    capacity_rows = capacity.capacity_rows(settings, costs)
    sink = next(r for r in capacity_rows if r["configuration"] == "sink_fields")
    model = Model(settings, Demand(**sink["demand"]), costs, *search_page_sizes())
    parts["steady"] = steady = at_rate(
        counts.invocation_log, counts.handled, model, memory, sink["capacity_events_per_s"]
    )
    at = f"at {steady['rate_events_per_s']} events/s"
    rows.append(
        row(
            f"AWS requests per handled event (every function), {at}",
            steady["requests"],
            "requests",
            "the floor (same guarantees)",
            steady["minimum"],
            "<= 10",
            steady["requests"] <= 10,
        )
    )
    rows.append(
        row(
            "AWS requests per handled event, over the sample archive (a poll a minute, 17 hours)",
            counts.per_kind[requests.ALL],
            "requests",
            "the floor (same guarantees)",
            counts.minimum[requests.ALL],
            "(sparse: the polls')",
            None,
        )
    )
    rows.append(
        row(f"DynamoDB write units per handled event, {at}", steady["wcu"], "WCU", "", None, "(cost)", None)
    )
    rows.append(
        row(
            f"Lambda time per handled event (estimate, {memory} MB), {at}",
            steady["lambda_ms"],
            "ms",
            "",
            None,
            "(cost)",
            None,
        )
    )
    rows.append(
        row(
            f"Lambda time per handled event (estimate, {memory} MB), over the sample archive",
            parts["lambda"]["total"],
            "ms",
            "",
            None,
            "(sparse: the polls')",
            None,
            wait_ms=parts["lambda"]["wait"],
            cpu_ms=parts["lambda"]["cpu"],
        )
    )
    report = counts.report
    rows.append(
        row(
            "GetCase calls per event (sample archive)",
            report["getcase_calls"] / report["events"],
            "calls/event",
            "naive consumer: one per handled event",
            report["handled"] / report["events"],
            "< half the naive",
            report["getcase_calls"] < report["handled"] / 2,
        )
    )
    wcu_history = requests.wcu_by_history(settings)
    first_wcu = wcu_history.get("1", 0.0)
    for n, units in wcu_history.items():
        rows.append(
            row(
                f"DynamoDB write units of a case's event no. {n} (moto)",
                units,
                "WCU",
                "the case's 1st event",
                first_wcu,
                "(by history)",
                None,
            )
        )
    step("AWS requests (moto) and the capacity", t0)

    t0 = time.perf_counter()
    periods = tuple(p for p in (1,) if p != settings.reconcile_every_minutes)
    capacity_rows += capacity.feed_period_rows(
        settings, costs, periods, configurations_named=("metadata_only", "system_fields", "sink_fields")
    )
    capacity_rows += capacity.feed_period_rows(settings, costs, (1,), search_cases_page=100)
    parts["capacity"] = capacity_rows
    search = capacity.search_check(settings)
    step("capacity: other periods, the what-if, the search check", t0)

    t0 = time.perf_counter()
    if "--quick" in args:
        parts["throughput"] = {
            "sample": throughput.replay_report(settings, ["events/archive"], "memory").events_per_second
        }
        parts["throughput"]["moto"] = report["events_per_second"]
    else:
        throughput_rows, parts["throughput"] = throughput.bench_throughput(
            settings, report["events_per_second"]
        )
        rows += throughput_rows
    step("replay throughput", t0)

    t0 = time.perf_counter()
    cold_rows, parts["cold_ratio"] = processes.bench_cold_start()
    memory_rows, parts["peak_mb"] = processes.bench_peak_memory()
    asset_rows, parts["asset_kb"] = processes.bench_asset_size()
    rows += cold_rows + memory_rows + asset_rows
    step("processes", t0)

    values = summary(parts)
    seconds = round(time.perf_counter() - started, 1)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": seconds,
                "step_seconds": timings,
                "summary": values,
                "before": BEFORE,
                "results": rows,
                "capacity": capacity_rows,
                "capacity_search_check": search,
                "requests": {
                    "steady_state": steady,
                    "sample_archive": {
                        "all_per_handled_event": counts.per_kind[requests.ALL],
                        "minimum_per_handled_event": counts.minimum[requests.ALL],
                        "wcu_per_handled_event": counts.wcu_per_event,
                        "lambda_ms_per_handled_event": parts["lambda"],
                    },
                    "invocations": counts.invocations,
                    "by_operation": counts.by_operation,
                    "wcu_by_purpose": counts.wcu_by_purpose,
                    "wcu_by_history": wcu_history,
                    "gsi_wcu_per_event": counts.gsi_wcu_per_event,
                    "lambda_ms_by_kind": kinds,
                    "latency_ms": lambda_time.LATENCY_MS,
                    "memory_mb": memory,
                },
                "replay_report_moto": report,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(render(rows))
    print()
    print(capacity.render(capacity_rows))
    print(
        f"search check (the real client, quotas on the virtual clock): SearchCases {search['cases_pages']} "
        f"pages in {search['cases_seconds']} s (model {search['cases_model_seconds']} s), "
        f"SearchAllRelatedItems {search['items_pages']} in {search['items_seconds']} s "
        f"(model {search['items_model_seconds']} s)"
    )
    print()
    print(json.dumps(values, indent=2))
    print(f"wrote {RESULTS} in {seconds} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
