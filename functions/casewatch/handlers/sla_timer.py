"""sla-timer: fired by EventBridge Scheduler at an SLA's target (breach) or warning time.

The payload is `casewatch.models.signals.SlaTimerPayload`. An invalid payload is logged and counted,
not retried (Scheduler would retry it for a day).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from casewatch.errors import DuplicateInProgressError, PermanentDeliveryError
from casewatch.observability import (
    DUPLICATES_IN_PROGRESS,
    SIGNALS_PARKED,
    SLA_BREACHES,
    SLA_TIMERS_FIRED,
    SLA_TIMERS_INVALID,
    SLA_TIMERS_STALE,
    count_per_function,
    logger,
    metrics,
    tracer,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.bootstrap import SlaTimerApp


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, app: SlaTimerApp | None = None) -> dict[str, Any]:
    from pydantic import ValidationError

    from casewatch.domain.sla.model import SlaStatus
    from casewatch.errors import problems_of
    from casewatch.models.signals import SlaTimerPayload

    try:
        payload = SlaTimerPayload.model_validate(event)
    except ValidationError as exc:
        problems = [p.location or p.message for p in problems_of(exc)]
        logger.error("invalid SLA timer payload", problems=problems)
        metrics.add_metric(name=SLA_TIMERS_INVALID, unit=MetricUnit.Count, value=1)
        return {"outcome": "invalid", "reason": f"invalid fields: {', '.join(problems)}"}
    logger.append_keys(case_id=payload.case_id, sla=payload.sla_key or payload.sla_name, timer=payload.kind)
    if app is None:
        from casewatch.bootstrap import sla_timer_app

        app = sla_timer_app()
    try:
        outcome = app.timer.on_timer(payload, remaining_ms=context.get_remaining_time_in_millis())
    except DuplicateInProgressError:  # benign: a concurrent run of the same signal; Scheduler retries
        count_per_function(DUPLICATES_IN_PROGRESS, context.function_name)  # the error alarm discounts it
        raise
    except PermanentDeliveryError as exc:  # retrying for a day cannot help: say so loudly, once
        metrics.add_metric(name=SIGNALS_PARKED, unit=MetricUnit.Count, value=1)
        logger.error("SLA signal not delivered: a delivery failed for good", reason=exc.reason)
        return {"outcome": "parked", "kind": payload.kind, "caseId": payload.case_id, "reason": exc.reason}
    update = outcome.update
    breaches = sum(t.status is SlaStatus.OVERDUE for t in update.transitions)
    metrics.add_metric(name=SLA_TIMERS_FIRED, unit=MetricUnit.Count, value=1)
    if breaches:
        metrics.add_metric(name=SLA_BREACHES, unit=MetricUnit.Count, value=breaches)
    if update.kind != "applied" and not outcome.deferred:
        metrics.add_metric(name=SLA_TIMERS_STALE, unit=MetricUnit.Count, value=1)
    logger.info(
        "SLA timer handled",
        transitions=len(update.transitions),
        outcome=update.kind,
        deferred=outcome.deferred,
    )
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
            for t in update.transitions
        ],
        "deferred": outcome.deferred,
    }
