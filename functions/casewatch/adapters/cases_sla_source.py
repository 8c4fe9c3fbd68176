"""`CasesApiSlaSource`: what Cases says about a case's related items (SearchRelatedItems).

Reconciliation reads the truth of Cases SLAs (status, completionTime) with the `sla` filter, and the
first related item of a type for policies completed by one (e.g. the first comment); the SLA tracker
reads an SLA's definition when its event came without content. Every page is followed.
SearchRelatedItems is limited to 2 requests/s per account: callers keep to a budget.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from casewatch.domain.sla_observations import CasesSlaReport, sla_report
from casewatch.errors import CaseNotFoundError, CasesThrottledError, CasesUnavailableError
from casewatch.models.base import as_utc
from casewatch.models.events import SlaConfiguration
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

PAGE_SIZE: Final = 25
_CONTENT_KEYS: Final = {
    "Contact": "contact",
    "Comment": "comment",
    "File": "file",
    "Sla": "sla",
    "ConnectCase": "connectCase",
    "Custom": "custom",
}


class CasesApiSlaSource:
    """`CasesSlaSource` with the boto3 `connectcases` client."""

    def __init__(self, client: ConnectCasesClient) -> None:
        self._client = client

    def _search(self, domain_id: str, case_id: str, filter_key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "domainId": domain_id,
            "caseId": case_id,
            "filters": [{filter_key: {}}],
            "maxResults": PAGE_SIZE,
        }
        while True:
            try:
                page = self._client.search_related_items(**kwargs)
            except ClientError as exc:
                raise _translate(exc, case_id) from exc
            except BotoCoreError as exc:
                raise CasesUnavailableError(f"SearchRelatedItems failed for case {case_id}") from exc
            items += [dict(i) for i in page.get("relatedItems", [])]
            token = page.get("nextToken")
            if not token:
                return items
            kwargs["nextToken"] = token

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        reports: list[CasesSlaReport] = []
        for item in self._search(domain_id, case_id, "sla"):
            raw = (item.get("content") or {}).get("sla", {}).get("slaConfiguration")
            created = item.get("associationTime")
            if not raw or not isinstance(created, datetime):
                continue
            try:
                config = SlaConfiguration.model_validate(_jsonable(raw))
            except ValidationError:
                logger.warning(
                    "unreadable Cases SLA item skipped",
                    case_id=case_id,
                    related_item_id=item.get("relatedItemId"),
                )
                continue
            report = sla_report(str(item["relatedItemId"]), as_utc(created), config)
            if report is not None:
                reports.append(report)
        return reports

    def related_items(self, domain_id: str, case_id: str, item_type: str) -> list[tuple[str, datetime]]:
        key = _CONTENT_KEYS.get(item_type)
        if key is None:
            return []
        return sorted(
            (str(item["relatedItemId"]), as_utc(item["associationTime"]))
            for item in self._search(domain_id, case_id, key)
            if isinstance(item.get("associationTime"), datetime)
        )


def _jsonable(value: Any) -> Any:
    """boto3 answers datetimes as `datetime`: the wire model reads them either way, ISO to be safe."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def _translate(exc: ClientError, case_id: str) -> Exception:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code == "ResourceNotFoundException":
        return CaseNotFoundError(f"case {case_id} not found")
    if code in ("ThrottlingException", "TooManyRequestsException"):
        return CasesThrottledError(f"SearchRelatedItems throttled for case {case_id}")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if status >= 500:
        return CasesUnavailableError(f"SearchRelatedItems failed for case {case_id} ({code})")
    return exc


__all__ = ["CasesApiSlaSource"]
