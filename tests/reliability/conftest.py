"""The reliability suite: fault-injected replays of generated days through the local pipeline.

Sizes come from the environment, so `make test` runs a small day and `make reliability` the full one:
- `CASEWATCH_RELIABILITY_EVENTS` (default 1000): the memory-backend invariant run;
- `CASEWATCH_RELIABILITY_MOTO_EVENTS` (default 150): the moto-backend run and the backend contract.
Every test here carries the `reliability` marker (`pytest -m reliability` runs only these).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: fault-injected replays of generated days (tests/reliability)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
            # an invocation killed by a simulated timeout flushes no metrics: Powertools warns, as expected
            item.add_marker(pytest.mark.filterwarnings("ignore:No application metrics to publish"))


from tests.reliability.scenario import (  # noqa: E402
    ISSUE_FAULTS,
    SMALL_DAY_FAULTS,
    Day,
    Run,
    generate_day,
    replay_clean_and_faulty,
    size_from_env,
)

MEMORY_EVENTS = size_from_env("CASEWATCH_RELIABILITY_EVENTS", 1000)
MOTO_EVENTS = size_from_env("CASEWATCH_RELIABILITY_MOTO_EVENTS", 150)
TWO_CORES = (os.cpu_count() or 1) >= 2  # the in-order run then goes beside the faulty one
_RUNS: dict[str, tuple[Day, Run, Run]] = {}


def issue_scenario(backend: str) -> tuple[Day, Run, Run]:
    """(day, in-order run, faulty run) of the issue's scenario on `backend`, computed once per session."""
    if backend not in _RUNS:
        size = MEMORY_EVENTS if backend == "memory" else MOTO_EVENTS
        day = generate_day(size)
        faults = ISSUE_FAULTS if size >= 500 else SMALL_DAY_FAULTS
        clean, faulty = replay_clean_and_faulty(day, backend=backend, faults=faults, parallel=TWO_CORES)
        _RUNS[backend] = (day, clean, faulty)
    return _RUNS[backend]


@pytest.fixture(scope="module", params=["memory", "moto"])
def issue_runs(request: pytest.FixtureRequest) -> tuple[Day, Run, Run]:
    return issue_scenario(str(request.param))
