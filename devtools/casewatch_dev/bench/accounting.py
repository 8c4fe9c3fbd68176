"""The request accounting of `make bench`: which kind of invocation a request belongs to, what a DynamoDB
request is for, what a write costs in write units, and the floor of a design with the same guarantees.
See `casewatch_dev.bench.requests` for the run and the definitions."""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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


__all__ = [
    "ALL",
    "KINDS",
    "Call",
    "Invocation",
    "RequestRecorder",
    "invocation_kind",
    "minimum_requests",
    "purpose_of",
]
