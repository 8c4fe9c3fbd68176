"""The `Custom::CaseEventConfiguration` resource: case event publishing on (and off) for the domain.

Called through CDK's Provider framework at deploy time (a raised exception is a FAILED response with its
message). `apply` puts a configuration and **reads it back**: an SDK that silently drops a member it does
not know (`autoIncludeFields` before botocore 1.44.5), or a Cases that stores something else, fails the
deployment instead of leaving the domain publishing what nobody asked for. The physical id is the domain
id, so `PhysicalResourceId` always names the domain the resource configures:

- Create: apply the configuration. If Cases did not store it, turn publishing off again (no Delete
  follows a failed Create) and fail.
- Update: apply the new configuration; if the domain changed, turn the old domain's publishing off in
  the same update (the new domain first: a failure leaves the old one as it was for the rollback), and
  return the new physical id. CloudFormation's later cleanup Delete of the old id turns it off again,
  harmlessly.
- Delete: turn publishing off; a domain that no longer exists publishes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casewatch.domain.event_configuration import differences, request_of
from casewatch.errors import EventConfigurationMismatchError, InvalidResourcePropertiesError
from casewatch.observability import logger
from casewatch.ports import EventConfigurationStore


def apply(store: EventConfigurationStore, request: Mapping[str, Any]) -> None:
    """Put the configuration, read it back, raise `EventConfigurationMismatchError` if it differs."""
    domain_id = request["domainId"]
    store.put(domain_id, request["eventBridge"])
    found = differences(request["eventBridge"], store.read(domain_id))
    if found:
        raise EventConfigurationMismatchError(
            f"Cases did not store the event configuration of domain {domain_id} as asked: "
            f"{'; '.join(found)}. An SDK older than the request drops members it does not know "
            "(autoIncludeFields needs botocore >= 1.44.5)."
        )
    logger.info("case event configuration stored", domain_id=domain_id)


def on_event(event: Mapping[str, Any], store: EventConfigurationStore) -> dict[str, Any]:
    """The custom resource's answer to a CloudFormation request (raises: FAILED)."""
    kind = event["RequestType"]
    if kind == "Delete":
        # The physical id is the domain id this resource configured (also for the previous release's).
        store.turn_off(event["PhysicalResourceId"])
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    request = request_of(event["ResourceProperties"])
    domain_id = request["domainId"]
    if kind == "Create":
        try:
            apply(store, request)
        except EventConfigurationMismatchError:
            store.turn_off(domain_id)  # CloudFormation sends no Delete after a failed Create
            raise
    elif kind == "Update":
        apply(store, request)
        previous = event["PhysicalResourceId"]
        if previous != domain_id:
            store.turn_off(previous)
    else:
        raise InvalidResourcePropertiesError(f"unknown request type {kind!r}")
    return {"PhysicalResourceId": domain_id, "Data": {"DomainId": domain_id}}


__all__ = ["apply", "on_event"]
