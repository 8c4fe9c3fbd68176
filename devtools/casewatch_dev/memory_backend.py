"""The local pipeline's fast backend: the same handlers, service, domain code and adapters, AWS in memory.

`LocalPipeline(settings, backend="memory")` wires the deployed topology like `backend="moto"` does, but
the AWS services live in this process instead of moto (moto costs ~5 ms per call, ~30 ms per query):

- SNS, EventBridge PutEvents, SQS, Scheduler: the *same adapters* (`SnsNotifier`,
  `EventBridgeEnrichedBus`, `SqsDeadLetters`, `SchedulerTimers`) on fake clients (`FakeSns`, ...) that
  answer like the services (conflicts, not-found errors, the raw-delivery message a subscriber gets);
- the SLA store: `InMemorySlaStore` with `DynamoDbSlaStore`'s revision lock, per-SLA version
  conditions, sharded `due` index and `defer_check`;
- snapshots: `InMemorySnapshotStore` (`casewatch.adapters.memory`), the same `supersedes` rule;
- status order: `InMemoryStatusOrder`, the same forward-only conditional claim;
- idempotency: `InMemoryPersistenceLayer`, a Powertools `BasePersistenceLayer` with the DynamoDB
  layer's put condition, so Powertools' own `idempotent_function` runs unchanged;
- Cases: the emulator with the real `connectcases` client over HTTP, as on moto.

Time: Powertools stamps idempotency records with the wall clock; the pipeline runs on a virtual clock.
`InMemoryPersistenceLayer` keeps records in virtual time and translates at its boundary by the current
offset between the two clocks (a record going out reads `virtual + (wall_now - virtual_now)`), so
Powertools' own comparisons ("has this in-progress record expired?") give the answers they would give
at that virtual time: an invocation that timed out holds its key for its remaining time on the virtual
clock, exactly like the DynamoDB layer's condition expression in AWS.

Contract tests (`tests/reliability/test_backend_contract.py`) run the same scenarios on both backends
and require identical SLA tables, notifications per rule and dead letters.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from botocore.exceptions import ClientError

from casewatch.adapters.dynamodb_sla_store import due_shard
from casewatch.domain.sla import CaseSlaLog, SlaConflictError, SlaState, iso
from casewatch.domain.sla_ports import SlaCaseRecord, StoredSla
from casewatch.tables import DUE_SHARDS

if TYPE_CHECKING:
    from casewatch.ports import Clock
    from casewatch.settings import Settings
    from casewatch.wiring import Dependencies
    from casewatch_dev.clock import VirtualClock

ACCOUNT = "123456789012"
REGION = "us-east-1"


# --- DynamoDB-backed ports ----------------------------------------------------------------------


class InMemorySlaStore:
    """`SlaStore` with `DynamoDbSlaStore`'s semantics, in dicts (thread-safe).

    - `save` succeeds only if the case's revision is the one loaded (nothing stored for revision 0),
      and no changed SLA is stored with a newer `version` (the transaction's per-item conditions):
      else `SlaConflictError`, like a cancelled TransactWriteItems;
    - the log carries a copy of the case's SLAs as of its last save (a load is one read), while the
      SLA items themselves (what `due_before`/`case_slas` read) are also moved by `defer_check`; a
      saved SLA keeps the `next_check_at` of the record loaded — all as `DynamoDbSlaStore` does;
    - `due_before` reads the sparse `due` index: open SLAs with `due_at = max(target, next_check)`
      before the moment, `limit` per shard (index order) and then overall, oldest first;
    - `defer_check` moves an open SLA's `due_at` forward, never back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, tuple[CaseSlaLog, int, dict[str, StoredSla]]] = {}  # log, revision, copy
        self._slas: dict[str, dict[str, StoredSla]] = {}  # the SLA items
        self.loads = 0
        self.saves = 0
        self.conflicts = 0

    def load(self, domain_id: str, case_id: str) -> SlaCaseRecord:
        with self._lock:
            self.loads += 1
            stored = self._logs.get(case_id)
            if stored is None:
                return SlaCaseRecord(CaseSlaLog(domain_id, case_id), {}, 0)
            log, revision, embedded = stored
            return SlaCaseRecord(log, dict(embedded), revision)

    def save(self, old: SlaCaseRecord, log: CaseSlaLog, changed: Sequence[SlaState]) -> SlaCaseRecord:
        case_id = log.case_id
        revision = old.revision + 1
        version = log.version
        with self._lock:
            current = self._logs.get(case_id)
            stored_revision = current[1] if current is not None else None
            taken = current is not None if old.revision == 0 else stored_revision != old.revision
            if taken:
                self.conflicts += 1
                raise SlaConflictError(f"case {case_id}: SLA state changed concurrently")
            items = self._slas.setdefault(case_id, {})
            if version is not None:
                for state in changed:
                    existing = items.get(state.key)
                    if existing is not None and (existing.version is None or existing.version > version):
                        self.conflicts += 1
                        raise SlaConflictError(f"case {case_id}: SLA state changed concurrently")
            slas = dict(old.slas)
            for state in changed:
                before = old.slas.get(state.key)
                next_check = before.next_check_at if before is not None else None
                stored = StoredSla(log.domain_id, case_id, state, version, revision, next_check)
                items[state.key] = stored
                slas[state.key] = stored
            self._logs[case_id] = (log, revision, slas)
            self.saves += 1
        return SlaCaseRecord(log, slas, revision)

    def case_slas(self, case_id: str) -> list[StoredSla]:
        with self._lock:
            found = list(self._slas.get(case_id, {}).values())
        return sorted(found, key=lambda s: (s.state.started_at, s.state.key))

    @staticmethod
    def _due_at(sla: StoredSla) -> str | None:
        if not sla.state.status.is_open:
            return None
        target = sla.state.target_time
        return iso(max(target, sla.next_check_at) if sla.next_check_at is not None else target)

    def due_before(self, moment: datetime, limit: int = 100) -> list[StoredSla]:
        bound = iso(moment)
        shards: list[list[tuple[str, StoredSla]]] = [[] for _ in range(DUE_SHARDS)]
        with self._lock:
            for case_id, items in self._slas.items():
                shard = shards[int(due_shard(case_id))]
                for sla in items.values():
                    due_at = self._due_at(sla)
                    if due_at is not None and due_at < bound:
                        shard.append((due_at, sla))
        found: list[StoredSla] = []
        for shard in shards:
            shard.sort(key=lambda entry: entry[0])
            found += [sla for _, sla in shard[:limit]]
        found.sort(key=lambda s: (s.next_check_at or s.state.target_time, s.case_id, s.state.key))
        return found[:limit]

    def defer_check(self, case_id: str, sla_key: str, until: datetime) -> None:
        with self._lock:
            items = self._slas.get(case_id, {})
            sla = items.get(sla_key)
            if sla is None:
                return
            due_at = self._due_at(sla)
            if due_at is None or not due_at < iso(until):
                return
            items[sla_key] = StoredSla(
                sla.domain_id, sla.case_id, sla.state, sla.version, sla.revision, until
            )

    def items(self) -> list[StoredSla]:
        """Every (case, SLA), sorted by case and SLA key (the local pipeline's report)."""
        with self._lock:
            found = [sla for items in self._slas.values() for sla in items.values()]
        return sorted(found, key=lambda s: (s.case_id, s.state.key))


class InMemoryStatusOrder:
    """`StatusOrder` with `DynamoDbStatusOrder`'s conditional write: the latest status notification per
    case (and per replay), only ever moved forward in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str | None], tuple[int, str, str]] = {}

    def claim(
        self,
        *,
        case_id: str,
        status: str,
        changed_at: datetime,
        notification_id: str,
        replay_name: str | None = None,
    ) -> bool:
        at_ms = int(changed_at.timestamp() * 1000)
        key = (case_id, replay_name)
        with self._lock:
            stored = self._latest.get(key)
            if stored is None or stored[0] <= at_ms:
                self._latest[key] = (at_ms, status, notification_id)
                return True
            return stored[1] == status


class InMemoryPersistenceLayer(BasePersistenceLayer):
    """Powertools idempotency records in a dict, on the virtual clock (see the module docstring).

    The put condition is the DynamoDB layer's: the key is free, or its record expired, or it is in
    progress and its in-progress expiry passed. A refused put returns the stored record
    (`ReturnValuesOnConditionCheckFailure`), as the DynamoDB layer does.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.clock = clock
        self._records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    # -- the two clocks --------------------------------------------------------------------------
    def _offset_s(self) -> float:
        """wall - virtual, in seconds."""
        return time.time() - self.clock.now().timestamp()

    @staticmethod
    def _shift(record: DataRecord, seconds: float) -> DataRecord:
        return DataRecord(
            idempotency_key=record.idempotency_key,
            status=record._status,  # the stored status, not the derived EXPIRED
            expiry_timestamp=int(record.expiry_timestamp + seconds)
            if record.expiry_timestamp is not None
            else None,
            in_progress_expiry_timestamp=int(record.in_progress_expiry_timestamp + seconds * 1000)
            if record.in_progress_expiry_timestamp is not None
            else None,
            response_data=record.response_data,
            payload_hash=record.payload_hash,
            sort_key=record.sort_key,
        )

    # -- BasePersistenceLayer ------------------------------------------------------------------------
    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return self._shift(record, self._offset_s())

    def _put_record(self, data_record: DataRecord) -> None:
        offset = self._offset_s()
        now = self.clock.now().timestamp()
        with self._lock:
            stored = self._records.get(data_record.idempotency_key)
            if stored is not None and not _replaceable(stored, now):
                old = self._shift(stored, offset)
            else:
                self._records[data_record.idempotency_key] = self._shift(data_record, -offset)
                return
        self._save_to_cache(data_record=old)
        raise IdempotencyItemAlreadyExistsError(old_data_record=old)

    def _update_record(self, data_record: DataRecord) -> None:
        virtual = self._shift(data_record, -self._offset_s())
        with self._lock:
            stored = self._records.get(data_record.idempotency_key)
            if stored is not None:  # UpdateItem leaves the attributes it does not set
                virtual.in_progress_expiry_timestamp = stored.in_progress_expiry_timestamp
                virtual.payload_hash = virtual.payload_hash or stored.payload_hash
            self._records[data_record.idempotency_key] = virtual

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records.pop(data_record.idempotency_key, None)

    def record_count(self) -> int:
        with self._lock:
            return len(self._records)

    def in_progress(self) -> int:
        """Records still INPROGRESS (an invocation died holding them)."""
        with self._lock:
            return sum(r._status == STATUS_CONSTANTS["INPROGRESS"] for r in self._records.values())


def _replaceable(stored: DataRecord, now_s: float) -> bool:
    if stored.expiry_timestamp is not None and stored.expiry_timestamp < int(now_s):
        return True
    return (
        stored._status == STATUS_CONSTANTS["INPROGRESS"]
        and stored.in_progress_expiry_timestamp is not None
        and stored.in_progress_expiry_timestamp < int(now_s * 1000)
    )


# --- fake clients for the adapters that only send -------------------------------------------------


def _client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class FakeSns:
    """`sns.publish` for `SnsNotifier`: what a raw-delivery SQS subscriber of the topic receives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[dict[str, Any]] = []

    def publish(self, **request: Any) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        with self._lock:
            self.published.append(request)
        return {"MessageId": message_id}

    def take(self) -> list[dict[str, Any]]:
        """The subscriber queue's messages (`Body`: the `default` message; `MessageAttributes`)."""
        with self._lock:
            taken, self.published = self.published, []
        messages = []
        for request in taken:
            body = request["Message"]
            if request.get("MessageStructure") == "json":
                body = json.loads(body)["default"]
            messages.append({"Body": body, "MessageAttributes": request.get("MessageAttributes", {})})
        return messages


class FakeEventBridge:
    """`events.put_events` for `EventBridgeEnrichedBus`: every entry reaches the bus's subscriber queue."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def put_events(self, *, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not 1 <= len(Entries) <= 10:
            raise _client_error("ValidationException", "PutEvents", "1 to 10 entries")
        with self._lock:
            self.entries.extend(dict(e) for e in Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())} for _ in Entries]}

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.entries = self.entries, []
        messages = []
        for entry in taken:
            moment = entry.get("Time")
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": (moment if isinstance(moment, datetime) else self._clock.now())
                .astimezone(UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": list(entry.get("Resources", [])),
                "detail": json.loads(entry["Detail"]),
            }
            messages.append({"Body": json.dumps(event), "MessageAttributes": {}})
        return messages


class FakeSqs:
    """`sqs.send_message` for `SqsDeadLetters` and the failure destination: queues in lists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queues: dict[str, list[dict[str, Any]]] = {}

    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        MessageAttributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            self.queues.setdefault(QueueUrl, []).append(
                {"Body": MessageBody, "MessageAttributes": dict(MessageAttributes or {})}
            )
        return {"MessageId": str(uuid.uuid4())}

    def take(self, queue_url: str) -> list[dict[str, Any]]:
        with self._lock:
            return self.queues.pop(queue_url, [])


class FakeScheduler:
    """`scheduler` create/update/delete for `SchedulerTimers`: one-time `at(...)` schedules, by name.

    Like Scheduler: creating an existing name is a `ConflictException`, updating or deleting a missing
    one a `ResourceNotFoundException`. `earliest()` is a heap (the pipeline asks before every event).
    """

    def __init__(self, group_name: str) -> None:
        self.group_name = group_name
        self._lock = threading.Lock()
        self.schedules: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._heap: list[tuple[datetime, str]] = []

    @staticmethod
    def _at(request: dict[str, Any]) -> datetime:
        expression = str(request["ScheduleExpression"])
        if not (expression.startswith("at(") and expression.endswith(")")):
            raise _client_error("ValidationException", "CreateSchedule", "one-time schedules only")
        return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)

    def _check_group(self, group: str, operation: str) -> None:
        if group != self.group_name:
            raise _client_error("ResourceNotFoundException", operation, f"no schedule group {group}")

    def _store(self, request: dict[str, Any]) -> None:
        at = self._at(request)
        payload = json.loads(request["Target"].get("Input") or "{}")
        self.schedules[request["Name"]] = (at, payload)
        heapq.heappush(self._heap, (at, request["Name"]))

    def create_schedule(self, **request: Any) -> dict[str, Any]:
        self._check_group(request["GroupName"], "CreateSchedule")
        with self._lock:
            if request["Name"] in self.schedules:
                raise _client_error("ConflictException", "CreateSchedule", "schedule exists")
            self._store(request)
        return {"ScheduleArn": self._arn(request["Name"])}

    def update_schedule(self, **request: Any) -> dict[str, Any]:
        self._check_group(request["GroupName"], "UpdateSchedule")
        with self._lock:
            if request["Name"] not in self.schedules:
                raise _client_error("ResourceNotFoundException", "UpdateSchedule", "no such schedule")
            self._store(request)
        return {"ScheduleArn": self._arn(request["Name"])}

    def _arn(self, name: str) -> str:
        return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{self.group_name}/{name}"

    def delete_schedule(self, *, Name: str, GroupName: str) -> dict[str, Any]:
        self._check_group(GroupName, "DeleteSchedule")
        with self._lock:
            if self.schedules.pop(Name, None) is None:
                raise _client_error("ResourceNotFoundException", "DeleteSchedule", "no such schedule")
        return {}

    def earliest(self) -> tuple[datetime, str, dict[str, Any]] | None:
        with self._lock:
            while self._heap:
                at, name = self._heap[0]
                current = self.schedules.get(name)
                if current is not None and current[0] == at:
                    return at, name, current[1]
                heapq.heappop(self._heap)  # deleted or moved: a stale heap entry
            return None

    def pending(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        with self._lock:
            found = [(at, name, payload) for name, (at, payload) in self.schedules.items()]
        return sorted(found, key=lambda item: (item[0], item[1]))

    def remove(self, name: str) -> None:
        with self._lock:
            self.schedules.pop(name, None)


# --- the backend ------------------------------------------------------------------------------------


class MemoryBackend:
    """AWS for the local pipeline, in memory (see the module docstring)."""

    name = "memory"

    def __init__(
        self,
        settings: Settings,
        clock: VirtualClock,
        *,
        schedule_group: str,
        timer_arn: str,
        scheduler_role_arn: str,
        dead_letter_url: str,
        failure_url: str,
    ) -> None:
        from casewatch.adapters.memory import InMemorySnapshotStore

        self.settings = settings
        self.clock = clock
        self.sla_store = InMemorySlaStore()
        self.snapshots = InMemorySnapshotStore()
        self.status_order = InMemoryStatusOrder()
        self.idempotency = InMemoryPersistenceLayer(clock)
        self.sns = FakeSns()
        self.events = FakeEventBridge(clock)
        self.sqs = FakeSqs()
        self.scheduler = FakeScheduler(schedule_group)
        self._timer_arn = timer_arn
        self._scheduler_role_arn = scheduler_role_arn
        self.dead_letter_url = dead_letter_url
        self.failure_url = failure_url

    def dependencies(self, *, cases: Any = None, cases_slas: Any = None) -> Dependencies:
        """What `casewatch.wiring.build_dependencies` builds, with the in-memory services.

        Cases is the emulator's (the real `connectcases` client, `CASEWATCH_CASES_ENDPOINT`) unless
        `cases` (a `CasesReader`) and `cases_slas` (a `CasesSlaSource`) are given.
        """
        from casewatch import aws
        from casewatch.adapters.cases_api import CasesApiReader
        from casewatch.adapters.cases_sla_source import CasesApiSlaSource
        from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
        from casewatch.adapters.idempotency import PowertoolsIdempotency
        from casewatch.adapters.scheduler_timers import SchedulerTimers
        from casewatch.adapters.sns_notifier import SnsNotifier
        from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
        from casewatch.notification_service import NotificationSink
        from casewatch.sla_service import SlaTracker
        from casewatch.wiring import Dependencies

        settings = self.settings
        if cases is None:
            cases = CasesApiReader(max_attempts=settings.getcase_max_attempts)
            cases_slas = cases_slas or CasesApiSlaSource(aws.cases_client(settings.getcase_max_attempts))
        notifications = NotificationSink(
            settings,
            notifier=SnsNotifier(f"arn:aws:sns:{REGION}:{ACCOUNT}:local", client=cast(Any, self.sns)),
            bus=EventBridgeEnrichedBus("casewatch-local-enriched", client=cast(Any, self.events)),
            once=PowertoolsIdempotency("casewatch-local-idempotency", persistence=self.idempotency),
            status_order=self.status_order,
        )
        tracker = SlaTracker.from_settings(
            settings,
            store=self.sla_store,
            signals=notifications,
            timers=SchedulerTimers(
                cast(Any, self.scheduler),
                group_name=self.scheduler.group_name,
                target_arn=self._timer_arn,
                role_arn=self._scheduler_role_arn,
            ),
            clock=self.clock,
            cases_slas=cases_slas,
            cases_reader=cases,
            snapshots=self.snapshots,
        )
        return Dependencies(
            cases=cases,
            snapshots=self.snapshots,
            dead_letters=SqsDeadLetters(self.dead_letter_url, client=cast(Any, self.sqs)),
            sinks=[tracker, notifications],
            settings=settings,
            clock=self.clock,
        )

    # -- what the pipeline asks of a backend --------------------------------------------------------
    def earliest_schedule(self) -> tuple[datetime, str, dict[str, Any]] | None:
        return self.scheduler.earliest()

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        return self.scheduler.pending()

    def remove_schedule(self, name: str) -> None:
        self.scheduler.remove(name)

    def send_failure(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.failure_url, MessageBody=body)

    def take_notifications(self) -> list[dict[str, Any]]:
        return self.sns.take()

    def take_bus_events(self) -> list[dict[str, Any]]:
        return self.events.take()

    def take_dead_letters(self) -> list[dict[str, Any]]:
        return self.sqs.take(self.dead_letter_url)

    def take_failures(self) -> list[dict[str, Any]]:
        return self.sqs.take(self.failure_url)

    def sla_items(self) -> list[StoredSla]:
        return self.sla_store.items()

    def close(self) -> None:
        return None


__all__ = [
    "FakeEventBridge",
    "FakeScheduler",
    "FakeSns",
    "FakeSqs",
    "InMemoryPersistenceLayer",
    "InMemorySlaStore",
    "InMemoryStatusOrder",
    "MemoryBackend",
]
