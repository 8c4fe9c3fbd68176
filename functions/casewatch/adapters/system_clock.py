"""`SystemClock`: the `Clock` port on the machine's clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


__all__ = ["SystemClock"]
