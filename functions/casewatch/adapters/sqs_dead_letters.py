"""`SqsDeadLetters`: invalid events parked on the dead-letter queue with their reason.

Message body: `{"reason", "function", "eventId", "event": <the raw event>}`, message attributes
`reason` and `function` (and `eventId` when known) for filtering without reading the body. An event
too big for SQS (256 KiB per message) is truncated and the body says so (`truncated`,
`eventBytes`). The raw event is never logged: it holds case data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

MAX_MESSAGE_BYTES = 262_144  # SQS: body and attributes together
_HEADROOM = 8_192  # attributes, the envelope keys and JSON escaping of the truncated text
MAX_REASON_CHARS = 1_000


def _as_json(raw: object) -> tuple[Any, str]:
    """The raw event as a JSON-ready value, and its JSON text."""
    value: Any
    if isinstance(raw, bytes | bytearray):
        value = bytes(raw).decode("utf-8", errors="replace")
    elif isinstance(raw, str | int | float | bool | list | dict) or raw is None:
        value = raw
    else:
        value = repr(raw)
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        value = repr(raw)
        text = json.dumps(value)
    return value, text


def dead_letter_body(raw: object, reason: str, *, function: str, event_id: str | None) -> str:
    """The message body, within SQS's size limit."""
    value, text = _as_json(raw)
    body: dict[str, Any] = {"reason": reason[:MAX_REASON_CHARS], "function": function, "eventId": event_id}
    size = len(text.encode())
    budget = MAX_MESSAGE_BYTES - _HEADROOM
    if size > budget:
        # Keep a prefix of the event's JSON text; its escaping in the body can grow it, so cut conservatively.
        prefix = text.encode()[: budget // 2].decode("utf-8", errors="ignore")
        body.update({"event": prefix, "truncated": True, "eventBytes": size})
    else:
        body["event"] = value
    return json.dumps(body, separators=(",", ":"))


class SqsDeadLetters:
    """The `DeadLetters` port on an SQS queue (the stack's dead-letter queue)."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            from casewatch.adapters import clients

            self._client = clients.sqs_client()
        return self._client

    def park(self, raw: object, reason: str, *, function: str, event_id: str | None = None) -> None:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "reason": {"DataType": "String", "StringValue": reason[:256] or "invalid"},
            "function": {"DataType": "String", "StringValue": function},
        }
        if event_id:
            attributes["eventId"] = {"DataType": "String", "StringValue": event_id}
        body = dead_letter_body(raw, reason, function=function, event_id=event_id)
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes)
        logger.info("event parked on the dead-letter queue", event_id=event_id, function=function)


__all__ = ["MAX_MESSAGE_BYTES", "SqsDeadLetters", "dead_letter_body"]
