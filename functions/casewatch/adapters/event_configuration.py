"""`CasesEventConfiguration`: the `EventConfigurationStore` port on Put/GetCaseEventConfiguration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

_NOT_FOUND = "ResourceNotFoundException"


class CasesEventConfiguration:
    """The boto3 `connectcases` client (the product's factory: adaptive retries), created on first use."""

    def __init__(self, client: ConnectCasesClient | None = None, *, max_attempts: int = 4) -> None:
        self._client = client
        self._max_attempts = max_attempts

    @property
    def client(self) -> ConnectCasesClient:
        if self._client is None:
            from casewatch.adapters.clients import cases_client

            self._client = cases_client(self._max_attempts)
        return self._client

    def put(self, domain_id: str, event_bridge: Mapping[str, Any]) -> None:
        self.client.put_case_event_configuration(domainId=domain_id, eventBridge=event_bridge)  # type: ignore[arg-type]

    def read(self, domain_id: str) -> dict[str, Any]:
        stored: dict[str, Any] = dict(
            self.client.get_case_event_configuration(domainId=domain_id)["eventBridge"]
        )
        return stored

    def turn_off(self, domain_id: str) -> bool:
        """Stop the domain's publishing; False if the domain does not exist (nothing publishes)."""
        try:
            self.client.put_case_event_configuration(domainId=domain_id, eventBridge={"enabled": False})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _NOT_FOUND:
                logger.info(
                    "case event publishing: domain not found, nothing to turn off", domain_id=domain_id
                )
                return False
            raise
        logger.info("case event publishing turned off", domain_id=domain_id)
        return True


__all__ = ["CasesEventConfiguration"]
