"""SNS notifier: publishes a `Notification` to the notifications topic.

What a subscriber receives (`MessageStructure="json"`, so each protocol gets its own body):
- email: the readable text (`Notification.text`) and the short ASCII `Subject`;
- sms: the subject only;
- every other protocol (SQS, Lambda, HTTPS, Firehose, email-json) gets `default`: the structured JSON
  (`Notification.payload`: version, notificationId, rule {name, on}, subject, text, asOf, event
  {id, eventType, time, approximateChangeTime, resources, performedBy, changedFieldIds,
  changedAttributes, replayName} or signal {id, kind, slaName, origin, targetTime, at}, case {domainId,
  caseId, templateId, asOf, version, deleted, fields {id: {value, source, asOf}}, fieldNames, missing,
  flags, redactedFieldIds}, relatedItem {type, id, caseId, createdDateTime, content}).
  With raw message delivery off, SQS receives SNS's envelope whose `Message` is that JSON.

Message attributes (all `String`, for subscription filter policies; at most 10, SQS's limit):
`notificationId`, `rule`, `eventType` (a Cases eventType, or `SLA.AT_RISK|BREACHED|MET|NOT_MET`),
`caseId`, `domainId`, `templateId`, `status`, `priority` (the `priority` field, resolved through
`field_names`), `replay` (`"true"`/`"false"`), and `relatedItemType` or `slaName`. Attributes with no
value are left out; redacted fields read `[redacted]`.

A repeat is tolerated downstream: `notificationId` is stable per (event, rule), and on a FIFO topic it is
the `MessageDeduplicationId` (with the case id as `MessageGroupId`), so SNS drops a repeat itself.
Messages over SNS's 256 KiB limit are sent without case field values (`case.truncated: true`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from casewatch.domain.notifications.documents import json_size, without_field_values
from casewatch.domain.notifications.render import Notification
from casewatch.errors import NotificationPublishError
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef


MAX_MESSAGE_BYTES: Final = 262_144  # SNS: the whole message, attributes included
_ATTRIBUTE_ALLOWANCE: Final = 4_096  # bytes kept free for the attributes and the subject
_RETRYABLE: Final = frozenset(
    {
        "Throttled",
        "ThrottlingException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottling",
        "KMSThrottlingException",
        "RequestTimeout",
    }
)


def message_structure(notification: Notification) -> str:
    """The `Message` for `MessageStructure="json"`: JSON for machines, text for email, subject for sms."""
    payload = notification.payload
    body = {
        "default": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        "email": notification.text,
        "sms": notification.subject,
    }
    message = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if json_size(body) + _ATTRIBUTE_ALLOWANCE > MAX_MESSAGE_BYTES:
        slim = without_field_values(payload)
        body = {
            "default": json.dumps(slim, separators=(",", ":"), ensure_ascii=False),
            "email": str(slim.get("text", notification.subject)),
            "sms": notification.subject,
        }
        message = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return message


def message_attributes(notification: Notification) -> dict[str, MessageAttributeValueTypeDef]:
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in notification.attributes.items()
        if value
    }


class SnsNotifier:
    """Publishes notifications to one topic. The client is made lazily (`casewatch.adapters.clients`)."""

    def __init__(self, topic_arn: str, *, client: SNSClient | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = client
        self.fifo = topic_arn.endswith(".fifo")

    @property
    def client(self) -> SNSClient:
        if self._client is None:
            from casewatch.adapters.clients import sns_client

            self._client = sns_client()
        return self._client

    def publish(self, notification: Notification) -> str:
        """Publish; the SNS MessageId. Raises `NotificationPublishError` (see `.retryable`)."""
        from botocore.exceptions import ClientError

        request: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Subject": notification.subject,
            "Message": message_structure(notification),
            "MessageStructure": "json",
            "MessageAttributes": message_attributes(notification),
        }
        if self.fifo:
            request["MessageGroupId"] = notification.case_id
            request["MessageDeduplicationId"] = notification.notification_id
        try:
            response = self.client.publish(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            logger.warning(
                "sns publish failed",
                error_code=code,
                rule=notification.rule,
                case_id=notification.case_id,
            )
            raise NotificationPublishError(
                f"SNS Publish failed with {code} (rule {notification.rule}, case {notification.case_id})",
                code=code,
                retryable=code in _RETRYABLE,
            ) from exc
        return response["MessageId"]
