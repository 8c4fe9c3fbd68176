"""reconcile: every `reconcile_every_minutes`, the change feed: what changed in Cases, applied (see
`casewatch.app.sla.feed`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from casewatch.observability import FEED_CASES_LEFT, FEED_LAG, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.bootstrap import ReconcileApp


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, app: ReconcileApp | None = None) -> dict[str, Any]:
    if app is None:
        from casewatch.bootstrap import reconcile_app

        app = reconcile_app()
    report = app.feed.poll(
        trigger_id=str(event.get("id") or context.aws_request_id),
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    metrics.add_metric(name=FEED_CASES_LEFT, unit=MetricUnit.Count, value=report.cases_left)
    if report.until is not None:
        lag = (app.feed.updater.clock.now() - report.until).total_seconds()
        metrics.add_metric(name=FEED_LAG, unit=MetricUnit.Seconds, value=lag)
    logger.info("change feed polled", extra=report.response())
    return {
        "outcome": "handled",
        **report.response(),
        "slaChanges": [
            {"case": t.case_id, "sla": t.sla_key, "status": t.status.value, "at": t.at.isoformat()}
            for t in report.transitions
        ],
    }
