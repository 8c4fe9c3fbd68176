"""event-configuration: the `Custom::CaseEventConfiguration` resource at deploy time (see
`casewatch.app.event_configuration`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from casewatch.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from casewatch.ports import EventConfigurationStore


@logger.inject_lambda_context(correlation_id_path="RequestId", clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, configuration: EventConfigurationStore | None = None
) -> dict[str, Any]:
    from casewatch.app.event_configuration import on_event
    from casewatch.bootstrap import event_configuration_store

    logger.info("custom resource request", request_type=event.get("RequestType"))
    return on_event(event, configuration or event_configuration_store())
