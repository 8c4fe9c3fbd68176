"""The enriched case view: what the sinks see, with the provenance of every field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from casewatch.models.fields import FieldValue, PythonValue


class Provenance(StrEnum):
    EVENT = "event"  # carried by the event being processed
    SNAPSHOT = "snapshot"  # from the stored view of an earlier event (or GetCase)
    GETCASE = "getcase"  # fetched from the Cases GetCase API for this event


class EnrichedField(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: FieldValue
    source: Provenance
    as_of: datetime  # the approximateChangeTime (event/snapshot) or fetch time (GetCase) it is current at


class EnrichedCase(BaseModel):
    """The case as of `version` (the approximateChangeTime of the newest event applied)."""

    model_config = ConfigDict(frozen=True)

    domain_id: str
    case_id: str
    template_id: str | None = None
    version: datetime
    event_id: str | None = None
    fields: dict[str, EnrichedField] = Field(default_factory=dict)
    missing: tuple[str, ...] = ()  # needed fields no source had a value for
    getcase_at: datetime | None = None  # when GetCase was last called for this view
    deleted: bool = False
    flags: tuple[str, ...] = ()  # e.g. "case_not_found" when GetCase answered 404

    def value(self, field_id: str) -> PythonValue:
        field = self.fields.get(field_id)
        return None if field is None else field.value.python

    def values(self) -> dict[str, PythonValue]:
        return {field_id: field.value.python for field_id, field in self.fields.items()}

    def sources(self) -> dict[str, Provenance]:
        return {field_id: field.source for field_id, field in self.fields.items()}
