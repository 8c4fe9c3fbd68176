"""What `sam local invoke -t cdk.out/Casewatch.template.json <Function>` relies on (Docker is absent here).

SAM mounts each function's `aws:asset:path` (relative to the cloud assembly) as `/var/task`, the
layers' as `/opt` (the dependencies, and the settings file `/opt/casewatch/settings.json`), and
finds the function by its construct id (`SamResourceId` / `aws:cdk:path`). So: the paths exist and hold the right code, and the handler modules import *from the function
asset* and run on the sample events (AWS mocked by moto; the layer's aarch64 wheels cannot load
on this machine, so the dev virtualenv supplies the same locked versions).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from infra.constructs.dependencies import locked_requirements

from casewatch.constants import ENV_CASES_ENDPOINT, ENV_CONFIG_FILE
from casewatch.topology import (
    CASE_CHANGED,
    FUNCTIONS,
    RECONCILE,
    RELATED_ITEM_CREATED_FN,
    SLA_TIMER,
    FunctionSpec,
)
from casewatch_dev.emulator import CasesEmulator
from tests.builders import load_event
from tests.infra.synth import Synthesized, render

DRIVER = Path(__file__).with_name("invoke_asset.py")
PSEUDO = {"${AWS::Partition}": "aws", "${AWS::Region}": "us-east-1", "${AWS::AccountId}": "123456789012"}


def function(synth: Synthesized, spec: FunctionSpec) -> dict[str, Any]:
    return synth.by_path(f"Functions/{spec.construct_id}/Resource")[1]


def asset_dir(synth: Synthesized, resource: dict[str, Any]) -> Path:
    path = Path(resource["Metadata"]["aws:asset:path"])
    return path if path.is_absolute() else synth.outdir / path


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_sam_finds_each_function_and_its_code(synth: Synthesized, spec: FunctionSpec) -> None:
    resource = function(synth, spec)
    metadata = resource["Metadata"]
    assert metadata["SamResourceId"] == spec.construct_id  # `sam local invoke CaseChanged`
    assert metadata["aws:cdk:path"] == f"Casewatch/Functions/{spec.construct_id}/Resource"
    assert metadata["aws:asset:property"] == "Code"
    code = asset_dir(synth, resource)
    assert code.is_dir() and code.parent == synth.outdir
    assert (code / "casewatch" / "handlers" / f"{spec.module}.py").is_file()
    assert not (code / "casewatch" / "local").exists()  # dev-only code is not deployed
    assert not (code / "casewatch" / "__main__.py").exists()
    assert not list(code.rglob("__pycache__"))


def test_one_code_asset_for_all_functions(synth: Synthesized) -> None:
    assert len({function(synth, spec)["Metadata"]["aws:asset:path"] for spec in FUNCTIONS}) == 1


def test_the_layer_asset_holds_the_locked_dependencies_for_arm64(synth: Synthesized) -> None:
    layer = synth.by_path("Functions/Dependencies/Layer/Resource")[1]
    assert layer["Metadata"]["aws:asset:property"] == "Content"
    assert layer["Metadata"]["aws:asset:is-bundled"] is True  # SAM mounts it as is (no build)
    python = asset_dir(synth, layer) / "python"
    assert (python / "aws_lambda_powertools").is_dir()
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in python.glob("*.dist-info")}
    installed_versions = {
        "{}=={}".format(*re.match(r"(.+)-([^-]+)\.dist-info", p.name).groups()).lower().replace("_", "-")  # type: ignore[union-attr]
        for p in python.glob("*.dist-info")
    }
    assert installed_versions == {r.lower() for r in locked_requirements()}
    assert {"boto3", "botocore"} <= installed  # the locked SDK, not the runtime's (test_dependencies.py)
    (core,) = (python / "pydantic_core").glob("_pydantic_core.*.so")
    assert "cpython-313-aarch64-linux-gnu" in core.name


def test_the_handlers_run_from_the_function_asset(synth: Synthesized) -> None:
    resource = function(synth, CASE_CHANGED)
    code = asset_dir(synth, resource)
    env: dict[str, str] = {}
    for name, value in resource["Properties"]["Environment"]["Variables"].items():
        # Literal values as synthesized; references become local names (moto creates them).
        text = render(value)
        for token, local in PSEUDO.items():
            text = text.replace(token, local)
        env[name] = re.sub(r"\$\{([A-Za-z0-9]+)(\.Arn)?\}", r"\1", text)
    # SAM, like Lambda, extracts the layers into /opt: the settings file is the settings layer's.
    settings_layer = synth.by_path("Functions/Settings/Layer/Resource")[1]
    opt_file = PurePosixPath(env[ENV_CONFIG_FILE])
    settings_file = asset_dir(synth, settings_layer) / opt_file.relative_to("/opt")
    assert json.loads(settings_file.read_text())["domain_id"] == synth.settings.domain_id
    env[ENV_CONFIG_FILE] = str(settings_file)
    created = load_event("case-created")
    case_id = created["detail"]["case"]["caseId"]
    timer = {
        "kind": "breach",
        "domainId": synth.settings.domain_id,
        "caseId": case_id,
        "slaName": "resolve-within-8h",
        "slaKey": "policy#resolve-within-8h",
        "targetTime": "2026-11-23T17:00:00.412Z",
    }
    scheduled = {
        "version": "0",
        "id": "5f0c3e4a-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T18:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"],
        "detail": {},
    }
    request = {
        "asset": str(code),
        "env": env,
        "invocations": [
            {"module": CASE_CHANGED.module, "event": created},
            {"module": RELATED_ITEM_CREATED_FN.module, "event": load_event("related-item-comment")},
            {"module": SLA_TIMER.module, "event": timer},
            {"module": RECONCILE.module, "event": scheduled},
        ],
    }
    site_packages = sysconfig.get_paths()["purelib"]
    with CasesEmulator(seed=1) as emu:  # Cases, for GetCase and the change feed's searches
        emu.seed_domain(domain_id=synth.settings.domain_id)
        for name, field_id in synth.settings.field_names.items():
            emu.seed_field(synth.settings.domain_id, name, "SingleSelect", field_id=field_id)
        request["env"] = {**env, ENV_CASES_ENDPOINT: emu.url}
        process = run_driver(request, code, site_packages)
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, process.stderr[-3000:] + process.stdout[-2000:]
    report = json.loads(lines[-1].removeprefix("RESULT "))
    assert Path(report["casewatch"]).is_relative_to(code)  # imported from the asset, not the repo
    outcomes = {}
    for invocation in report["invocations"]:
        assert Path(invocation["file"]).is_relative_to(code)
        outcomes[invocation["module"]] = invocation["result"]
    assert outcomes[CASE_CHANGED.module]["outcome"] == "handled"
    assert outcomes[CASE_CHANGED.module]["caseId"] == case_id
    assert outcomes[CASE_CHANGED.module]["getcaseCalls"] == 0  # the event carries what is needed
    assert outcomes[RELATED_ITEM_CREATED_FN.module]["outcome"] == "handled"
    assert outcomes[SLA_TIMER.module]["outcome"] == "handled"
    reconciled = outcomes[RECONCILE.module]
    assert (reconciled["outcome"], reconciled["throttled"], reconciled["searchRequests"]) == (
        "handled",
        False,
        2,
    )


def run_driver(request: dict[str, Any], code: Path, site_packages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-S", str(DRIVER), json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(code), site_packages]),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
    )
