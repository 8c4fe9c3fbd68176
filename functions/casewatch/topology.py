"""The deployed topology, defined once: functions and the event patterns that route to them.

The CDK stack builds its rules and functions from these definitions and the local pipeline
routes events with the same patterns, so the two cannot drift.

Every pattern is scoped to one Cases domain: an account may hold several domains publishing to
the same default bus. A Cases event's `resources` are `[domainArn, caseArn]` or `[domainArn,
relatedItemArn]`, the others nested under the domain ARN, so a `prefix` match on the domain ARN
selects the domain's events (EventBridge matches an array if any element matches). Domain ids are
UUIDs of one length, so no other domain's ARN starts with ours. The CDK stack passes the domain
ARN with its partition, Region and account as CloudFormation references; the local pipeline
passes its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casewatch.constants import (
    CASE_CREATED,
    CASE_DELETED,
    CASE_UPDATED,
    DETAIL_TYPE,
    EVENT_SOURCE,
    RELATED_ITEM_CREATED,
)


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str  # CLI name, e.g. `casewatch invoke case-changed`
    construct_id: str  # CDK id of the function
    module: str  # handler module under casewatch.handlers
    description: str
    event_types: tuple[str, ...] = ()  # Cases eventTypes routed to it (empty: not event-routed)

    @property
    def handler(self) -> str:
        """The Lambda handler string."""
        return f"casewatch.handlers.{self.module}.handler"

    def event_pattern(self, domain_arn: str, source: str = EVENT_SOURCE) -> dict[str, Any] | None:
        """The EventBridge rule pattern for this function's events of one domain (None: not event-routed)."""
        if not self.event_types:
            return None
        return {
            "source": [source],
            "detail-type": [DETAIL_TYPE],
            "resources": [{"prefix": domain_arn}],
            "detail": {"eventType": list(self.event_types)},
        }


CASE_CHANGED = FunctionSpec(
    name="case-changed",
    construct_id="CaseChanged",
    module="case_changed",
    description="CASE.CREATED/UPDATED/DELETED: enrich, track SLAs, notify",
    event_types=(CASE_CREATED, CASE_UPDATED, CASE_DELETED),
)
RELATED_ITEM_CREATED_FN = FunctionSpec(
    name="related-item-created",
    construct_id="RelatedItemCreated",
    module="related_item_created",
    description="RELATED_ITEM.CREATED: comments, contacts, files, SLAs",
    event_types=(RELATED_ITEM_CREATED,),
)
SLA_TIMER = FunctionSpec(
    name="sla-timer",
    construct_id="SlaTimer",
    module="sla_timer",
    description="Fired by EventBridge Scheduler at an SLA's target (or warning) time",
)
RECONCILE = FunctionSpec(
    name="reconcile",
    construct_id="Reconcile",
    module="reconcile",
    description="Periodic repair of SLA state from Cases (covers undelivered events)",
)

FUNCTIONS: tuple[FunctionSpec, ...] = (CASE_CHANGED, RELATED_ITEM_CREATED_FN, SLA_TIMER, RECONCILE)
EVENT_ROUTED: tuple[FunctionSpec, ...] = tuple(f for f in FUNCTIONS if f.event_types)


def domain_arn(domain_id: str, *, partition: str, region: str, account: str) -> str:
    """`arn:<partition>:cases:<region>:<account>:domain/<domain id>`."""
    return f"arn:{partition}:cases:{region}:{account}:domain/{domain_id}"


def archive_pattern(domain_arn: str) -> dict[str, Any]:
    """Every Cases event of one domain (the archive, and the optional capture rule)."""
    return {"source": [EVENT_SOURCE], "detail-type": [DETAIL_TYPE], "resources": [{"prefix": domain_arn}]}


def function_named(name: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(name)
