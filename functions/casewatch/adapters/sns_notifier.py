"""`SnsNotifier`: the `Notifier` port on the notifications topic.

One `Publish` per notification with `MessageStructure="json"` (JSON for machines, text for email, the
subject for sms) and the notification's message attributes; on a FIFO topic the notification id is the
`MessageDeduplicationId` (the case id the `MessageGroupId`). What subscribers receive is described once,
in the README (Notifications). A message over SNS's size limit is sent without case field values.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from casewatch.domain.notifications.documents import without_field_values
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
    if len(message.encode()) + _ATTRIBUTE_ALLOWANCE > MAX_MESSAGE_BYTES:  # json_size(body), encoded once
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
                codes=(code,),
                retryable=code in _RETRYABLE,
            ) from exc
        return response["MessageId"]
