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
  (else polls overlap and the watermark stalls: coverage falls below 100%).
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
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, Final

from casewatch.settings import Settings
from casewatch_dev.emulator.emulator import REAL_QUOTAS

ACCOUNT_CONCURRENCY: Final = 1000  # Lambda's default concurrent executions quota per account and Region
TABLE_WCU_PER_S: Final = 40_000  # DynamoDB's default per-table throughput quota (on-demand)
PARTITION_WCU_PER_S: Final = 1_000  # one partition's write limit
RECONCILE_TIMEOUT_S: Final = 60.0  # the stack's (infra: CasewatchFunction.RECONCILE_TIMEOUT)
SEARCH_BURST: Final = 10
EVENT_FUNCTIONS: Final = ("case-changed", "related-item-created")
CASES_OPS: Final = ("GetCase", "SearchRelatedItems", "SearchCases", "SearchAllRelatedItems")
MAX_RATE: Final = 100_000.0


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


# --- what an event needs: measured on the generated day -----------------------------------------------------


@dataclass
class Demand:
    """Per event of the day (the `Cases` calls of the event path; the feed's results, applies and due
    checks; the SLA timers), and what the capacity run saw (breach delays, polls)."""

    events: int
    event_share: dict[str, float]  # share of events each event-routed function gets
    cases_event_path: dict[str, float]  # Cases calls per event, by operation, on the event path
    case_results: float  # SearchCases results per event (cases changed, read by a poll)
    item_results: float  # SearchAllRelatedItems results per event (new items read by a poll)
    feed_applies: float  # cases a poll applied (they learned something), per event
    feed_due: float  # cases a poll gave the horizon (due a breach check), per event
    timers: dict[str, float]  # SLA timer invocations per event, by kind
    polls: int
    incomplete_polls: int  # polls that left cases or were throttled (coverage below 100%)
    breach_delays_s: list[float] = field(default_factory=list)


@cache
def _day(settings_json: str, events: int, seed: int) -> tuple[tuple[dict[str, Any], ...], str]:
    from casewatch_dev.generate import run_day

    settings = Settings.model_validate_json(settings_json)
    day = run_day(settings, max(4, round(events / 6.1)), seed)
    return tuple(day.events), json.dumps(day.state)


@cache
def _demand(settings_json: str, events: int, seed: int) -> Demand:
    return _measure(Settings.model_validate_json(settings_json), events, seed)


def measure_demand(settings: Settings, *, events: int = 2000, seed: int = 8) -> Demand:
    """Replay the generated day (see the module docstring) and count what each duty needed (once per
    settings: the what-if rows reuse the replay of their settings)."""
    return _demand(settings.model_dump_json(), events, seed)


