"""Capacity: the highest sustained event rate, per includedData configuration, at which every limit holds.

`python -m casewatch_dev.capacity [--json]` prints the table (`make bench` includes it).

**Sustained** means every duty keeps up at once, in steady state: the event path, the SLA timers, and the
change feed, whose every poll reads all that changed since the last one (coverage 100%) and finishes in
time. The limits, each a rate `r` (events/s) at which it saturates:

- **Cases quotas, per operation and account** (`REAL_QUOTAS`, the emulator's): GetCase 4/s and
  SearchRelatedItems 2/s on the event path (`r` x calls per event); SearchCases and SearchAllRelatedItems
  2/s for the feed, `pages per poll / P` (P: `reconcile_every_minutes`). Pages per poll come from the
  results per poll, `results per event x r x P`, at the adapter's page size (`SEARCH_CASES_PAGE`,
  `SEARCH_PAGE_SIZE`): SearchCases reads every page of cases changed since the watermark (at least one);
  SearchAllRelatedItems reads newest first, up to the page holding the first item it has seen (one more
  item than the new ones).
- **The feed's poll fits its invocation**: its searches at the quota (a burst of 10, then 2/s each; plus
  `LATENCY_MS` per request), the batched reads, and one case apply per case that learned something and per
  case due a breach check (each costing what a breach timer invocation does: the same read, write, sends
  and completion) must end within the reconcile function's timeout less the feed's reserve, and within P
  (else polls overlap and the watermark stalls: coverage falls below 100%). `search_check` holds the
  searches' part to the real client: 2,000 changed cases and 600 new items read by the feed's adapter
  through the product's Cases client (botocore's adaptive retries and back-off) against the emulator's
  quotas on the virtual clock take what the model says, within a few percent.
- **Lambda: concurrency x duration** (Little's law) for each function: invocations per second x the Lambda
  time of one (`casewatch_dev.bench.lambda_time`: requests x the stated latencies + CPU measured on the
  moto backend, scaled to 256 MB) must stay within its concurrency: `reserved_concurrency` if set, else
  the account's default concurrency quota (1,000), shared.
- **DynamoDB** (on-demand): the table's default throughput quota (40,000 WCU/s) at the measured WCU per
  event, and one `due` index partition (1,000 WCU/s) at that index's writes per event over `DUE_SHARDS`.

What each limit needs per event is **measured**, not assumed: the generated day (`casewatch generate`,
about 2,000 events; Cases' event configuration set to each includedData configuration, so events carry
exactly what Cases would put in them) is replayed through the local pipeline (memory backend, the Cases
emulator enforcing the real quotas on the virtual clock, SLA timers firing, the feed polling every P),
counting Cases calls per function, the feed's search results, applies and due checks per event, and the
SLA timers per event; requests, write units and CPU per invocation kind come from `make bench`'s moto run
(`casewatch_dev.bench.requests`). Everything per event is independent of the rate when the population of
cases grows with it and each case behaves as in the day: so each limit is linear in `r` (up to the
pages' rounding) and the model solves it for `r`. The replay is the *capacity run*: its breach delays
(an SLA's target time -> the breach notification, on the virtual clock) are `breach_delay_s_p99`.

`demand`: the measurements (the capacity run, the search check); `model`: the limits as functions of the
rate; here: the configurations and the table.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from casewatch.settings import Settings
from casewatch_dev.capacity.demand import Demand, measure_demand, search_check
from casewatch_dev.capacity.model import Costs, Model, costs_from, search_page_sizes, search_pages


def configurations(settings: Settings) -> dict[str, Settings]:
    """includedData configurations: none, the system fields, the fields the sinks need (cdk.json)."""
    return {
        "metadata_only": settings.model_copy(
            update={"event_fields": [], "auto_include_fields": None, "include_content": False}
        ),
        "system_fields": settings.model_copy(
            update={"event_fields": [], "auto_include_fields": "System", "include_content": True}
        ),
        "sink_fields": settings,
    }


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def capacity_rows(settings: Settings, costs: Costs, *, events: int = 2000) -> list[dict[str, Any]]:
    """One row per includedData configuration: the capacity, the binding limit, every limit's own rate."""
    case_page, item_page = search_page_sizes()
    rows = []
    for name, variant in configurations(settings).items():
        demand = measure_demand(variant, events=events)
        model = Model(variant, demand, costs, case_page, item_page)
        rows.append(_row(name, model))
    return rows


def feed_period_rows(
    settings: Settings,
    costs: Costs,
    periods: tuple[int, ...],
    *,
    events: int = 2000,
    search_cases_page: int | None = None,
    configurations_named: tuple[str, ...] = ("sink_fields",),
) -> list[dict[str, Any]]:
    """Configurations at other feed periods (what P trades: capacity for breach delay), and optionally with
    another SearchCases page size (a what-if: the API's model allows 100)."""
    case_page, item_page = search_page_sizes()
    page = search_cases_page or case_page
    suffix = f", SearchCases pages of {page} (what-if)" if page != case_page else ""
    rows = []
    for name in configurations_named:
        for minutes in periods:
            variant = configurations(settings)[name].model_copy(update={"reconcile_every_minutes": minutes})
            model = Model(variant, measure_demand(variant, events=events), costs, page, item_page)
            rows.append(_row(f"{name}, P = {minutes} min{suffix}", model))
    return rows


def _row(name: str, model: Model) -> dict[str, Any]:
    capacity = model.highest_rate()
    usage = model.limit_usage(capacity) if capacity else {}
    limits = {limit: model.highest_rate(limit) for limit in model.limit_usage(1.0)}
    binding = min(limits, key=lambda k: limits[k]) if limits else ""
    demand = model.demand
    return {
        "configuration": name,
        "feed_period_minutes": model.settings.reconcile_every_minutes,
        "capacity_events_per_s": capacity,
        "binding_limit": binding,
        "limits_events_per_s": limits,
        "usage_at_capacity": {k: round(v, 3) for k, v in usage.items()},
        "concurrency_at_capacity": {k: round(v, 2) for k, v in model.concurrency(capacity).items()},
        "search_cases_page": model.case_page,
        "feed_pages_per_poll_at_capacity": model.feed_pages(capacity),
        "poll_seconds_at_capacity": round(model.poll_seconds(capacity), 1),
        "breach_delay_s_p50": round(percentile(demand.breach_delays_s, 0.5), 1),
        "breach_delay_s_p99": round(percentile(demand.breach_delays_s, 0.99), 1),
        "breach_delay_s_max": round(max(demand.breach_delays_s, default=0.0), 1),
        "breaches": len(demand.breach_delays_s),
        "demand": {k: v for k, v in asdict(demand).items() if k != "breach_delays_s"},
    }


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "Capacity: the highest sustained rate at which every limit holds (Cases quotas per operation, the",
        "change feed's polls, Lambda concurrency x duration, DynamoDB); binding limit and breach delay p99",
        f"{'configuration':<62} {'P':>4} {'capacity':>13}  {'binding limit':<44} {'breach p99':>10}",
    ]
    for row in rows:
        lines.append(
            f"{row['configuration']:<62} {row['feed_period_minutes']:>3}m "
            f"{row['capacity_events_per_s']:>8.1f} ev/s  {row['binding_limit']:<44} "
            f"{row['breach_delay_s_p99']:>8.0f} s"
        )
    return "\n".join(lines)


__all__ = [
    "Costs",
    "Demand",
    "Model",
    "capacity_rows",
    "configurations",
    "costs_from",
    "feed_period_rows",
    "measure_demand",
    "percentile",
    "render",
    "search_check",
    "search_pages",
]
