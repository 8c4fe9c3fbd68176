"""The dependencies layer carries the AWS SDK casewatch was tested with (issue 12, BS3).

The Lambda runtime's boto3/botocore is older than uv.lock's and changes without notice; casewatch
needs botocore >= 1.44.5 (`autoIncludeFields` of PutCaseEventConfiguration, SearchAllRelatedItems).
So the layer pins boto3, botocore and their dependencies at uv.lock's versions, and the layer (on
`/opt/python`, ahead of the runtime's copy on `sys.path`) is what the functions import.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from infra.constructs.dependencies import locked_requirements
from packaging.version import Version

from tests.builders import ROOT
from tests.infra.synth import Synthesized

SDK = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")


def lock_versions() -> dict[str, str]:
    """Every package of uv.lock by name (read here, independently of the layer's own resolver)."""
    lock: dict[str, Any] = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def layer_python(synth: Synthesized) -> Path:
    _, layer = synth.by_path("Functions/Dependencies/Layer/Resource")
    return synth.outdir / layer["Metadata"]["aws:asset:path"] / "python"


def installed(python: Path) -> dict[str, str]:
    found = {}
    for dist_info in python.glob("*.dist-info"):
        match = re.match(r"(.+)-([^-]+)\.dist-info$", dist_info.name)
        assert match, dist_info.name
        found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


@pytest.mark.parametrize("name", SDK)
def test_the_layer_requirements_pin_the_sdk_at_the_locked_version(name: str) -> None:
    assert f"{name}=={lock_versions()[name]}" in locked_requirements()


def test_the_layer_holds_the_locked_sdk(synth: Synthesized) -> None:
    versions = lock_versions()
    in_layer = installed(layer_python(synth))
    assert {name: in_layer.get(name) for name in SDK} == {name: versions[name] for name in SDK}
    assert Version(in_layer["botocore"]) >= Version("1.44.5")


def test_the_layer_sdk_knows_auto_include_fields(synth: Synthesized) -> None:
    """What the event configuration relies on: botocore's connectcases model in the layer has it."""
    (model,) = (layer_python(synth) / "botocore" / "data" / "connectcases").glob("*/service-2.json*")
    if model.suffix == ".gz":
        import gzip

        text = gzip.decompress(model.read_bytes()).decode()
    else:
        text = model.read_text()
    shapes = json.loads(text)["shapes"]
    assert "autoIncludeFields" in shapes["CaseEventIncludedData"]["members"]
    assert "SearchAllRelatedItems" in json.loads(text)["operations"]
