"""Recording one replay for its observation: each delivery, every request to AWS and Cases, and at the
end what the local resources received (`observed.Observation`).

`casewatch_dev.replay.run_offline(..., recorder=Recorder())` drives it: `listening` around the pipeline,
then `begin`, `delivered` after each delivery, `stop` once the clock has run out (before the replay's own
reads of the queues and the table), and `finish` with the pipeline still open.

Requests are seen through botocore's event system, the hook moto itself uses: a `response-received`
handler (one per HTTP attempt, retries included) in `botocore.handlers.BUILTIN_HANDLERS` while
`listening`, so every client the pipeline creates meanwhile reports to it. On the moto backend that is
every request to AWS and Cases; on the memory backend AWS lives in this process and only the Cases
requests are real.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from casewatch.ports import Clock
from casewatch_dev.replay_diff.messages import bus_event, dead_letter, notification, numbered
from casewatch_dev.replay_diff.observed import Delivery, Observation, Request, SlaOutcome, SlaStep, iso

_EVENT: Final = "response-received"
# A delivery's outcome from the outcomes of the functions it reached, in the replay report's precedence.
_PRECEDENCE: Final = ("failed", "invalid", "parked", "handled", "unhandled")


def delivery_outcome(outcomes: set[str]) -> str:
    return next((o for o in _PRECEDENCE if o in outcomes), "unrouted")


class Recorder:
    """Collects one replay's deliveries and requests; `observation` once `finish`ed."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.requests: list[Request] = []
        self.observation: Observation | None = None
        self._clock: Clock | None = None
        self._recording = False
        self._end: datetime | None = None

    @contextmanager
    def listening(self, clock: Clock) -> Iterator[None]:
        """Requests of the botocore clients created meanwhile are recorded (between `begin` and `stop`)."""
        from botocore.handlers import BUILTIN_HANDLERS

        self._clock = clock
        handler = (_EVENT, self._on_response)
        BUILTIN_HANDLERS.append(handler)
        try:
            yield
        finally:
            self._recording = False
            BUILTIN_HANDLERS.remove(handler)

    def _on_response(self, event_name: str = "", response_dict: Any = None, **kwargs: Any) -> None:
        if not self._recording or self._clock is None:
            return
        _, service, operation = [*event_name.split(".", 2), "?", "?"][:3]
        status = response_dict.get("status_code") if isinstance(response_dict, dict) else None
        self.requests.append(Request(iso(self._clock.now()), service, operation, status))

    def begin(self) -> None:
        """The replay starts: what the pipeline's set-up requested is not the functions' doing."""
        self.requests.clear()
        self._recording = True

    def delivered(self, event: object, at: datetime | None, done_at: datetime, outcomes: set[str]) -> None:
        """One delivery: `outcomes` of the functions it reached (none: no rule matched), or `malformed`."""
        event_type = None
        if isinstance(event, dict) and isinstance(event.get("detail"), dict):
            event_type = event["detail"].get("eventType")
        outcome = "malformed" if outcomes == {"malformed"} else delivery_outcome(outcomes)
        self.deliveries.append(Delivery(iso(at), iso(done_at), event_type, outcome))

    def stop(self) -> None:
        """The clock has run out: what follows is the replay reading its results."""
        self._recording = False
        self._end = self._clock.now() if self._clock is not None else None

    def finish(self, pipeline: Any) -> Observation:
        """Everything the pipeline's resources received (its `observed` effects, its SLA table and the
        transitions it recorded), with what was recorded here."""
        reveal = bool(pipeline.settings.log_case_data)
        effects = pipeline.observed
        self.observation = Observation(
            backend=str(pipeline.backend_name),
            reveal=reveal,
            start=min((d.at for d in self.deliveries if d.at), default=None),
            end=iso(self._end or pipeline.clock.now()),
            notifications=numbered(notification(m) for m in effects.notifications),
            bus_events=numbered(bus_event(m) for m in effects.bus_events),
            dead_letters=numbered(dead_letter(m) for m in effects.dead_letters + effects.failures),
            sla=sla_outcomes(pipeline.sla_items(), pipeline.transitions),
            sla_steps=[sla_step(t) for t in pipeline.transitions],
            deliveries=list(self.deliveries),
            requests=list(self.requests),
        )
        return self.observation


def sla_step(transition: Any) -> SlaStep:
    """A transition as the pipeline recorded it (`SlaTransition`)."""
    return SlaStep(
        case_id=str(transition.case_id),
        sla=str(transition.sla_key),
        status=str(transition.status.value),
        at=iso(transition.at),
        cycle=int(transition.cycle),
        target=iso(transition.target_time),
    )


def sla_outcomes(items: Sequence[Any], transitions: Sequence[Any]) -> list[SlaOutcome]:
    """The SLA table's items (`StoredSla`), with when each was first armed and first breached."""
    armed: dict[tuple[str, str], datetime] = {}
    overdue: dict[tuple[str, str], datetime] = {}
    for t in transitions:
        key = (str(t.case_id), str(t.sla_key))
        if t.status.value == "Active":
            armed.setdefault(key, t.at)
        if t.status.value == "Overdue":
            overdue.setdefault(key, t.at)
    outcomes = []
    for item in items:
        state = item.state
        key = (str(item.case_id), str(state.key))
        status = str(state.status.value)
        breach_at = overdue.get(key) or (state.completion_time if status == "NotMet" else None)
        outcomes.append(
            SlaOutcome(
                case_id=key[0],
                sla=key[1],
                name=str(state.name),
                origin=str(state.origin.value),
                status=status,
                cycle=int(state.cycle),
                armed_at=iso(armed.get(key) or state.started_at),
                target=iso(state.target_time),
                completion=iso(state.completion_time),
                breached=key in overdue or status == "NotMet",
                breach_at=iso(breach_at),
            )
        )
    return sorted(outcomes, key=lambda o: o.key)


__all__ = ["Recorder", "delivery_outcome", "sla_outcomes", "sla_step"]
