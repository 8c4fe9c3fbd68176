"""The `Casewatch` stack: composes one construct per concern, adds the outputs and acknowledgments."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

from casewatch.settings import Settings
from infra.constructs.dead_letters import DeadLetters
from infra.constructs.event_config import CaseEventConfiguration
from infra.constructs.functions import Functions
from infra.constructs.monitoring import Monitoring
from infra.constructs.notifications import Notifications
from infra.constructs.routing import Routing
from infra.constructs.sla_store import SlaStore

STACK_NAME = "Casewatch"


class CasewatchStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.dead_letters = DeadLetters(self, "DeadLetters")
        self.store = SlaStore(self, "SlaStore", settings=settings)
        self.notifications = Notifications(self, "Notifications", settings=settings)
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            store=self.store,
            notifications=self.notifications,
            dead_letters=self.dead_letters,
        )
        self.routing = Routing(
            self, "Routing", settings=settings, functions=self.functions, dead_letters=self.dead_letters
        )
        self.event_config = CaseEventConfiguration(
            self,
            "CaseEventConfiguration",
            settings=settings,
            code=self.functions.code,
            layers=[self.functions.dependencies.layer],
        )
        # Publishing starts only once the rules that consume it exist.
        self.event_config.node.add_dependency(self.routing)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            key=self.notifications.key,
            functions=self.functions.all,
            queues=self.dead_letters.queues,
        )
        self._outputs()

    def _output(self, output_id: str, value: str, description: str) -> None:
        CfnOutput(self, output_id, value=value, description=description)

    def _outputs(self) -> None:
        routing = self.routing
        self._output(
            "DomainId",
            self.settings.domain_id,
            "the Cases domain casewatch consumes (`casewatch doctor` checks its event configuration)",
        )
        self._output("ArchiveName", routing.archive.archive_name, "EventBridge archive of the Cases events")
        self._output("ArchiveArn", routing.archive.archive_arn, "EventBridge archive of the Cases events")
        for spec_name, rule in routing.rules.items():
            fn = self.functions.by_spec[spec_name]
            self._output(
                f"{fn.spec.construct_id}RuleArn",
                rule.rule_arn,
                f"rule routing to {spec_name} (a replay target)",
            )
        self._output(
            "ReplayFilterArns",
            Fn.join(",", [rule.rule_arn for rule in routing.rules.values()]),
            "FilterArns for `aws events start-replay`: the rules replayed events are delivered to",
        )
        for name, queue in self.dead_letters.queues.items():
            self._output(f"{name}Url", queue.queue_url, f"{name}: see README (Deploy, redrive)")
        self._output(
            "StateTableName",
            self.store.state_table.table_name,
            "case records: views, SLA folds and logs, claims; the change feed's watermark",
        )
        self._output(
            "ScheduleGroupName", self.store.schedule_group_name, "EventBridge Scheduler group (SLA timers)"
        )
        self._output("TopicArn", self.notifications.topic.topic_arn, "notifications (subscribe here)")
        self._output(
            "EnrichedBusName", self.notifications.bus.event_bus_name, "enriched events (source casewatch)"
        )
        self._output("AlarmTopicArn", self.monitoring.topic.topic_arn, "alarms")
        self._output("DashboardName", self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard")
        for fn in self.functions.all:
            self._output(
                f"{fn.spec.construct_id}FunctionName", fn.function_name, f"the {fn.spec.name} function"
            )
        if routing.capture_log_group is not None:
            self._output(
                "CaptureLogGroupName",
                routing.capture_log_group.log_group_name,
                "captured Cases events (`casewatch capture pull`)",
            )
