"""casewatch's typed errors. Messages never carry case field values (customer data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a dotted path) and what (no values)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


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


# The name the contract promises (`InvalidCaseEvent`) and the house naming rule (`...Error`) both work.
InvalidCaseEvent = InvalidCaseEventError


class SettingsError(CasewatchError):
    """Configuration that fails validation; the message names the setting."""


class CaseNotFoundError(CasewatchError):
    """GetCase answered 404: the case was deleted. Final: process the event with what it carries."""


class CasesThrottledError(CasewatchError):
    """GetCase kept answering 429 after the retry budget. Retryable: let Lambda retry the event."""


class CasesUnavailableError(CasewatchError):
    """Cases failed (5xx / network) after retries. Retryable."""


class NotificationPublishError(CasewatchError):
    """SNS refused or failed a notification after retries. `retryable` tells which (throttling, 5xx)."""

    def __init__(self, message: str, *, code: str, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class EnrichedBusError(CasewatchError):
    """PutEvents to the enriched-event bus failed for some entries after bounded retries. Retryable."""

    def __init__(self, message: str, *, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.codes = codes
