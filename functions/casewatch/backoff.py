"""Backoff between attempts that lost a race or were partly refused: one rule for every retry loop."""

from __future__ import annotations

import random


def full_jitter(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Seconds to wait before attempt `attempt + 1`: uniform in [0, min(cap, base * 2**attempt)], so
    contending writers spread out instead of colliding again (AWS's "full jitter")."""
    return random.uniform(0, min(cap_s, base_s * 2**attempt))  # noqa: S311 - spreading, not secrecy


__all__ = ["full_jitter"]
