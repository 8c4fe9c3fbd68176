"""reconcile: every `reconcile_every_minutes`, repair SLAs from what Cases says (missed events).

Open SLAs due before now (the state table's `due` index) are checked against Cases —
SearchRelatedItems for Cases SLAs, one GetCase for policy SLAs — within a per-run budget; the store
is repaired, missing signals are emitted, and repairs are counted (`SlaRepairs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from casewatch.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.sla_service import SlaTracker

SLA_REPAIRS: Final = "SlaRepairs"
SLA_RECONCILED_CASES: Final = "SlaReconciledCases"
SLA_RECONCILE_LEFT: Final = "SlaReconcileCasesLeft"
MAX_CASES_PER_RUN: Final = 50  # each costs 1-2 Cases calls: well inside the shared 2-4 req/s quotas


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, deps: SlaTracker | None = None) -> dict[str, Any]:
    from casewatch.adapters.idempotency import register_lambda_context
    from casewatch.adapters.sla_wiring import default_sla_tracker

    register_lambda_context(context)  # in-progress idempotency records expire with this invocation
    try:
        report = (deps or default_sla_tracker()).reconcile(max_cases=MAX_CASES_PER_RUN)
    finally:
        register_lambda_context(None)
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
