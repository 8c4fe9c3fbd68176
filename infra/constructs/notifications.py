"""Notification sinks: the SNS topic (KMS with the stack's key, TLS-only) and the enriched-event bus."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from casewatch.settings import Settings
from infra.constructs.function import removal_policy


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="casewatch: encrypts the notification and alarm topics",
            enable_key_rotation=True,
            removal_policy=removal_policy(settings),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="casewatch notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.bus_name = f"{stack.stack_name.lower()}-enriched"
        self.bus = events.EventBus(
            self,
            "EnrichedBus",
            event_bus_name=self.bus_name,
            description="casewatch: enriched Cases events (source `casewatch`)",
        )

    def grant_publish(self, fn: lambda_.Function) -> None:
        """Publish to the topic (with its KMS key) and put events on the enriched bus."""
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["events:PutEvents"], resources=[self.bus.event_bus_arn])
        )
