"""Which notifications an event or an SLA signal causes (the rules of `settings.notification_rules`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from casewatch.constants import CASE_CREATED, CASE_DELETED, CASE_UPDATED, RELATED_ITEM_CREATED
from casewatch.domain.notifications.render import (
    STATUS_FIELD,
    Notification,
    build_event_notification,
    build_signal_notification,
    plain,
)
from casewatch.domain.notifications.view import CaseView, case_view, signal_view
from casewatch.domain.values import one_of
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from casewatch.models.related_items import RelatedItemType
from casewatch.models.signals import SlaSignal
from casewatch.settings import NotificationRule, Settings

_CASE_TRIGGERS: Final[Mapping[str, tuple[str, ...]]] = {
    "case_created": (CASE_CREATED,),
    "case_updated": (CASE_UPDATED,),
    "field_changed": (CASE_CREATED, CASE_UPDATED),
    "case_deleted": (CASE_DELETED,),
}
_RELATED_ITEM_TRIGGERS: Final[Mapping[str, RelatedItemType | None]] = {
    "comment_added": RelatedItemType.COMMENT,
    "contact_linked": RelatedItemType.CONTACT,
    "file_attached": RelatedItemType.FILE,
    "related_item_added": None,  # any type
}


def matches_case(rule: NotificationRule, view: CaseView, settings: Settings) -> bool:
    """`match`: every listed field has one of the listed values."""
    for ref, values in rule.match.items():
        fid = settings.field_id(ref)
        if fid not in view.fields or not one_of(view.value(fid), values):
            return False
    return True


def changed_watched_fields(
    rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings
) -> list[str] | None:
    """Watched fields the event changed (to one of `to_values` if set); None if the rule does not fire.

    A rule without `fields` watches nothing in particular: an empty list (fires).
    """
    if not rule.fields:
        return []
    changed = set(event.changed_field_ids)
    hits = [fid for fid in dict.fromkeys(settings.field_id(ref) for ref in rule.fields) if fid in changed]
    if rule.to_values:
        hits = [fid for fid in hits if one_of(view.value(fid), rule.to_values)]
    return hits or None


def rule_fires(rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings) -> bool:
    """Does `rule` notify for `event` (trigger, fields/to_values, match)?"""
    if not event.handled:
        return False
    if rule.on in _CASE_TRIGGERS:
        if event.event_type not in _CASE_TRIGGERS[rule.on]:
            return False
        if changed_watched_fields(rule, event, view, settings) is None:
            return False
    elif rule.on in _RELATED_ITEM_TRIGGERS:
        item = event.related_item
        wanted = _RELATED_ITEM_TRIGGERS[rule.on]
        if event.event_type != RELATED_ITEM_CREATED or item is None:
            return False
        if wanted is not None and item.related_item_type is not wanted:
            return False
    else:  # sla_* triggers fire for SLA signals only
        return False
    return matches_case(rule, view, settings)


def signal_rule_fires(rule: NotificationRule, signal: SlaSignal, view: CaseView, settings: Settings) -> bool:
    return rule.on == signal.kind.value and matches_case(rule, view, settings)


def _status_change(
    rule: NotificationRule, event: CaseEvent, view: CaseView, settings: Settings
) -> str | None:
    """The new status if this is a status notification (the rule watches status and it changed)."""
    if rule.on not in ("field_changed", "case_updated", "case_created"):
        return None
    if STATUS_FIELD not in {settings.field_id(ref) for ref in rule.fields}:
        return None
    if STATUS_FIELD not in event.changed_field_ids:
        return None
    status = view.value(STATUS_FIELD)
    return None if status is None else plain(status)


def evaluate_case_event(
    event: CaseEvent, case: EnrichedCase | None, settings: Settings
) -> list[Notification]:
    """The notifications the rules ask for, in rule order (replay policy is the sink's business)."""
    if not event.handled or event.case_id is None:
        return []
    view = case_view(event, case)
    notifications = []
    for rule in settings.notification_rules:
        if rule_fires(rule, event, view, settings):
            changed = changed_watched_fields(rule, event, view, settings) or []
            notifications.append(
                build_event_notification(
                    rule,
                    event,
                    view,
                    changed,
                    settings,
                    status_change=_status_change(rule, event, view, settings),
                ),
            )
    return notifications


def evaluate_sla_signal(
    signal: SlaSignal, case: EnrichedCase | None, settings: Settings
) -> list[Notification]:
    view = signal_view(signal, case)
    return [
        build_signal_notification(rule, signal, view, settings)
        for rule in settings.notification_rules
        if signal_rule_fires(rule, signal, view, settings)
    ]
