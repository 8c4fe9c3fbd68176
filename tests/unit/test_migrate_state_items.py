"""Reading the old state table's items (`casewatch_dev.migrate_state.old_items`) and planning a case's first
record (`plan_case`), without DynamoDB: the items come from main's own item builders (`tests.legacy`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casewatch.domain.case_record import LIVE_SCOPE, StatusMark
from casewatch.domain.sla.log import CaseSlaLog, Observation, ObsKind, case_fields
from casewatch.domain.sla.model import SlaStatus
from casewatch_dev.migrate_state.migration import MIGRATION_CLAIM, plan_case
from casewatch_dev.migrate_state.old_items import OldItemError, OldSla, read_case, shape
from tests.builders import DOMAIN, POLICIES, RESOLVE, T0
from tests.legacy.fold import evaluate
from tests.legacy.sla_store import log_item, sla_item

CASE = "3c2b1a00-0000-4000-8000-000000000001"
GRACE = timedelta(minutes=2)


def old_items(*observations: Observation, horizon: timedelta | None = None) -> list[dict[str, object]]:
    """A case's SLALOG and SLA items as main's `DynamoDbSlaStore.save` builds them."""
    log = CaseSlaLog(DOMAIN, CASE, tuple(sorted(observations, key=Observation.sort_key)))
    if horizon is not None:
        log = log.with_horizon(T0 + horizon)
    states = evaluate(log, POLICIES)
    slas = {key: sla_item(DOMAIN, CASE, s, version=log.version, revision=1) for key, s in states.items()}
    return [log_item(log, 1, slas), *slas.values()]


def opened(minutes: float = 0) -> Observation:
    return Observation(
        T0 + timedelta(minutes=minutes), ObsKind.CASE, fields=case_fields({"status": "open"}), created=T0
    )


def test_a_log_and_its_sla_items_read_back() -> None:
    case = read_case(CASE, old_items(opened(), horizon=timedelta(minutes=5)), now=T0)

    assert case.domain_id == DOMAIN
    assert case.log is not None and case.log.observations == (opened(),)
    assert case.log.horizon == T0 + timedelta(minutes=5)
    assert case.slas == {RESOLVE: OldSla(RESOLVE, SlaStatus.ACTIVE, T0 + timedelta(hours=8))}


def test_status_marks_by_scope_and_items_past_their_ttl() -> None:
    marks = [
        {
            "pk": {"S": f"CASE#{CASE}"},
            "sk": {"S": sk},
            "latest_at": {"N": str(at)},
            "latest_status": {"S": "h"},
        }
        for sk, at in (("NOTIFY#STATUS", 5), ("NOTIFY#STATUS#REPLAY#day-1", 7))
    ]
    gone = {
        **marks[0],
        "sk": {"S": "NOTIFY#STATUS#REPLAY#old"},
        "expires_at": {"N": str(int(T0.timestamp()))},
    }

    case = read_case(CASE, [*marks, gone], now=T0)

    assert case.status_order == {LIVE_SCOPE: StatusMark(5, "h"), "replay#day-1": StatusMark(7, "h")}
    assert case.expired_items == 1 and case.log is None and not case.empty


def test_every_item_of_a_case_expired_leaves_nothing_to_carry() -> None:
    items = old_items(opened())  # main's TTL: 400 days after the newest observation

    case = read_case(CASE, items, now=T0 + timedelta(days=400))

    assert case.empty and case.expired_items == len(items)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"sk": {"S": "SLALOG"}}, "SLALOG: no observations"),
        (
            {"sk": {"S": "SLALOG"}, "observations": {"S": '[{"at": "x", "kind": "case"}]'}},
            "SLALOG: observation 0 cannot be read (ValueError)",
        ),
        (
            {"sk": {"S": "SLALOG"}, "observations": {"S": "[]"}, "horizon": {"S": "soon"}},
            "SLALOG: horizon is not a time",
        ),
        ({"sk": {"S": "SNAPSHOT"}}, "SNAPSHOT: no view"),
        (
            {"sk": {"S": "SNAPSHOT"}, "view": {"S": "{"}},
            "SNAPSHOT: the view does not validate ((root): json_invalid)",
        ),
        (
            {
                "sk": {"S": "SLA#policy#x"},
                "sla_key": {"S": "policy#x"},
                "status": {"S": "Late"},
                "target_time": {"S": "2026-11-23T09:00:00Z"},
            },
            "SLA#: an unknown status",
        ),
        (
            {"sk": {"S": "NOTIFY#STATUS"}, "latest_at": {"N": "1.5"}, "latest_status": {"S": "h"}},
            "NOTIFY#STATUS: latest_at is not an integer",
        ),
    ],
)
def test_an_unreadable_item_names_itself_and_no_value(attributes: dict[str, object], reason: str) -> None:
    with pytest.raises(OldItemError) as raised:
        read_case(CASE, [{"pk": {"S": f"CASE#{CASE}"}, **attributes}], now=T0)

    assert str(raised.value) == reason


def test_shapes_hide_the_ids() -> None:
    assert shape({"pk": {"S": "CASE#abc"}, "sk": {"S": "SLA#cases#item-1"}}) == "CASE#* / SLA#*"
    assert shape({"pk": {"S": "FEED#d-1"}, "sk": {"S": "FEED"}}) == "FEED#* / FEED"
    assert shape({"id": {"S": "x"}}) == "?#* / ?"


def test_the_plan_is_a_first_write_with_the_due_index_at_the_earliest_running_target() -> None:
    case = read_case(CASE, old_items(opened(), opened(3)), now=T0)

    change, states = plan_case(case, DOMAIN, POLICIES, GRACE, now=T0 + timedelta(hours=1))

    assert (change.claim_key, change.claim.done, change.claim.at) == (
        MIGRATION_CLAIM,
        True,
        T0 + timedelta(hours=1),
    )
    assert change.appended == (opened(), opened(3)) and change.dropped == ()
    assert change.fold is not None and change.fold.states(change.horizon) == states
    assert change.due_at == T0 + timedelta(hours=8) + GRACE
    assert states[RESOLVE].status is SlaStatus.ACTIVE
