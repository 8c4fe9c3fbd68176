"""A state table as a deployment of main leaves it: events applied by main's adapters and SLA fold.

`OldDeployment.event` does what main's event-routed functions did to the state table for one event,
without the side effects that leave no item there (timers, notifications, bus events): the enriched view
(`DynamoDbSnapshotStore.put`), the SLA log and items (`SlaApplier.apply`'s merge, fold and save, written
out below), and the status order of a status notification (`DynamoDbStatusOrder.claim`). The log is
merged by today's `CaseSlaLog.merge`, main's but for its byte budget (main compacted at 256 KiB): a test
that needs a larger log saves it with `slas.save` directly, as main's store would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casewatch.domain.sla.log import Observation
from casewatch.domain.sla.model import PolicySpec, SlaState
from casewatch.domain.sla.observations import observe_event, tracked_fields
from casewatch.models.enriched import EnrichedCase
from casewatch.models.events import CaseEvent
from tests.legacy.fold import due_without_timer, evaluate
from tests.legacy.sla_store import DynamoDbSlaStore
from tests.legacy.snapshots import DynamoDbSnapshotStore
from tests.legacy.status_order import DynamoDbStatusOrder
from tests.legacy.tables import STATE_TABLE


class OldDeployment:
    """main's state table (`StateTable`), written by main's adapters."""

    def __init__(self, table: str, client: Any, policies: Sequence[PolicySpec]) -> None:
        self.table = table
        self.client = client
        self.policies = tuple(policies)
        self.slas = DynamoDbSlaStore(table, client)
        self.snapshots = DynamoDbSnapshotStore(table, client, cache_size=0)
        self.status_order = DynamoDbStatusOrder(table, client=client)

    def create_table(self) -> None:
        self.client.create_table(**STATE_TABLE.create_table_args(self.table))

    def event(self, event: CaseEvent, view: EnrichedCase | None, *, now: datetime) -> dict[str, SlaState]:
        """One handled event: its view stored, its observations applied, its status notification ordered."""
        if view is not None:
            self.snapshots.put(view)
        assert event.case_id is not None
        tracked = tracked_fields(
            self.policies, self.slas.load(event.domain_id, event.case_id).log.cases_sla_fields()
        )
        states = self.observe(event.domain_id, event.case_id, observe_event(event, view, tracked), now=now)
        status = event.fields.get("status")
        if status is not None and "status" in event.changed_field_ids:
            self.status_order.claim(
                case_id=event.case_id,
                status=str(status.python),
                changed_at=event.change_time,
                notification_id=f"{event.id}:status",
                replay_name=event.replay_name,
            )
        return states

    def observe(
        self,
        domain_id: str,
        case_id: str,
        observations: Sequence[Observation],
        *,
        now: datetime,
        tick: datetime | None = None,
    ) -> dict[str, SlaState]:
        """main's `SlaApplier.apply` (app/sla/apply.py) up to its write: merge, fold, horizon, save."""
        record = self.slas.load(domain_id, case_id)
        log = record.log.merge(observations, horizon=tick)
        states = evaluate(log, self.policies)
        reached = due_without_timer(states.values(), now)
        if reached is not None:  # a target already passed: no timer will fire for it
            log = log.with_horizon(reached)
            states = evaluate(log, self.policies)
        old = {key: stored.state for key, stored in record.slas.items()}
        changed = [state for key, state in states.items() if old.get(key) != state]
        if changed or log.observations != record.log.observations:
            self.slas.save(record, log, changed)
        return states

    def states(self, domain_id: str, case_id: str) -> dict[str, SlaState]:
        """The SLA states main's store reads back for the case."""
        return {key: stored.state for key, stored in self.slas.load(domain_id, case_id).slas.items()}

    def items(self) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table)
        return [item for page in pages for item in page.get("Items", [])]


__all__ = ["OldDeployment"]
