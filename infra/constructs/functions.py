"""The four functions of `casewatch.topology.FUNCTIONS`, each with its own least-privilege role.

One code asset (the `functions/` directory as it is), one dependencies layer and one settings layer
(`/opt/casewatch/settings.json`) are shared by all four. Each role gets exact actions on exact ARNs:

| function             | Cases                                     | state table          |
| -------------------- | ----------------------------------------- | -------------------- |
| case-changed         | GetCase                                   | read/write           |
| related-item-created | GetCase, SearchRelatedItems               | read/write           |
| sla-timer            | GetCase, SearchRelatedItems               | read/write           |
| reconcile            | GetCase, SearchRelatedItems               | + query `due` index  |

and all four: SLA timers (schedules of casewatch's group, passing the scheduler role), the
idempotency table, publishing (topic + key, enriched bus). The two event-routed functions also park
events on the invalid-events queue; the timer and the reconciliation park nothing (no queue, no grant).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from casewatch.constants import (
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_SCHEDULE_GROUP,
    ENV_SCHEDULER_ROLE_ARN,
    ENV_SLA_TABLE,
    ENV_SLA_TIMER_ARN,
    ENV_TOPIC_ARN,
)
from casewatch.settings import Settings
from casewatch.topology import (
    CASE_CHANGED,
    FUNCTIONS,
    RECONCILE,
    RELATED_ITEM_CREATED_FN,
    SLA_TIMER,
    FunctionSpec,
)
from infra.constructs.cases import CasesDomainArns
from infra.constructs.dead_letters import DeadLetters
from infra.constructs.dependencies import REPO_ROOT, DependenciesLayer
from infra.constructs.function import CasewatchFunction
from infra.constructs.notifications import Notifications
from infra.constructs.settings_layer import SettingsLayer
from infra.constructs.sla_store import SlaStore
from infra.nag import acknowledge

FUNCTIONS_DIR = REPO_ROOT / "functions"
# Python's byte-code caches of a local run are not code.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc"]


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        store: SlaStore,
        notifications: Notifications,
        dead_letters: DeadLetters,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.store = store
        self.notifications = notifications
        self.dead_letters = dead_letters
        self.cases = CasesDomainArns.of(self, settings.domain_id)
        self.settings_layer = SettingsLayer(
            self,
            "Settings",
            settings=settings,
            runtime=CasewatchFunction.RUNTIME,
            architecture=CasewatchFunction.ARCHITECTURE,
        )
        self.dependencies = DependenciesLayer(
            self,
            "Dependencies",
            runtime=CasewatchFunction.RUNTIME,
            architecture=CasewatchFunction.ARCHITECTURE,
        )
        self.code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=ASSET_EXCLUDES)

        stack = Stack.of(self)
        # The sla-timer has a fixed name, so every function (the sla-timer too: it re-arms and cancels
        # timers) can name it as the timers' target without a circular reference to its own ARN.
        sla_timer_name = f"{stack.stack_name}-{SLA_TIMER.name}"
        sla_timer_arn = stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=sla_timer_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        environment = {
            ENV_SLA_TABLE: store.state_table.table_name,
            ENV_IDEMPOTENCY_TABLE: store.idempotency_table.table_name,
            ENV_TOPIC_ARN: notifications.topic.topic_arn,
            ENV_EVENT_BUS: notifications.bus.event_bus_name,
            ENV_SCHEDULE_GROUP: store.schedule_group_name,
            ENV_SCHEDULER_ROLE_ARN: store.scheduler_role.role_arn,
            ENV_SLA_TIMER_ARN: sla_timer_arn,
        }
        parks_events = {**environment, ENV_DEAD_LETTER_QUEUE_URL: dead_letters.invalid_events.queue_url}
        self.sla_timer = self._function(SLA_TIMER, environment, function_name=sla_timer_name)
        store.allow_scheduler_to_invoke(self.sla_timer)
        self.case_changed = self._function(CASE_CHANGED, parks_events)
        self.related_item_created = self._function(RELATED_ITEM_CREATED_FN, parks_events)
        self.reconcile = self._function(RECONCILE, environment)

        for fn in self.all:
            self._grant_common(fn)
            self._grant_get_case(fn)
            store.grant_state(fn, due_index=fn is self.reconcile)
            store.grant_timers(fn)
        for fn in (self.case_changed, self.related_item_created):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage"], resources=[self.dead_letters.invalid_events.queue_arn]
                )
            )
        for fn in (self.related_item_created, self.sla_timer, self.reconcile):
            self._grant_search(fn)

    @property
    def all(self) -> list[CasewatchFunction]:
        return [self.by_spec[spec.name] for spec in FUNCTIONS]

    @property
    def by_spec(self) -> dict[str, CasewatchFunction]:
        return {
            fn.spec.name: fn
            for fn in (self.case_changed, self.related_item_created, self.sla_timer, self.reconcile)
        }

    def _function(
        self, spec: FunctionSpec, environment: dict[str, str], function_name: str | None = None
    ) -> CasewatchFunction:
        return CasewatchFunction(
            self,
            spec,
            code=self.code,
            layers=[self.dependencies.layer, self.settings_layer.layer],
            settings=self.settings,
            failure_queue=self.dead_letters.failure,
            environment=environment,
            function_name=function_name,
        )

    def _grant_common(self, fn: CasewatchFunction) -> None:
        self.store.grant_idempotency(fn)
        self.notifications.grant_publish(fn)

    def _grant_get_case(self, fn: CasewatchFunction) -> None:
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cases:GetCase"], resources=self.cases.get_case))
        acknowledge(
            fn,
            "IAM5",
            "GetCase (and SearchRelatedItems) authorize the case and field resource types: any case of "
            "this one domain, and the fields GetCase reads (the configured ids are a deploy-time setting).",
            applies_to=CasesDomainArns.nag_findings(self.settings.domain_id),
        )

    def _grant_search(self, fn: CasewatchFunction) -> None:
        # Cases SLAs are read per case with SearchRelatedItems (authorizes the domain and the case, per
        # the Service Authorization Reference): by reconciliation, by the SLA timer before it declares a
        # breach, and by related-item-created when an Sla item's event carries no content
        # (include_content off). Reconciliation finds its cases in the `due` index: no SearchCases.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cases:SearchRelatedItems"], resources=[self.cases.domain, self.cases.cases]
            )
        )
