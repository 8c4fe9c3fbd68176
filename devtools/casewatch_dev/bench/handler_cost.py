"""The per-event cost of the event path, in process: `per_event_us_p50` and `per_event_us_by_history`.

The real `case-changed` / `related-item-created` handlers (Powertools logger at INFO writing to a discarded
stream, the use cases' counts as Powertools metrics flushed per invocation) run over the memory backend's
adapters: the case records in
`InMemoryCaseStore` (which keeps them as the DynamoDB item does: the fold as its JSON document, decoded on
every load), SNS, EventBridge, Scheduler and SQS adapters on fake clients, GetCase answered from a dict.
What is timed is the handler call: parse, enrich, fold, decide, render, the (fake) sends and the logging.
AWS latency and the SDK's own work per request are not in it (see `casewatch_dev.capacity.lambda_time`).

- **per event** (`bench_per_event`): every event of the sample archive, in delivery order, several rounds
  (each from empty stores, so no event is a duplicate); p50 and p90 over all, beside `json.loads` of the
  same event's text (the floor) and the parse alone.
- **by history** (`bench_by_history`): one case's 1st, 10th, 100th and 500th event (a synthetic case whose
  updates toggle a pause of its SLA, reassign it and add comments, so every event adds observations to
  its log and most send something); the median of several cases, each event timed as the median of its
  neighbours (n-2 .. n+2) so one slow call does not decide a point.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from casewatch.models.events import parse_case_event
from casewatch.settings import Settings
from casewatch_dev.bench.common import (
    EVENTS,
    archive_events,
    archive_state,
    event_time,
    lambda_like_logging,
    median_of,
    percentile,
    row,
)

HISTORY_POINTS = (1, 10, 100, 500)
# CPU time of this thread: on a machine shared with other work, wall time would count the waits for a core.
CLOCK = time.thread_time


class _NoCasesSlas:
    def case_slas(self, domain_id: str, case_id: str) -> list[Any]:
        return []


def _cases_reader() -> Any:
    """GetCase from a dict: each case of the archive's state as it ended the day."""
    from casewatch_dev.fakes.ports import DictCasesReader

    reader = DictCasesReader()
    for change in archive_state().get("timeline", []):
        record = change.get("case")
        if record:
            reader.add(record["case_id"], record.get("fields", {}), template_id=record.get("template_id"))
    return reader


@contextlib.contextmanager
def event_world(settings: Settings, start: datetime) -> Iterator[tuple[dict[str, Any], Any]]:
    """The event app of each event-routed function on the memory backend's adapters, and its clock."""
    from casewatch.bootstrap import build_event_app
    from casewatch.observability import PowertoolsMetrics
    from casewatch.topology import EVENT_ROUTED
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.fakes.ports import CountingMetrics
    from casewatch_dev.pipeline.environment import local_environment
    from casewatch_dev.pipeline.memory_backend import MemoryBackend

    with local_environment(), lambda_like_logging():  # the local environment quiets logs: INFO again
        clock = VirtualClock(start)
        backend = MemoryBackend(settings, clock)
        adapters = backend.adapters(cases=_cases_reader(), cases_slas=_NoCasesSlas())
        # The use cases' counts go to Powertools' metrics, flushed as EMF per invocation, as in Lambda.
        adapters = replace(adapters, metrics=CountingMetrics(forward=PowertoolsMetrics()))
        apps = {spec.name: build_event_app(spec, settings, adapters) for spec in EVENT_ROUTED}
        yield apps, clock


def _route(event: dict[str, Any]) -> tuple[Any, str]:
    from casewatch.handlers import case_changed, related_item_created

    if str(event["detail"]["eventType"]).startswith("CASE."):
        return case_changed, "case-changed"
    return related_item_created, "related-item-created"


def run_events(
    settings: Settings, events: list[dict[str, Any]], *, warmup: Sequence[dict[str, Any]] = ()
) -> list[float]:
    """Seconds each event's handler call took, in order, from empty stores (after the `warmup` events,
    untimed: what a container does once, on its first events, is not any case's cost)."""
    from casewatch_dev.pipeline import FakeLambdaContext

    timings: list[float] = []
    first = event_time((list(warmup) or events)[0])
    with event_world(settings, first - timedelta(minutes=1)) as (apps, clock):
        for event in [*warmup, *events]:
            clock.set(max(clock.now(), event_time(event)))
            module, name = _route(event)
            context = FakeLambdaContext(name, clock)
            start = CLOCK()
            module.handler(event, context, app=apps[name])
            timings.append(CLOCK() - start)
    return timings[len(warmup) :]


