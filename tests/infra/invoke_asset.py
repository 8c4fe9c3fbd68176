"""Run the handlers *from a synthesized function asset*, as `sam local invoke` would (without Docker).

Usage: python -S invoke_asset.py REQUEST_JSON. `-S`: no site-packages processing, so `casewatch` can
only come from the asset directory on PYTHONPATH (the dev virtualenv's site-packages, also on
PYTHONPATH, supplies the third-party packages: the layer's wheels are aarch64). AWS is moto
(`mock_aws`), with the resources the stack would create, named as the environment says; Cases is the
emulator the caller runs (`CASEWATCH_CASES_ENDPOINT`). Prints one JSON line: where casewatch was imported
from and what each handler returned.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: its stdlib-only lambda_context
from lambda_context import LambdaContext


def create_resources(env: dict[str, str]) -> None:
    """What the stack creates, in moto, under the names the functions' environment gives."""
    import boto3

    from casewatch.constants import ENV_EVENT_BUS, ENV_SCHEDULE_GROUP, ENV_SLA_TABLE
    from casewatch.tables import STATE_TABLE

    boto3.client("dynamodb").create_table(**STATE_TABLE.create_table_args(env[ENV_SLA_TABLE]))
    boto3.client("events").create_event_bus(Name=env[ENV_EVENT_BUS])
    boto3.client("scheduler").create_schedule_group(Name=env[ENV_SCHEDULE_GROUP])


def main(request: dict[str, Any]) -> dict[str, Any]:
    from moto import mock_aws

    asset = Path(request["asset"]).resolve()
    results: list[dict[str, Any]] = []
    with mock_aws():
        import boto3

        env = dict(request["env"])
        # Resources whose names are only known once created (ARNs, URLs).
        env["CASEWATCH_TOPIC_ARN"] = boto3.client("sns").create_topic(Name="casewatch")["TopicArn"]
        env["CASEWATCH_DEAD_LETTER_QUEUE_URL"] = boto3.client("sqs").create_queue(QueueName="invalid")[
            "QueueUrl"
        ]
        env["CASEWATCH_SCHEDULER_ROLE_ARN"] = boto3.client("iam").create_role(
            RoleName="scheduler", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        os.environ.update(env)
        create_resources(env)
        for invocation in request["invocations"]:
            module = importlib.import_module(f"casewatch.handlers.{invocation['module']}")
            event = invocation["event"]
            result = module.handler(event, LambdaContext(invocation["module"]))
            results.append({"module": invocation["module"], "file": module.__file__, "result": result})
    import casewatch

    return {"casewatch": casewatch.__file__, "invocations": results, "asset": str(asset)}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1])), default=str))
