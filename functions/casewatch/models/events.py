"""The Amazon Connect Cases event contract: the whole EventBridge envelope, typed.

One model per documented `detail.eventType`, discriminated on it; any other eventType parses as
`UnhandledDetail` (valid, not handled). Everything else malformed raises `InvalidCaseEventError`
with the location of each problem and no field values.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from casewatch.constants import (
    CASE_CREATED,
    CASE_DELETED,
    CASE_UPDATED,
    DETAIL_TYPE,
    RELATED_ITEM_CREATED,
)
from casewatch.errors import InvalidCaseEventError, Problem, problems_of
from casewatch.models.base import UtcDatetime, WireModel
from casewatch.models.fields import EventFieldValue, FieldValue, PythonValue
from casewatch.models.related_items import RelatedItem, RelatedItemType, SlaConfiguration

_DOMAIN_ARN = re.compile(r"^arn:aws[a-z-]*:cases:([a-z0-9-]+):(\d{12}):domain/([A-Za-z0-9-]+)")
_CASE_ARN = re.compile(r"/case/([A-Za-z0-9-]+)(?:/|$)")
_RELATED_ITEM_ARN = re.compile(r"/related-item/([A-Za-z0-9-]+)$")

# --- who performed the change ------------------------------------------------------------------


class PerformedByUser(WireModel):
    user_arn: StrictStr | None = None
    custom_entity: StrictStr | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> PerformedByUser:
        if (self.user_arn is None) == (self.custom_entity is None):
            raise ValueError("exactly one of userArn, customEntity must be set")
        return self


class PerformedBy(WireModel):
    user: PerformedByUser | None = None
    iam_principal_arn: StrictStr | None = None

    @property
    def identity(self) -> str | None:
        """The Connect user ARN, else the custom entity, else the IAM principal."""
        if self.user is not None:
            return self.user.user_arn or self.user.custom_entity
        return self.iam_principal_arn


# --- case events -------------------------------------------------------------------------------


class CaseData(WireModel):
    case_id: StrictStr = Field(min_length=1)
    template_id: StrictStr | None = None
    created_date_time: UtcDatetime | None = None
    fields: dict[str, EventFieldValue] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class DeletedCaseData(WireModel):
    """CASE.DELETED's body is undocumented: every part optional, ids fall back to `resources`."""

    case_id: StrictStr | None = None
    template_id: StrictStr | None = None
    fields: dict[str, EventFieldValue] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class _Detail(WireModel):
    version: StrictStr = "0"
    approximate_change_time: UtcDatetime
    performed_by: PerformedBy | None = None


class CaseCreatedDetail(_Detail):
    event_type: Literal["CASE.CREATED"]
    changed_field_ids: list[StrictStr] = Field(default_factory=list)
    case: CaseData


class CaseUpdatedDetail(_Detail):
    event_type: Literal["CASE.UPDATED"]
    changed_field_ids: list[StrictStr] = Field(default_factory=list)
    case: CaseData


class CaseDeletedDetail(_Detail):
    event_type: Literal["CASE.DELETED"]
    changed_field_ids: list[StrictStr] = Field(default_factory=list)
    case: DeletedCaseData = Field(default_factory=DeletedCaseData)


class RelatedItemCreatedDetail(_Detail):
    event_type: Literal["RELATED_ITEM.CREATED"]
    changed_attributes: list[StrictStr] = Field(default_factory=list)
    related_item: RelatedItem


class UnhandledDetail(WireModel):
    """An eventType casewatch does not know (e.g. a future RELATED_ITEM.UPDATED): valid, not handled."""

    model_config = ConfigDict(extra="allow")

    version: StrictStr = "0"
    event_type: StrictStr
    approximate_change_time: UtcDatetime | None = None


_KNOWN = {CASE_CREATED, CASE_UPDATED, CASE_DELETED, RELATED_ITEM_CREATED}
_TAGS = frozenset({*_KNOWN, "unhandled"})  # discriminator tags: not part of a problem's location


def _detail_tag(value: Any) -> str | None:
    event_type = value.get("eventType") if isinstance(value, dict) else getattr(value, "event_type", None)
    if not isinstance(event_type, str):
        return None  # pydantic reports the missing/invalid discriminator
    return event_type if event_type in _KNOWN else "unhandled"


CaseDetail = Annotated[
    Annotated[CaseCreatedDetail, Tag(CASE_CREATED)]
    | Annotated[CaseUpdatedDetail, Tag(CASE_UPDATED)]
    | Annotated[CaseDeletedDetail, Tag(CASE_DELETED)]
    | Annotated[RelatedItemCreatedDetail, Tag(RELATED_ITEM_CREATED)]
    | Annotated[UnhandledDetail, Tag("unhandled")],
    Discriminator(
        _detail_tag,
        custom_error_type="invalid_event_type",
        custom_error_message="eventType is missing or not a string",
    ),
]


# --- the envelope ------------------------------------------------------------------------------


