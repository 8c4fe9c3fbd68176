"""Related items of a case as Cases events and the Cases API carry them (comment, contact, file, SLA, ...).

A related item holds at most one content object, the one of its type (`CONTENT_ATTRIBUTE`); its wire
key (and the SearchRelatedItems / SearchAllRelatedItems filter key) is the camelCase of that name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field, StrictStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from casewatch.models.base import UtcDatetime, WireModel
from casewatch.models.fields import FieldEntry, FieldValue


class RelatedItemType(StrEnum):
    CONTACT = "Contact"
    COMMENT = "Comment"
    FILE = "File"
    SLA = "Sla"
    CONNECT_CASE = "ConnectCase"
    CUSTOM = "Custom"

    @classmethod
    def parse(cls, value: str) -> RelatedItemType:
        """Event spelling is undocumented beyond Comment/Contact: compare case-insensitively."""
        folded = value.replace("_", "").lower()
        for member in cls:
            if member.value.lower() == folded:
                return member
        raise ValueError(f"unknown relatedItemType (expected one of {', '.join(m.value for m in cls)})")

    @property
    def content_attribute(self) -> str:
        """The `RelatedItem` attribute holding this type's content, e.g. `connect_case`."""
        return CONTENT_ATTRIBUTE[self]

    @property
    def content_key(self) -> str:
        """The content's wire key and search filter key, e.g. `connectCase`."""
        return to_camel(CONTENT_ATTRIBUTE[self])


CONTENT_ATTRIBUTE: Final[dict[RelatedItemType, str]] = {
    RelatedItemType.CONTACT: "contact",
    RelatedItemType.COMMENT: "comment",
    RelatedItemType.FILE: "file",
    RelatedItemType.SLA: "sla",
    RelatedItemType.CONNECT_CASE: "connect_case",
    RelatedItemType.CUSTOM: "custom",
}


class CommentContent(WireModel):
    body: StrictStr | None = None
    content_type: StrictStr | None = None


class ContactContent(WireModel):
    contact_arn: StrictStr = Field(min_length=1)
    channel: StrictStr | None = None
    connected_to_system_time: UtcDatetime | None = None


class FileContent(WireModel):
    file_arn: StrictStr = Field(min_length=1)


class SlaConfiguration(WireModel):
    name: StrictStr = Field(min_length=1)
    type: StrictStr = "CaseField"
    status: Literal["Active", "Overdue", "Met", "NotMet"] | None = None
    field_id: StrictStr | None = None
    target_field_values: list[FieldValue] = Field(default_factory=list)
    target_time: UtcDatetime | None = None
    target_sla_minutes: int | None = Field(None, ge=1, le=1_051_200)
    completion_time: UtcDatetime | None = None


class SlaContent(WireModel):
    sla_configuration: SlaConfiguration


class ConnectCaseContent(WireModel):
    case_id: StrictStr = Field(min_length=1)


class CustomContent(WireModel):
    fields: list[FieldEntry] = Field(default_factory=list)


class RelatedItem(WireModel):
    related_item_type: RelatedItemType
    related_item_id: StrictStr = Field(min_length=1)
    case_id: StrictStr = Field(min_length=1)
    created_date_time: UtcDatetime | None = None
    comment: CommentContent | None = None
    contact: ContactContent | None = None
    file: FileContent | None = None
    sla: SlaContent | None = None
    connect_case: ConnectCaseContent | None = None
    custom: CustomContent | None = None

    @field_validator("related_item_type", mode="before")
    @classmethod
    def _fold_type(cls, v: Any) -> Any:
        return RelatedItemType.parse(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _content_matches_type(self) -> RelatedItem:
        present = [key for key in CONTENT_ATTRIBUTE.values() if getattr(self, key) is not None]
        expected = self.related_item_type.content_attribute
        if len(present) > 1:
            raise ValueError(f"at most one content object may be set, found {len(present)}")
        if present and present[0] != expected:
            raise ValueError(f"content does not match relatedItemType (expected {expected!r})")
        return self

    @property
    def content(self) -> WireModel | None:
        """The content object of the item's type, if the event carries it."""
        content: WireModel | None = getattr(self, self.related_item_type.content_attribute)
        return content

    @property
    def has_content(self) -> bool:
        return self.content is not None


__all__ = [
    "CONTENT_ATTRIBUTE",
    "CommentContent",
    "ConnectCaseContent",
    "ContactContent",
    "CustomContent",
    "FileContent",
    "RelatedItem",
    "RelatedItemType",
    "SlaConfiguration",
    "SlaContent",
]
