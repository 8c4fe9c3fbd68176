"""The event configuration custom resource against the Cases emulator, through the real boto3 client.

The handler builds its client with the product's `cases_client` (adaptive retries), pointed at the
emulator by `CASEWATCH_CASES_ENDPOINT`, and the request is the one the stack deploys
(`event_configuration(settings)`), so this is the deploy-time call end to end, minus AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from casewatch.adapters.clients import reset_clients
from casewatch.constants import ENV_CASES_ENDPOINT
from casewatch.domain.event_configuration import CONFIGURATION_PROPERTY, event_configuration
from casewatch.handlers.event_configuration import handler
from casewatch.settings import load_cdk_context
from casewatch_dev.emulator import CasesEmulator
from tests.builders import ROOT
from tests.lambda_context import LambdaContext

SETTINGS = load_cdk_context(ROOT / "cdk.json")
OTHER_DOMAIN = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"


@pytest.fixture
def emulator(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[CasesEmulator]:
    with CasesEmulator() as emu:
        for domain_id in (SETTINGS.domain_id, OTHER_DOMAIN):
            emu.seed_domain(domain_id=domain_id)
            for name, field_id in SETTINGS.field_names.items():
                emu.seed_field(domain_id, name, "SingleSelect", field_id=field_id)
        monkeypatch.setenv(ENV_CASES_ENDPOINT, emu.url)
        reset_clients()
        yield emu
    reset_clients()


def event(kind: str, domain_id: str, physical_id: str | None = None) -> dict[str, Any]:
    settings = SETTINGS.model_copy(update={"domain_id": domain_id, "auto_include_fields": "Custom"})
    found: dict[str, Any] = {
        "RequestType": kind,
        "RequestId": "r-1",
        "ResourceProperties": {
            "ServiceToken": "arn",
            CONFIGURATION_PROPERTY: json.dumps(event_configuration(settings)),
        },
    }
    if physical_id:
        found["PhysicalResourceId"] = physical_id
    return found


def stored(emu: CasesEmulator, domain_id: str) -> dict[str, Any]:
    bridge: dict[str, Any] = emu.client().get_case_event_configuration(domainId=domain_id)["eventBridge"]
    return bridge


def test_create_update_to_another_domain_and_delete(emulator: CasesEmulator) -> None:
    ours = SETTINGS.domain_id
    assert handler(event("Create", ours), LambdaContext())["PhysicalResourceId"] == ours  # type: ignore[arg-type]
    bridge = stored(emulator, ours)
    assert bridge["enabled"] is True
    assert bridge["includedData"]["caseData"]["autoIncludeFields"] == "Custom"  # the locked SDK sends it
    assert {f["id"] for f in bridge["includedData"]["caseData"]["fields"]} == {
        SETTINGS.field_id(ref) for ref in SETTINGS.event_fields
    }

    moved = handler(event("Update", OTHER_DOMAIN, physical_id=ours), LambdaContext())  # type: ignore[arg-type]
    assert moved["PhysicalResourceId"] == OTHER_DOMAIN
    assert stored(emulator, OTHER_DOMAIN)["enabled"] is True
    assert stored(emulator, ours)["enabled"] is False

    handler(event("Delete", OTHER_DOMAIN, physical_id=OTHER_DOMAIN), LambdaContext())  # type: ignore[arg-type]
    assert stored(emulator, OTHER_DOMAIN)["enabled"] is False
    assert emulator.calls["PutCaseEventConfiguration"] == 4  # on, on, off (old domain), off
    assert emulator.calls["GetCaseEventConfiguration"] == 2 + 4  # the read-backs, and this test's reads


def test_deleting_the_configuration_of_a_deleted_domain_succeeds(emulator: CasesEmulator) -> None:
    emulator.client().delete_domain(domainId=OTHER_DOMAIN)
    response = handler(event("Delete", OTHER_DOMAIN, physical_id=OTHER_DOMAIN), LambdaContext())  # type: ignore[arg-type]
    assert response == {"PhysicalResourceId": OTHER_DOMAIN}
