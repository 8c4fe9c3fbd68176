"""reconcile: every `reconcile_every_minutes`, repair SLAs from what Cases says (missed events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from casewatch.observability import (
    SLA_RECONCILE_LEFT,
    SLA_RECONCILED_CASES,
    SLA_REPAIRS,
    logger,
    metrics,
    tracer,
)

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
    app.once.register_lambda_context(context)  # in-progress idempotency records expire with this invocation
    # As many due cases as the invocation has time for (the Cases quotas pace it through botocore).
    report = app.reconciliation.run(remaining_s=lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name=SLA_REPAIRS, unit=MetricUnit.Count, value=report.repairs)
    metrics.add_metric(name=SLA_RECONCILED_CASES, unit=MetricUnit.Count, value=report.cases_checked)
    metrics.add_metric(name=SLA_RECONCILE_LEFT, unit=MetricUnit.Count, value=report.cases_left)
    logger.info("SLA reconciliation done", extra=report.response())
    return {
        "outcome": "handled",
        **report.response(),
        "slaChanges": [
            {"case": t.case_id, "sla": t.sla_key, "status": t.status.value, "at": t.at.isoformat()}
            for t in report.transitions
        ],
    }
