"""Builds the real `NotificationSink` from the environment the stack sets.

| variable | what |
| --- | --- |
| `CASEWATCH_TOPIC_ARN` | the notifications SNS topic |
| `CASEWATCH_EVENT_BUS` | the enriched-event bus (name or ARN) |
| `CASEWATCH_IDEMPOTENCY_TABLE` | the Powertools idempotency table |
| `CASEWATCH_SLA_TABLE` | the state table (status order items `sk=NOTIFY#...`) |

Nothing is created at import time; boto3 clients are made on first use (`casewatch.aws`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.idempotency import DynamoDbStatusOrder, PowertoolsIdempotency
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.constants import ENV_EVENT_BUS, ENV_IDEMPOTENCY_TABLE, ENV_SLA_TABLE, ENV_TOPIC_ARN
from casewatch.errors import SettingsError
from casewatch.notification_service import NotificationSink
from casewatch.settings import Settings


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: the stack sets it (notifications need it)")
    return value


def build_notification_sink(settings: Settings, env: Mapping[str, str] | None = None) -> NotificationSink:
    """The sink with its real adapters (SNS, EventBridge, DynamoDB). Raises `SettingsError` if unset."""
    env = os.environ if env is None else env
    return NotificationSink(
        settings,
        notifier=SnsNotifier(_required(env, ENV_TOPIC_ARN)),
        bus=EventBridgeEnrichedBus(_required(env, ENV_EVENT_BUS)),
        once=PowertoolsIdempotency(_required(env, ENV_IDEMPOTENCY_TABLE)),
        status_order=DynamoDbStatusOrder(_required(env, ENV_SLA_TABLE)),
    )
