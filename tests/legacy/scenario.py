"""A morning of a deployment of main, in its state table: one case per kind of SLA state to carry over.

`write_old_state(old, base)` applies Cases events (made by `tests.builders`) through main's adapters, `base`
being the first event's time, and ends two hours later. What each case holds then:

| case | SLAs (main's items) | in the new `due` index |
| --- | --- | --- |
| `PAUSED` | first response Met (a comment), resolve Active but paused (pending customer) | no (paused) |
| `BREACHED` | a Cases SLA Overdue (its breach timer fired), resolve Active | yes: resolve's target |
| `REOPENED` | resolve Met, then Active again in its second cycle; a live and a replay status mark | yes |
| `DELETED` | resolve Cancelled (the case was deleted; its view says so) | no |
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from tests.builders import DOMAIN, PRIORITY, case_event_raw, enriched, parsed, related_raw, sla_item_raw
from tests.legacy.deployment import OldDeployment

PAUSED: Final = "0a1b2c3d-0000-4000-8000-00000000000a"
BREACHED: Final = "0a1b2c3d-0000-4000-8000-00000000000b"
REOPENED: Final = "0a1b2c3d-0000-4000-8000-00000000000c"
DELETED: Final = "0a1b2c3d-0000-4000-8000-00000000000d"
CASES: Final = (PAUSED, BREACHED, REOPENED, DELETED)
CASES_SLA_ITEM: Final = "7e6d5c4b-0000-4000-8000-0000000000f1"
REPLAY: Final = "backfill"
DURATION: Final = timedelta(hours=2)  # from the first event to the end of the morning


def _apply(old: OldDeployment, raw: dict[str, object], views: dict[str, EnrichedCase]) -> CaseEvent:
    """One event as main's case-changed/related-item-created functions applied it, a second after it."""
    event = parsed(raw)
    assert event.case_id is not None
    before = views.get(event.case_id)
    view = enriched(event, before.values() if before is not None else None)
    if event.event_type.startswith("CASE."):
        views[event.case_id] = view
    old.event(event, views.get(event.case_id), now=event.change_time + timedelta(seconds=1))
    return event


def write_old_state(old: OldDeployment, base: datetime) -> None:
    def at(minutes: float) -> datetime:
        return base + timedelta(minutes=minutes)

    views: dict[str, EnrichedCase] = {}

    def case(event_type: str, case_id: str, minutes: float, status: str, priority: str = "low") -> None:
        fields = {"status": status, PRIORITY: priority, "title": "Refund for order 1234"}
        changed = None if event_type == "CASE.CREATED" else ["status"]
        _apply(
            old,
            case_event_raw(event_type, case_id, at(minutes), fields, changed=changed, created=at(0)),
            views,
        )

    case("CASE.CREATED", PAUSED, 0, "open", priority="high")
    _apply(old, related_raw(PAUSED, at(10), "Comment", "cm-1", {"comment": {"body": "On it"}}), views)
    case("CASE.UPDATED", PAUSED, 20, "pending-customer", priority="high")

    case("CASE.CREATED", BREACHED, 1, "open")
    _apply(old, sla_item_raw(BREACHED, at(5), CASES_SLA_ITEM, minutes=30), views)
    # Its breach timer fired at the target (main's sla-timer: the horizon moves there).
    old.observe(DOMAIN, BREACHED, (), tick=at(35), now=at(35) + timedelta(seconds=2))

    case("CASE.CREATED", REOPENED, 2, "open")
    case("CASE.UPDATED", REOPENED, 60, "closed")
    case("CASE.UPDATED", REOPENED, 90, "open")
    old.status_order.claim(
        case_id=REOPENED,
        status="closed",
        changed_at=at(60),
        notification_id=f"{REPLAY}:status",
        replay_name=REPLAY,
    )

    case("CASE.CREATED", DELETED, 3, "open")
    _apply(old, case_event_raw("CASE.DELETED", DELETED, at(30)), views)


__all__ = ["BREACHED", "CASES", "DELETED", "DURATION", "PAUSED", "REOPENED", "write_old_state"]
