"""Offline replay throughput of the local pipeline: `replay_events_per_s_memory` and `_moto`.

The whole pipeline, as `casewatch replay` runs it (routing, the handlers, SLA timers firing and the change
feed polling on the virtual clock, the clock drained at the end): the sample archive on the memory backend
(median of 3 runs) and a generated day (`casewatch generate`, about 2,000 events: the same day's
background with more events), the events of each per wall-clock second of `replay()`. The moto figure is
the moto replay of `casewatch_dev.bench.requests` (its request hooks cost well under 1% of moto's time).
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from casewatch.settings import Settings
from casewatch_dev.bench.common import ARCHIVE, row


def replay_report(settings: Settings, paths: list[str], backend: str) -> Any:
    from casewatch_dev.replay import ReplayOptions, find_state, load_events, run_offline

    state_path = find_state(paths)
    state = json.loads(state_path.read_text()) if state_path else None
    with contextlib.redirect_stderr(io.StringIO()):
        return run_offline(settings, load_events(paths), ReplayOptions(backend=backend), state)


def generated_day(settings: Settings, events: int, seed: int = 8) -> Path:
    from casewatch_dev.generate import run_day, write_day

    out = Path(tempfile.mkdtemp(prefix="casewatch-bench-"))
    write_day(run_day(settings, max(4, round(events / 6.1)), seed=seed), out, "day")
    return out


def bench_throughput(
    settings: Settings, moto_rate: float, generated_events: int = 2000
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    memory = [replay_report(settings, [str(ARCHIVE)], "memory") for _ in range(3)]
    rate = statistics.median(r.events_per_second for r in memory)
    day = generated_day(settings, generated_events)
    day_runs = [replay_report(settings, [str(day)], "memory") for _ in range(2)]
    day_rate = max(r.events_per_second for r in day_runs)
    figures = {"sample": rate, "generated": day_rate, "moto": moto_rate}
    rows = [
        row(
            "offline replay throughput, memory backend (sample archive)",
            rate,
            "events/s",
            "moto backend, same archive",
            moto_rate,
            ">= 1,000 events/s",
            rate >= 1000,
            events=memory[0].events,
            reconciliations=memory[0].reconciliations,
        ),
        row(
            f"offline replay throughput, memory backend (generated day, {day_runs[0].events} events)",
            day_rate,
            "events/s",
            "moto backend, sample archive",
            moto_rate,
            ">= 1,000 events/s",
            day_rate >= 1000,
            events=day_runs[0].events,
            reconciliations=day_runs[0].reconciliations,
        ),
    ]
    return rows, figures


__all__ = ["bench_throughput", "generated_day", "replay_report"]
