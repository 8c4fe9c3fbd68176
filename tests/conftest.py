"""Shared fixtures: the `events/` corpus drives every suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SAMPLE_FILES = sorted(p for p in EVENTS.glob("*.json"))
INVALID_FILES = sorted((EVENTS / "invalid").glob("*.json"))


def load_event(name: str) -> dict[str, Any]:
    """A sample event by file stem, e.g. `load_event("case-created")`."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


@pytest.fixture
def sample() -> Any:
    return load_event
