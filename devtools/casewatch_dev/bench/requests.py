"""AWS requests and DynamoDB write units per event kind, counted on the real boto3 clients.

The sample archive is replayed through the local pipeline on the **moto** backend (every adapter on its
real boto3 client, the Cases emulator over HTTP), its virtual clock firing SLA timers and running the
change feed on schedule. A `RequestRecorder` registers botocore `before-parameter-build` and `after-call`
hooks on every client the functions use and files each API call under the *kind* of the invocation making it:
`case_created`, `case_updated`, `case_deleted` (case-changed, by eventType), `comment`, `contact`,
`file`, `sla_item` (related-item-created, by relatedItemType), `breach_timer`, `warning_timer`
(sla-timer, by the timer's kind) and `reconcile_run` (one poll of the change feed).

**Write units.** Each DynamoDB write is charged as on-demand DynamoDB charges it: the larger of the item's
size before and after the write (read from moto's table around the call), 1 WCU per KB rounded up
(a delete: the deleted item's size; a write whose condition fails: still charged), x2 for a transactional
write; plus the `due` index's writes when the write changes what the index holds for the item (its keys
`due_shard`/`due_at` or the projected `dom`): 1 WCU to add or remove the entry, 2 when its key changes
(a delete and a put; an index entry is well under 1 KB).

**The floor** (`minimum_requests`): what an invocation would need in a design with the same guarantees —
one claim per trigger in the state's conditional write, one notification per (event, rule), one bus
event per event, state equal to in-order delivery — counted from what the invocation did (see the README's
table for each kind's justification):

- one read of the case (with the watermark for a timer), none again for a case the feed read in a batch;
- the state write (and any retried after a lost race), with the new observation items in the same
  request (TransactWriteItems: one request, at twice the write units);
- notifications in SNS PublishBatch requests of up to 10, the bus events in one PutEvents, the claim
  marked done after any side effect (one write), timers set as made (Scheduler has no batch API) and
  cancelled only when pending (no DeleteSchedule that finds a timer already fired);
- Cases requests as made (enrichment asks only for what the event lacks; searches read pages of the
  largest size the adapter uses), a log re-read as made (out-of-order observations need it);
- per poll: the watermark read and write, the searches and batch reads as made, one Query of the `due`
  index (one index partition holds the due updates far beyond the rates modelled).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from casewatch.settings import Settings
from casewatch_dev.bench.accounting import (
    ALL,
    KINDS,
    Invocation,
    RequestRecorder,
    invocation_kind,
    minimum_requests,
)
from casewatch_dev.bench.common import ARCHIVE, archive_state

# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class RequestCounts:
    per_kind: dict[str, float]
    minimum: dict[str, float]
    invocations: dict[str, int]
    by_operation: dict[str, dict[str, float]]  # kind -> "service:operation" -> per invocation
    wcu_per_event: float
    gsi_wcu_per_event: float
    wcu_by_purpose: dict[str, float]  # per handled event
    handled: int
    report: dict[str, Any]
    invocation_log: list[Invocation]


def count_requests(settings: Settings) -> RequestCounts:
    """Replay the sample archive on the moto backend, counting every request (see the module doc)."""
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.pipeline import LocalPipeline
    from casewatch_dev.pipeline.context import ACCOUNT, REGION, LocalResources
    from casewatch_dev.replay import ReplayOptions, _event_time, load_events, replay

    raws = load_events([str(ARCHIVE)])
    first = min(t for raw in raws if (t := _event_time(raw)) is not None)
    options = ReplayOptions(backend="moto")
    level = os.environ.get("CASEWATCH_LOCAL_LOG_LEVEL")
    os.environ["CASEWATCH_LOCAL_LOG_LEVEL"] = "INFO"  # as in Lambda: the functions log at INFO (discarded)
    recorder = RequestRecorder(LocalResources().state_table, account=ACCOUNT, region=REGION)
    with (
        _restore_env("CASEWATCH_LOCAL_LOG_LEVEL", level),
        contextlib.redirect_stderr(io.StringIO()),
        recorder.attached_to_new_clients(),
        LocalPipeline(
            settings,
            clock=VirtualClock(first - timedelta(minutes=1)),
            cases_state=archive_state(),
            backend="moto",
        ) as pipeline,
    ):
        recorder.table_name = pipeline.resources.state_table
        invoke = pipeline.invoke

        def counted(spec: Any, event: dict[str, Any]) -> Any:
            name = spec if isinstance(spec, str) else spec.name
            with recorder.invocation(invocation_kind(name, event)):
                return invoke(spec, event)

        pipeline.invoke = counted  # type: ignore[method-assign]
        with recorder.moto_timed():
            report = replay(raws, pipeline, options)
    return summarize(recorder.invocations, report.handled, report.as_dict())


def wcu_by_history(settings: Settings, points: tuple[int, ...] = (1, 10, 100, 500)) -> dict[str, float]:
    """Write units of a case's n-th event (its event invocation's writes) on the moto backend: the case of
    `handler_cost.history_events`, delivered in order (its timers fire on the way). The case's item holds
    the claims of its triggers (up to `MAX_CLAIMS`), so what an update of it costs grows with them."""
    from casewatch_dev.bench.common import event_time
    from casewatch_dev.bench.handler_cost import history_events
    from casewatch_dev.clock import VirtualClock
    from casewatch_dev.pipeline import LocalPipeline
    from casewatch_dev.pipeline.context import ACCOUNT, REGION

    events = history_events(settings, "9d3c1b2a-4e5f-4a6b-8c7d-0e1f2a3b4c5d", max(points))
    recorder = RequestRecorder("", account=ACCOUNT, region=REGION)
    units: list[int] = []
    with (
        contextlib.redirect_stderr(io.StringIO()),
        recorder.attached_to_new_clients(),
        LocalPipeline(
            settings, clock=VirtualClock(event_time(events[0]) - timedelta(minutes=1)), backend="moto"
        ) as pipeline,
        recorder.moto_timed(),
    ):
        recorder.table_name = pipeline.resources.state_table
        invoke = pipeline.invoke

        def counted(spec: Any, event: dict[str, Any]) -> Any:
            name = spec if isinstance(spec, str) else spec.name
            with recorder.invocation(invocation_kind(name, event)) as invocation:
                result = invoke(spec, event)
            if name in ("case-changed", "related-item-created"):
                units.append(sum(c.wcu + c.gsi_wcu for c in invocation.calls))
            return result

        pipeline.invoke = counted  # type: ignore[method-assign]
        for event in events:
            pipeline.deliver(event, at=event_time(event))
    return {str(n): float(units[n - 1]) for n in points if n <= len(units)}


@contextlib.contextmanager
def _restore_env(name: str, value: str | None) -> Iterator[None]:
    try:
        yield
    finally:
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def summarize(invocations: list[Invocation], handled: int, report: dict[str, Any]) -> RequestCounts:
    made: dict[str, int] = Counter()
    floor: dict[str, int] = Counter()
    runs: dict[str, int] = Counter()
    operations: dict[str, Counter[str]] = defaultdict(Counter)
    wcu = gsi = 0
    by_purpose: Counter[str] = Counter()
    for invocation in invocations:
        runs[invocation.kind] += 1
        made[invocation.kind] += len(invocation.calls)
        floor[invocation.kind] += minimum_requests(invocation)
        for call in invocation.calls:
            operations[invocation.kind][f"{call.service}:{call.operation}"] += 1
            wcu += call.wcu
            gsi += call.gsi_wcu
            by_purpose[call.purpose] += call.wcu
        by_purpose["due index"] += sum(c.gsi_wcu for c in invocation.calls)
    per_kind = {kind: round(made[kind] / runs[kind], 2) if runs[kind] else 0.0 for kind in KINDS}
    minimum = {kind: round(floor[kind] / runs[kind], 2) if runs[kind] else 0.0 for kind in KINDS}
    per_kind[ALL] = round(sum(made.values()) / handled, 2) if handled else 0.0
    minimum[ALL] = round(sum(floor.values()) / handled, 2) if handled else 0.0
    return RequestCounts(
        per_kind=per_kind,
        minimum=minimum,
        invocations={kind: runs[kind] for kind in KINDS},
        by_operation={
            kind: {op: round(n / runs[kind], 3) for op, n in sorted(ops.items())}
            for kind, ops in operations.items()
        },
        wcu_per_event=round((wcu + gsi) / handled, 2) if handled else 0.0,
        gsi_wcu_per_event=round(gsi / handled, 2) if handled else 0.0,
        wcu_by_purpose={k: round(v / handled, 2) for k, v in by_purpose.most_common() if v}
        if handled
        else {},
        handled=handled,
        report=report,
        invocation_log=invocations,
    )


__all__ = ["ALL", "KINDS", "RequestCounts", "count_requests", "summarize", "wcu_by_history"]
