"""The capacity model's limits, each a function of the event rate (see `casewatch_dev.capacity`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from casewatch.settings import Settings
from casewatch_dev.capacity.demand import EVENT_FUNCTIONS, SEARCH_BURST, Demand
from casewatch_dev.emulator.emulator import REAL_QUOTAS

ACCOUNT_CONCURRENCY: Final = 1000  # Lambda's default concurrent executions quota per account and Region
TABLE_WCU_PER_S: Final = 40_000  # DynamoDB's default per-table throughput quota (on-demand)
PARTITION_WCU_PER_S: Final = 1_000  # one partition's write limit
RECONCILE_TIMEOUT_S: Final = 60.0  # the stack's (infra: CasewatchFunction.RECONCILE_TIMEOUT)
MAX_RATE: Final = 100_000.0


# --- what an invocation costs: from the moto run ------------------------------------------------------


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


# --- the limits -------------------------------------------------------------------------------------------


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


def search_page_sizes() -> tuple[int, int]:
    from casewatch.adapters.cases_api import SEARCH_CASES_PAGE, SEARCH_PAGE_SIZE

    return SEARCH_CASES_PAGE, SEARCH_PAGE_SIZE


__all__ = [
    "ACCOUNT_CONCURRENCY",
    "RECONCILE_TIMEOUT_S",
    "Costs",
    "Model",
    "costs_from",
    "search_page_sizes",
    "search_pages",
]