def bench_per_event(settings: Settings, rounds: int = 5) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows, and {"p50", "p90", "floor", "parse"} in microseconds."""
    events = archive_events()
    handler_us: list[float] = []
    floor_us: list[float] = []
    parse_us: list[float] = []
    for round_no in range(rounds + 1):  # round 0 warms up
        timings = run_events(settings, [e for _, e in events])
        if not round_no:
            continue
        handler_us += [t * 1e6 for t in timings]
        for text, event in events:
            start = CLOCK()
            json.loads(text)
            middle = CLOCK()
            parse_case_event(event)
            end = CLOCK()
            floor_us.append((middle - start) * 1e6)
            parse_us.append((end - middle) * 1e6)
    figures = {
        "p50": median_of(handler_us),
        "p90": percentile(handler_us, 0.9),
        "floor": median_of(floor_us),
        "parse": median_of(parse_us),
    }
    rows = [
        row(
            "per-event handler cost, p50 (parse + enrich + fold + decide + sends + logs)",
            figures["p50"],
            "us",
            "json.loads of the event",
            figures["floor"],
            "<= 500 us (on the way to 150)",
            figures["p50"] <= 500,
            p90=round(figures["p90"], 1),
            ratio=round(figures["p50"] / figures["floor"], 1) if figures["floor"] else None,
            events=len(events),
            rounds=rounds,
        ),
        row(
            "  of which: parse (dict -> CaseEvent), p50",
            figures["parse"],
            "us",
            "json.loads of the event",
            figures["floor"],
            "(breakdown)",
            None,
        ),
    ]
    return rows, figures


# --- a case's history ------------------------------------------------------------------------------------


def _template(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def history_events(settings: Settings, case_id: str, count: int) -> list[dict[str, Any]]:
    """`count` events of one case, 30 s apart: created (high priority: both policies arm), then updates that
    pause and resume its resolution SLA, reassign it, and comments (every 4th event)."""
    created = _template("case-created.json")
    updated = _template("case-updated.json")
    comment = _template("related-item-comment.json")
    start = datetime.fromisoformat("2026-11-23T09:00:00.000+00:00")
    domain_arn = created["resources"][0]
    agents = [f"{a}{n}" for n, a in enumerate([created["detail"]["performedBy"]["user"]["userArn"][:-1]] * 3)]
    fields = copy.deepcopy(created["detail"]["case"]["fields"])
    for field_id in list(fields):
        if field_id not in settings.event_field_ids:
            del fields[field_id]
    events: list[dict[str, Any]] = []
    status = "open"
    for n in range(1, count + 1):
        at = start + timedelta(seconds=30 * (n - 1))
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/{n}"))
        if n == 1:
            event = copy.deepcopy(created)
            event["detail"]["case"]["fields"] = copy.deepcopy(fields)
        elif n % 4 == 0:
            event = copy.deepcopy(comment)
            item_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/item/{n}"))
            item = event["detail"]["relatedItem"]
            item.update(relatedItemId=item_id, caseId=case_id, createdDateTime=stamp)
            event["resources"] = [domain_arn, f"{domain_arn}/case/{case_id}/related-item/{item_id}"]
        else:
            event = copy.deepcopy(updated)
            changed = ["last_updated_datetime"]
            if n % 3 == 0:
                status = "pending-customer" if status == "open" else "open"
                changed.append("status")
            else:
                changed.append("assigned_user")
                fields["assigned_user"] = {"value": {"userArnValue": agents[n % len(agents)]}}
            fields["status"] = {"value": {"stringValue": status}}
            if "last_updated_datetime" in settings.event_field_ids:
                fields["last_updated_datetime"] = {"value": {"stringValue": stamp}}
            event["detail"]["case"]["fields"] = copy.deepcopy(fields)
            event["detail"]["changedFieldIds"] = changed
        detail = event["detail"]
        if "case" in detail:
            detail["case"]["caseId"] = case_id
            detail["case"]["createdDateTime"] = start.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            )
            event["resources"] = [domain_arn, f"{domain_arn}/case/{case_id}"]
        detail["approximateChangeTime"] = stamp
        event["id"] = event_id
        event["time"] = at.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        events.append(event)
    return events


def bench_by_history(
    settings: Settings, cases: int = 5, count: int = max(HISTORY_POINTS) + 2
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows, and {"1", "10", "100", "500"}: microseconds of a case's n-th event (median over cases)."""
    by_point: dict[int, list[float]] = {n: [] for n in HISTORY_POINTS}
    warmup = history_events(settings, str(uuid.uuid5(uuid.NAMESPACE_URL, "history-warmup")), 5)
    for case_no in range(cases + 1):  # case 0 warms up
        case_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"history-{case_no}"))
        timings = run_events(settings, history_events(settings, case_id, count), warmup=warmup)
        if not case_no:
            continue
        for n in HISTORY_POINTS:
            window = timings[max(1, n - 2) - 1 : n + 2] if n > 1 else timings[:1]
            by_point[n].append(median_of(window) * 1e6)
    figures = {str(n): median_of(samples) for n, samples in by_point.items()}
    first, last = figures["1"], figures[str(max(HISTORY_POINTS))]
    rows = [
        row(
            f"per-event cost of a case's {n}{_suffix(n)} event",
            figures[str(n)],
            "us",
            "the case's 1st event",
            first,
            "the 500th within 2x the 1st" if n == max(HISTORY_POINTS) else "(by history)",
            last <= 2 * first if n == max(HISTORY_POINTS) else None,
            cases=cases,
        )
        for n in HISTORY_POINTS
    ]
    return rows, figures


def _suffix(n: int) -> str:
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")


__all__ = ["HISTORY_POINTS", "bench_by_history", "bench_per_event", "event_world", "history_events"]
