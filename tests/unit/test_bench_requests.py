"""`make bench`'s request accounting (`casewatch_dev.bench.accounting`): kinds, purposes, the floor, the
`due` index's write units."""

from __future__ import annotations

from types import SimpleNamespace

from casewatch_dev.bench.accounting import (
    Call,
    Invocation,
    _index_writes,
    invocation_kind,
    minimum_requests,
    purpose_of,
)


def _case_event(event_type: str, related: str | None = None) -> dict[str, object]:
    detail: dict[str, object] = {"eventType": event_type}
    if related is not None:
        detail["relatedItem"] = {"relatedItemType": related}
    return {"detail": detail}


def test_invocations_are_filed_by_function_event_type_item_type_and_timer_kind() -> None:
    assert invocation_kind("case-changed", _case_event("CASE.CREATED")) == "case_created"
    assert invocation_kind("case-changed", _case_event("CASE.UPDATED")) == "case_updated"
    assert invocation_kind("case-changed", _case_event("CASE.DELETED")) == "case_deleted"
    assert (
        invocation_kind("related-item-created", _case_event("RELATED_ITEM.CREATED", "Comment")) == "comment"
    )
    assert invocation_kind("related-item-created", _case_event("RELATED_ITEM.CREATED", "Sla")) == "sla_item"
    assert invocation_kind("sla-timer", {"kind": "warning"}) == "warning_timer"
    assert invocation_kind("sla-timer", {"kind": "breach"}) == "breach_timer"
    assert invocation_kind("reconcile", {}) == "reconcile_run"


def test_dynamodb_requests_are_told_apart_by_key_and_expression() -> None:
    assert purpose_of("GetItem", {"Key": {"pk": {"S": "CASE#1"}}}) == "case read"
    assert purpose_of("GetItem", {"Key": {"pk": {"S": "FEED#d"}}}) == "watermark read"
    assert purpose_of("PutItem", {"Item": {"pk": {"S": "CASE#1"}}}) == "state write"
    assert purpose_of("UpdateItem", {"Key": {}, "UpdateExpression": "SET #rev = :rev"}) == "state write"
    done = {"Key": {}, "UpdateExpression": "SET claims.#claim.d = :done REMOVE claims.#claim.o"}
    assert purpose_of("UpdateItem", done) == "claim done"
    assert purpose_of("Query", {"IndexName": "due"}) == "due sweep"
    assert purpose_of("Query", {}) == "log read"
    assert purpose_of("BatchWriteItem", {}) == "log write"


def _invocation(kind: str, *purposes: str, failed: str | None = None) -> Invocation:
    return Invocation(
        kind, [Call("x", p, p, failed=failed if p == "DeleteSchedule" else None) for p in purposes]
    )


def test_the_floor_batches_publishes_folds_the_log_into_the_write_and_keeps_one_read() -> None:
    invocation = _invocation(
        "case_updated",
        "case read",
        "log write",
        "state write",
        *["Publish"] * 12,
        "PutEvents",
        "CreateSchedule",
        "claim done",
    )
    # read + write + 2 PublishBatch + PutEvents + CreateSchedule + claim done
    assert minimum_requests(invocation) == 7
    assert len(invocation.calls) == 18


def test_the_floor_drops_deletes_of_timers_that_already_fired() -> None:
    gone = _invocation(
        "case_updated", "case read", "state write", "DeleteSchedule", failed="ResourceNotFound"
    )
    pending = _invocation("case_updated", "case read", "state write", "DeleteSchedule")
    assert minimum_requests(gone) == 2
    assert minimum_requests(pending) == 3


def test_a_poll_needs_one_due_query_and_no_read_again_per_case() -> None:
    poll = _invocation(
        "reconcile_run",
        "watermark read",
        "SearchCases",
        "SearchAllRelatedItems",
        "case read (batch)",
        "case read",
        "state write",
        *["due sweep"] * 4,
        "watermark write",
    )
    assert minimum_requests(poll) == 7


def _item(**attrs: object) -> SimpleNamespace:
    return SimpleNamespace(attrs={k: SimpleNamespace(value=v) for k, v in attrs.items()})


def test_due_index_writes_count_added_removed_and_moved_entries() -> None:
    due = _item(due_shard="1", due_at="2026-11-23T10:00:00Z", dom="d")
    moved = _item(due_shard="1", due_at="2026-11-23T11:00:00Z", dom="d")
    plain = _item(dom="d")
    assert _index_writes(None, plain) == 0
    assert _index_writes(plain, due) == 1
    assert _index_writes(due, plain) == 1
    assert _index_writes(due, due) == 0
    assert _index_writes(due, moved) == 2
