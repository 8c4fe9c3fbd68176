"""The incremental SLA fold (`FoldState`): a checkpoint extended with later observations, stored as JSON
between steps, re-folded from the log when an observation arrives out of order, always equals the fold
of the whole log from scratch (`fold`) — the property the case updater relies on (hypothesis)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casewatch.domain.sla.fold import FoldState, evaluate, fold, policies_fingerprint
from casewatch.domain.sla.log import (
    CaseSlaLog,
    Observation,
    ObsKind,
    case_fields,
    json_bytes,
    json_bytes_after,
)
from casewatch.domain.sla.model import CasesSlaSpec, PolicySpec, SlaStatus
from tests.builders import DOMAIN, FIRST, POLICIES, PRIORITY, RESOLVE, at

STATUSES = ("open", "pending-customer", "closed")


@st.composite
def observations(draw: st.DrawFn) -> list[Observation]:
    """A case's observations: field changes (from events or the feed), comments, Cases SLAs defined and
    reported met, maybe a deletion. Times are few and coarse, so ties (same time, other facts) are common."""
    created = at(0)
    moments = st.integers(0, 12).map(lambda n: at(n * 40))
    # The case's first known values: its creation (CASE.CREATED), or a later read that does not say when
    # it was created (the feed, or CASE.CREATED lost: a later event then brings the creation time).
    first_known = draw(st.sampled_from((0, 0, 1, 2)))
    found: list[Observation] = [
        Observation(
            at(first_known * 40),
            ObsKind.CASE,
            source="event" if first_known == 0 else "reconcile",
            fields=case_fields({"status": "open", PRIORITY: draw(st.sampled_from(("high", "low")))}),
            created=created if first_known == 0 else None,
        )
    ]
    slas: list[str] = []
    for n in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(("case", "case", "case", "item", "sla", "done", "deleted")))
        moment = draw(moments)
        if kind == "case":
            values = {"status": draw(st.sampled_from(STATUSES))}
            if draw(st.booleans()):
                values[PRIORITY] = draw(st.sampled_from(("high", "low")))
            source = draw(st.sampled_from(("event", "event", "reconcile")))
            found.append(
                Observation(
                    moment,
                    ObsKind.CASE,
                    source=source,
                    fields=case_fields(values),
                    created=created if source == "event" and draw(st.booleans()) else None,
                )
            )
        elif kind == "item":
            item_type = draw(st.sampled_from(("Comment", "Contact")))
            found.append(Observation(moment, ObsKind.ITEM, item_type=item_type, ref=f"item-{n}"))
        elif kind == "sla":
            ref = f"sla-{n}"
            slas.append(ref)
            target = moment + timedelta(minutes=draw(st.integers(1, 240)))
            value = draw(st.sampled_from(("closed", "pending-customer")))
            spec = CasesSlaSpec("Callback", "status", (value,), target)
            found.append(Observation(moment, ObsKind.SLA, ref=ref, sla=spec))
        elif kind == "done" and slas:
            found.append(Observation(moment, ObsKind.SLA_DONE, ref=draw(st.sampled_from(slas))))
        elif kind == "deleted":
            found.append(Observation(moment, ObsKind.DELETED))
    return found


def round_trip(state: FoldState, policies: Sequence[PolicySpec]) -> FoldState:
    """The fold as the store keeps it (its JSON document) and reads it back."""
    text = json.dumps(state.to_doc(), separators=(",", ":"))
    restored = FoldState.from_doc(json.loads(text), policies)
    assert restored is not None
    return restored


def incremental(
    batches: Sequence[Sequence[Observation]], policies: Sequence[PolicySpec]
) -> tuple[FoldState, int]:
    """The case updater's way: extend the stored fold when the batch comes after it, else re-fold the
    merged log; a JSON round trip between batches. The final fold and the number of re-folds."""
    log = CaseSlaLog(DOMAIN, "c1")
    stored: FoldState | None = None
    refolds = 0
    for batch in batches:
        new = sorted(set(batch), key=Observation.sort_key)
        if stored is not None and stored.can_extend(new):
            extended = stored.copy()
            extended.extend(new)
            stored = extended
            log = log.merge(new)
        else:
            log = log.merge(new)
            stored = fold(log, policies)
            refolds += 1
        stored = round_trip(stored, policies)
    assert stored is not None
    return stored, refolds


def split(draw: st.DrawFn, items: list[Observation]) -> list[list[Observation]]:
    cuts = sorted(draw(st.lists(st.integers(0, len(items)), max_size=6)))
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


HORIZONS = (None, at(31), at(480), at(2000), at(100_000))


def assert_same_fold(got: FoldState, log: CaseSlaLog, policies: Sequence[PolicySpec]) -> None:
    scratch = fold(log, policies)  # never stored: what `got` (stored between steps) must equal
    assert (got.known, got.refs, got.last, got.last_ids, got.count, got.created, got.deleted) == (
        scratch.known,
        scratch.refs,
        scratch.last,
        scratch.last_ids,
        scratch.count,
        scratch.created,
        scratch.deleted,
    )
    assert got.to_doc() == scratch.to_doc()
    for horizon in HORIZONS:
        assert got.states(horizon) == scratch.states(horizon)
        assert got.states(horizon) == evaluate(CaseSlaLog(DOMAIN, "c1", log.observations, horizon), policies)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), found=observations())
def test_any_arrival_order_and_split_folds_to_the_fold_from_scratch(
    data: st.DataObject, found: list[Observation]
) -> None:
    arrival = data.draw(st.permutations(found), label="arrival")
    duplicates = data.draw(st.lists(st.sampled_from(found), max_size=4), label="duplicates")
    got, _ = incremental(split(data.draw, [*arrival, *duplicates]), POLICIES)
    assert_same_fold(got, CaseSlaLog(DOMAIN, "c1").merge(found), POLICIES)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), found=observations())
def test_in_order_arrival_extends_without_a_re_fold(data: st.DataObject, found: list[Observation]) -> None:
    in_order = list(CaseSlaLog(DOMAIN, "c1").merge(found).observations)
    batches = split(data.draw, in_order)
    got, refolds = incremental(batches, POLICIES)
    # The first batch folds (nothing stored yet); every later one extends — unless it is the first to
    # carry the case's creation time (a policy may then run from it): one re-fold.
    creation_late = any(o.created for o in in_order) and not any(o.created for o in batches[0])
    assert refolds == 1 + creation_late
    assert_same_fold(got, CaseSlaLog(DOMAIN, "c1").merge(found), POLICIES)


# --- the checkpoint's edges ------------------------------------------------------------------------------


def obs_case(
    minutes: float, status: str, *, created: datetime | None = None, source: str = "event"
) -> Observation:
    return Observation(
        at(minutes), ObsKind.CASE, source=source, fields=case_fields({"status": status}), created=created
    )


def test_an_observation_before_the_last_one_folded_cannot_extend() -> None:
    state = fold(
        CaseSlaLog(DOMAIN, "c1").merge(
            [obs_case(0, "open", created=at(0)), obs_case(60, "pending-customer")]
        ),
        POLICIES,
    )
    assert not state.can_extend([obs_case(30, "closed")])
    assert state.can_extend([obs_case(61, "closed")])
    assert not state.can_extend([obs_case(61, "closed"), obs_case(30, "open")])  # any of them


def test_the_same_fact_again_at_the_last_time_cannot_extend_but_another_fact_then_can() -> None:
    last = obs_case(60, "pending-customer")
    state = fold(CaseSlaLog(DOMAIN, "c1").merge([obs_case(0, "open", created=at(0)), last]), POLICIES)
    assert not state.can_extend([last])  # a duplicate: the log is a set, a re-fold keeps one
    item = Observation(at(60), ObsKind.ITEM, item_type="Comment", ref="cm1")  # ranks after a case change
    assert state.can_extend([item])
    # a reconcile read at the same time is another identity, but its JSON sorts after the event's
    reread = obs_case(60, "pending-customer", source="reconcile")
    assert state.can_extend([reread]) is (reread.sort_key() > last.sort_key())


def test_another_creation_time_forces_a_re_fold() -> None:
    state = fold(CaseSlaLog(DOMAIN, "c1").merge([obs_case(10, "open")]), POLICIES)
    assert state.created is None
    assert not state.can_extend([obs_case(20, "open", created=at(0))])  # the policy may run from creation
    assert state.can_extend([obs_case(20, "open")])


def test_extending_leaves_the_original_untouched() -> None:
    state = fold(CaseSlaLog(DOMAIN, "c1").merge([obs_case(0, "open", created=at(0))]), POLICIES)
    before = state.to_doc()
    extended = state.copy()
    extended.extend([obs_case(100, "closed")])
    assert state.to_doc() == before
    assert extended.states()[RESOLVE].status is SlaStatus.MET
    assert state.states()[RESOLVE].status is SlaStatus.ACTIVE


def test_a_fold_stored_under_other_policies_is_not_used() -> None:
    state = fold(CaseSlaLog(DOMAIN, "c1").merge([obs_case(0, "open", created=at(0))]), POLICIES)
    doc = json.loads(json.dumps(state.to_doc()))
    assert FoldState.from_doc(doc, POLICIES) is not None
    fewer = POLICIES[1:]
    assert policies_fingerprint(fewer) != policies_fingerprint(POLICIES)
    assert FoldState.from_doc(doc, fewer) is None  # re-fold the log under the new policies
    longer = [
        PolicySpec(
            p.name,
            p.target * 2,
            p.match,
            p.complete_field,
            p.complete_values,
            p.complete_item,
            p.pause,
            p.rearm_on_reopen,
        )
        for p in POLICIES
    ]
    assert FoldState.from_doc(doc, longer) is None


def test_states_at_a_horizon_derive_overdue_without_changing_the_fold() -> None:
    state = fold(CaseSlaLog(DOMAIN, "c1").merge([obs_case(0, "open", created=at(0))]), POLICIES)
    before = state.to_doc()
    assert state.states(at(479))[RESOLVE].status is SlaStatus.ACTIVE
    assert state.states(at(480))[RESOLVE].status is SlaStatus.OVERDUE  # exactly at the target counts
    assert state.states(at(480))[RESOLVE].history[-1].at == at(480)
    assert state.to_doc() == before
    assert FIRST not in state.states(at(480))  # no priority known: first-response-high is not armed


@settings(max_examples=200, deadline=None)
@given(data=st.data(), found=observations())
def test_a_logs_byte_count_follows_its_changes_without_encoding_it_again(
    data: st.DataObject, found: list[Observation]
) -> None:
    """The stores keep the log's size as a count updated by each change (`json_bytes_after`): it must equal
    the JSON of the log after the change, an empty log and a log emptied by the change included (the
    byte cap, MAX_LOG_BYTES, is judged on it)."""
    unique = list(dict.fromkeys(found))
    split = data.draw(st.integers(0, len(unique)))
    before, added = unique[:split], unique[split:]
    dropped = data.draw(st.lists(st.sampled_from(before), unique=True)) if before else []
    after = [o for o in before if o not in dropped] + added
    assert json_bytes_after(json_bytes(before), len(before), added, dropped) == json_bytes(after)
    assert json_bytes_after(json_bytes(after), len(after), (), after) == json_bytes(()) == 2
