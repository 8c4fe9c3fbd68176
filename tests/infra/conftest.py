"""The synthesized stacks, once per test session (synthesis takes seconds): `tests/infra/synth.py`.

`synth` is the repository's cdk.json; `variant` the second synthesis: `-c casewatch.<setting>=...`
overrides as the CLI gives them (strings), for the optional parts and the other choices, and the largest
configuration the README promises (400 event fields, a field name for each custom one).
"""

from __future__ import annotations

import json

import pytest

from casewatch.settings import SYSTEM_FIELD_IDS
from tests.infra.synth import Synthesized, synthesize

MANY_CUSTOM_FIELDS = [f"{i:08x}-1b2c-4d3e-8f4a-5b6c7d8e9f0a" for i in range(400 - len(SYSTEM_FIELD_IDS))]
VARIANT_OVERRIDES = {
    "casewatch.domain_id": "0123456789",  # looks like a number: must stay a string
    "casewatch.capture_events": "true",
    "casewatch.alarm_email": "ops@example.com",
    "casewatch.removal_policy": "destroy",
    "casewatch.reserved_concurrency": "3",
    "casewatch.archive_retention_days": "0",
    "casewatch.auto_include_fields": "All",
    "casewatch.field_names": json.dumps(
        {f"custom-field-{i:03d}": f for i, f in enumerate(MANY_CUSTOM_FIELDS)}
    ),
    "casewatch.event_fields": json.dumps(
        sorted(SYSTEM_FIELD_IDS) + [f"custom-field-{i:03d}" for i in range(len(MANY_CUSTOM_FIELDS))]
    ),
}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk-out-variant"), VARIANT_OVERRIDES)
