"""The reliability suite: fault-injected replays of generated days through the local pipeline.

Sizes come from the environment, so `make test` runs a small day and `make reliability` the full one:
- `CASEWATCH_RELIABILITY_EVENTS` (default 1000): the memory-backend invariant run;
- `CASEWATCH_RELIABILITY_MOTO_EVENTS` (default 150): the moto-backend run and the backend contract;
- `CASEWATCH_RELIABILITY_CONTAINER_EVENTS` (default 2,000; 50,000 in `make reliability`): one container's
  memory (test_container_memory.py).
Every test here carries the `reliability` marker (tests/conftest.py: by directory).
"""

from __future__ import annotations

import pytest

from tests.reliability.scenario import Day, Run, issue_scenario


@pytest.fixture(scope="module", params=["memory", "moto"])
def issue_runs(request: pytest.FixtureRequest) -> tuple[Day, Run, Run]:
    return issue_scenario(str(request.param))
