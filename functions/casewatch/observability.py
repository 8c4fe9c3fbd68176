"""The one Logger, Metrics and Tracer of casewatch (Powertools), and the metric names.

Cheap at import: Logger and Metrics are built here, the Tracer (which loads the X-Ray SDK) on the
first invocation; it patches botocore only, the one library casewatch does I/O with. Logs carry ids
(event, case, field ids), never field values unless `log_case_data` is on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE: Final = "casewatch"
DEFAULT_NAMESPACE: Final = "Casewatch"

# Metric names (EMF, namespace Casewatch, dimension service=casewatch).
EVENTS_HANDLED: Final = "EventsHandled"
EVENTS_UNHANDLED: Final = "EventsUnhandled"
EVENTS_INVALID: Final = "EventsInvalid"
EVENTS_PARKED: Final = "EventsParked"  # a delivery failed for good: parked with the reason
SIGNALS_PARKED: Final = "SlaSignalsParked"  # likewise for an SLA timer's signal (reconciliation: case errors)
# Benign: a concurrent delivery, retried. Per function (`count_per_function`): the function error alarms
# subtract it from the function's AWS/Lambda Errors.
DUPLICATES_IN_PROGRESS: Final = "DuplicatesInProgress"
RECONCILE_CASE_ERRORS: Final = "SlaReconcileCaseErrors"
GETCASE_CALLS: Final = "GetCaseCalls"
GETCASE_THROTTLED: Final = "GetCaseThrottled"
CASE_NOT_FOUND: Final = "CaseNotFound"
UNKNOWN_FIELD_TYPES: Final = "UnknownFieldTypes"
NOTIFICATIONS_PUBLISHED: Final = "NotificationsPublished"
DUPLICATE_TRIGGERS: Final = "DuplicatesSuppressed"  # an event (or timer) applied before: nothing sent again
NOTIFICATIONS_STALE: Final = "NotificationsStaleSuppressed"
REPLAYS_SKIPPED: Final = "ReplayNotificationsSkipped"
BUS_EVENTS_PUT: Final = "EnrichedEventsPut"
SLA_TRANSITIONS: Final = "SlaTransitions"
SLA_TIMERS_FIRED: Final = "SlaTimersFired"
SLA_TIMERS_STALE: Final = "SlaTimersStale"
SLA_TIMERS_INVALID: Final = "SlaTimersInvalid"
SLA_BREACHES: Final = "SlaBreaches"
SLA_BREACH_CHECK_FAILED: Final = "SlaBreachCheckFailed"
SLA_REPAIRS: Final = "SlaRepairs"  # SLAs the change feed repaired (a Cases change whose event was missed)
SLA_BREACHES_DEFERRED: Final = "SlaBreachChecksDeferred"  # a breach timer before the feed passed its target
FEED_REQUESTS: Final = "FeedSearchRequests"
FEED_CASES_CHANGED: Final = "FeedCasesChanged"
FEED_CASES_APPLIED: Final = "FeedCasesApplied"
FEED_CASES_LEFT: Final = "FeedCasesLeft"
FEED_LAG: Final = "FeedLagSeconds"  # how far behind now the watermark is after a poll

# The second dimension of the metrics counted per function: the deployed function's name (unique in the
# account and Region, so two stacks never add up), as Powertools names it for its ColdStart metric.
FUNCTION_DIMENSION: Final = "function_name"

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE, service=SERVICE
)

F = TypeVar("F", bound=Callable[..., Any])
_TRUTHY: Final = frozenset({"1", "y", "yes", "t", "true", "on"})


class PowertoolsMetrics:
    """The `MetricsRecorder` port on the Powertools `metrics` (flushed as EMF by `@metrics.log_metrics`)."""

    def count(self, name: str, value: float = 1) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_per_function(name: str, function_name: str, value: float = 1) -> None:
    """Count `name` with the dimensions `service` and `function_name`, flushed at once as its own EMF
    document (the invocation's other metrics keep the one dimension `service`)."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    one = AmazonCloudWatchEMFProvider(namespace=metrics.provider.namespace, service=SERVICE)
    one.add_metric(name=name, unit=MetricUnit.Count, value=value)
    one.add_dimension(name=FUNCTION_DIMENSION, value=function_name)
    one.flush_metrics()


def tracing_disabled() -> bool:
    """Powertools' documented rule: off with `POWERTOOLS_TRACE_DISABLED`, outside Lambda (no
    `LAMBDA_TASK_ROOT`), and under SAM or Chalice local emulation."""
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return True
    in_lambda = bool(os.getenv("LAMBDA_TASK_ROOT"))
    emulated = bool(os.getenv("AWS_SAM_LOCAL") or os.getenv("AWS_CHALICE_CLI_MODE"))
    return not in_lambda or emulated


@functools.cache
def get_tracer() -> Tracer:
    """The Powertools Tracer, built on first use (it imports the X-Ray SDK), patching botocore only."""
    from aws_lambda_powertools import Tracer

    built = Tracer(service=SERVICE, auto_patch=False)
    built.patch(["botocore"])
    return built


class LazyTracer:
    """`tracer.capture_lambda_handler(...)` as Powertools spells it, applied on the first invocation.

    When tracing is disabled (see `tracing_disabled`) the handler runs untraced and the X-Ray SDK
    (about a quarter of a second to import) is never loaded.
    """

    @overload
    def capture_lambda_handler(self, lambda_handler: F, *, capture_response: bool | None = None) -> F: ...

    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, *, capture_response: bool | None = None
    ) -> Callable[[F], F]: ...

    def capture_lambda_handler(
        self, lambda_handler: F | None = None, *, capture_response: bool | None = None
    ) -> F | Callable[[F], F]:
        if lambda_handler is None:

            def decorator(fn: F) -> F:
                return self.capture_lambda_handler(fn, capture_response=capture_response)

            return decorator
        handler_fn: Callable[..., Any] = lambda_handler
        traced: list[Callable[..., Any]] = []

        @functools.wraps(handler_fn)
        def decorate(event: Any, context: Any, **kwargs: Any) -> Any:
            if not traced:
                traced.append(
                    handler_fn
                    if tracing_disabled()
                    else get_tracer().capture_lambda_handler(handler_fn, capture_response=capture_response)
                )
            return traced[0](event, context, **kwargs)

        return cast(F, decorate)


tracer = LazyTracer()

__all__ = [
    "PowertoolsMetrics",
    "count_per_function",
    "get_tracer",
    "logger",
    "metrics",
    "tracer",
    "tracing_disabled",
]
