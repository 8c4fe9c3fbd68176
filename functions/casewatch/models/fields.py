"""Case field values: the `FieldValueUnion` of the Cases API and events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, StrictStr, model_validator

from casewatch.models.base import WireModel

PythonValue = str | float | bool | None
UNION_MEMBERS = ("stringValue", "doubleValue", "booleanValue", "emptyValue", "userArnValue")
MAX_STRING_LENGTH = 4100


class EmptyValue(WireModel):
    """`emptyValue: {}`: the field is explicitly empty."""

    model_config = ConfigDict(extra="forbid")


class FieldValue(WireModel):
    """Exactly one member of the union is set.

    A member this model does not know (a field type Cases adds later, e.g. `{"fooValue": ...}`) is kept
    as it came, *opaque* (`opaque_member`): the event stays valid, the value round-trips through
    `to_wire`, and it compares equal to nothing (`python` is None)."""

    model_config = ConfigDict(extra="allow")

    string_value: StrictStr | None = Field(None, max_length=MAX_STRING_LENGTH)
    double_value: float | None = Field(None, strict=True)
    boolean_value: StrictBool | None = None
    empty_value: EmptyValue | None = None
    user_arn_value: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _int_is_a_double(cls, data: Any) -> Any:
        # JSON has one number type: 3 and 3.0 are the same doubleValue. bool is not a number here.
        if isinstance(data, dict):
            number = data.get("doubleValue")
            if isinstance(number, int) and not isinstance(number, bool):
                return {**data, "doubleValue": float(number)}
        return data

    @model_validator(mode="after")
    def _exactly_one_member(self) -> FieldValue:
        count = sum(
            v is not None
            for v in (
                self.string_value,
                self.double_value,
                self.boolean_value,
                self.empty_value,
                self.user_arn_value,
            )
        ) + len(self.model_extra or {})
        if count != 1:
            raise ValueError(f"exactly one of {', '.join(UNION_MEMBERS)} must be set, found {count}")
        return self

    @property
    def opaque_member(self) -> str | None:
        """The name of an unknown union member this value holds (a newer field type), else None."""
        return next(iter(self.model_extra), None) if self.model_extra else None

    @property
    def python(self) -> PythonValue:
        """The plain Python value: str, float, bool, or None for `emptyValue`."""
        for v in (self.string_value, self.double_value, self.boolean_value, self.user_arn_value):
            if v is not None:
                return v
        return None

    @property
    def is_empty(self) -> bool:
        return self.empty_value is not None or self.string_value == ""

    def as_datetime(self) -> datetime | None:
        """A date-time field: ISO-8601 string or epoch milliseconds (Cases does not document which)."""
        if self.string_value:
            try:
                parsed = datetime.fromisoformat(self.string_value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if self.double_value is not None:
            try:
                return datetime.fromtimestamp(self.double_value / 1000, tz=UTC)
            except (OverflowError, OSError, ValueError):
                return None
        return None

    @classmethod
    def of(cls, value: PythonValue) -> FieldValue:
        """Build the union from a plain value (the inverse of `python`, strings stay strings)."""
        if value is None:
            return cls(empty_value=EmptyValue())
        if isinstance(value, bool):
            return cls(boolean_value=value)
        if isinstance(value, int | float):
            return cls(double_value=float(value))
        return cls(string_value=value)

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON shape (one member), as the API and events carry it."""
        return self.model_dump(by_alias=True, exclude_none=True)


class FieldEntry(WireModel):
    """`{"id": ..., "value": {...}}` as GetCase and custom related items return fields."""

    id: StrictStr = Field(min_length=1)
    value: FieldValue | None = None


class EventFieldValue(WireModel):
    """The event's map value: `{"value": <FieldValueUnion>}`."""

    value: FieldValue
