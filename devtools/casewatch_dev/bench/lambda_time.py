"""Lambda time per invocation: requests x the latencies stated here + CPU scaled to the function's memory.

`lambda_ms_per_event_estimate` and the capacity model's Lambda limit (concurrency x duration) use it.

- **Latency per request** (`LATENCY_MS`): the time an invocation waits for AWS, per operation. DynamoDB's
  is AWS's documented "single-digit millisecond" for item reads and writes (5 ms here; batches and queries
  10 ms). The others have no published figure: they are assumptions of typical in-Region latency
  (SNS Publish, EventBridge PutEvents 20 ms; Scheduler 30 ms; SQS 10 ms; Cases 60 ms).
- **CPU**: measured per invocation on the moto backend (`casewatch_dev.bench.requests`: the function's
  thread time, moto's own work taken out: handler, adapters and the SDK's client side of each request),
  with one core of this machine taken as one Lambda vCPU, scaled to the function's memory: Lambda gives
  CPU in proportion to memory, 1,769 MB = 1 vCPU, so at 256 MB a CPU-second takes 1769/256 = 6.9 s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

FULL_VCPU_MB: Final = 1769
LATENCY_MS: Final[dict[str, float]] = {
    "dynamodb:GetItem": 5.0,
    "dynamodb:PutItem": 5.0,
    "dynamodb:UpdateItem": 5.0,
    "dynamodb:DeleteItem": 5.0,
    "dynamodb:Query": 10.0,
    "dynamodb:BatchGetItem": 10.0,
    "dynamodb:BatchWriteItem": 10.0,
    "dynamodb:TransactWriteItems": 10.0,
    "sns:Publish": 20.0,
    "sns:PublishBatch": 20.0,
    "events:PutEvents": 20.0,
    "scheduler:CreateSchedule": 30.0,
    "scheduler:DeleteSchedule": 30.0,
    "sqs:SendMessage": 10.0,
    "connectcases:GetCase": 60.0,
    "connectcases:SearchRelatedItems": 60.0,
    "connectcases:SearchCases": 60.0,
    "connectcases:SearchAllRelatedItems": 60.0,
}
DEFAULT_LATENCY_MS: Final = 20.0


def memory_mb() -> int:
    """The functions' memory (the stack's `CasewatchFunction.MEMORY_MB`, read without importing the CDK)."""
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[3] / "infra" / "constructs" / "function.py").read_text()
    found = re.search(r"MEMORY_MB\s*=\s*(\d+)", source)
    return int(found.group(1)) if found else 256


def cpu_scale(memory: int) -> float:
    """Seconds of Lambda time per CPU-second of one full core, at `memory` MB."""
    return max(1.0, FULL_VCPU_MB / memory)


def wait_ms(operations: Iterable[str]) -> float:
    return sum(LATENCY_MS.get(op, DEFAULT_LATENCY_MS) for op in operations)


def invocation_ms(operations: Iterable[str], cpu_s: float, memory: int) -> tuple[float, float]:
    """(waiting, CPU) milliseconds of one invocation."""
    return wait_ms(operations), cpu_s * 1000 * cpu_scale(memory)


def by_kind(invocations: Iterable[Any], memory: int) -> dict[str, dict[str, float]]:
    """Mean Lambda milliseconds per invocation of each kind: {"wait", "cpu", "total", "requests"}."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for invocation in invocations:
        ops = [f"{c.service}:{c.operation}" for c in invocation.calls]
        wait, cpu = invocation_ms(ops, invocation.cpu_s, memory)
        entry = sums[invocation.kind]
        entry[0] += wait
        entry[1] += cpu
        entry[2] += 1
        entry[3] += len(ops)
    return {
        kind: {
            "wait": round(w / n, 2),
            "cpu": round(c / n, 2),
            "total": round((w + c) / n, 2),
            "requests": round(r / n, 2),
        }
        for kind, (w, c, n, r) in sums.items()
    }


def per_handled_event(invocations: Iterable[Any], handled: int, memory: int) -> dict[str, float]:
    """Lambda milliseconds of every function per handled event: {"wait", "cpu", "total"}."""
    wait = cpu = 0.0
    for invocation in invocations:
        w, c = invocation_ms(
            [f"{x.service}:{x.operation}" for x in invocation.calls], invocation.cpu_s, memory
        )
        wait += w
        cpu += c
    if not handled:
        return {"wait": 0.0, "cpu": 0.0, "total": 0.0}
    return {
        "wait": round(wait / handled, 2),
        "cpu": round(cpu / handled, 2),
        "total": round((wait + cpu) / handled, 2),
    }


__all__ = [
    "FULL_VCPU_MB",
    "LATENCY_MS",
    "by_kind",
    "cpu_scale",
    "invocation_ms",
    "memory_mb",
    "per_handled_event",
]
