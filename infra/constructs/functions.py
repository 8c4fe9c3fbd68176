"""The four functions of `casewatch.topology.FUNCTIONS`, each with its own least-privilege role.

One code asset (the `functions/` directory as it is), one dependencies layer and one settings layer
(`/opt/casewatch/settings.json`) are shared by all four. Each role gets exact actions on exact ARNs:

| function             | Cases                                     | state table                        |
| -------------------- | ----------------------------------------- | ---------------------------------- |
| case-changed         | GetCase                                   | read/write                         |
| related-item-created | GetCase, SearchRelatedItems               | read/write                         |
| sla-timer            | (none: the change feed reads Cases)       | read/write, batch reads            |
| reconcile            | SearchCases, SearchAllRelatedItems        | read/write, batch reads, `due` index |

and all four: SLA timers (schedules of casewatch's group, passing the scheduler role), publishing
(topic + key, enriched bus). The two event-routed functions also park events on the invalid-events
queue; the timer and the change feed park nothing (no queue, no grant).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from casewatch.constants import (
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_EVENT_BUS,
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
            store.grant_state(fn, batch_reads=not fn.spec.event_types, due_index=fn is self.reconcile)
            store.grant_timers(fn)
        for fn in (self.case_changed, self.related_item_created):
            self._grant_get_case(fn)
        self._grant_feed(self.reconcile)
        for fn in (self.case_changed, self.related_item_created):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage"], resources=[self.dead_letters.invalid_events.queue_arn]
                )
            )
        self._grant_search(self.related_item_created)

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
        # An Sla item whose event carries no content (include_content off): its definition is read with
        # SearchRelatedItems (authorizes the domain and the case, per the Service Authorization Reference).
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cases:SearchRelatedItems"], resources=[self.cases.domain, self.cases.cases]
            )
        )

    def _grant_feed(self, fn: CasewatchFunction) -> None:
        # The change feed searches the whole domain: SearchCases (returning field values, like GetCase:
        # the domain and its fields) and SearchAllRelatedItems (the domain and its cases). Both on this
        # one domain only.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cases:SearchCases"], resources=[self.cases.domain, self.cases.fields]
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cases:SearchAllRelatedItems"], resources=[self.cases.domain, self.cases.cases]
            )
        )
        acknowledge(
            fn,
            "IAM5",
            "The change feed's searches authorize the case and field resource types of this one domain.",
            applies_to=CasesDomainArns.nag_findings(self.settings.domain_id),
        )
