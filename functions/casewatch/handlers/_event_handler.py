"""The one shape of an event-routed Lambda entry point: Powertools decorators around the event app.

Only wiring. The import is kept light for cold starts: the event models (pydantic, the Powertools
parser), boto3 and the adapters load on the first event, the X-Ray SDK with the first trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths

from casewatch.errors import DuplicateInProgressError
from casewatch.observability import DUPLICATES_IN_PROGRESS, count_per_function, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.bootstrap import EventApp
    from casewatch.topology import FunctionSpec

EventHandler = Callable[..., dict[str, Any]]


def event_handler(spec: FunctionSpec) -> EventHandler:
    """`handler(event, context, app=None)` for the function `spec` (`app`: injectable for tests)."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext, app: EventApp | None = None) -> dict[str, Any]:
        if app is None:
            from casewatch.bootstrap import event_app

            app = event_app(spec.name)
        # The event's claim is leased until this invocation ends: Lambda's retry of a timed-out
        # invocation (1-3 minutes later) sends the side effects instead of waiting for the claim.
        try:
            return app.processor.process(
                event, remaining_ms=context.get_remaining_time_in_millis()
            ).response()
        except DuplicateInProgressError:
            # Benign: a concurrent delivery is running the same side effect. Lambda retries the event
            # and finds it done; the function's error alarm discounts these (`DuplicatesInProgress`).
            count_per_function(DUPLICATES_IN_PROGRESS, context.function_name)
            raise

    return handler
