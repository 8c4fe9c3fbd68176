"""The EventBridge events Cases publishes for a change, shaped by the case event configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from casewatch.constants import DETAIL_TYPE, EVENT_SOURCE
from casewatch_dev.emulator._protocol import JSON
from casewatch_dev.emulator._state import (
    CHANGED_ATTRIBUTES,
    CONTENT_KEYS,
    Case,
    Domain,
    RelatedItem,
    iso,
)

NoFieldsAs = Literal["empty", "absent"]


def enabled(domain: Domain) -> bool:
    return bool(domain.event_config and domain.event_config.get("enabled"))


def performer(user: JSON | None, default_user_arn: str | None, iam_principal_arn: str | None) -> JSON | None:
    """`detail.performedBy`: the request's UserUnion (else the default user) and the IAM principal."""
    out: JSON = {}
    if user and (user.get("userArn") or user.get("customEntity")):
        key = "userArn" if user.get("userArn") else "customEntity"
        out["user"] = {key: user[key]}
    elif default_user_arn:
        out["user"] = {"userArn": default_user_arn}
    if iam_principal_arn:
        out["iamPrincipalArn"] = iam_principal_arn
    return out or None


def _included_field_ids(domain: Domain) -> list[str] | None:
    """Field ids the configuration puts in `detail.case.fields`; None when it names none (metadata only)."""
    included = (domain.event_config or {}).get("includedData") or {}
    case_data = included.get("caseData")
    if not case_data:
        return None
    ids = [str(f["id"]) for f in case_data.get("fields", []) if isinstance(f, dict) and "id" in f]
    auto = case_data.get("autoIncludeFields")
    if auto:
        ids += [
            f.field_id
            for f in domain.fields.values()
            if auto == "All" or (auto == "System") == (f.namespace == "System")
        ]
    return list(dict.fromkeys(ids))


def envelope(
    *,
    event_id: str,
    account: str,
    region: str,
    now: datetime,
    resources: list[str],
    detail: JSON,
) -> JSON:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": account,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def case_detail(
    event_type: str,
    domain: Domain,
    case: Case,
    *,
    changed: list[str],
    performed_by: JSON | None,
    when: datetime,
    no_fields_as: NoFieldsAs,
) -> JSON:
    """The `detail` of CASE.CREATED / CASE.UPDATED / CASE.DELETED."""
    body: JSON = {"caseId": case.case_id, "templateId": case.template_id}
    if event_type != "CASE.DELETED":
        body["createdDateTime"] = iso(case.created)
        ids = _included_field_ids(domain)
        if ids is not None:
            values = {fid: case.value(fid) for fid in ids}
            body["fields"] = {fid: {"value": value} for fid, value in values.items() if value is not None}
        elif no_fields_as == "empty":
            body["fields"] = {}
    detail: JSON = {
        "version": "0",
        "eventType": event_type,
        "approximateChangeTime": iso(when),
        "changedFieldIds": list(changed),
    }
    if performed_by:
        detail["performedBy"] = performed_by
    detail["case"] = body
    return detail


def related_item_detail(
    domain: Domain, case: Case, item: RelatedItem, *, performed_by: JSON | None, now: datetime
) -> JSON:
    """The `detail` of RELATED_ITEM.CREATED; the content only with `includeContent` on."""
    included = (domain.event_config or {}).get("includedData") or {}
    include_content = bool((included.get("relatedItemData") or {}).get("includeContent"))
    related: dict[str, Any] = {
        "relatedItemType": item.type,
        "relatedItemId": item.related_item_id,
        "caseId": case.case_id,
        "createdDateTime": iso(item.created),
    }
    if include_content:
        content = item.read_content(now)
        related[CONTENT_KEYS[item.type]] = content[CONTENT_KEYS[item.type]]
    detail: JSON = {
        "version": "0",
        "eventType": "RELATED_ITEM.CREATED",
        "approximateChangeTime": iso(item.created),
        "changedAttributes": [CHANGED_ATTRIBUTES[item.type]],
    }
    if performed_by:
        detail["performedBy"] = performed_by
    detail["relatedItem"] = related
    return detail


__all__ = ["NoFieldsAs", "case_detail", "enabled", "envelope", "performer", "related_item_detail"]
