"""`CasesApi`: the `CasesReader` (GetCase), `CasesSlaSource` (SearchRelatedItems) and `CasesSearch`
(SearchCases, SearchAllRelatedItems) ports over the Amazon Connect Cases API, with one translation of
its errors. Every search follows boto3's paginator at the largest page the API allows and skips the
`None` entries of its sparse lists.

GetCase: one request per page with every missing field (chunks of at most 220 ids, the API's limit),
`nextToken` followed to the end (boto3 has no paginator for get_case). SearchRelatedItems: boto3's
paginator, every page; its `relatedItems` list is sparse (botocore keeps `None` entries): skipped.
Retries are botocore's (adaptive mode, bounded by `getcase_max_attempts`); what is left is translated:
404 -> `CaseNotFoundError` (final), 429 -> `CasesThrottledError`, 5xx and connection errors ->
`CasesUnavailableError` (both retryable), any other refusal (400 unknown field id, 403 missing
permission) -> `CasesRequestError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from casewatch.domain.sla.observations import CasesSlaReport, sla_report
from casewatch.domain.values import cases_iso
from casewatch.errors import (
    CaseNotFoundError,
    CasesError,
    CasesRequestError,
    CasesThrottledError,
    CasesUnavailableError,
)
from casewatch.models.base import as_utc
from casewatch.models.fields import FieldValue
from casewatch.models.related_items import RelatedItemType, SlaConfiguration
from casewatch.observability import logger
from casewatch.ports import CaseFields, ChangedCase, Found, FoundItem

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

MAX_FIELDS_PER_REQUEST: Final = 220
SEARCH_PAGE_SIZE: Final = 25  # SearchRelatedItems' and SearchAllRelatedItems' largest page
SEARCH_CASES_PAGE: Final = 25  # SearchCases' largest page ("the current maximum supported value is 25")
LAST_UPDATED: Final = "last_updated_datetime"
_THROTTLING_CODES: Final = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
_UNAVAILABLE_CODES: Final = frozenset({"InternalServerException", "ServiceUnavailableException"})


def translate(exc: ClientError | BotoCoreError, operation: str, case_id: str, **counts: int) -> CasesError:
    """The casewatch error for what Cases (or the connection to it) answered to `operation`."""
    if not isinstance(exc, ClientError):
        return CasesUnavailableError(
            f"{operation}: Cases unreachable for case {case_id} ({type(exc).__name__})"
        )
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "ResourceNotFoundException" or status == 404:
        return CaseNotFoundError(f"{operation}: case {case_id} not found")
    if code in _THROTTLING_CODES or status == 429:
        return CasesThrottledError(
            f"{operation} throttled for case {case_id} after the retry budget", **counts
        )
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return CasesUnavailableError(f"{operation} failed for case {case_id}: {code or status}")
    return CasesRequestError(f"{operation} refused for case {case_id}: {code or status}", code=code)


class CasesApi:
    """GetCase and SearchRelatedItems on the boto3 `connectcases` client (created on first use).

    GetCase's 429s are counted on every attempt (botocore's `needs-retry` hook sees them all), so a
    throttled account shows in `CaseFields.throttled` even when a retry succeeded.
    """

    def __init__(
        self,
        client: ConnectCasesClient | None = None,
        *,
        max_attempts: int = 4,
        chunk_size: int = MAX_FIELDS_PER_REQUEST,
    ) -> None:
        if not 1 <= chunk_size <= MAX_FIELDS_PER_REQUEST:
            raise ValueError(f"chunk_size must be between 1 and {MAX_FIELDS_PER_REQUEST}")
        self._client = client
        self._max_attempts = max_attempts
        self._chunk_size = chunk_size
        self._throttled = 0
        if client is not None:
            self._watch(client)

    @property
    def client(self) -> ConnectCasesClient:
        if self._client is None:
            from casewatch.adapters import clients

            self._client = clients.cases_client(self._max_attempts)
            self._watch(self._client)
        return self._client

    def _watch(self, client: ConnectCasesClient) -> None:
        client.meta.events.register(
            "needs-retry.connectcases.GetCase", self._on_attempt, unique_id=f"casewatch-getcase-{id(self)}"
        )

    def _on_attempt(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return  # a connection error: no HTTP answer
        http, parsed = response
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if getattr(http, "status_code", None) == 429 or code in _THROTTLING_CODES:
            self._throttled += 1

    # -- GetCase ---------------------------------------------------------------------------------
    def get_case_fields(self, domain_id: str, case_id: str, field_ids: Sequence[str]) -> CaseFields:
        ids = list(dict.fromkeys(field_ids))
        if not ids:
            return CaseFields(None, {}, requests=0)
        client = self.client
        template_id: str | None = None
        values: dict[str, FieldValue] = {}
        requests = 0
        throttled_before = self._throttled
        for chunk in (ids[i : i + self._chunk_size] for i in range(0, len(ids), self._chunk_size)):
            request: dict[str, Any] = {
                "domainId": domain_id,
                "caseId": case_id,
                "fields": [{"id": f} for f in chunk],
            }
            while True:
                requests += 1
                try:
                    page = client.get_case(**request)
                except (ClientError, BotoCoreError) as exc:
                    raise translate(
                        exc,
                        "GetCase",
                        case_id,
                        requests=requests,
                        throttled=self._throttled - throttled_before,
                    ) from exc
                template_id = page.get("templateId") or template_id
                for entry in page.get("fields", []):
                    value = _value(entry.get("id"), entry.get("value"))
                    if value is not None:
                        values[entry["id"]] = value
                token = page.get("nextToken")
                if not token:
                    break
                request["nextToken"] = token
        return CaseFields(
            template_id, values, requests=requests, throttled=self._throttled - throttled_before
        )

    # -- SearchRelatedItems ------------------------------------------------------------------------
    def _search(self, domain_id: str, case_id: str, item_type: RelatedItemType) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("search_related_items").paginate(
            domainId=domain_id,
            caseId=case_id,
            filters=[{item_type.content_key: {}}],  # type: ignore[misc]
            PaginationConfig={"PageSize": SEARCH_PAGE_SIZE},
        )
        try:
            for page in pages:
                for item in page.get("relatedItems", []):
                    if item is not None:  # a sparse list
                        yield dict(item)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SearchRelatedItems", case_id) from exc

    def case_slas(self, domain_id: str, case_id: str) -> list[CasesSlaReport]:
        reports: list[CasesSlaReport] = []
        for item in self._search(domain_id, case_id, RelatedItemType.SLA):
            raw = (item.get("content") or {}).get("sla", {}).get("slaConfiguration")
            created = item.get("associationTime")
            if not raw or not isinstance(created, datetime):
                continue
            try:
                config = SlaConfiguration.model_validate(raw)
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

    # -- SearchCases, SearchAllRelatedItems: the change feed ---------------------------------------------
    def changed_cases(self, domain_id: str, since: datetime, field_ids: Sequence[str]) -> Found[ChangedCase]:
        pages = self.client.get_paginator("search_cases").paginate(
            domainId=domain_id,
            fields=[{"id": f} for f in field_ids[:25]],
            filter={
                "field": {"greaterThan": {"id": LAST_UPDATED, "value": {"stringValue": cases_iso(since)}}}
            },
            sorts=[{"fieldId": LAST_UPDATED, "sortOrder": "Asc"}],
            PaginationConfig={"PageSize": SEARCH_CASES_PAGE},
        )
        found: list[ChangedCase] = []
        requests = 0
        try:
            for page in pages:
                requests += 1
                for case in page.get("cases", []):
                    if case is None:  # a sparse list
                        continue
                    values = {
                        str(entry["id"]): value
                        for entry in case.get("fields", [])
                        if (value := _value(entry.get("id"), entry.get("value"))) is not None
                    }
                    found.append(ChangedCase(str(case["caseId"]), values))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SearchCases", "*") from exc
        return Found(found, requests)

    def associated_items(
        self, domain_id: str, since: datetime, item_types: Sequence[str]
    ) -> Found[FoundItem]:
        kinds = [RelatedItemType.parse(t) for t in item_types]
        pages = self.client.get_paginator("search_all_related_items").paginate(
            domainId=domain_id,
            filters=[{kind.content_key: {}} for kind in kinds],  # type: ignore[misc]
            sorts=[{"sortProperty": "AssociationTime", "sortOrder": "Desc"}],
            PaginationConfig={"PageSize": SEARCH_PAGE_SIZE},
        )
        found: list[FoundItem] = []
        requests = 0
        try:
            for page in pages:
                requests += 1
                older = False
                for item in page.get("relatedItems", []):
                    if item is None:  # a sparse list
                        continue
                    at = item.get("associationTime")
                    if not isinstance(at, datetime):
                        continue
                    if as_utc(at) <= since:
                        older = True  # newest first: the rest is older still
                        break
                    found.append(self._found(dict(item), as_utc(at)))
                if older:
                    break
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SearchAllRelatedItems", "*") from exc
        return Found(found, requests)

    def _found(self, item: dict[str, Any], at: datetime) -> FoundItem:
        kind = str(item.get("type", ""))
        report = None
        raw = (item.get("content") or {}).get("sla", {}).get("slaConfiguration")
        if raw:
            try:
                report = sla_report(str(item["relatedItemId"]), at, SlaConfiguration.model_validate(raw))
            except ValidationError:
                logger.warning("unreadable Cases SLA item skipped", related_item_id=item.get("relatedItemId"))
        return FoundItem(str(item["caseId"]), str(item["relatedItemId"]), kind, at, report)


def _value(field_id: str | None, raw: Any) -> FieldValue | None:
    """The value GetCase returned; None for an empty one (absent and `emptyValue` alike)."""
    if not field_id or not isinstance(raw, dict) or not raw:
        return None
    try:
        value = FieldValue.model_validate(raw)
    except ValidationError:
        logger.warning("GetCase returned a value casewatch cannot read: treated as empty", field_id=field_id)
        return None
    return None if value.empty_value is not None else value


__all__ = ["MAX_FIELDS_PER_REQUEST", "CasesApi", "translate"]
