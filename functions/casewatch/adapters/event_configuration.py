"""What a Cases domain publishes to EventBridge: Put/GetCaseEventConfiguration, and the custom resource.

`CasesEventConfiguration` is the port over boto3's `connectcases` client (the repo's factory,
`casewatch.aws.cases_client`: adaptive retries). `apply` puts a configuration and **reads it
back**: an SDK that silently drops a member it does not know (`autoIncludeFields` before botocore
1.44.5), or a Cases that stores something else, fails the deployment instead of leaving the domain
publishing what nobody asked for. Compared: `enabled`, the field ids as a set, `autoIncludeFields`,
`includeContent`.

`on_event` is the CloudFormation custom resource (`Custom::CaseEventConfiguration`, called through
CDK's Provider framework: a raised exception is a FAILED response with its message). Its physical
id is the domain id, so `PhysicalResourceId` always names the domain the resource configures:

- Create: apply the configuration. If Cases did not store it, turn publishing off again (no Delete
  follows a failed Create) and fail.
- Update: apply the new configuration; if the domain changed, turn the old domain's publishing off
  in the same update (the new domain first: a failure leaves the old one as it was for the
  rollback), and return the new physical id. CloudFormation's later cleanup Delete of the old id
  turns it off again, harmlessly.
- Delete: turn publishing off; a domain that no longer exists publishes nothing (ResourceNotFound
  is fine).

The properties carry the request as JSON (`Configuration`): CloudFormation passes scalar property
values as strings, JSON keeps the booleans booleans. The previous release's AwsCustomResource
properties (`Create`/`Update`/`Delete`: SDK calls as JSON) are read too: the rollback of an upgrade
sends them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from casewatch.errors import CasewatchError
from casewatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

CONFIGURATION_PROPERTY = "Configuration"
_NOT_FOUND = "ResourceNotFoundException"


class EventConfigurationMismatchError(CasewatchError):
    """Cases did not store the event configuration that was put (e.g. an SDK dropped a member)."""


class InvalidResourcePropertiesError(CasewatchError):
    """The custom resource's properties hold no PutCaseEventConfiguration request."""


class EventConfigurationPort(Protocol):
    def apply(self, request: Mapping[str, Any]) -> None: ...

    def turn_off(self, domain_id: str) -> bool: ...


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


class CasesEventConfiguration:
    """Put/GetCaseEventConfiguration with read-back verification."""

    def __init__(self, client: ConnectCasesClient | None = None, *, max_attempts: int = 4) -> None:
        self._client = client
        self._max_attempts = max_attempts

    @property
    def client(self) -> ConnectCasesClient:
        if self._client is None:
            from casewatch import aws

            self._client = aws.cases_client(self._max_attempts)
        return self._client

    def read(self, domain_id: str) -> dict[str, Any]:
        stored: dict[str, Any] = dict(
            self.client.get_case_event_configuration(domainId=domain_id)["eventBridge"]
        )
        return stored

    def apply(self, request: Mapping[str, Any]) -> None:
        """Put the configuration, read it back, raise EventConfigurationMismatchError if it differs."""
        domain_id = request["domainId"]
        self.client.put_case_event_configuration(domainId=domain_id, eventBridge=request["eventBridge"])
        found = differences(request["eventBridge"], self.read(domain_id))
        if found:
            raise EventConfigurationMismatchError(
                f"Cases did not store the event configuration of domain {domain_id} as asked: "
                f"{'; '.join(found)}. An SDK older than the request drops members it does not know "
                "(autoIncludeFields needs botocore >= 1.44.5)."
            )
        logger.info("case event configuration stored", domain_id=domain_id)

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


def on_event(event: Mapping[str, Any], configuration: EventConfigurationPort) -> dict[str, Any]:
    """The custom resource's answer to a CloudFormation request (raises: FAILED)."""
    kind = event["RequestType"]
    if kind == "Delete":
        # The physical id is the domain id this resource configured (also for the previous release's).
        configuration.turn_off(event["PhysicalResourceId"])
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    request = request_of(event["ResourceProperties"])
    domain_id = request["domainId"]
    if kind == "Create":
        try:
            configuration.apply(request)
        except EventConfigurationMismatchError:
            configuration.turn_off(domain_id)  # CloudFormation sends no Delete after a failed Create
            raise
    elif kind == "Update":
        configuration.apply(request)
        previous = event["PhysicalResourceId"]
        if previous != domain_id:
            configuration.turn_off(previous)
    else:
        raise InvalidResourcePropertiesError(f"unknown request type {kind!r}")
    return {"PhysicalResourceId": domain_id, "Data": {"DomainId": domain_id}}
