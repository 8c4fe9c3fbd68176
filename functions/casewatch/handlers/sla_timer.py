"""sla-timer: fired by EventBridge Scheduler at an SLA's target (breach) or warning time.

Payload (built by `casewatch.adapters.scheduler_timers`):
`{"kind": "breach"|"warning", "domainId", "caseId", "slaName", "slaKey", "targetTime"}`.
A breach marks the SLA Overdue if it is still Active at `targetTime` and emits "SLA breached"; a
warning emits "SLA at risk" if it is still Active with that target. A stale timer is a no-op. An
invalid payload is logged and counted, not retried (Scheduler would retry it for a day).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit

from casewatch.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.sla_service import SlaTracker

SLA_TIMERS_FIRED: Final = "SlaTimersFired"
SLA_TIMERS_STALE: Final = "SlaTimersStale"
SLA_TIMERS_INVALID: Final = "SlaTimersInvalid"
SLA_BREACHES: Final = "SlaBreaches"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, deps: SlaTracker | None = None) -> dict[str, Any]:
    from pydantic import ValidationError

    from casewatch.adapters.idempotency import register_lambda_context
    from casewatch.adapters.sla_wiring import default_sla_tracker
    from casewatch.domain.sla import SlaStatus
    from casewatch.domain.sla_ports import SlaTimerPayload

    try:
        payload = SlaTimerPayload.model_validate(event)
    except ValidationError as exc:
        problems = [".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)]
        logger.error("invalid SLA timer payload", problems=problems)
        metrics.add_metric(name=SLA_TIMERS_INVALID, unit=MetricUnit.Count, value=1)
        return {"outcome": "invalid", "reason": f"invalid fields: {', '.join(problems)}"}
    logger.append_keys(case_id=payload.case_id, sla=payload.sla_key or payload.sla_name, timer=payload.kind)
    register_lambda_context(context)  # in-progress idempotency records expire with this invocation
    try:
        outcome = (deps or default_sla_tracker()).on_timer(payload)
    finally:
        register_lambda_context(None)
    breaches = sum(t.status is SlaStatus.OVERDUE for t in outcome.transitions)
    metrics.add_metric(name=SLA_TIMERS_FIRED, unit=MetricUnit.Count, value=1)
    if breaches:
        metrics.add_metric(name=SLA_BREACHES, unit=MetricUnit.Count, value=breaches)
    if not outcome.written and payload.kind == "breach":
        metrics.add_metric(name=SLA_TIMERS_STALE, unit=MetricUnit.Count, value=1)
    logger.info("SLA timer handled", transitions=len(outcome.transitions), written=outcome.written)
    return {
        "outcome": "handled",
        "kind": payload.kind,
        "caseId": payload.case_id,
        "slaChanges": [
            {
                "sla": t.sla_key,
                "status": t.status.value,
                "at": t.at.isoformat(),
                "target_time": t.target_time.isoformat(),
            }
            for t in outcome.transitions
        ],
    }
