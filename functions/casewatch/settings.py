"""casewatch configuration: one validated model, read lazily (never at import time).

The source of truth is the `casewatch` key of `cdk.json` context. The stack writes the runtime
part into a file of a small layer (`/opt/casewatch/settings.json`, named by `CASEWATCH_CONFIG_FILE`:
Lambda's 4 KB environment cannot hold 400 event fields); the local pipeline reads cdk.json and
passes the JSON itself (`CASEWATCH_CONFIG`). Invalid settings fail fast with an error that names
the setting.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casewatch.constants import CONTEXT_KEY, ENV_CONFIG, ENV_CONFIG_FILE
from casewatch.errors import SettingsError, problems_of

ScalarValue = str | float | bool
SYSTEM_FIELD_IDS = frozenset(
    {
        "case_id",
        "case_reason",
        "customer_id",
        "created_datetime",
        "last_updated_datetime",
        "last_closed_datetime",
        "reference_number",
        "status",
        "summary",
        "title",
        "assigned_user",
        "assigned_queue",
        "last_updated_user",
        "next_sla_breach_datetime",
        "last_reopened_datetime",
    }
)
_FIELD_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
FieldRef = Annotated[str, Field(min_length=1, max_length=500)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompletionCondition(_Strict):
    """When an SLA is fulfilled: a field reaches one of `values`, or a related item of a type is added."""

    field: FieldRef | None = None
    values: list[ScalarValue] = Field(default_factory=list)
    related_item: Literal["Comment", "Contact", "File", "Sla", "ConnectCase", "Custom"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CompletionCondition:
        if (self.field is None) == (self.related_item is None):
            raise ValueError("set exactly one of 'field' (with 'values') or 'related_item'")
        if self.field is not None and not self.values:
            raise ValueError("'values' must list at least one value when 'field' is set")
        return self


class SlaPolicy(_Strict):
    """An SLA casewatch arms itself, e.g. first response within 30 min for priority=high."""

    name: Name
    match: dict[FieldRef, list[ScalarValue]] = Field(default_factory=dict)
    target_minutes: int = Field(ge=1, le=1_051_200)
    complete_when: CompletionCondition
    pause_when: dict[FieldRef, list[ScalarValue]] = Field(default_factory=dict)
    rearm_on_reopen: bool = False


NotificationTrigger = Literal[
    "case_created",
    "case_updated",
    "field_changed",
    "case_deleted",
    "comment_added",
    "contact_linked",
    "file_attached",
    "related_item_added",
    "sla_at_risk",
    "sla_breached",
    "sla_met",
    "sla_not_met",
]


class NotificationRule(_Strict):
    """Which change notifies: a trigger, optional changed fields/target values, a match on the case."""

    name: Name
    on: NotificationTrigger
    fields: list[FieldRef] = Field(default_factory=list)
    to_values: list[ScalarValue] = Field(default_factory=list)
    match: dict[FieldRef, list[ScalarValue]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_for_field_changed(self) -> NotificationRule:
        if self.on == "field_changed" and not self.fields:
            raise ValueError("a 'field_changed' rule must list the 'fields' it watches")
        return self


class Settings(_Strict):
    """Every deployment setting. Field references accept a field id or a name from `field_names`."""

    # Cases
    domain_id: str = Field(min_length=1, max_length=500)
    event_fields: list[FieldRef] = Field(default_factory=list, max_length=400)
    auto_include_fields: Literal["All", "System", "Custom"] | None = None
    include_content: bool = True
    enrichment_fields: list[FieldRef] = Field(default_factory=list)
    field_names: dict[str, str] = Field(default_factory=dict)
    # SLA tracking
    sla_policies: list[SlaPolicy] = Field(default_factory=list)
    sla_warning_fraction: float | None = Field(0.8, gt=0, lt=1)
    # notifications
    notification_rules: list[NotificationRule] = Field(default_factory=list)
    redact_fields: list[FieldRef] = Field(default_factory=list)
    replays: Literal["process", "skip"] = "process"
    log_case_data: bool = False
    # enrichment tuning
    getcase_max_attempts: int = Field(4, ge=1, le=10)
    # the change feed (the reconcile function): how often it polls Cases, and how far behind now it stays
    # (search results lag writes by the index delay)
    reconcile_every_minutes: int = Field(1, ge=1, le=1440)
    search_index_lag_seconds: int = Field(15, ge=0, le=3600)
    # deploy-only (not sent to the functions)
    archive_retention_days: int = Field(30, ge=0)
    log_retention_days: int = Field(30, ge=1)
    alarm_email: str | None = None
    removal_policy: Literal["retain", "destroy"] = "retain"
    capture_events: bool = False
    # reserved concurrency of each event-routed function; null (default): unreserved. Lambda keeps 100
    # executions of the account unreserved, so a reservation needs an account limit above 100 + it.
    reserved_concurrency: int | None = Field(None, ge=1, le=1000)

    DEPLOY_ONLY: ClassVar[frozenset[str]] = frozenset(
        {
            "archive_retention_days",
            "log_retention_days",
            "alarm_email",
            "removal_policy",
            "capture_events",
            "reserved_concurrency",
        }
    )

    @field_validator("field_names")
    @classmethod
    def _valid_ids(cls, v: dict[str, str]) -> dict[str, str]:
        for name, field_id in v.items():
            if not _FIELD_ID.match(field_id):
                raise ValueError(f"field_names[{name!r}] is not a valid field id")
        return v

    @property
    def feed_period(self) -> timedelta:
        return timedelta(minutes=self.reconcile_every_minutes)

    @property
    def index_lag(self) -> timedelta:
        return timedelta(seconds=self.search_index_lag_seconds)

    @property
    def breach_grace(self) -> timedelta:
        """How long after an SLA's target its breach timer fires: by then a poll of the change feed has
        passed the target (one period, the index lag, and a margin for the poll itself)."""
        return self.feed_period + self.index_lag + timedelta(seconds=10)

    def field_id(self, ref: str) -> str:
        """Resolve a field reference (a name from `field_names`, or an id) to the field id."""
        return self.field_names.get(ref, ref)

    def field_label(self, field_id: str) -> str:
        """The configured name of a field id (for messages), else the id itself."""
        return self.field_labels.get(field_id, field_id)

    @property
    def field_labels(self) -> dict[str, str]:
        """Field id -> its configured name, for the ids `field_names` names (the first name of an id wins)."""
        labels: dict[str, str] = _derived(
            self, "labels", lambda: {fid: name for name, fid in reversed(list(self.field_names.items()))}
        )
        return labels

    @property
    def needed_field_ids(self) -> frozenset[str]:
        """Every case field the sinks need: enrichment fields plus those policies and rules read."""
        needed: frozenset[str] = _derived(self, "needed", self._needed_field_ids)
        return needed

    def _needed_field_ids(self) -> frozenset[str]:
        refs: set[str] = set(self.enrichment_fields)
        for policy in self.sla_policies:
            refs.update(policy.match)
            refs.update(policy.pause_when)
            if policy.complete_when.field:
                refs.add(policy.complete_when.field)
        for rule in self.notification_rules:
            refs.update(rule.match)
            refs.update(rule.fields)
        return frozenset(self.field_id(ref) for ref in refs)

    @property
    def event_field_ids(self) -> frozenset[str]:
        """The field ids of `event_fields` (what Cases puts into events, besides `auto_include_fields`)."""
        ids: frozenset[str] = _derived(
            self, "event_fields", lambda: frozenset(self.field_id(ref) for ref in self.event_fields)
        )
        return ids

    @property
    def redacted_field_ids(self) -> frozenset[str]:
        """The field ids of `redact_fields`."""
        ids: frozenset[str] = _derived(
            self, "redacted", lambda: frozenset(self.field_id(ref) for ref in self.redact_fields)
        )
        return ids

    def runtime_json(self) -> str:
        """The settings the functions read at runtime, as compact JSON (the Lambda environment)."""
        return self.model_dump_json(exclude=set(self.DEPLOY_ONLY), exclude_defaults=True)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = CONTEXT_KEY) -> Settings:
        """Validate a mapping; errors name the setting, e.g. `casewatch.sla_policies[0].name`."""
        if not isinstance(data, dict):
            raise SettingsError(f"{source}: must be an object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [
                f"{source}{'' if p.location.startswith('[') else '.'}{p.location}: {p.message}"
                if p.location
                else f"{source}: {p.message}"
                for p in problems_of(exc)
            ]
            raise SettingsError("invalid settings: " + "; ".join(problems)) from None


# Values derived from a Settings, computed once per instance (settings are frozen). Keyed by identity and
# kept outside the model: `model_copy(update=...)` copies a model's own attributes, so a cache on the
# instance would hand stale values to the copy.
_DERIVED: dict[int, tuple[Settings, dict[str, Any]]] = {}
_DERIVED_MAX = 64


def _derived(settings: Settings, key: str, compute: Callable[[], Any]) -> Any:
    entry = _DERIVED.get(id(settings))
    if entry is None or entry[0] is not settings:
        if len(_DERIVED) >= _DERIVED_MAX:
            _DERIVED.clear()
        entry = (settings, {})
        _DERIVED[id(settings)] = entry
    values = entry[1]
    if key not in values:
        values[key] = compute()
    return values[key]


def load_cdk_context(path: str | Path = "cdk.json", overrides: dict[str, Any] | None = None) -> Settings:
    """Read the `casewatch` key of a cdk.json's context (what the stack deploys)."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SettingsError(f"{path}: not found") from None
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from None
    data = dict(document.get("context", {}).get(CONTEXT_KEY) or {})
    data.update(overrides or {})
    return Settings.from_mapping(data)


@cache
def get_settings() -> Settings:
    """The functions' settings, validated once per container.

    From the file `CASEWATCH_CONFIG_FILE` names (what the stack deploys), else from the JSON in
    `CASEWATCH_CONFIG` (the local pipeline, tests).
    """
    path = os.environ.get(ENV_CONFIG_FILE)
    if path:
        source = f"{ENV_CONFIG_FILE} ({path})"
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    else:
        source = ENV_CONFIG
        raw = os.environ.get(ENV_CONFIG) or ""
        if not raw:
            raise SettingsError(
                f"neither {ENV_CONFIG_FILE} nor {ENV_CONFIG} is set: the stack sets the first one, "
                "from cdk.json context"
            )
    try:
        data = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{source}: not valid JSON") from None
    return Settings.from_mapping(data)
