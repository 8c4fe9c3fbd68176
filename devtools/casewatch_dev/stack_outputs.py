"""A deployed stack's outputs: from CloudFormation (`DescribeStacks`), or from the file `make deploy`
writes (`cdk.out/outputs.json`, `{stack: {output: value}}`). The commands that talk to a deployed stack
(`casewatch replay --archive`, `casewatch doctor`) find its resources here, never by name patterns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casewatch_dev.event_files import UsageError

DEFAULT_STACK = "Casewatch"
DEFAULT_OUTPUTS_FILE = "cdk.out/outputs.json"


def cloudformation_client() -> Any:
    """CloudFormation with the product's client settings (timeouts, standard retries)."""
    import boto3

    from casewatch.adapters.clients import client_config

    return boto3.session.Session().client("cloudformation", config=client_config())


def stack_outputs(
    stack: str, *, outputs_file: str | None = None, cloudformation: Any = None
) -> dict[str, str]:
    """The outputs of `stack`: from `outputs_file` when given, else from CloudFormation."""
    if outputs_file is not None:
        path = Path(outputs_file)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{outputs_file}: not found (make deploy writes it)") from None
        except ValueError:
            raise UsageError(f"{outputs_file}: not valid JSON") from None
        outputs = document.get(stack) if isinstance(document, dict) else None
        if not isinstance(outputs, dict):
            raise UsageError(f"{outputs_file}: no outputs of stack {stack!r}")
        return {str(k): str(v) for k, v in outputs.items()}
    client = cloudformation or cloudformation_client()
    from botocore.exceptions import ClientError

    try:
        stacks = client.describe_stacks(StackName=stack).get("Stacks", [])
    except ClientError as exc:
        raise UsageError(f"stack {stack!r}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    if not stacks:
        raise UsageError(f"stack {stack!r} not found")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def required(outputs: dict[str, str], key: str, stack: str) -> str:
    value = outputs.get(key, "").strip()
    if not value:
        raise UsageError(f"stack {stack!r} has no output {key}: deploy this version of casewatch first")
    return value


__all__ = ["DEFAULT_OUTPUTS_FILE", "DEFAULT_STACK", "cloudformation_client", "required", "stack_outputs"]
