"""Wire models of Cases events and the Cases API, and casewatch's own domain models."""

from casewatch.models.events import (
    CaseCreatedDetail,
    CaseDeletedDetail,
    CaseEvent,
    CaseUpdatedDetail,
    RelatedItem,
    RelatedItemCreatedDetail,
    RelatedItemType,
    SlaConfiguration,
    UnhandledDetail,
    parse_case_event,
)
from casewatch.models.fields import FieldEntry, FieldValue, PythonValue

__all__ = [
    "CaseCreatedDetail",
    "CaseDeletedDetail",
    "CaseEvent",
    "CaseUpdatedDetail",
    "FieldEntry",
    "FieldValue",
    "PythonValue",
    "RelatedItem",
    "RelatedItemCreatedDetail",
    "RelatedItemType",
    "SlaConfiguration",
    "UnhandledDetail",
    "parse_case_event",
]
