"""The enrichment plan and merge: which fields come from the event, the snapshot or GetCase (pure)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casewatch.domain.enrichment import (
    CASE_DELETED_FLAG,
    CASE_NOT_FOUND,
    IncludedFields,
    event_kind,
    merge,
    plan,
    supersedes,
)
from casewatch.models.enriched import EnrichedCase, EnrichedField, Provenance
from casewatch.models.events import CaseEvent, parse_case_event
from casewatch.models.fields import FieldValue
from casewatch.settings import load_cdk_context
from tests.builders import ROOT, load_event

PRIORITY = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
CASE_1 = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DOMAIN = "b7f3c2a1-5d4e-4f6a-9b8c-0d1e2f3a4b5c"
CREATED_AT = datetime(2026, 11, 23, 9, 0, 0, 412000, tzinfo=UTC)
UPDATED_AT = datetime(2026, 11, 23, 9, 14, 37, 905000, tzinfo=UTC)
FETCHED_AT = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def event(stem: str, **detail_changes: Any) -> CaseEvent:
    raw = copy.deepcopy(load_event(stem))
    raw["detail"].update(detail_changes)
    return parse_case_event(raw)


def snapshot(
    values: dict[str, Any],
    *,
    as_of: datetime,
    version: datetime | None = None,
    deleted: bool = False,
    getcase_at: datetime | None = None,
    case_id: str = CASE_1,
) -> EnrichedCase:
    return EnrichedCase(
        domain_id=DOMAIN,
        case_id=case_id,
        version=version or as_of,
        fields={
            f: EnrichedField(value=FieldValue.of(v), source=Provenance.EVENT, as_of=as_of)
            for f, v in values.items()
        },
        deleted=deleted,
        getcase_at=getcase_at,
    )


# --- plan --------------------------------------------------------------------------------------


def test_an_event_carrying_every_needed_field_fetches_nothing() -> None:
    created = event("case-created")
    needed = frozenset({"status", "title", PRIORITY, "customer_id"})
    decided = plan(created, needed, None)
    assert decided.fetch == ()
    assert not decided.needs_getcase
    assert decided.from_event == tuple(sorted(needed))


def test_missing_fields_are_fetched_in_one_sorted_request_of_exactly_those_ids() -> None:
    updated = event("case-updated")
    needed = frozenset({"status", "title", "customer_id", "reference_number", "summary", PRIORITY})
    decided = plan(updated, needed, None)
    assert decided.fetch == ("customer_id", "reference_number", "summary")
    assert decided.from_event == tuple(sorted({"status", "title", PRIORITY}))


def test_a_field_carried_as_empty_value_counts_as_carried() -> None:
    decided = plan(event("case-updated"), frozenset({"case_reason"}), None)
    assert decided.from_event == ("case_reason",)
    assert decided.fetch == ()


def test_fields_included_in_events_but_omitted_are_known_empty() -> None:
    # Cases puts only configured, non-null fields in events: a configured field it omits is null.
    created = event("case-created")  # unassigned: no assigned_user
    included = IncludedFields(frozenset({"status", "assigned_user"}))
    decided = plan(created, frozenset({"status", "assigned_user", "case_reason"}), None, included=included)
    assert decided.empty_in_event == ("assigned_user",)
    assert decided.fetch == ("case_reason",)  # not configured: unknown


@pytest.mark.parametrize(
    ("auto", "field_id", "covered"),
    [
        ("All", "case_reason", True),
        ("All", PRIORITY, True),
        ("System", "case_reason", True),
        ("System", PRIORITY, False),
        ("Custom", PRIORITY, True),
        ("Custom", "case_reason", False),
        (None, "case_reason", False),
    ],
)
def test_auto_included_fields(auto: Any, field_id: str, covered: bool) -> None:
    assert IncludedFields(auto_include=auto).covers(field_id) is covered


def test_a_metadata_only_event_proves_nothing_about_omitted_fields() -> None:
    metadata_only = event("case-updated-metadata-only")
    included = IncludedFields(frozenset({"status", "title"}))
    decided = plan(metadata_only, frozenset({"status", "title"}), None, included=included)
    assert decided.empty_in_event == ()
    assert decided.fetch == ("status", "title")


def test_included_fields_come_from_the_settings_by_name() -> None:
    settings = load_cdk_context(ROOT / "cdk.json")
    included = IncludedFields.from_settings(settings)
    assert PRIORITY in included.field_ids  # `priority` resolved through field_names
    assert "status" in included.field_ids


@pytest.mark.parametrize(
    ("snapshot_as_of", "fetched"),
    [
        (UPDATED_AT + timedelta(seconds=5), ()),  # fresh: not older than the event
        (UPDATED_AT, ()),  # same instant: still not older
        (UPDATED_AT - timedelta(milliseconds=1), ("customer_id", "reference_number")),  # stale
    ],
)
def test_case_events_use_a_snapshot_field_only_if_it_is_not_older_than_the_event(
    snapshot_as_of: datetime, fetched: tuple[str, ...]
) -> None:
    updated = event("case-updated")
    stored = snapshot({"customer_id": "c-1", "reference_number": "78412093"}, as_of=snapshot_as_of)
    decided = plan(updated, frozenset({"status", "customer_id", "reference_number"}), stored)
    assert decided.fetch == fetched
    assert decided.from_snapshot == tuple(sorted({"customer_id", "reference_number"} - set(fetched)))
    assert decided.from_event == ("status",)


def test_the_event_wins_over_a_fresher_snapshot_for_fields_it_carries() -> None:
    stored = snapshot({"status": "closed"}, as_of=UPDATED_AT + timedelta(hours=1))
    decided = plan(event("case-updated"), frozenset({"status"}), stored)
    assert decided.from_event == ("status",)
    assert decided.from_snapshot == ()


def test_related_item_events_use_every_snapshot_field_whatever_its_age() -> None:
    comment = event("related-item-comment")
    stored = snapshot({"status": "open", "title": "T"}, as_of=CREATED_AT)  # older than the comment
    decided = plan(comment, frozenset({"status", "title", "customer_id"}), stored)
    assert decided.from_snapshot == ("status", "title")
    assert decided.fetch == ("customer_id",)  # only what the snapshot lacks


def test_related_item_events_without_a_snapshot_fetch_every_needed_field() -> None:
    decided = plan(event("related-item-contact"), frozenset({"status", "title"}), None)
    assert decided.fetch == ("status", "title")


def test_related_item_with_a_complete_snapshot_needs_no_getcase() -> None:
    stored = snapshot({"status": "open", "title": "T"}, as_of=CREATED_AT)
    assert plan(event("related-item-file"), frozenset({"status", "title"}), stored).fetch == ()


def test_case_deleted_never_fetches() -> None:
    deleted = event("case-deleted")
    decided = plan(deleted, frozenset({"status", "title"}), None)
    assert decided.fetch == ()
    assert decided.unavailable == ("status", "title")
    stored = snapshot({"status": "open"}, as_of=CREATED_AT, case_id=deleted.case_id or "")
    decided = plan(deleted, frozenset({"status", "title"}), stored)
    assert decided.from_snapshot == ("status",)
    assert decided.unavailable == ("title",)


@pytest.mark.parametrize("stem", ["case-updated", "related-item-comment"])
def test_no_getcase_for_a_case_the_snapshot_knows_is_deleted(stem: str) -> None:
    stored = snapshot(
        {"status": "open"}, as_of=CREATED_AT, version=UPDATED_AT + timedelta(hours=7), deleted=True
    )
    decided = plan(event(stem), frozenset({"status", "title", "customer_id"}), stored)
    assert decided.fetch == ()
    assert decided.snapshot_deleted
    assert "customer_id" in decided.unavailable


def test_unhandled_event_types_have_no_plan() -> None:
    unhandled = event("related-item-updated-unhandled")
    with pytest.raises(ValueError, match=r"RELATED_ITEM\.UPDATED"):
        event_kind(unhandled)


FIELD_IDS = ["status", "title", "customer_id", "assigned_user", PRIORITY, "summary", "case_reason", "x1"]


@given(
    stem=st.sampled_from(["case-created", "case-updated", "case-updated-metadata-only", "related-item-sla"]),
    needed=st.frozensets(st.sampled_from(FIELD_IDS)),
    stored=st.none() | st.dictionaries(st.sampled_from(FIELD_IDS), st.sampled_from(["a", "b"])),
    age=st.integers(min_value=-3600, max_value=3600),
    included=st.frozensets(st.sampled_from(FIELD_IDS)),
)
def test_the_plan_partitions_the_needed_fields_and_never_fetches_what_the_event_carries(
    stem: str, needed: frozenset[str], stored: dict[str, str] | None, age: int, included: frozenset[str]
) -> None:
    subject = event(stem)
    view = None if stored is None else snapshot(stored, as_of=subject.change_time + timedelta(seconds=age))
    decided = plan(subject, needed, view, included=IncludedFields(included))
    parts = [
        decided.from_event,
        decided.empty_in_event,
        decided.from_snapshot,
        decided.fetch,
        decided.unavailable,
    ]
    assert sorted(f for part in parts for f in part) == sorted(needed)
    assert not set(decided.fetch) & subject.fields.keys()
    assert list(decided.fetch) == sorted(decided.fetch)
    if view is not None and decided.kind == "case":
        assert all(view.fields[f].as_of >= subject.change_time for f in decided.from_snapshot)


# --- merge -------------------------------------------------------------------------------------


def test_merge_records_where_each_field_came_from_and_when() -> None:
    updated = event("case-updated")
    stored = snapshot({"reference_number": "78412093"}, as_of=UPDATED_AT + timedelta(seconds=1))
    needed = frozenset({"status", "reference_number", "customer_id", "summary"})
    decided = plan(updated, needed, stored)
    assert decided.fetch == ("customer_id", "summary")
    view = merge(
        updated,
        decided,
        stored,
        fetched={"customer_id": FieldValue.of("profile-1")},  # summary: GetCase had no value
        fetched_template_id="tpl",
        fetched_at=FETCHED_AT,
    )
    assert view.fields["status"].source is Provenance.EVENT
    assert view.fields["status"].as_of == UPDATED_AT
    assert view.fields["reference_number"].source is Provenance.SNAPSHOT
    assert view.fields["reference_number"].as_of == UPDATED_AT + timedelta(seconds=1)
    assert view.fields["customer_id"].source is Provenance.GETCASE
    assert view.fields["customer_id"].as_of == FETCHED_AT
    assert view.value("customer_id") == "profile-1"
    assert view.fields["summary"].value.empty_value is not None  # asked for, empty: known empty
    assert view.value("summary") is None
    assert view.missing == ()
    assert view.version == UPDATED_AT
    assert view.getcase_at == FETCHED_AT
    assert view.template_id == updated.template_id  # the event's wins
    assert view.event_id == updated.id
    assert (view.domain_id, view.case_id) == (DOMAIN, CASE_1)
    assert not view.deleted
    assert view.flags == ()


def test_merge_of_a_case_event_drops_stale_snapshot_fields_it_did_not_use() -> None:
    updated = event("case-updated")
    stored = snapshot({"summary": "old", "status": "open"}, as_of=CREATED_AT)
    decided = plan(updated, frozenset({"status"}), stored)
    view = merge(updated, decided, stored)
    assert "summary" not in view.fields
    assert view.value("status") == "pending-customer"


def test_merge_of_inferred_empty_fields() -> None:
    created = event("case-created")
    included = IncludedFields(frozenset({"assigned_user"}))
    decided = plan(created, frozenset({"assigned_user"}), None, included=included)
    view = merge(created, decided, None)
    assert view.fields["assigned_user"].source is Provenance.EVENT
    assert view.fields["assigned_user"].as_of == CREATED_AT
    assert view.value("assigned_user") is None
    assert view.getcase_at is None


def test_merge_when_the_case_is_gone_keeps_what_the_event_carries_and_flags_it() -> None:
    updated = event("case-updated")
    decided = plan(updated, frozenset({"status", "customer_id"}), None)
    view = merge(updated, decided, None, fetched_at=FETCHED_AT, case_not_found=True)
    assert view.flags == (CASE_NOT_FOUND,)
    assert view.missing == ("customer_id",)
    assert view.value("status") == "pending-customer"
    assert view.getcase_at is None


def test_merge_of_a_related_item_keeps_the_snapshot_version_and_every_snapshot_field() -> None:
    comment = event("related-item-comment")
    stored = snapshot({"status": "open", "summary": "S"}, as_of=CREATED_AT, getcase_at=CREATED_AT)
    decided = plan(comment, frozenset({"status", "title"}), stored)
    view = merge(comment, decided, stored, fetched={"title": FieldValue.of("T")}, fetched_at=FETCHED_AT)
    assert view.version == CREATED_AT  # a related item changes no case field
    assert view.sources() == {
        "status": Provenance.SNAPSHOT,
        "summary": Provenance.SNAPSHOT,
        "title": Provenance.GETCASE,
    }
    assert view.fields["status"].as_of == CREATED_AT
    assert view.getcase_at == FETCHED_AT
    assert supersedes(view, stored)  # same version, fetched later: worth storing


def test_merge_of_a_related_item_without_a_snapshot_is_versioned_at_the_event() -> None:
    contact = event("related-item-contact")
    decided = plan(contact, frozenset({"status"}), None)
    view = merge(
        contact,
        decided,
        None,
        fetched={"status": FieldValue.of("open")},
        fetched_template_id="tpl",
        fetched_at=FETCHED_AT,
    )
    assert view.version == contact.change_time
    assert view.template_id == "tpl"


def test_merge_of_a_deletion_carries_the_snapshot_and_marks_it_deleted() -> None:
    deleted = event("case-deleted")
    stored = snapshot({"status": "open"}, as_of=CREATED_AT, case_id=deleted.case_id or "")
    decided = plan(deleted, frozenset({"status", "title"}), stored)
    view = merge(deleted, decided, stored)
    assert view.deleted
    assert view.value("status") == "open"
    assert view.missing == ("title",)
    assert view.version == deleted.change_time
    assert view.flags == ()


def test_views_built_on_a_deleted_snapshot_are_deleted_and_flagged() -> None:
    comment = event("related-item-comment")
    stored = snapshot({"status": "open"}, as_of=CREATED_AT, version=UPDATED_AT, deleted=True)
    view = merge(comment, plan(comment, frozenset({"status"}), stored), stored)
    assert view.deleted
    assert view.flags == (CASE_DELETED_FLAG,)


def test_merge_needs_the_fetch_time_when_it_fetched() -> None:
    updated = event("case-updated")
    decided = plan(updated, frozenset({"customer_id"}), None)
    with pytest.raises(ValueError, match="fetched_at"):
        merge(updated, decided, None, fetched={})


# --- ordering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ((UPDATED_AT, None), (CREATED_AT, None), True),  # newer version
        ((CREATED_AT, FETCHED_AT), (UPDATED_AT, None), False),  # older version, however fresh
        ((UPDATED_AT, None), (UPDATED_AT, None), False),  # the same event again
        ((UPDATED_AT, FETCHED_AT), (UPDATED_AT, None), True),  # same version, GetCase added
        ((UPDATED_AT, FETCHED_AT), (UPDATED_AT, CREATED_AT), True),  # same version, fetched later
        ((UPDATED_AT, CREATED_AT), (UPDATED_AT, FETCHED_AT), False),  # same version, fetched earlier
        ((UPDATED_AT, None), (UPDATED_AT, FETCHED_AT), False),
    ],
)
def test_supersedes(
    new: tuple[datetime, datetime | None], old: tuple[datetime, datetime | None], expected: bool
) -> None:
    def view(version: datetime, getcase_at: datetime | None) -> EnrichedCase:
        return EnrichedCase(domain_id=DOMAIN, case_id=CASE_1, version=version, getcase_at=getcase_at)

    assert supersedes(view(*new), view(*old)) is expected
