"""The one shape of an event-routed Lambda entry point: Powertools decorators around `process_event`.

Only wiring. The import is kept light for cold starts: the event models (pydantic, the Powertools
parser), boto3 and the adapters load on the first event, the X-Ray SDK with the first trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths

from casewatch.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.topology import FunctionSpec
    from casewatch.wiring import Dependencies

EventHandler = Callable[..., dict[str, Any]]


def event_handler(spec: FunctionSpec) -> EventHandler:
    """`handler(event, context, deps=None)` for the function `spec` (deps: injectable for tests)."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(
        event: dict[str, Any], context: LambdaContext, deps: Dependencies | None = None
    ) -> dict[str, Any]:
        from casewatch.adapters.idempotency import register_lambda_context
        from casewatch.service import process_event
        from casewatch.wiring import default_dependencies

        # An in-progress idempotency record then expires with this invocation: Lambda's retry of a
        # timed-out invocation (1-3 minutes later) runs the side effects instead of meeting it.
        register_lambda_context(context)
        try:
            outcome = process_event(event, deps or default_dependencies(), function=spec.name)
        finally:
            register_lambda_context(None)
        return outcome.response()

    return handler
