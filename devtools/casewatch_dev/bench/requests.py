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
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from casewatch.settings import Settings
from casewatch_dev.bench.common import ARCHIVE, archive_state

KINDS = (
    "case_created",
    "case_updated",
    "case_deleted",
    "comment",
    "contact",
    "file",
    "sla_item",
    "breach_timer",
    "warning_timer",
    "reconcile_run",
)
ALL = "all_per_handled_event"
DUE_INDEX_ATTRIBUTES = ("due_shard", "due_at", "dom")


def invocation_kind(function: str, event: dict[str, Any]) -> str:
    """The kind an invocation's requests are filed under."""
    if function == "reconcile":
        return "reconcile_run"
    if function == "sla-timer":
        return "warning_timer" if event.get("kind") == "warning" else "breach_timer"
    found = event.get("detail")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    event_type = str(detail.get("eventType", ""))
    if event_type.startswith("CASE."):
        return {"CASE.CREATED": "case_created", "CASE.DELETED": "case_deleted"}.get(
            event_type, "case_updated"
        )
    related = detail.get("relatedItem")
    item: dict[str, Any] = related if isinstance(related, dict) else {}
    kind = str(item.get("relatedItemType", "")).lower()
    return {"sla": "sla_item"}.get(kind, kind or "related_item")


@dataclass
class Call:
    """One API call of an invocation: what it was, and what it cost in write units."""

    service: str
    operation: str
    purpose: str  # what a DynamoDB call was for (case read, state write, claim done, ...), else the op
    wcu: int = 0
    gsi_wcu: int = 0
    failed: str | None = None  # the error code, if it failed


@dataclass
class Invocation:
    kind: str
    calls: list[Call] = field(default_factory=list)
    cpu_s: float = 0.0  # the function's own CPU time (thread time, moto's server side taken out)

    def count(self, purpose: str) -> int:
        return sum(1 for c in self.calls if c.purpose == purpose)


def purpose_of(operation: str, params: dict[str, Any]) -> str:
    """What a DynamoDB request of the case store is for (from its key and expressions)."""
    key = params.get("Key") or params.get("Item") or {}
    pk = str((key.get("pk") or {}).get("S", ""))
    if operation == "GetItem":
        return "watermark read" if pk.startswith("FEED#") else "case read"
    if operation == "BatchGetItem":
        return "case read (batch)"
    if operation == "Query":
        return "due sweep" if params.get("IndexName") else "log read"
    if operation == "BatchWriteItem":
        return "log write"
    if operation == "PutItem":
        return "watermark write" if pk.startswith("FEED#") else "state write"
    if operation == "UpdateItem":
        expression = str(params.get("UpdateExpression", ""))
        if expression.startswith("SET claims.#claim.d") or expression.startswith("SET claims.#claim.o"):
            return "claim done"
        if expression.startswith("REMOVE claims."):
            return "claims pruned"
        return "state write"
    return operation


