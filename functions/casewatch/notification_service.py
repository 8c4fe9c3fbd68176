"""The notification sink: rules -> exactly-once SNS messages, and every processed event onto the enriched bus.

`NotificationSink` implements the `CaseSink` and `SlaSignalSink` ports. For each event (or SLA signal):

1. the rules (`casewatch.domain.notifications`) decide which notifications it causes;
2. each is published once: the idempotency guard is keyed on `notify:<notificationId>`, so N deliveries
   of an event give one SNS message per (event, rule); a status notification first claims its place in
   the case's status order and is suppressed (counted `stale_suppressed`) when a newer one with another
   status was already sent;
3. the event is re-published, enriched, to the bus once (key `bus:<detail.id>`).

Each step is attempted even if an earlier one failed; the first error is then raised so the delivery is
retried (the steps that succeeded are not repeated). Powertools' `IdempotencyAlreadyInProgressError`
(a concurrent duplicate) propagates the same way: retryable, and no second message.

Replays (a `replay-name`): with `replays: "process"` (the default) a replayed event notifies again, as
new — its notification ids include the replay name, so the original's idempotency records do not
suppress it, and its status order is tracked apart from live events. Point a test stack's topic at a
replay to rehearse notifications. With `replays: "skip"` it sends no notifications (counted
`replays_skipped`). Either way a replayed event *is* re-published to the enriched bus, with
`detail.event.replayName` set, so bus consumers can rebuild state from a replay or filter it out.

Events of an eventType casewatch does not handle are counted (`unhandled_events`) and otherwise ignored.
Logs carry ids, rule names and outcomes only, never case field values.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from casewatch.domain.notifications import (
    BusEvent,
    Notification,
    case_bus_event,
    evaluate_case_event,
    evaluate_sla_signal,
    sla_bus_event,
)
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal
from casewatch.settings import Settings

logger = logging.getLogger(__name__)


# --- the ports this sink needs (adapters in casewatch.adapters) --------------------------------


class Notifier(Protocol):
    def publish(self, notification: Notification) -> str:
        """Send one notification; the message id."""
        ...


class EnrichedBus(Protocol):
    def put(self, events: Sequence[BusEvent]) -> int:
        """Put enriched events on the bus; the number put (raises if some failed)."""
        ...


class ExactlyOnce(Protocol):
    def run(self, key: str, action: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """(result, executed): run `action` once per key; a repeat returns the first result, not run."""
        ...

    def register_lambda_context(self, context: Any) -> None: ...


class StatusOrder(Protocol):
    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        """False if a newer status notification with another status was already sent for the case."""
        ...


# --- the sink ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentNotification:
    rule: str
    notification_id: str
    case_id: str
    source_id: str
    message_id: str


class NotificationSink:
    """Notifications (SNS) and enriched events (EventBridge), exactly once (`CaseSink`, `SlaSignalSink`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        notifier: Notifier,
        bus: EnrichedBus,
        once: ExactlyOnce,
        status_order: StatusOrder | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.bus = bus
        self.once = once
        self.status_order = status_order
        self._lock = threading.Lock()
        # what was done, for the local pipeline's report
        self.notifications_by_rule: Counter[str] = Counter()
        self.bus_events: Counter[str] = Counter()
        self.sent: list[SentNotification] = []
        self.duplicates_suppressed = 0
        self.bus_duplicates_suppressed = 0
        self.stale_suppressed = 0
        self.replays_skipped = 0
        self.unhandled_events = 0

    def register_lambda_context(self, context: Any) -> None:
        """Call from the handler on every invocation: in-progress records then expire with the invocation."""
        self.once.register_lambda_context(context)

    # -- ports ---------------------------------------------------------------------------------
    def on_case_event(self, event: CaseEvent, case: EnrichedCase | None) -> None:
        if not event.handled:
            with self._lock:
                self.unhandled_events += 1
            logger.info("event not handled by notifications", extra={"event_id": event.id})
            return
        notifications: list[Notification] = []
        if event.is_replay and self.settings.replays == "skip":
            with self._lock:
                self.replays_skipped += 1
            logger.info("replayed event: notifications skipped", extra={"event_id": event.id})
        else:
            notifications = evaluate_case_event(event, case, self.settings)
        self._deliver(notifications, case_bus_event(event, case, self.settings))

    def on_sla_signal(self, signal: SlaSignal, case: EnrichedCase | None) -> None:
        self._deliver(
            evaluate_sla_signal(signal, case, self.settings),
            sla_bus_event(signal, case, self.settings),
        )

    # -- delivery ------------------------------------------------------------------------------
    def _deliver(self, notifications: list[Notification], bus_event: BusEvent | None) -> None:
        first_error: Exception | None = None
        for notification in notifications:
            try:
                self._notify(notification)
            except Exception as exc:
                first_error = first_error or exc
                logger.warning(
                    "notification failed",
                    extra={
                        "rule": notification.rule,
                        "notification_id": notification.notification_id,
                        "case_id": notification.case_id,
                        "error": type(exc).__name__,
                    },
                )
        if bus_event is not None:
            try:
                self._republish(bus_event)
            except Exception as exc:
                first_error = first_error or exc
                logger.warning(
                    "enriched event failed",
                    extra={"detail_type": bus_event.detail_type, "error": type(exc).__name__},
                )
        if first_error is not None:
            raise first_error

    def _notify(self, notification: Notification) -> None:
        def send() -> dict[str, Any]:
            if not self._in_status_order(notification):
                return {"outcome": "stale"}
            return {"outcome": "published", "messageId": self.notifier.publish(notification)}

        result, executed = self.once.run(f"notify:{notification.notification_id}", send)
        ids = {
            "rule": notification.rule,
            "notification_id": notification.notification_id,
            "case_id": notification.case_id,
            "source_id": notification.source_id,
        }
        with self._lock:
            if not executed:
                self.duplicates_suppressed += 1
                outcome = "duplicate suppressed"
            elif result.get("outcome") == "stale":
                self.stale_suppressed += 1
                outcome = "stale status suppressed"
            else:
                self.notifications_by_rule[notification.rule] += 1
                self.sent.append(
                    SentNotification(
                        notification.rule,
                        notification.notification_id,
                        notification.case_id,
                        notification.source_id,
                        str(result.get("messageId", "")),
                    )
                )
                outcome = "notification published"
        logger.info(outcome, extra=ids)

    def _in_status_order(self, notification: Notification) -> bool:
        if notification.status_change is None or self.status_order is None:
            return True
        return self.status_order.claim(
            case_id=notification.case_id,
            status=notification.status_change,
            changed_at=notification.as_of,
            notification_id=notification.notification_id,
            replay_name=notification.replay_name,
        )

    def _republish(self, bus_event: BusEvent) -> None:
        def put() -> dict[str, Any]:
            return {"outcome": "put", "count": self.bus.put([bus_event])}

        _, executed = self.once.run(f"bus:{bus_event.event_key}", put)
        with self._lock:
            if executed:
                self.bus_events[bus_event.detail_type] += 1
            else:
                self.bus_duplicates_suppressed += 1
        logger.info(
            "enriched event put" if executed else "enriched event duplicate suppressed",
            extra={"detail_type": bus_event.detail_type, "bus_event_id": bus_event.event_key},
        )

    # -- report --------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """What this sink did (ids and counts only): for the local pipeline's report."""
        with self._lock:
            return {
                "notifications": sum(self.notifications_by_rule.values()),
                "notifications_by_rule": dict(sorted(self.notifications_by_rule.items())),
                "bus_events": dict(sorted(self.bus_events.items())),
                "duplicates_suppressed": self.duplicates_suppressed,
                "bus_duplicates_suppressed": self.bus_duplicates_suppressed,
                "stale_suppressed": self.stale_suppressed,
                "replays_skipped": self.replays_skipped,
                "unhandled_events": self.unhandled_events,
            }
