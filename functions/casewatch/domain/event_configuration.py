"""Case event publishing (`includedData`): the PutCaseEventConfiguration request the settings ask for,
what must match when Cases reads it back, and the request a custom resource's properties carry.

The properties carry the request as JSON (`Configuration`): CloudFormation passes scalar property
values as strings, JSON keeps the booleans booleans. The previous release's AwsCustomResource
properties (`Create`/`Update`/`Delete`: SDK calls as JSON) are read too: the rollback of an upgrade
sends them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from casewatch.errors import InvalidResourcePropertiesError
from casewatch.settings import Settings

CONFIGURATION_PROPERTY: Final = "Configuration"


def event_configuration(settings: Settings, *, enabled: bool = True) -> dict[str, Any]:
    """The PutCaseEventConfiguration request for the settings (or the one turning events off)."""
    if not enabled:
        return {"domainId": settings.domain_id, "eventBridge": {"enabled": False}}
    field_ids = list(dict.fromkeys(settings.field_id(ref) for ref in settings.event_fields))
    case_data: dict[str, Any] = {"fields": [{"id": field_id} for field_id in field_ids]}
    if settings.auto_include_fields:
        case_data["autoIncludeFields"] = settings.auto_include_fields
    return {
        "domainId": settings.domain_id,
        "eventBridge": {
            "enabled": True,
            "includedData": {
                "caseData": case_data,
                "relatedItemData": {"includeContent": settings.include_content},
            },
        },
    }


def comparable(event_bridge: Mapping[str, Any]) -> dict[str, Any]:
    """What must match between the configuration asked for and the one stored."""
    enabled = bool(event_bridge.get("enabled"))
    if not enabled:
        return {"enabled": False}
    included = event_bridge.get("includedData") or {}
    case_data = included.get("caseData") or {}
    related = included.get("relatedItemData") or {}
    return {
        "enabled": True,
        "fields": sorted({str(f.get("id")) for f in case_data.get("fields") or []}),
        "autoIncludeFields": case_data.get("autoIncludeFields"),
        "includeContent": bool(related.get("includeContent", False)),
    }


def differences(asked: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """The members Cases stored otherwise (names and values only: configuration, no case data)."""
    want, got = comparable(asked), comparable(stored)
    found = []
    for key in want.keys() | got.keys():
        if want.get(key) != got.get(key):
            if key == "fields":
                missing = sorted(set(want.get(key) or []) - set(got.get(key) or []))
                extra = sorted(set(got.get(key) or []) - set(want.get(key) or []))
                found.append(f"fields (missing {missing}, unexpected {extra})")
            else:
                found.append(f"{key} (asked {want.get(key)!r}, stored {got.get(key)!r})")
    return sorted(found)


def request_of(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The PutCaseEventConfiguration request the resource properties hold."""
    if CONFIGURATION_PROPERTY in properties:
        request = json.loads(properties[CONFIGURATION_PROPERTY])
    elif "Update" in properties:  # the previous release's AwsCustomResource (an upgrade's rollback)
        request = json.loads(properties["Update"]).get("parameters")
    else:
        request = None
    if not isinstance(request, dict) or not request.get("domainId") or "eventBridge" not in request:
        raise InvalidResourcePropertiesError(
            f"the resource properties hold no PutCaseEventConfiguration request ({CONFIGURATION_PROPERTY})"
        )
    return request


__all__ = ["CONFIGURATION_PROPERTY", "comparable", "differences", "event_configuration", "request_of"]
