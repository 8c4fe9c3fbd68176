"""The moto backend: AWS on moto (`mock_aws`, entered by the pipeline), the real adapters on real boto3
clients, built by the same composition root the functions use (`casewatch.bootstrap.aws_adapters`)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from casewatch.adapters import clients
from casewatch.adapters.dynamodb_case_store import DynamoDbCaseStore
from casewatch.bootstrap import Adapters, Resources, aws_adapters, policies
from casewatch.constants import ENRICHED_SOURCE
from casewatch.settings import Settings
from casewatch.tables import STATE_TABLE
from casewatch_dev.clock import VirtualClock
from casewatch_dev.pipeline.context import ACCOUNT, REGION, STACK, LocalResources
from casewatch_dev.pipeline.environment import configure_environment


class MotoBackend:
    """AWS on moto (`mock_aws`, entered by the pipeline): the real adapters with real boto3 clients."""

    name = "moto"

    def __init__(
        self, settings: Settings, clock: VirtualClock, resources: LocalResources, cases_url: str
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.resources = resources
        self._urls: dict[str, str] = {}
        self._create_resources()
        configure_environment(settings, resources, cases_url, self._urls, topic_arn=self.topic_arn)

    def _create_resources(self) -> None:
        r = self.resources
        ddb = clients.dynamodb_client()
        ddb.create_table(**STATE_TABLE.create_table_args(r.state_table))
        sqs = clients.sqs_client()
        for name in (r.invalid_queue, r.failure_queue, r.subscriber_queue, r.bus_queue):
            self._urls[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        sns = clients.sns_client()
        self.topic_arn = sns.create_topic(Name=r.topic_name)["TopicArn"]
        sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{r.subscriber_queue}",
            Attributes={"RawMessageDelivery": "true"},
        )
        events = clients.events_client()
        events.create_event_bus(Name=r.bus_name)
        events.put_rule(
            Name=f"{STACK}-all-enriched",
            EventBusName=r.bus_name,
            EventPattern=json.dumps({"source": [ENRICHED_SOURCE]}),
        )
        events.put_targets(
            Rule=f"{STACK}-all-enriched",
            EventBusName=r.bus_name,
            Targets=[{"Id": "subscriber", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{r.bus_queue}"}],
        )
        clients.scheduler_client().create_schedule_group(Name=r.schedule_group)

    def adapters(self) -> Adapters:
        """What the functions get, from the environment the stack would set (`configure_environment`)."""
        return aws_adapters(self.settings, Resources.from_env(os.environ), parks_events=True)

    def pending_schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(self.resources.schedule_group)
        if group is None:
            return []
        found = []
        for name, schedule in group.schedules.items():
            expression = schedule.schedule_expression
            if expression.startswith("at(") and expression.endswith(")"):
                at = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=self.clock.now().tzinfo)
                found.append((at, name, json.loads(schedule.target.get("Input") or "{}")))
        return sorted(found, key=lambda item: (item[0], item[1]))

    def earliest_schedule(self) -> tuple[datetime, str, dict[str, Any]] | None:
        pending = self.pending_schedules()
        return pending[0] if pending else None

    def remove_schedule(self, name: str) -> None:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(self.resources.schedule_group)
        if group is not None:
            group.schedules.pop(name, None)

    def send_failure(self, body: str) -> None:
        clients.sqs_client().send_message(QueueUrl=self._urls[self.resources.failure_queue], MessageBody=body)

    def take_notifications(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.subscriber_queue)

    def take_bus_events(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.bus_queue)

    def take_dead_letters(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.invalid_queue)

    def take_failures(self) -> list[dict[str, Any]]:
        return self._drain_queue(self.resources.failure_queue)

    def case_store(self) -> DynamoDbCaseStore:
        return DynamoDbCaseStore(
            self.resources.state_table, clients.dynamodb_client(), policies(self.settings)
        )

    def _drain_queue(self, name: str) -> list[dict[str, Any]]:
        sqs = clients.sqs_client()
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self._urls[name], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            received = batch.get("Messages", [])
            if not received:
                return messages
            for message in received:
                messages.append(dict(message))
            sqs.delete_message_batch(
                QueueUrl=self._urls[name],
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)],
            )

    def close(self) -> None:
        return None


__all__ = ["MotoBackend"]