def _measure(settings: Settings, events: int, seed: int) -> Demand:
    from casewatch.adapters.cases_api import CasesApi
    from casewatch.domain.sla.model import SlaStatus
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.event_files import RawEvent
    from casewatch_dev.pipeline import LocalPipeline
    from casewatch_dev.replay import ReplayOptions, replay

    day, state = _day(settings.model_dump_json(), events, seed)
    first = min(_time(e) for e in day)
    per_function: dict[str, Counter[str]] = {}
    invocations: Counter[str] = Counter()
    results = Counter[str]()
    delays: list[float] = []
    with (
        contextlib.ExitStack() as stack,
        contextlib.redirect_stderr(io.StringIO()),
        LocalPipeline(
            settings,
            clock=VirtualClock(first - timedelta(minutes=1)),
            cases_state=json.loads(state),
            seed=seed,
            backend="memory",
            emulator_options={"quotas": dict(REAL_QUOTAS)},
        ) as pipeline,
    ):
        # Every function has its own adapters (its container's): count at the adapter class.
        changed_cases, associated_items = CasesApi.changed_cases, CasesApi.associated_items

        def counted_cases(api: CasesApi, *args: Any, **kwargs: Any) -> Any:
            found = changed_cases(api, *args, **kwargs)
            results["cases"] += len(found.items)
            return found

        def counted_items(api: CasesApi, *args: Any, **kwargs: Any) -> Any:
            found = associated_items(api, *args, **kwargs)
            results["items"] += len(found.items)
            return found

        stack.callback(setattr, CasesApi, "changed_cases", changed_cases)
        stack.callback(setattr, CasesApi, "associated_items", associated_items)
        CasesApi.changed_cases = counted_cases  # type: ignore[method-assign,assignment]
        CasesApi.associated_items = counted_items  # type: ignore[method-assign,assignment]
        invoke = pipeline.invoke

        def counted(spec: Any, event: dict[str, Any]) -> Any:
            before = Counter(pipeline.emulator.calls)
            seen = len(pipeline.transitions)
            invocation = invoke(spec, event)
            name = invocation.function
            kind = f"{name}:{event.get('kind')}" if name == "sla-timer" else name
            invocations[kind] += 1
            delta = Counter(pipeline.emulator.calls)
            delta.subtract(before)
            per_function.setdefault(name, Counter()).update({op: delta[op] for op in CASES_OPS})
            if name == "reconcile":
                result = invocation.result or {}
                results["applied"] += int(result.get("casesApplied", 0))
                results["due"] += int(result.get("casesDue", 0))
                results["incomplete"] += bool(result.get("casesLeft") or result.get("throttled"))
            now = pipeline.clock.now()
            delays.extend(
                (now - t.target_time).total_seconds()
                for t in pipeline.transitions[seen:]
                if t.status is SlaStatus.OVERDUE
            )
            return invocation

        pipeline.invoke = counted  # type: ignore[method-assign]
        replay([RawEvent(str(n), e) for n, e in enumerate(day)], pipeline, ReplayOptions())
    count = len(day)
    event_path: Counter[str] = Counter()
    for name in EVENT_FUNCTIONS:
        event_path.update(per_function.get(name, Counter()))
    routed = sum(invocations[name] for name in EVENT_FUNCTIONS) or 1
    return Demand(
        events=count,
        event_share={name: invocations[name] / routed for name in EVENT_FUNCTIONS},
        cases_event_path={op: event_path[op] / count for op in CASES_OPS},
        case_results=results["cases"] / count,
        item_results=results["items"] / count,
        feed_applies=results["applied"] / count,
        feed_due=results["due"] / count,
        timers={kind: invocations[f"sla-timer:{kind}"] / count for kind in ("breach", "warning")},
        polls=invocations["reconcile"],
        incomplete_polls=results["incomplete"],
        breach_delays_s=delays,
    )


def _time(event: dict[str, Any]) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


