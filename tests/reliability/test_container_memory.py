"""One container processing a long stream of events keeps its memory flat (issue 11).

The container is what a Lambda execution environment keeps between invocations: the apps bootstrap
builds, their settings, and the module state of casewatch (Powertools' logger and metrics, caches). Its
caches bounded by construction (the time formatters' LRU caches, by entries) are checked against their
bounds; everything else it holds is measured by walking what it references, after a warm-up and again
at the end, and must not grow. What the AWS stand-ins keep (the case store with its records, claims and
observations, queues) is AWS's, not the container's; the logging root and manager are the runtime's
(here pytest's log capture): neither is walked.

Size: `CASEWATCH_RELIABILITY_CONTAINER_EVENTS` (default 2,000; `make reliability`: 50,000).
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
import types
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from casewatch.bootstrap import EventApp, build_event_app
from casewatch.handlers import case_changed, related_item_created
from casewatch.topology import CASE_CHANGED, RELATED_ITEM_CREATED_FN
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.ports import DictCasesReader
from tests.apps import LambdaContext, memory_adapters
from tests.builders import T0, case_event_raw, related_raw
from tests.reliability.scenario import SETTINGS, size_from_env

EVENTS = size_from_env("CASEWATCH_RELIABILITY_CONTAINER_EVENTS", 2_000)
CASES = 40
EVENTS_PER_CASE = 25
PRIORITY = SETTINGS.field_id("priority")
STATUSES = ("open", "pending-customer", "open", "closed", "open")
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def stream(count: int) -> Iterator[dict[str, Any]]:
    """A busy day that never ends: `CASES` cases open at a time, each created, then updated or commented
    on (`EVENTS_PER_CASE` events in all), then the next `CASES` cases."""
    block = CASES * EVENTS_PER_CASE
    for n in range(count):
        generation, position = divmod(n, block)
        step, slot = divmod(position, CASES)
        case_id = f"case-{generation:05d}-{slot:02d}"
        at = T0 + timedelta(seconds=30 * n)
        if step == 0:
            yield case_event_raw(
                "CASE.CREATED", case_id, at, {"status": "open", PRIORITY: "high" if slot % 3 else "low"}
            )
        elif n % 2:
            status = STATUSES[step % len(STATUSES)]
            yield case_event_raw("CASE.UPDATED", case_id, at, {"status": status}, changed=["status"])
        else:
            yield related_raw(case_id, at, "Comment", f"cm-{n}", {"comment": {"body": "noted"}})


def retained(roots: Iterable[Any], stop: Iterable[Any]) -> int:
    """Bytes of every object reachable from `roots`, not through `stop` (nor through types, modules,
    functions: code does not grow)."""
    seen = {id(obj) for obj in stop}
    pending = list(roots)
    total = 0
    while pending:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        pending.extend(gc.get_referents(obj))
    return total


def casewatch_module_state() -> list[Any]:
    """The values of casewatch's module globals (Powertools' logger and metrics among them)."""
    return [
        value
        for name, module in list(sys.modules.items())
        if name == "casewatch" or name.startswith("casewatch.")
        for value in vars(module).values()
        if not isinstance(value, _OPAQUE)
    ]


def test_one_container_keeps_its_memory_flat() -> None:
    clock = VirtualClock(T0 - timedelta(minutes=1))
    aws = memory_adapters(clock, SETTINGS, cases=DictCasesReader())
    adapters = aws.adapters
    apps: dict[Any, EventApp] = {
        case_changed.handler: build_event_app(CASE_CHANGED, SETTINGS, adapters),
        related_item_created.handler: build_event_app(RELATED_ITEM_CREATED_FN, SETTINGS, adapters),
    }
    # AWS's side: the stores, queues and clients the adapters stand for.
    aws_side = [
        adapters.cases,
        adapters.cases_slas,
        adapters.search,
        adapters.store,
        adapters.feed,
        adapters.clock,
        adapters.metrics,
        aws.sns,
        aws.events,
        aws.sqs,
        aws.scheduler,
        logging.root,
        logging.Logger.manager,  # every logger of the process, pytest's capturing ones among them
    ]
    lru_caches = {  # the bounded ones (`functools.cache`s, of settings and clients, are walked)
        id(v): v
        for v in casewatch_module_state()
        if isinstance(v, functools._lru_cache_wrapper) and v.cache_info().maxsize is not None
    }
    aws_side += lru_caches.values()  # bounded by entries: checked below

    def measure() -> int:
        gc.collect()
        return retained([*apps.values(), *casewatch_module_state()], aws_side)

    warm_up = min(EVENTS // 2, 5_000)  # the LRU caches are full by then
    outcomes: dict[str, int] = {}
    before = 0
    for n, raw in enumerate(stream(EVENTS)):
        if n == warm_up:
            before = measure()
        handler = (
            case_changed.handler
            if raw["detail"]["eventType"].startswith("CASE.")
            else related_item_created.handler
        )
        clock.set(max(clock.now(), T0 + timedelta(seconds=30 * n)))
        result = handler(raw, LambdaContext(), app=apps[handler])
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
        if n % 500 == 0:  # subscribers read their queues
            aws.sns.take()
            aws.events.take()
    after = measure()
    assert outcomes == {"handled": EVENTS}
    assert lru_caches and all(
        c.cache_info().currsize <= (c.cache_info().maxsize or 0) for c in lru_caches.values()
    )
    assert aws.store.commits >= EVENTS  # every event was applied (the store is AWS's: not walked)
    growth = after - before
    print(
        f"\n{EVENTS} events: the container held {before / 1024:.0f} KiB after {warm_up}, {after / 1024:.0f} KiB at the end"
    )
    assert growth < 16 * 1024, f"{growth} bytes more after {EVENTS - warm_up} more events"
