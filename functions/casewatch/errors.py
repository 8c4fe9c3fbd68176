"""casewatch's typed errors. Messages never carry case field values (customer data)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a dotted path) and what (no values)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


# pydantic's internal location parts (validator functions, union members): not part of a path.
_INTERNAL_LOCATION_PARTS = ("function-", "tagged-union", "union[")


def _location(loc: tuple[int | str, ...], tags: Collection[str]) -> str:
    """A dotted path such as `detail.case.fields.status.value`."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif not (part.startswith(_INTERNAL_LOCATION_PARTS) or part in tags):
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def problems_of(error: ValidationError, *, tags: Collection[str] = ()) -> list[Problem]:
    """The problems of a pydantic error: locations (without discriminator `tags`) and messages, never
    the offending input values (they may be customer data)."""
    return [
        Problem(_location(tuple(e["loc"]), tags), e["msg"].removeprefix("Value error, "))
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]


class CasewatchError(Exception):
    """Base of every casewatch error."""


class InvalidCaseEventError(CasewatchError):
    """An event that is not a valid Amazon Connect Cases event. Not retryable: park it."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem("", "invalid event"),)
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return "; ".join(str(p) for p in self.problems)


class SettingsError(CasewatchError):
    """Configuration that fails validation; the message names the setting."""


class CasesError(CasewatchError):
    """Cases refused or failed a request (after botocore's retries). The subclasses say which way."""


class CaseNotFoundError(CasesError):
    """Cases answered 404: the case was deleted. Final: process the event with what it carries."""


class CasesThrottledError(CasesError):
    """Cases kept answering 429 after the retry budget. Retryable: let Lambda retry the event."""

    def __init__(self, message: str = "Cases throttled", *, requests: int = 1, throttled: int = 1) -> None:
        super().__init__(message)
        self.requests = requests  # requests made before giving up (pages, not botocore's retries)
        self.throttled = throttled  # 429 answers seen, retried or not


class CasesUnavailableError(CasesError):
    """Cases failed (5xx / network) after retries. Retryable."""


class CasesRequestError(CasesError):
    """Cases refused the request itself (400 validation, 403 access denied, 409 conflict): a setting
    or a permission is wrong. Retrying the same request cannot help."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class DeliveryError(CasewatchError):
    """A notification or an enriched event could not be delivered after the adapter's retries.
    `retryable`: whether delivering the same thing again later can succeed (throttling, 5xx) or not
    (access denied, a disabled key, a message SNS or EventBridge refuses)."""

    def __init__(self, message: str, *, codes: tuple[str, ...], retryable: bool) -> None:
        super().__init__(message)
        self.codes = codes
        self.retryable = retryable


class NotificationPublishError(DeliveryError):
    """SNS refused or failed a notification."""


class EnrichedBusError(DeliveryError):
    """PutEvents to the enriched-event bus failed for some entries."""


class PermanentDeliveryError(CasewatchError):
    """Every delivery that failed for an event (or SLA signal) failed for good: retrying the event cannot
    help, so it is parked with `reason` instead (nothing else failed; what succeeded is not repeated)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DuplicateInProgressError(CasewatchError):
    """The same side effect is being run by a concurrent delivery of the event. Retryable (benign): the
    retry finds it done."""


class EventConfigurationMismatchError(CasewatchError):
    """Cases did not store the event configuration that was put (e.g. an SDK dropped a member)."""


class InvalidResourcePropertiesError(CasewatchError):
    """A custom resource's properties hold no PutCaseEventConfiguration request."""
