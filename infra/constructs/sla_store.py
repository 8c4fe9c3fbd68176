"""The state table (one item per case, and the change feed's watermark), the Scheduler group and its role.

The tables are built from `casewatch.tables` (the same definitions the adapters, moto tests and
the local pipeline use). Breach/warning timers are one-time EventBridge Scheduler schedules in
the group, created by the handlers, that invoke the sla-timer function with the scheduler role.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from casewatch.settings import Settings
from casewatch.tables import STATE_TABLE, KeySpec, TableSpec
from infra.constructs.function import removal_policy
from infra.nag import acknowledge

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}

# What `DynamoDbCaseStore` calls: a read and conditional writes of a case's item (nothing deletes: TTL
# does), the observation items put (and compacted) in batches and queried to fold again; several cases
# (and the feed's watermark) read at once by the timer and the change feed.
STATE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
]
BATCH_READ_ACTIONS = ["dynamodb:BatchGetItem"]
# `SchedulerTimers`: create (update on conflict) and delete one-time schedules.
TIMER_ACTIONS = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"]
SCHEDULER_SERVICE = "scheduler.amazonaws.com"


def _attribute(key: KeySpec) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


class SlaStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.state_table = self._table(STATE_TABLE, settings)
        self.due_index_name = STATE_TABLE.indexes[0].name

        self.schedule_group_name = f"{stack.stack_name.lower()}-sla-timers"
        self.schedule_group = scheduler.CfnScheduleGroup(self, "ScheduleGroup", name=self.schedule_group_name)
        self.schedule_arns = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.schedule_group_name}/*",
        )
        # Assumed by EventBridge Scheduler, for schedules of this group only, to invoke the sla-timer.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description="EventBridge Scheduler: invoke the casewatch sla-timer function",
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_SERVICE,
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": self.schedule_group.attr_arn,
                    }
                },
            ),
        )

    def _table(self, spec: TableSpec, settings: Settings) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.construct_id,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=removal_policy(settings),
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.INCLUDE
                if index.projected
                else dynamodb.ProjectionType.KEYS_ONLY,
                non_key_attributes=list(index.projected) or None,
            )
        return table

    # -- grants: exact actions on exact ARNs -------------------------------------------------
    def grant_state(
        self, fn: lambda_.Function, *, batch_reads: bool = False, due_index: bool = False
    ) -> None:
        """Read/write case items; read several at once (the timer, the feed); query the `due` index (the
        feed's due sweep)."""
        table = self.state_table.table_arn
        fn.add_to_role_policy(iam.PolicyStatement(actions=STATE_ACTIONS, resources=[table]))
        if batch_reads:
            fn.add_to_role_policy(iam.PolicyStatement(actions=BATCH_READ_ACTIONS, resources=[table]))
        if due_index:
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:Query"], resources=[f"{table}/index/{self.due_index_name}"]
                )
            )

    def grant_timers(self, fn: lambda_.Function) -> None:
        """Arm and cancel SLA timers: schedules in the group, passing the scheduler role to Scheduler."""
        fn.add_to_role_policy(iam.PolicyStatement(actions=TIMER_ACTIONS, resources=[self.schedule_arns]))
        acknowledge(
            fn,
            "IAM5",
            "SLA timers are schedules created at runtime (one per case and SLA) in casewatch's own "
            "schedule group: the grant covers that group only.",
            applies_to=[
                "Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/"
                f"{self.schedule_group_name}/*"
            ],
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}},
            )
        )

    def allow_scheduler_to_invoke(self, fn: lambda_.IFunction) -> None:
        """The scheduler role may invoke this function (the sla-timer) and nothing else."""
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn])
        )
