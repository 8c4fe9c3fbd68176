"""The outputs `casewatch doctor` reads from a deployed stack (doctor itself: tests/integration/test_doctor.py)."""

from __future__ import annotations

from typing import Any

import pytest

from casewatch_dev.doctor import DOMAIN_OUTPUT, required_outputs

pytestmark = pytest.mark.infra


def test_every_output_doctor_requires_is_there(synth: Any) -> None:
    assert required_outputs() <= set(synth.template["Outputs"])


def test_the_domain_id_is_an_output_as_deployed(synth: Any) -> None:
    # The settings' value, not a reference: `make deploy DOMAIN_ID=...` overrides cdk.json, and doctor
    # checks the event configuration of the domain the stack was deployed for.
    assert synth.template["Outputs"][DOMAIN_OUTPUT]["Value"] == synth.settings.domain_id
