"""botocore's waits on the virtual clock — every patch of botocore internals, in one place.

Inside the pipeline, a throttled Cases call must cost virtual time, not wall time, exactly as botocore
would spend it: the retry back-off (`time.sleep` as `botocore.endpoint` sees it) and adaptive mode's
client-side rate limiter (its token bucket's clock and condition variable). `PATCHED` names every
attribute replaced; `tests/unit/test_virtual_time.py` fails if botocore moves one of them.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, Final

from casewatch_dev.clock import VirtualClock

# (module, attribute) pairs replaced while the pipeline runs.
PATCHED: Final = (
    ("botocore.endpoint", "time"),
    ("botocore.retries.bucket", "Clock"),
    ("botocore.retries.bucket", "threading"),
)


def _virtual_seconds(seconds: float) -> timedelta:
    """`seconds` as a timedelta, rounded *up* to the microsecond (a wait never falls short)."""
    return timedelta(microseconds=math.ceil(max(seconds, 0.0) * 1_000_000))


class _VirtualSleepTime:
    """`time` as botocore's endpoint sees it inside the pipeline: `sleep` advances the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.advance(_virtual_seconds(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _VirtualBucketClock:
    """botocore's adaptive-mode clock (`botocore.retries.bucket.Clock`) on the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, amount: float) -> None:
        self._clock.advance(_virtual_seconds(amount))

    def current_time(self) -> float:
        return self._clock.now().timestamp()


class _VirtualCondition:
    """The token bucket's condition variable: waiting for tokens advances the virtual clock."""

    def __init__(self, clock: VirtualClock, lock: Any = None) -> None:
        self._clock = clock
        self._lock = lock if lock is not None else threading.RLock()

    def __enter__(self) -> _VirtualCondition:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        self._clock.advance(_virtual_seconds(timeout or 0.0) or timedelta(microseconds=1))
        return False

    def notify(self, n: int = 1) -> None:
        return None

    def notify_all(self) -> None:
        return None


@contextmanager
def botocore_sleeps_on(clock: VirtualClock) -> Iterator[None]:
    """botocore's waits on the virtual clock, for the clients created inside the pipeline: the retry
    back-off (`time.sleep` in `botocore.endpoint`) and adaptive mode's client-side rate limiter (its
    token bucket's clock and condition variable), so a throttled GetCase costs virtual time, not wall
    time, exactly as botocore would spend it."""
    endpoint: Any = importlib.import_module("botocore.endpoint")
    bucket: Any = importlib.import_module("botocore.retries.bucket")
    threads = SimpleNamespace(
        Lock=threading.Lock,
        RLock=threading.RLock,
        Condition=lambda lock=None: _VirtualCondition(clock, lock),
    )
    saved = (endpoint.time, bucket.Clock, bucket.threading)
    endpoint.time = _VirtualSleepTime(clock)
    bucket.Clock = lambda: _VirtualBucketClock(clock)
    bucket.threading = threads
    try:
        yield
    finally:
        endpoint.time, bucket.Clock, bucket.threading = saved


__all__ = ["PATCHED", "botocore_sleeps_on"]