class RequestRecorder:
    """Counts every API call of the functions' boto3 clients by invocation kind (see the module doc)."""

    def __init__(self, table_name: str, *, account: str, region: str) -> None:
        self.table_name = table_name
        self._account, self._region = account, region
        self.invocations: list[Invocation] = []
        self._current: Invocation | None = None
        self.server_s = 0.0

    # -- attaching -------------------------------------------------------------------------------
    def attach(self, client: Any) -> Any:
        events = client.meta.events
        # `before-parameter-build` sees the API's own parameters (`before-call` sees the serialized request).
        events.register("before-parameter-build", self._before_call, unique_id="casewatch-bench-before")
        events.register("after-call", self._after_call, unique_id="casewatch-bench-after")
        return client

    @contextlib.contextmanager
    def attached_to_new_clients(self) -> Iterator[None]:
        """Attach to every boto3 client created while inside: each function of the local pipeline makes its
        own clients (its container's, under its role), on its first invocation."""
        from botocore.client import ClientCreator

        original = ClientCreator.create_client
        recorder = self

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            return recorder.attach(original(creator, *args, **kwargs))

        ClientCreator.create_client = create_client  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            ClientCreator.create_client = original  # type: ignore[method-assign]

    @contextlib.contextmanager
    def invocation(self, kind: str) -> Iterator[Invocation]:
        invocation = Invocation(kind)
        self._current = invocation
        server_before = self.server_s
        started = time.thread_time()
        try:
            yield invocation
        finally:
            invocation.cpu_s = time.thread_time() - started - (self.server_s - server_before)
            self._current = None
            self.invocations.append(invocation)

    @contextlib.contextmanager
    def moto_timed(self) -> Iterator[None]:
        """Account moto's own work (it answers in this thread, in its `before-send` stubber) apart, so an
        invocation's CPU is the function's: handler, adapters and the SDK's client side. The Cases
        emulator answers in its server's thread: not counted either."""
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        recorder = self

        def timed(stubber: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(stubber, *args, **kwargs)
            finally:
                recorder.server_s += time.thread_time() - started

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            BotocoreStubber.__call__ = original  # type: ignore[method-assign]

    # -- the hooks ----------------------------------------------------------------------------------
    def _before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self._current is None:
            return
        service = model.service_model.service_name
        if service == "dynamodb" and model.name in _WRITES:
            context["casewatch_bench_items"] = [
                (key, self._item(key)) for key in _written_keys(model.name, params)
            ]
        context["casewatch_bench_call"] = (service, model.name, params)

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        found = context.pop("casewatch_bench_call", None)
        if found is None or self._current is None:
            return
        service, operation, params = found
        error = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
        call = Call(service, operation, purpose_of(operation, params) if service == "dynamodb" else operation)
        call.failed = str(error) if error else None
        before = context.pop("casewatch_bench_items", None)
        if before is not None:
            for key, old in before:
                new = self._item(key)
                size = max(_size(old), _size(new))
                units = max(1, math.ceil(size / 1024))
                call.wcu += units * (2 if operation == "TransactWriteItems" else 1)
                call.gsi_wcu += _index_writes(old, new)
        self._current.calls.append(call)

    # -- moto's table -------------------------------------------------------------------------------
    def _item(self, key: tuple[str, str]) -> Any:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = dynamodb_backends[self._account][self._region].get_table(self.table_name)
        return table.get_item(DynamoType({"S": key[0]}), DynamoType({"S": key[1]}))


_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def _written_keys(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    def key_of(attrs: dict[str, Any]) -> tuple[str, str]:
        return str(attrs["pk"]["S"]), str(attrs["sk"]["S"])

    if operation in ("UpdateItem", "DeleteItem"):
        return [key_of(params["Key"])]
    if operation == "PutItem":
        return [key_of(params["Item"])]
    keys = []
    if operation == "BatchWriteItem":
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                if "PutRequest" in request:
                    keys.append(key_of(request["PutRequest"]["Item"]))
                elif "DeleteRequest" in request:
                    keys.append(key_of(request["DeleteRequest"]["Key"]))
    for item in params.get("TransactItems", []) if operation == "TransactWriteItems" else []:
        for action in item.values():
            keys.append(key_of(action.get("Key") or action.get("Item")))
    return keys


def _size(item: Any) -> int:
    return int(item.size()) if item is not None else 0


def _index_entry(item: Any) -> tuple[Any, ...] | None:
    if item is None or "due_shard" not in item.attrs or "due_at" not in item.attrs:
        return None
    return tuple(item.attrs[a].value if a in item.attrs else None for a in DUE_INDEX_ATTRIBUTES)


def _index_writes(old: Any, new: Any) -> int:
    before, after = _index_entry(old), _index_entry(new)
    if before == after:
        return 0
    if before is None or after is None:
        return 1
    return 2 if before[:2] != after[:2] else 1


# --- the floor -----------------------------------------------------------------------------------------


def minimum_requests(invocation: Invocation) -> int:
    """The requests the invocation would need at the floor (see the module docstring)."""
    calls = invocation.calls
    by_purpose = Counter(c.purpose for c in calls)
    publishes = by_purpose["Publish"]
    floor = sum(
        n
        for purpose, n in by_purpose.items()
        if purpose
        not in {
            "Publish",
            "case read",
            "case read (batch)",
            "log write",
            "due sweep",
            "DeleteSchedule",
            "claims pruned",
        }
    )
    floor += math.ceil(publishes / 10)
    floor += sum(1 for c in calls if c.purpose == "DeleteSchedule" and c.failed is None)
    if invocation.kind == "reconcile_run":
        floor += by_purpose["case read (batch)"]  # the batch reads as made; no read again per case
        floor += min(1, by_purpose["due sweep"])
    else:
        floor += min(1, by_purpose["case read"] + by_purpose["case read (batch)"])
    return floor


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


__all__ = [
    "ALL",
    "KINDS",
    "RequestCounts",
    "RequestRecorder",
    "count_requests",
    "invocation_kind",
    "minimum_requests",
]
