"""event-configuration: the `Custom::CaseEventConfiguration` resource (deploy time, CDK's Provider framework).

Turns case event publishing on (and off) for the domain, and fails the deployment if Cases did not
store what was asked: `casewatch.adapters.event_configuration`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from casewatch.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.adapters.event_configuration import EventConfigurationPort


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, configuration: EventConfigurationPort | None = None
) -> dict[str, Any]:
    from casewatch.adapters.event_configuration import CasesEventConfiguration, on_event

    logger.info("custom resource request", request_type=event.get("RequestType"))
    return on_event(event, configuration or CasesEventConfiguration())
