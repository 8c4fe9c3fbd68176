"""The virtual clock: it moves only when told to (the local pipeline, replays, tests). The system clock is
the product's (`casewatch.adapters.system_clock.SystemClock`); the port is `casewatch.ports.Clock`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_DEFAULT_START = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the clock needs a timezone-aware datetime")
    return value.astimezone(UTC)


class VirtualClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware_utc(start) if start is not None else _DEFAULT_START

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move forward (a negative amount moves back); returns the new time."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        with self._lock:
            self._now += step
            return self._now

    def set(self, value: datetime) -> None:
        """Jump to `value` (aware)."""
        aware = _aware_utc(value)
        with self._lock:
            self._now = aware

    def sleep(self, seconds: float) -> None:
        """Advance instead of sleeping (for code that takes a sleep function)."""
        self.advance(seconds)


__all__ = ["VirtualClock"]
