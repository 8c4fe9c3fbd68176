"""Handler timeouts between an invocation's write and its sends (memory backend).

A `timeouts` fault kills the invocation as it publishes a notification: its state and its event's claim
(the outbox) were written, leased for the invocation's remaining time *on the virtual clock*; Lambda's
retry, a minute later, finds the lease over and sends what is owed. So with timeouts (and duplicates
arriving meanwhile) every notification of the in-order run is sent, no event fails, and no claim is left
pending at the end.
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
    assert faulty.claims_pending == 0  # every outbox was sent in the end
    assert max(faulty.notification_ids().values()) == 1
    # A retry waits a minute of virtual time, and this single-threaded pipeline waits with it: a later
    # event may then arrive after an SLA warning time (the late-event tolerance of invariants.py).
    assert unexplained_notifications(day, clean, faulty)["missing"] == []
    assert set(faulty.notification_ids()) >= set(clean.notification_ids())
