"""What an event needs, measured: the generated day replayed through the local pipeline (the capacity run),
and the model's search time checked against the real client (see `casewatch_dev.capacity`)."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, Final

from casewatch.settings import Settings
from casewatch_dev.emulator.emulator import REAL_QUOTAS

EVENT_FUNCTIONS: Final = ("case-changed", "related-item-created")
CASES_OPS: Final = ("GetCase", "SearchRelatedItems", "SearchCases", "SearchAllRelatedItems")
SEARCH_BURST: Final = 10  # the searches' quota burst (REAL_QUOTAS)


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


__all__ = ["CASES_OPS", "EVENT_FUNCTIONS", "SEARCH_BURST", "Demand", "measure_demand", "search_check"]