# --- what an invocation costs: from the moto run ------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Lambda milliseconds per invocation (wait + CPU) by kind, write units per event, and the extra of one
    Cases request on the event path (its latency + the SDK CPU of a request, at the function's memory)."""

    lambda_ms: dict[str, float]  # by invocation kind (bench.requests.KINDS)
    event_path_cases_requests: float  # Cases requests per event already in lambda_ms (the sink config)
    cases_request_ms: float
    wcu_per_event: float
    gsi_wcu_per_event: float


def costs_from(counts: Any, memory: int) -> Costs:
    from casewatch_dev.bench.lambda_time import LATENCY_MS, by_kind, cpu_scale

    kinds = by_kind(counts.invocation_log, memory)
    requests = sum(len(i.calls) for i in counts.invocation_log) or 1
    cpu_per_request_s = sum(i.cpu_s for i in counts.invocation_log) / requests
    event_kinds = {"case_created", "case_updated", "case_deleted", "comment", "contact", "file", "sla_item"}
    events = [i for i in counts.invocation_log if i.kind in event_kinds]
    cases = sum(1 for i in events for c in i.calls if c.service == "connectcases")
    return Costs(
        lambda_ms={kind: figures["total"] for kind, figures in kinds.items()},
        event_path_cases_requests=cases / max(1, len(events)),
        cases_request_ms=LATENCY_MS["connectcases:GetCase"] + cpu_per_request_s * 1000 * cpu_scale(memory),
        wcu_per_event=counts.wcu_per_event,
        gsi_wcu_per_event=counts.gsi_wcu_per_event,
    )


# --- the limits ---------------------------------------------------------------------------------------------


def search_pages(results_per_poll: float, page: int, *, newest_first: bool) -> int:
    """Requests of one poll's search: every page of the results (at least one); newest first, up to the
    page holding the first item already seen."""
    wanted = results_per_poll + (1 if newest_first else 0)
    return max(1, math.ceil(wanted / page))


@dataclass(frozen=True)
class Model:
    settings: Settings
    demand: Demand
    costs: Costs
    case_page: int
    item_page: int

    @property
    def period_s(self) -> float:
        return float(self.settings.reconcile_every_minutes * 60)

    def feed_pages(self, rate: float) -> tuple[int, int]:
        per_poll = rate * self.period_s
        return (
            search_pages(self.demand.case_results * per_poll, self.case_page, newest_first=False),
            search_pages(self.demand.item_results * per_poll, self.item_page, newest_first=True),
        )

    def poll_seconds(self, rate: float) -> float:
        """How long one poll takes at `rate`: searches at the quota, batch reads, one apply per case."""
        from casewatch_dev.bench.lambda_time import LATENCY_MS

        cases_pages, item_pages = self.feed_pages(rate)
        quota = REAL_QUOTAS["SearchCases"][0]
        searching = (max(0, cases_pages - SEARCH_BURST) + max(0, item_pages - SEARCH_BURST)) / quota
        searching += (cases_pages + item_pages) * LATENCY_MS["connectcases:SearchCases"] / 1000
        per_poll = rate * self.period_s
        changed = self.demand.case_results * per_poll
        reads = math.ceil(changed / 100) * LATENCY_MS["dynamodb:BatchGetItem"] / 1000
        applies = (self.demand.feed_applies + self.demand.feed_due) * per_poll
        return searching + reads + applies * self.costs.lambda_ms.get("breach_timer", 50.0) / 1000

    def event_ms(self, function: str) -> float:
        """Lambda ms of one event invocation of `function`, with this configuration's Cases calls."""
        kinds = (
            ("case_created", "case_updated", "case_deleted")
            if function == "case-changed"
            else ("comment", "contact", "file", "sla_item")
        )
        known = [self.costs.lambda_ms[k] for k in kinds if k in self.costs.lambda_ms]
        base = sum(known) / len(known) if known else 0.0
        # This configuration's Cases calls beyond those the costs were measured with, spread over the events.
        extra = max(0.0, sum(self.demand.cases_event_path.values()) - self.costs.event_path_cases_requests)
        return base + extra * self.costs.cases_request_ms

    def concurrency(self, rate: float) -> dict[str, float]:
        """Concurrent executions each function needs at `rate` (invocations/s x seconds each)."""
        needed = {
            name: rate * self.demand.event_share.get(name, 0.0) * self.event_ms(name) / 1000
            for name in EVENT_FUNCTIONS
        }
        timers = sum(
            rate * per_event * self.costs.lambda_ms.get(f"{kind}_timer", 0.0) / 1000
            for kind, per_event in self.demand.timers.items()
        )
        needed["sla-timer"] = timers
        needed["reconcile"] = min(1.0, self.poll_seconds(rate) / self.period_s)
        return needed

    def limit_usage(self, rate: float) -> dict[str, float]:
        """Each limit's use at `rate` as a fraction of what it allows (1.0: saturated)."""
        usage: dict[str, float] = {}
        for op in ("GetCase", "SearchRelatedItems"):
            usage[f"Cases {op} (event path)"] = (
                rate * self.demand.cases_event_path.get(op, 0.0) / REAL_QUOTAS[op][0]
            )
        cases_pages, item_pages = self.feed_pages(rate)
        usage["Cases SearchCases (feed)"] = cases_pages / self.period_s / REAL_QUOTAS["SearchCases"][0]
        usage["Cases SearchAllRelatedItems (feed)"] = (
            item_pages / self.period_s / REAL_QUOTAS["SearchAllRelatedItems"][0]
        )
        budget = min(self.period_s, RECONCILE_TIMEOUT_S - _feed_reserve_s())
        usage["feed poll within its invocation and period"] = self.poll_seconds(rate) / budget
        limit = self.settings.reserved_concurrency or ACCOUNT_CONCURRENCY
        for name, needed in self.concurrency(rate).items():
            if name != "reconcile":
                usage[f"Lambda concurrency: {name}"] = needed / limit
        usage["DynamoDB table writes"] = rate * self.costs.wcu_per_event / TABLE_WCU_PER_S
        usage["DynamoDB due index partition"] = (
            rate * self.costs.gsi_wcu_per_event / _due_shards() / PARTITION_WCU_PER_S
        )
        return usage

    def highest_rate(self, limit: str | None = None) -> float:
        """The highest rate at which every limit (or the one named) stays within what it allows."""

        def holds(rate: float) -> bool:
            usage = self.limit_usage(rate)
            return all(v <= 1.0 for k, v in usage.items() if limit is None or k == limit)

        if not holds(0.01):
            return 0.0
        low, high = 0.01, MAX_RATE
        if holds(high):
            return high
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if holds(middle) else (low, middle)
        return round(low, 1)


def _feed_reserve_s() -> float:
    from casewatch.app.sla.feed import MIN_RESERVE_S

    return float(MIN_RESERVE_S)


def _due_shards() -> int:
    from casewatch.tables import DUE_SHARDS

    return DUE_SHARDS


def _pages() -> tuple[int, int]:
    from casewatch.adapters.cases_api import SEARCH_CASES_PAGE, SEARCH_PAGE_SIZE

    return SEARCH_CASES_PAGE, SEARCH_PAGE_SIZE


def search_check(settings: Settings, cases: int = 2000, items: int = 600) -> dict[str, float]:
    """The model's search time against the real client: `cases` changed cases and `items` new Comment
    items read by the feed's adapter (`CasesApi.changed_cases`, `.associated_items`) with the product's
    Cases client (adaptive retries, `getcase_max_attempts`) against the emulator enforcing the real quotas
    on a virtual clock (botocore's back-off and rate limiter wait on it). Returns the pages, the virtual
    seconds each search took, and what the model says they take (a burst of 10, then 2/s; no latency)."""
    from datetime import UTC, datetime

    from casewatch.adapters import clients
    from casewatch.adapters.cases_api import CasesApi
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.emulator import CasesEmulator
    from casewatch_dev.pipeline.environment import local_environment
    from casewatch_dev.pipeline.virtual_time import botocore_sleeps_on

    clock = VirtualClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    with local_environment(), botocore_sleeps_on(clock):
        clients.reset_clients()
        emulator = CasesEmulator(clock=clock, quotas=dict(REAL_QUOTAS), search_index_lag=timedelta(0))
        domain = settings.domain_id
        emulator.seed_domain(domain_id=domain)
        emulator.seed_field(domain, "priority", "SingleSelect", field_id=settings.field_id("priority"))
        template = emulator.seed_template(domain, "case")
        since = clock.now()
        for n in range(cases):
            clock.set(since + timedelta(milliseconds=10 * (n + 1)))
            case_id = emulator.seed_case(domain, template, {"status": "open", "title": "t"})
            if n < items:
                comment = {"comment": {"body": "b", "contentType": "Text/Plain"}}
                emulator.seed_related_item(domain, case_id, "Comment", comment)
        emulator.flush_search_index()
        client = emulator.attach(clients.cases_client(settings.getcase_max_attempts))
        api = CasesApi(client, max_attempts=settings.getcase_max_attempts)
        start = clock.now()
        found = api.changed_cases(domain, since, ["status", "last_updated_datetime", "created_datetime"])
        middle = clock.now()
        new = api.associated_items(domain, since, ["Comment"])
        end = clock.now()
        clients.reset_clients()
    quota = REAL_QUOTAS["SearchCases"][0]

    def ideal(pages: int) -> float:
        return max(0, pages - SEARCH_BURST) / quota

    return {
        "cases_found": len(found.items),
        "cases_pages": found.requests,
        "cases_seconds": round((middle - start).total_seconds(), 1),
        "cases_model_seconds": round(ideal(found.requests), 1),
        "items_found": len(new.items),
        "items_pages": new.requests,
        "items_seconds": round((end - middle).total_seconds(), 1),
        "items_model_seconds": round(ideal(new.requests), 1),
        "requests": sum(emulator.calls.values()),
    }


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def capacity_rows(settings: Settings, costs: Costs, *, events: int = 2000) -> list[dict[str, Any]]:
    """One row per includedData configuration: the capacity, the binding limit, every limit's own rate."""
    case_page, item_page = _pages()
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
    case_page, item_page = _pages()
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


def main(argv: list[str] | None = None) -> int:
    import warnings

    from casewatch.settings import load_cdk_context
    from casewatch_dev.bench.lambda_time import memory_mb
    from casewatch_dev.bench.requests import count_requests

    warnings.simplefilter("ignore")
    args = argv if argv is not None else sys.argv[1:]
    settings = load_cdk_context("cdk.json")
    costs = costs_from(count_requests(settings), memory_mb())
    rows = capacity_rows(settings, costs)
    if "--json" in args:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
