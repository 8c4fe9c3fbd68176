"""`CasesApiReader`: the `CasesReader` port over the Amazon Connect Cases GetCase API.

One request per page with every missing field (chunks of at most 220 ids, the API's limit: several
chunks only past 220 fields), `nextToken` followed to the end (boto3 has no paginator for
get_case). Retries are botocore's (adaptive mode, bounded by `getcase_max_attempts`); what is left
is translated: 404 -> `CaseNotFoundError` (final), 429 -> `CasesThrottledError`, 5xx and connection
errors -> `CasesUnavailableError` (both retryable). Other errors (400 unknown field id, 403 missing
permission) are configuration errors and propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from pydantic import ValidationError

from casewatch.errors import CaseNotFoundError, CasesThrottledError, CasesUnavailableError
from casewatch.models.fields import FieldValue
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

MAX_FIELDS_PER_REQUEST = 220
_THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})


def _chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


class CasesApiReader:
    """GetCase for enrichment.

    `calls` counts requests (pages, not botocore's retries); `throttled` counts 429 answers seen,
    retried or not (botocore's `needs-retry` hook sees every attempt).
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
        self._watching: set[int] = set()
        self.calls = 0
        self.throttled = 0

    @property
    def client(self) -> ConnectCasesClient:
        """The injected client, else the shared one (`casewatch.aws`), created on first use."""
        if self._client is None:
            from casewatch import aws

            self._client = aws.cases_client(self._max_attempts)
        if id(self._client) not in self._watching:
            # Every attempt passes `needs-retry`: count 429s there, including those botocore retried.
            self._client.meta.events.register(
                "needs-retry.connectcases.GetCase",
                self._on_attempt,
                unique_id=f"casewatch-getcase-{id(self)}",
            )
            self._watching.add(id(self._client))
        return self._client

    def _on_attempt(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return  # a connection error: no HTTP answer
        http, parsed = response
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if getattr(http, "status_code", None) == 429 or code in _THROTTLING_CODES:
            self.throttled += 1

    def get_case_fields(
        self, domain_id: str, case_id: str, field_ids: Sequence[str]
    ) -> tuple[str | None, dict[str, FieldValue]]:
        ids = list(dict.fromkeys(field_ids))
        template_id: str | None = None
        values: dict[str, FieldValue] = {}
        if not ids:
            return template_id, values
        client = self.client
        for chunk in _chunks(ids, self._chunk_size):
            token: str | None = None
            while True:
                self.calls += 1
                try:
                    if token is None:
                        page = client.get_case(
                            domainId=domain_id, caseId=case_id, fields=[{"id": f} for f in chunk]
                        )
                    else:
                        page = client.get_case(
                            domainId=domain_id,
                            caseId=case_id,
                            fields=[{"id": f} for f in chunk],
                            nextToken=token,
                        )
                except ClientError as exc:
                    translated = _translate(exc, domain_id, case_id)
                    if translated is None:
                        raise
                    raise translated from exc
                except (BotocoreConnectionError, HTTPClientError) as exc:
                    raise CasesUnavailableError(
                        f"GetCase: Cases unreachable for case {case_id} ({type(exc).__name__})"
                    ) from exc
                template_id = page.get("templateId") or template_id
                for entry in page.get("fields", []):
                    value = _value(entry.get("id"), entry.get("value"))
                    if value is not None:
                        values[entry["id"]] = value
                token = page.get("nextToken") or None
                if token is None:
                    break
        return template_id, values


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


def _translate(exc: ClientError, domain_id: str, case_id: str) -> Exception | None:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _NOT_FOUND_CODES or status == 404:
        return CaseNotFoundError(f"GetCase: case {case_id} not found in domain {domain_id}")
    if code in _THROTTLING_CODES or status == 429:
        return CasesThrottledError(f"GetCase throttled for case {case_id} after the retry budget")
    if status >= 500 or code in {"InternalServerException", "ServiceUnavailableException"}:
        return CasesUnavailableError(f"GetCase failed for case {case_id}: {code or status}")
    return None


__all__ = ["MAX_FIELDS_PER_REQUEST", "CasesApiReader"]
