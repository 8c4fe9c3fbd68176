"""Handler timeouts on the idempotency in-progress path (memory backend).

A `timeouts` fault kills the invocation right after Powertools saved the in-progress record of a
notification (or enriched event) and before the side effect: the record stays INPROGRESS until the
invocation's remaining time has passed *on the virtual clock*; Lambda's retry, a minute later, then
runs the side effect once. So with timeouts (and duplicates arriving meanwhile) every notification of
the in-order run is sent exactly once, no event fails, and no record is left in progress.

(Before the handlers registered their Lambda context, the guard assumed Lambda's 15-minute maximum:
both retries met `IdempotencyAlreadyInProgressError` and the event went to the failure queue.)
"""

from __future__ import annotations

from casewatch_dev.faults import Faults
from tests.reliability.invariants import unexplained_notifications
from tests.reliability.scenario import generate_day, replay_day

TIMEOUTS = Faults(timeouts=0.03, duplicates=0.2, seed=5)


def test_a_timed_out_side_effect_runs_once_on_the_retry() -> None:
    day = generate_day(400)
    clean = replay_day(day, backend="memory")
    faulty = replay_day(day, backend="memory", faults=TIMEOUTS)
    assert faulty.counts["timeouts"] >= 5  # the fault really happened
    assert faulty.report.failed == 0 and faulty.failures == [] and faulty.report.lost == 0
    assert faulty.in_progress_left == 0
    assert max(faulty.notification_ids().values()) == 1
    # A retry waits a minute of virtual time, and this single-threaded pipeline waits with it: a later
    # event may then arrive after an SLA warning time (the late-event tolerance of invariants.py).
    assert unexplained_notifications(day, clean, faulty)["missing"] == []
    assert set(faulty.notification_ids()) >= set(clean.notification_ids())
