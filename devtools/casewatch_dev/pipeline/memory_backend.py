"""The memory backend: the same use cases and adapters, AWS in this process (moto costs ~5 ms per call).

- SNS, EventBridge PutEvents, SQS, Scheduler: the *same adapters* (`SnsNotifier`,
  `EventBridgeEnrichedBus`, `SqsDeadLetters`, `SchedulerTimers`) on fake clients (`fakes.clients`);
- the case records and the feed's watermark: `InMemoryCaseStore`, with the DynamoDB adapter's semantics
  (`casewatch_dev.fakes.ports`);
- Cases: the emulator with the real `connectcases` client, as on moto, but in process: the product's
  own client (`casewatch.adapters.clients.cases_client`, adaptive retries) with the emulator attached to
  it (`CasesEmulator.attach`), so no request touches a socket and botocore still parses, retries and
  rate-limits every call (`cases_client()`).

Contract tests (`tests/reliability/test_backend_contract.py`) hold the two backends to the same results.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from casewatch.adapters import clients
from casewatch.adapters.cases_api import CasesApi
from casewatch.adapters.enriched_bus import EventBridgeEnrichedBus
from casewatch.adapters.scheduler_timers import SchedulerTimers
from casewatch.adapters.sns_notifier import SnsNotifier
from casewatch.adapters.sqs_dead_letters import SqsDeadLetters
from casewatch.bootstrap import Adapters, policies
from casewatch.ports import CasesReader, CasesSlaSource
from casewatch.settings import Settings
from casewatch.topology import SLA_TIMER
from casewatch_dev.clock import VirtualClock
from casewatch_dev.fakes.clients import FakeEventBridge, FakeScheduler, FakeSns, FakeSqs
from casewatch_dev.fakes.ports import CountingMetrics, InMemoryCaseStore
from casewatch_dev.pipeline.context import LocalResources

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

    from casewatch_dev.emulator import CasesEmulator


class MemoryBackend:
    """AWS for the local pipeline, in memory."""

    name = "memory"

    def __init__(
        self,
        settings: Settings,
        clock: VirtualClock,
        resources: LocalResources | None = None,
        *,
        cases_emulator: CasesEmulator | None = None,
    ) -> None:
        self.settings = settings
        self.cases_emulator = cases_emulator
        self.clock = clock
        self.resources = resources or LocalResources()
        self.store = InMemoryCaseStore(policies(settings))
        self.sns = FakeSns()
        self.events = FakeEventBridge(clock)
        self.sqs = FakeSqs()
        self.scheduler = FakeScheduler(self.resources.schedule_group)
        self.dead_letter_url = self.resources.queue_url(self.resources.invalid_queue)
        self.failure_url = self.resources.queue_url(self.resources.failure_queue)

    def cases_client(self, max_attempts: int) -> ConnectCasesClient:
        """The product's Cases client (`clients.cases_client`, cached per `max_attempts`), answered in
        process by `cases_emulator` if there is one (else it goes to `CASEWATCH_CASES_ENDPOINT`)."""
        client = clients.cases_client(max_attempts)
        if self.cases_emulator is not None:
            self.cases_emulator.attach(client)
        return client

    def adapters(
        self, *, cases: CasesReader | None = None, cases_slas: CasesSlaSource | None = None
    ) -> Adapters:
        """The in-memory adapters. Cases is the emulator's (`cases_client`) unless `cases` and `cases_slas`
        are given."""
        r = self.resources
        attempts = self.settings.getcase_max_attempts
        api = CasesApi(self.cases_client(attempts), max_attempts=attempts)
        return Adapters(
            clock=self.clock,
            metrics=CountingMetrics(),
            cases=cases or api,
            cases_slas=cases_slas or api,
            search=api,
            store=self.store,
            feed=self.store,
            notifier=SnsNotifier(r.topic_arn, client=cast(Any, self.sns)),
            bus=EventBridgeEnrichedBus(r.bus_name, client=cast(Any, self.events)),
            timers=SchedulerTimers(
                cast(Any, self.scheduler),
                group_name=r.schedule_group,
                target_arn=r.function_arn(SLA_TIMER),
                role_arn=r.scheduler_role_arn,
            ),
            dead_letters=SqsDeadLetters(self.dead_letter_url, client=cast(Any, self.sqs)),
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

    def case_store(self) -> InMemoryCaseStore:
        return self.store

    def close(self) -> None:
        return None


__all__ = ["MemoryBackend"]
