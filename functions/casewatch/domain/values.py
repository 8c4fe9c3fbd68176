"""Field values as rules compare them, and times as casewatch writes them: one definition of each."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import ParamSpec, TypeVar

from casewatch.models.fields import PythonValue

Scalar = str | float | bool | None
"""A field value as the domain compares it (None: empty). Numbers are floats: JSON has one number type."""


def scalar(value: PythonValue | int) -> Scalar:
    """A value for comparison: an int becomes a float (a bool stays a bool)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def same_value(left: PythonValue | int, right: PythonValue | int) -> bool:
    """Typed equality: "1" is not 1.0, true is not 1.0, numbers compare as floats, empty matches nothing."""
    if left is None or right is None:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    return isinstance(left, str) and isinstance(right, str) and left == right


def one_of(value: PythonValue | int, values: Iterable[PythonValue | int]) -> bool:
    return any(same_value(value, v) for v in values)


@lru_cache(maxsize=4096)  # the same few times (a case's, an event's) are formatted many times over
def sortable_iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds and `Z`: string order is time order, round-trips
    exactly. The form of every stored time (DynamoDB keys and conditions, the observation log)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=4096)
def cases_iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z`, as Cases writes times: the form of every message."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=4096)  # a fold's stored times are parsed again on every load of its case
def parse_iso(text: str) -> datetime:
    """An ISO-8601 time (`Z` or an offset; naive is UTC) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


P = ParamSpec("P")
R = TypeVar("R")


def per_call(fn: Callable[P, R]) -> Callable[P, R]:
    """Memoize `fn` on the identity of its arguments, for its last few calls: one event's messages and
    bus events share the same case view and documents, built once. Holds only a few recent results
    (and their arguments), so nothing accumulates in a container."""
    # (the arguments' ids, the arguments, the result): the arguments are held, so their ids stay theirs.
    recent: deque[tuple[tuple[int, ...], tuple[object, ...], R]] = deque(maxlen=4)

    @functools.wraps(fn)
    def memoized(*args: P.args, **kwargs: P.kwargs) -> R:
        key = (*args, *kwargs.values())
        ids = tuple(map(id, key))
        for seen, _, result in recent:
            if seen == ids:
                return result
        result = fn(*args, **kwargs)
        recent.append((ids, key, result))
        return result

    return memoized


__all__ = ["Scalar", "cases_iso", "one_of", "parse_iso", "per_call", "same_value", "scalar", "sortable_iso"]
