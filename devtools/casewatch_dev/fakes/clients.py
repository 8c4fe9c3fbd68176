"""Fake boto3 clients for the adapters that only send (SNS, EventBridge, SQS, Scheduler).

The real adapters (`SnsNotifier`, `EventBridgeEnrichedBus`, `SqsDeadLetters`, `SchedulerTimers`) run on
them unchanged; each answers like its service (conflicts, not-found errors, what a subscriber gets).
"""

from __future__ import annotations

import heapq
import json
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from casewatch.ports import Clock

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class FakeSns:
    """`sns.publish` for `SnsNotifier`: what a raw-delivery SQS subscriber of the topic receives.

    `refuse`: error codes the next publishes answer with, once each (e.g. `KMSDisabled`, `Throttled`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[dict[str, Any]] = []
        self.refuse: list[str] = []

    def publish(self, **request: Any) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        with self._lock:
            if self.refuse:
                raise _client_error(self.refuse.pop(0), "Publish")
            self.published.append(request)
        return {"MessageId": message_id}

    def take(self) -> list[dict[str, Any]]:
        """The subscriber queue's messages (`Body`: the `default` message; `MessageAttributes`)."""
        with self._lock:
            taken, self.published = self.published, []
        messages = []
        for request in taken:
            body = request["Message"]
            if request.get("MessageStructure") == "json":
                body = json.loads(body)["default"]
            messages.append({"Body": body, "MessageAttributes": request.get("MessageAttributes", {})})
        return messages


class FakeEventBridge:
    """`events.put_events` for `EventBridgeEnrichedBus`: every entry reaches the bus's subscriber queue."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def put_events(self, *, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not 1 <= len(Entries) <= 10:
            raise _client_error("ValidationException", "PutEvents", "1 to 10 entries")
        with self._lock:
            self.entries.extend(dict(e) for e in Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())} for _ in Entries]}

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.entries = self.entries, []
        messages = []
        for entry in taken:
            moment = entry.get("Time")
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": (moment if isinstance(moment, datetime) else self._clock.now())
                .astimezone(UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": list(entry.get("Resources", [])),
                "detail": json.loads(entry["Detail"]),
            }
            messages.append({"Body": json.dumps(event), "MessageAttributes": {}})
        return messages


class FakeSqs:
    """`sqs.send_message` for `SqsDeadLetters` and the failure destination: queues in lists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queues: dict[str, list[dict[str, Any]]] = {}

    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        MessageAttributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            self.queues.setdefault(QueueUrl, []).append(
                {"Body": MessageBody, "MessageAttributes": dict(MessageAttributes or {})}
            )
        return {"MessageId": str(uuid.uuid4())}

    def take(self, queue_url: str) -> list[dict[str, Any]]:
        with self._lock:
            return self.queues.pop(queue_url, [])


class FakeScheduler:
    """`scheduler` create/update/delete for `SchedulerTimers`: one-time `at(...)` schedules, by name.

    Like Scheduler: creating an existing name is a `ConflictException`, updating or deleting a missing
    one a `ResourceNotFoundException`. `earliest()` is a heap (the pipeline asks before every event).
    `calls` records every request (operation, name).
    """

    def __init__(self, group_name: str) -> None:
        self.group_name = group_name
        self._lock = threading.Lock()
        self.schedules: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._heap: list[tuple[datetime, str]] = []
        self.calls: list[tuple[str, str]] = []  # (operation, schedule name), every request

    @staticmethod
    def _at(request: dict[str, Any]) -> datetime:
        expression = str(request["ScheduleExpression"])
        if not (expression.startswith("at(") and expression.endswith(")")):
            raise _client_error("ValidationException", "CreateSchedule", "one-time schedules only")
        return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)

    def _check_group(self, group: str, operation: str) -> None:
        if group != self.group_name:
            raise _client_error("ResourceNotFoundException", operation, f"no schedule group {group}")

    def _store(self, request: dict[str, Any]) -> None:
        at = self._at(request)
        payload = json.loads(request["Target"].get("Input") or "{}")
        self.schedules[request["Name"]] = (at, payload)
        heapq.heappush(self._heap, (at, request["Name"]))

    def create_schedule(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateSchedule", request["Name"]))
        self._check_group(request["GroupName"], "CreateSchedule")
        with self._lock:
            if request["Name"] in self.schedules:
                raise _client_error("ConflictException", "CreateSchedule", "schedule exists")
            self._store(request)
        return {"ScheduleArn": self._arn(request["Name"])}

    def update_schedule(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("UpdateSchedule", request["Name"]))
        self._check_group(request["GroupName"], "UpdateSchedule")
        with self._lock:
            if request["Name"] not in self.schedules:
                raise _client_error("ResourceNotFoundException", "UpdateSchedule", "no such schedule")
            self._store(request)
        return {"ScheduleArn": self._arn(request["Name"])}

    def _arn(self, name: str) -> str:
        return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{self.group_name}/{name}"

    def delete_schedule(self, *, Name: str, GroupName: str) -> dict[str, Any]:
        self.calls.append(("DeleteSchedule", Name))
        self._check_group(GroupName, "DeleteSchedule")
        with self._lock:
            if self.schedules.pop(Name, None) is None:
                raise _client_error("ResourceNotFoundException", "DeleteSchedule", "no such schedule")
        return {}

    def earliest(self) -> tuple[datetime, str, dict[str, Any]] | None:
        with self._lock:
            while self._heap:
                at, name = self._heap[0]
                current = self.schedules.get(name)
                if current is not None and current[0] == at:
                    return at, name, current[1]
                heapq.heappop(self._heap)  # deleted or moved: a stale heap entry
            return None

    def pending(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        with self._lock:
            found = [(at, name, payload) for name, (at, payload) in self.schedules.items()]
        return sorted(found, key=lambda item: (item[0], item[1]))

    def remove(self, name: str) -> None:
        with self._lock:
            self.schedules.pop(name, None)


__all__ = ["FakeEventBridge", "FakeScheduler", "FakeSns", "FakeSqs"]
