"""`make bench`: measure, write bench-results.json, print a table. Goals are reported, not tuned for."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from casewatch.models.events import parse_case_event

EVENTS = Path("events")
RESULTS = Path("bench-results.json")


def per_call_us(fn: Callable[[], object], *, repeat: int = 7, number: int = 2000) -> list[float]:
    """Microseconds per call, one figure per round (the median of rounds is reported)."""
    fn()  # warm up
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return rounds


def bench_parse() -> dict[str, Any]:
    texts = [p.read_text() for p in sorted(EVENTS.glob("*.json"))]
    dicts = [json.loads(t) for t in texts]
    parse = per_call_us(lambda: [parse_case_event(d) for d in dicts])
    floor = per_call_us(lambda: [json.loads(t) for t in texts])
    n = len(texts)
    p50, floor_p50 = statistics.median(parse) / n, statistics.median(floor) / n
    return {
        "name": "parse one event (dict -> CaseEvent)",
        "value_us": round(p50, 2),
        "baseline": "json.loads of the same event",
        "baseline_us": round(floor_p50, 2),
        "goal": "< 100 us",
        "met": p50 < 100,
    }


def main() -> int:
    rows = [bench_parse()]
    RESULTS.write_text(
        json.dumps(
            {"python": platform.python_version(), "machine": platform.machine(), "results": rows}, indent=2
        )
        + "\n"
    )
    print(f"{'benchmark':<42} {'value':>12} {'baseline':>12}  goal        met")
    for row in rows:
        print(
            f"{row['name']:<42} {row['value_us']:>9.1f} us {row['baseline_us']:>9.1f} us  "
            f"{row['goal']:<11} {'yes' if row['met'] else 'NO'}"
        )
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
