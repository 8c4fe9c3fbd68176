"""Notifications: rules -> one SNS message per (event, rule), and every processed event onto the enriched bus.

`Notifications` is a `CaseSink` and an `SlaSignalSink`. For each event (or SLA signal) the rules decide
which notifications it causes (`casewatch.domain.notifications`); each is published once (the guard's
key is `notify:<notificationId>`), a status notification only if it is not older than a different
status already sent for the case; then the event is put, enriched, on the bus once (`bus:<id>`).
Each step is attempted even if an earlier one failed; the first error is raised afterwards, so a retry
repeats only what failed. What happened is counted through the metrics port, and logged with ids only.
Replays follow `settings.replays` (README: Replay).
"""

from __future__ import annotations

from typing import Any

from casewatch.domain.notifications.bus import BusEvent, case_bus_event, sla_bus_event
from casewatch.domain.notifications.render import Notification
from casewatch.domain.notifications.rules import evaluate_case_event, evaluate_sla_signal
from casewatch.errors import DeliveryError, PermanentDeliveryError
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.signals import SlaSignal
from casewatch.observability import (
    BUS_EVENTS_DUPLICATE,
    BUS_EVENTS_PUT,
    NOTIFICATIONS_DUPLICATE,
    NOTIFICATIONS_PUBLISHED,
    NOTIFICATIONS_STALE,
    REPLAYS_SKIPPED,
    logger,
)
from casewatch.ports import EnrichedBus, ExactlyOnce, MetricsRecorder, Notifier, StatusOrder
from casewatch.settings import Settings


class Notifications:
    """Notifications (SNS) and enriched events (EventBridge), exactly once (`CaseSink`, `SlaSignalSink`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        notifier: Notifier,
        bus: EnrichedBus,
        once: ExactlyOnce,
        metrics: MetricsRecorder,
        status_order: StatusOrder | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.bus = bus
        self.once = once
        self.metrics = metrics
        self.status_order = status_order

    # -- ports ---------------------------------------------------------------------------------
    def on_case_event(self, event: CaseEvent, case: EnrichedCase | None) -> None:
        notifications: list[Notification] = []
        if event.is_replay and self.settings.replays == "skip":
            self.metrics.count(REPLAYS_SKIPPED)
            logger.info("replayed event: notifications skipped", event_id=event.id)
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
        """Every step is attempted; then the first retryable error is raised (a retry repeats only what
        failed), or, when every failure is permanent, `PermanentDeliveryError` with their reasons."""
        errors: list[tuple[str, Exception]] = []
        for notification in notifications:
            try:
                self._notify(notification)
            except Exception as exc:
                errors.append((f"notification {notification.rule}", exc))
                logger.warning(
                    "notification failed",
                    rule=notification.rule,
                    notification_id=notification.notification_id,
                    case_id=notification.case_id,
                    error=type(exc).__name__,
                )
        if bus_event is not None:
            try:
                self._republish(bus_event)
            except Exception as exc:
                errors.append((f"enriched event {bus_event.detail_type}", exc))
                logger.warning(
                    "enriched event failed", detail_type=bus_event.detail_type, error=type(exc).__name__
                )
        retryable = [exc for _, exc in errors if not (isinstance(exc, DeliveryError) and not exc.retryable)]
        if retryable:
            raise retryable[0]
        if errors:
            raise PermanentDeliveryError("; ".join(f"{what}: {exc}" for what, exc in errors))

    def _notify(self, notification: Notification) -> None:
        def send() -> dict[str, Any]:
            if not self._in_status_order(notification):
                return {"outcome": "stale"}
            return {"outcome": "published", "messageId": self.notifier.publish(notification)}

        result, executed = self.once.run(f"notify:{notification.notification_id}", send)
        if not executed:
            self.metrics.count(NOTIFICATIONS_DUPLICATE)
            outcome = "duplicate suppressed"
        elif result.get("outcome") == "stale":
            self.metrics.count(NOTIFICATIONS_STALE)
            outcome = "stale status suppressed"
        else:
            self.metrics.count(NOTIFICATIONS_PUBLISHED)
            outcome = "notification published"
        logger.info(
            outcome,
            rule=notification.rule,
            notification_id=notification.notification_id,
            case_id=notification.case_id,
            source_id=notification.source_id,
        )

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
        self.metrics.count(BUS_EVENTS_PUT if executed else BUS_EVENTS_DUPLICATE)
        logger.info(
            "enriched event put" if executed else "enriched event duplicate suppressed",
            detail_type=bus_event.detail_type,
            bus_event_id=bus_event.event_key,
        )


__all__ = ["Notifications"]
