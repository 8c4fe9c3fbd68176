"""Synthesizing the stack, and template helpers (the `synth` fixture is in tests/infra/conftest.py).

The stack is synthesized from the repository's cdk.json context into a temporary directory (never
cdk.out), with asset and path metadata on, as `cdk synth` does, and with cdk-nag attached as the
app attaches it. Synthesis errors (cdk-nag findings) are kept for the tests to report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from infra.app import build_app
from infra.context import settings_from_context
from infra.stack import STACK_NAME, CasewatchStack

from casewatch.settings import Settings
from tests.builders import ROOT

SYNTH_CONTEXT = {
    "aws:cdk:enable-asset-metadata": True,  # `cdk synth` sets these; a bare App does not
    "aws:cdk:enable-path-metadata": True,
}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass
class Synthesized:
    outdir: Path
    template: dict[str, Any]
    settings: Settings
    error: str | None  # what app.synth() raised (cdk-nag findings fail synthesis)
    stack: CasewatchStack  # the constructs, for what the template cannot show (e.g. size bounds)

    @property
    def assertions(self) -> Template:
        return Template.from_json(self.template)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def by_path(self, path: str) -> tuple[str, dict[str, Any]]:
        """(logical id, resource) of the resource at a construct path under the stack."""
        full = f"{STACK_NAME}/{path}"
        found = [
            (k, r) for k, r in self.resources.items() if r.get("Metadata", {}).get("aws:cdk:path") == full
        ]
        assert len(found) == 1, f"no single resource at {full}"
        return found[0]

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def synthesize(outdir: Path, overrides: dict[str, Any] | None = None) -> Synthesized:
    context = {**cdk_json_context(), **SYNTH_CONTEXT, **(overrides or {})}
    app, stack = build_app(context, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii re-raises the validation failure as RuntimeError
        error = str(exc)
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synthesized(outdir, template, settings_from_context(context), error, stack)


def render(value: Any) -> str:
    """A CloudFormation value as one string: `arn:${AWS::Partition}:...`, `${Logical.Arn}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return "${" + arg + "}"
        if fn == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(render(part) for part in parts)
    raise AssertionError(f"cannot render {value!r}")


def domain_arn(domain_id: str) -> str:
    return f"arn:${{AWS::Partition}}:cases:${{AWS::Region}}:${{AWS::AccountId}}:domain/{domain_id}"
