"""Requests, write units and Lambda time per handled event **at a steady rate**, not over the sample archive.

The sample archive spreads 267 events over 17 hours: at cdk.json's feed period (1 minute) it runs about
1,000 polls for 265 handled events, so its per-event figures are mostly the polls' (a poll with nothing
new still reads its position, searches twice, sweeps the `due` index and moves its watermark). At a
steady rate `r` a poll serves `r x P` events, and what it reads grows with them. Per handled event:

- the events and the SLA timers: as measured on the moto run (`casewatch_dev.bench.requests`), every
  invocation but the polls, over the handled events;
- the feed: one poll's requests at `r`, over `r x P` events. A poll's own requests (its position read,
  the `due` Query, the watermark write) are measured; its searches are the capacity model's pages at `r`
  (`Model.feed_pages`), its batch reads one per 100 changed cases, and each case it applies costs what a
  breach timer invocation costs (the same read, write, sends and completion: the model's assumption).
  Its Lambda time is the measured poll's plus the model's poll time at `r` over the model's for an empty
  poll; its write units the measured poll's plus the applies'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from casewatch_dev.bench.accounting import Invocation, minimum_requests
from casewatch_dev.bench.lambda_time import by_kind, per_handled_event
from casewatch_dev.capacity.model import Model

POLL = "reconcile_run"
POLL_OWN = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}  # position, due sweep, watermark


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def at_rate(
    log: Sequence[Invocation], handled: int, model: Model, memory: int, rate: float
) -> dict[str, Any]:
    """Per handled event at `rate` events/s: {"rate", "requests", "minimum", "wcu", "lambda_ms"}."""
    polls = [i for i in log if i.kind == POLL]
    others = [i for i in log if i.kind != POLL]
    per_poll = rate * model.period_s
    apply_kind = by_kind([i for i in log if i.kind == "breach_timer"], memory).get("breach_timer", {})
    apply_requests = apply_kind.get("requests", 5.0)
    apply_wcu = _mean([sum(c.wcu + c.gsi_wcu for c in i.calls) for i in log if i.kind == "breach_timer"])
    own = _mean([sum(1 for c in i.calls if f"{c.service}:{c.operation}" in POLL_OWN) for i in polls])
    case_pages, item_pages = model.feed_pages(rate)
    batch_reads = math.ceil(model.demand.case_results * per_poll / 100)
    applies = (model.demand.feed_applies + model.demand.feed_due) * per_poll
    poll_requests = own + case_pages + item_pages + batch_reads + applies * apply_requests
    poll_wcu = _mean([sum(c.wcu + c.gsi_wcu for c in i.calls) for i in polls]) + applies * apply_wcu
    measured_poll_ms = by_kind(polls, memory).get(POLL, {}).get("total", 0.0)
    poll_ms = measured_poll_ms + (model.poll_seconds(rate) - model.poll_seconds(0.0)) * 1000
    made = sum(len(i.calls) for i in others)
    floor = sum(minimum_requests(i) for i in others)
    wcu = sum(c.wcu + c.gsi_wcu for i in others for c in i.calls)
    lambda_ms = per_handled_event(others, handled, memory)["total"]
    return {
        "rate_events_per_s": rate,
        "events_per_poll": round(per_poll, 1),
        "poll_requests": round(poll_requests, 1),
        "requests": round(made / handled + poll_requests / per_poll, 2),
        "minimum": round(floor / handled + poll_requests / per_poll, 2),
        "wcu": round(wcu / handled + poll_wcu / per_poll, 2),
        "lambda_ms": round(lambda_ms + poll_ms / per_poll, 1),
    }


__all__ = ["at_rate"]
