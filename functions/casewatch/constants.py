"""Names shared by the Lambda code, the CDK stack and the local pipeline (one place, no drift)."""

from typing import Final

EVENT_SOURCE: Final = "aws.cases"
DETAIL_TYPE: Final = "Amazon Connect Cases Change"

CASE_CREATED: Final = "CASE.CREATED"
CASE_UPDATED: Final = "CASE.UPDATED"
CASE_DELETED: Final = "CASE.DELETED"
RELATED_ITEM_CREATED: Final = "RELATED_ITEM.CREATED"

# Enriched events casewatch re-publishes on its own bus.
ENRICHED_SOURCE: Final = "casewatch"

# Environment variable names: the stack sets them, `casewatch.settings` reads them.
ENV_CONFIG: Final = "CASEWATCH_CONFIG"  # JSON of the runtime settings (the `casewatch` context key)
# The path of a file holding that JSON: in AWS, the settings layer's `/opt/casewatch/settings.json`.
ENV_CONFIG_FILE: Final = "CASEWATCH_CONFIG_FILE"
ENV_SLA_TABLE: Final = "CASEWATCH_SLA_TABLE"
ENV_TOPIC_ARN: Final = "CASEWATCH_TOPIC_ARN"
ENV_EVENT_BUS: Final = "CASEWATCH_EVENT_BUS"
ENV_SCHEDULE_GROUP: Final = "CASEWATCH_SCHEDULE_GROUP"
ENV_SCHEDULER_ROLE_ARN: Final = "CASEWATCH_SCHEDULER_ROLE_ARN"
ENV_SLA_TIMER_ARN: Final = "CASEWATCH_SLA_TIMER_ARN"
ENV_DEAD_LETTER_QUEUE_URL: Final = "CASEWATCH_DEAD_LETTER_QUEUE_URL"
ENV_CASES_ENDPOINT: Final = "CASEWATCH_CASES_ENDPOINT"  # local emulator only; unset in AWS

# The key of cdk.json context that holds every deployment setting.
CONTEXT_KEY: Final = "casewatch"

# How long a dead-lettered event can be redriven (the queues' retention), and how long a side effect is
# remembered as done: longer, so a redrive on the queues' last day still finds it (no second message).
DEAD_LETTER_RETENTION_DAYS: Final = 14
IDEMPOTENCY_EXPIRY_DAYS: Final = DEAD_LETTER_RETENTION_DAYS + 1
