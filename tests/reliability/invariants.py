"""What "nothing lost, nothing twice, state right" means for a faulty replay, against the in-order one.

The tolerances, and why each is not a loss:

1. Dropped events (Cases' delivery is best effort). casewatch never sees them, so:
   - their own notifications (e.g. the `comment-added` of a dropped comment) are not sent;
   - a dropped status change that Cases' current state no longer shows — a pause or resume
     (`pause_when`), or a change a later status change superseded (a close before a reopen, a reopen
     before the next close) — is history Cases does not report (search gives the current status and
     `last_closed_datetime`; the events do not carry `last_reopened_datetime`). The policy SLAs that
     depend on status history (`pause_when`, `rearm_on_reopen`) of that case may then end with another
     target, cycle, status or completion, and their SLA notifications may differ.
   Every other consequence of a drop is repaired by the change feed, which reads what Cases says
   (SearchCases, SearchAllRelatedItems) whether or not its events arrived — e.g. a dropped final
   closing, first comment or CASE.CREATED still ends with the in-order row, and a Cases SLA whose
   RELATED_ITEM.CREATED (Sla) event was dropped is discovered: its row and its SLA notifications are the
   in-order run's (they were tolerated before the feed).
2. Late (reordered or dropped) completions and "SLA at risk": a warning is sent on what casewatch knows
   at the warning time, without asking Cases. When the event that completes an SLA arrives after its
   warning time, or never, an `sla-at-risk` notification the in-order run did not send is legitimate —
   for a case with a late or dropped event, and only for that rule.
Nothing else may differ.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from casewatch_dev.generate import COMMENTS, PROFILES, TITLES
from tests.reliability.scenario import SETTINGS, Day, Run

# What generated case data looks like: titles, comment bodies, customer ids, summaries.
CASE_DATA = (*TITLES, *COMMENTS, PROFILES, "contacted us about order")


def _case_id(event: dict[str, Any]) -> str | None:
    detail = event["detail"]
    holder = detail.get("case") or detail.get("relatedItem") or {}
    case_id = holder.get("caseId")
    return case_id if isinstance(case_id, str) else None


def dropped_events(day: Day, run: Run) -> list[dict[str, Any]]:
    dropped = set(run.plan.dropped)
    return [e for e in day.events if e["id"] in dropped]


def unseen_cases_slas(day: Day, run: Run) -> set[tuple[str, str]]:
    """(case, sla key) of Cases SLAs whose creation event was dropped (the change feed discovers them)."""
    found = set()
    for event in dropped_events(day, run):
        item = event["detail"].get("relatedItem") or {}
        if event["detail"]["eventType"] == "RELATED_ITEM.CREATED" and item.get("relatedItemType") == "Sla":
            found.add((item["caseId"], f"cases#{item['relatedItemId']}"))
    return found


def cases_with_dropped_events(day: Day, run: Run) -> set[str]:
    return {case_id for e in dropped_events(day, run) if (case_id := _case_id(e)) is not None}


def history_policy_rows(day: Day, run: Run) -> set[tuple[str, str]]:
    """(case, policy SLA key) of the status-history policies of cases that lost status history."""
    policies = [p for p in SETTINGS.sla_policies if p.pause_when or p.rearm_on_reopen]
    pause_values = {str(v) for p in policies for v in p.pause_when.get("status", [])}
    dropped = set(run.plan.dropped)
    changes: dict[str, list[tuple[str, str | None]]] = {}  # case -> [(event id, status after)]
    for event in day.events:
        detail = event["detail"]
        if detail["eventType"] != "CASE.UPDATED" or "status" not in detail.get("changedFieldIds", []):
            continue
        status = detail["case"].get("fields", {}).get("status", {}).get("value", {}).get("stringValue")
        changes.setdefault(detail["case"]["caseId"], []).append((event["id"], status))
    lost = set()
    for case_id, history in changes.items():
        for n, (event_id, status) in enumerate(history):
            if event_id not in dropped:
                continue
            before = history[n - 1][1] if n else "open"
            superseded = n + 1 < len(history)
            if superseded or status in pause_values or before in pause_values:
                lost.add(case_id)
    return {(case_id, f"policy#{p.name}") for case_id in lost for p in policies}


def cases_with_late_events(day: Day, run: Run) -> set[str]:
    late = set(run.plan.dropped) | set(run.plan.reordered)
    return {case_id for e in day.events if e["id"] in late and (case_id := _case_id(e)) is not None}


def lost_events(day: Day, run: Run) -> list[str]:
    """Ids of events delivered intact that no invocation handled (or deliberately ignored)."""
    dropped = set(run.plan.dropped)
    failed = {
        f["requestPayload"].get("id") for f in run.failures if isinstance(f.get("requestPayload"), dict)
    }
    lost = []
    for event in day.events:
        if event["id"] in dropped:
            continue
        outcomes = run.outcomes.get(event["id"], Counter())
        if not (outcomes["handled"] or outcomes["unhandled"]) and event["id"] not in failed:
            lost.append(event["id"])
    return lost


def unexplained_notifications(day: Day, clean: Run, faulty: Run) -> dict[str, list[dict[str, Any]]]:
    """Notifications missing from, or extra in, the faulty run that the tolerances do not explain."""
    dropped = set(faulty.plan.dropped)
    history = {(case, key.removeprefix("policy#")) for case, key in history_policy_rows(day, faulty)}
    late_cases = cases_with_late_events(day, faulty)
    clean_by_id = {n["id"]: n for n in clean.notifications}
    faulty_by_id = {n["id"]: n for n in faulty.notifications}
    missing = []
    for notification_id in clean_by_id.keys() - faulty_by_id.keys():
        n = clean_by_id[notification_id]
        if n["kind"] == "event" and n["source"] in dropped:
            continue  # the event never arrived
        if n["kind"] == "signal" and (n["case"], n["sla"]) in history:
            continue  # the signal of an SLA judged without the lost status history
        missing.append(n)
    extra = []
    for notification_id in faulty_by_id.keys() - clean_by_id.keys():
        n = faulty_by_id[notification_id]
        if n["rule"] == "sla-at-risk" and n["case"] in late_cases:
            continue  # warned before the late (or dropped) completion arrived
        if n["kind"] == "signal" and (n["case"], n["sla"]) in history:
            continue  # judged without the lost status history
        extra.append(n)
    return {"missing": missing, "extra": extra}


def unexplained_sla_rows(day: Day, clean: Run, faulty: Run) -> list[tuple[Any, ...]]:
    history = history_policy_rows(day, faulty)
    rows = []
    for key in sorted(clean.sla.keys() | faulty.sla.keys()):
        want, got = clean.sla.get(key), faulty.sla.get(key)
        if want == got:
            continue
        if key in history and want is not None and got is not None:
            continue  # judged without the lost status history
        rows.append((key, want, got))
    return rows


def log_lines_with_case_data(run: Run) -> list[str]:
    return [line for line in run.logs if any(value in line for value in CASE_DATA)]
