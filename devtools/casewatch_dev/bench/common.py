"""What every benchmark of `make bench` shares: the sample archive, rows, timing, Lambda-like logging."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

EVENTS = Path("events")
ARCHIVE = EVENTS / "archive"
FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"  # the function asset's folder


def row(  # noqa: PLR0917 - one table row, in the table's column order
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline: float | None,
    goal: str,
    met: bool | None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of bench-results.json's `results` (and of the printed table)."""
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline_name,
        "baseline_value": round(baseline, 3) if baseline is not None else None,
        "goal": goal,
        "met": met,
        **extra,
    }


def archive_events() -> list[tuple[str, dict[str, Any]]]:
    """(text, event) of each distinct valid event of the sample archive, in delivery order."""
    seen: set[str] = set()
    found = []
    for path in sorted(ARCHIVE.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("id") not in seen:
                seen.add(event["id"])
                found.append((line, event))
    return found


def archive_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads((ARCHIVE / "state" / "cases.json").read_text())
    return state


def event_time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


def median_of(samples: list[float]) -> float:
    return statistics.median(samples) if samples else 0.0


def percentile(samples: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `samples` (0 for none)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def lambda_like_logging() -> Iterator[None]:
    """The Powertools logger at INFO (Lambda's default for casewatch's functions) writing its JSON lines to
    a discarded stream, EMF metric lines (stdout) discarded: the handlers do all their logging work."""
    import logging

    from casewatch.observability import logger

    handler = logger.registered_handler
    saved = (logger.log_level, getattr(handler, "stream", None))
    logger.setLevel(logging.INFO)
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(io.StringIO())
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(saved[0])
        if isinstance(handler, logging.StreamHandler) and saved[1] is not None:
            handler.setStream(saved[1])


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` takes (wall clock; the machine may be shared: callers repeat and take medians)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


__all__ = [
    "ARCHIVE",
    "EVENTS",
    "FUNCTIONS",
    "archive_events",
    "archive_state",
    "event_time",
    "lambda_like_logging",
    "median_of",
    "percentile",
    "row",
    "timed",
]