class CaseEvent(EventBridgeModel):
    """A Cases event as EventBridge delivers it (envelope kept whole: id, time, resources)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    source: Literal["aws.cases"]  # type: ignore[assignment]  # only Cases publishes Cases events
    detail_type: Literal["Amazon Connect Cases Change"] = Field(alias="detail-type")  # type: ignore[assignment]
    time: UtcDatetime
    detail: CaseDetail  # type: ignore[assignment]

    _domain_arn: str = PrivateAttr("")
    _domain_id: str = PrivateAttr("")
    _case_id: str | None = PrivateAttr(None)
    _related_item_id: str | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _account_from_resources(cls, data: Any) -> Any:
        # Events delivered through some paths (e.g. moto's SQS targets) lack `account`: the domain
        # ARN carries it.
        if isinstance(data, dict) and "account" not in data and isinstance(data.get("resources"), list):
            for arn in data["resources"]:
                match = _DOMAIN_ARN.match(arn) if isinstance(arn, str) else None
                if match:
                    return {**data, "account": match.group(2)}
        return data

    @model_validator(mode="after")
    def _ids_from_resources(self) -> CaseEvent:
        domain = next((m for r in self.resources if (m := _DOMAIN_ARN.match(r))), None)
        if domain is None:
            raise ValueError("resources: no Cases domain ARN (arn:aws:cases:REGION:ACCOUNT:domain/ID)")
        self._domain_arn = domain.group(0)
        self._domain_id = domain.group(3)
        arn_case = next((m.group(1) for r in self.resources if (m := _CASE_ARN.search(r))), None)
        arn_item = next((m.group(1) for r in self.resources if (m := _RELATED_ITEM_ARN.search(r))), None)
        detail = self.detail
        body_case: str | None = None
        if isinstance(detail, CaseCreatedDetail | CaseUpdatedDetail | CaseDeletedDetail):
            body_case = detail.case.case_id
        elif isinstance(detail, RelatedItemCreatedDetail):
            body_case = detail.related_item.case_id
            if arn_item is not None and arn_item != detail.related_item.related_item_id:
                raise ValueError(
                    "resources: related-item ARN does not match detail.relatedItem.relatedItemId"
                )
            self._related_item_id = detail.related_item.related_item_id
        if body_case is not None and arn_case is not None and body_case != arn_case:
            raise ValueError("resources: case ARN does not match the caseId in detail")
        self._case_id = body_case or arn_case
        if self._case_id is None and not isinstance(detail, UnhandledDetail):
            raise ValueError("no case id: neither detail nor resources name the case")
        return self

    # -- identity ------------------------------------------------------------------------------
    @property
    def event_type(self) -> str:
        return self.detail.event_type

    @property
    def handled(self) -> bool:
        return not isinstance(self.detail, UnhandledDetail)

    @property
    def domain_id(self) -> str:
        return self._domain_id

    @property
    def domain_arn(self) -> str:
        return self._domain_arn

    @property
    def case_id(self) -> str | None:
        return self._case_id

    @property
    def case_arn(self) -> str | None:
        return f"{self._domain_arn}/case/{self._case_id}" if self._case_id else None

    @property
    def related_item_id(self) -> str | None:
        return self._related_item_id

    @property
    def is_replay(self) -> bool:
        return self.replay_name is not None

    @property
    def change_time(self) -> datetime:
        """`approximateChangeTime` (the ordering key); the envelope time when a future type lacks it."""
        return self.detail.approximate_change_time or self.time

    # -- what changed --------------------------------------------------------------------------
    @property
    def template_id(self) -> str | None:
        case = getattr(self.detail, "case", None)
        return case.template_id if case is not None else None

    @property
    def fields(self) -> dict[str, FieldValue]:
        """The case fields the event carries (after the change), by field id."""
        case = getattr(self.detail, "case", None)
        if case is None:
            return {}
        return {field_id: wrapped.value for field_id, wrapped in case.fields.items()}

    def field_values(self) -> dict[str, PythonValue]:
        """The fields as plain Python values."""
        return {field_id: value.python for field_id, value in self.fields.items()}

    @property
    def changed_field_ids(self) -> list[str]:
        return list(getattr(self.detail, "changed_field_ids", []))

    def changed_fields(self) -> dict[str, PythonValue]:
        """Changed field ids with their new value when the event carries it."""
        values = self.field_values()
        return {field_id: values.get(field_id) for field_id in self.changed_field_ids}

    @property
    def performed_by(self) -> str | None:
        """Who performed the change: user ARN, custom entity, else IAM principal."""
        performer = getattr(self.detail, "performed_by", None)
        return performer.identity if performer is not None else None

    @property
    def related_item(self) -> RelatedItem | None:
        return self.detail.related_item if isinstance(self.detail, RelatedItemCreatedDetail) else None

    def summary(self) -> str:
        """A one-line description with ids only (safe to log)."""
        parts = [self.event_type, f"case={self.case_id}"]
        if self.related_item is not None:
            parts.append(f"relatedItem={self.related_item.related_item_type.value}:{self.related_item_id}")
        if self.is_replay:
            parts.append(f"replay={self.replay_name}")
        return " ".join(parts)


# --- parsing -----------------------------------------------------------------------------------


def parse_case_event(raw: object) -> CaseEvent:
    """Parse an EventBridge event (dict, JSON str or bytes). Raises only `InvalidCaseEventError`."""
    if isinstance(raw, bytes | bytearray | str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidCaseEventError([Problem("", f"not valid JSON ({type(exc).__name__})")]) from None
    if not isinstance(raw, dict):
        raise InvalidCaseEventError(
            [Problem("", f"an event must be a JSON object, got {type(raw).__name__}")]
        )
    try:
        event = CaseEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidCaseEventError(problems_of(exc, tags=_TAGS)) from None
    except RecursionError:
        raise InvalidCaseEventError([Problem("", "nested too deeply")]) from None
    return event


__all__ = [
    "DETAIL_TYPE",
    "CaseCreatedDetail",
    "CaseDeletedDetail",
    "CaseEvent",
    "CaseUpdatedDetail",
    "RelatedItem",
    "RelatedItemCreatedDetail",
    "RelatedItemType",
    "SlaConfiguration",
    "UnhandledDetail",
    "parse_case_event",
]
