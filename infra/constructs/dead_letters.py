"""The three queues where nothing is lost: rule DLQ, failure destination, invalid events.

- `rule_dlq`: EventBridge could not deliver an event to a function (after the rule's retries).
- `failure`: a function failed on an asynchronous event after Lambda's retries (on-failure
  destination; the message holds the original event under `requestPayload`).
- `invalid_events`: the handlers park events they can never process, with the reason
  (`CASEWATCH_DEAD_LETTER_QUEUE_URL`), instead of failing and retrying them.

All three: SQS-managed encryption, TLS-only, `DEAD_LETTER_RETENTION_DAYS` (14 days) retention, less
than idempotency records live (a late redrive sends nothing twice). Redrive is in the README.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from casewatch.constants import DEAD_LETTER_RETENTION_DAYS
from infra.nag import acknowledge


class DeadLetters(Construct):
    RETENTION = Duration.days(DEAD_LETTER_RETENTION_DAYS)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.rule_dlq = self._queue("RuleDeadLetterQueue")
        self.failure = self._queue("FailureQueue")
        self.invalid_events = self._queue("InvalidEventsQueue")

    @property
    def queues(self) -> dict[str, sqs.Queue]:
        return {
            "RuleDeadLetterQueue": self.rule_dlq,
            "FailureQueue": self.failure,
            "InvalidEventsQueue": self.invalid_events,
        }

    def _queue(self, construct_id: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=self.RETENTION,
        )
        acknowledge(
            queue,
            "SQS3",
            "This queue is itself a dead-letter destination (EventBridge rule DLQ, Lambda on-failure "
            "destination or invalid-event parking); messages are inspected and redriven by an operator.",
        )
        return queue
