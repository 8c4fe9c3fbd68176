"""`casewatch doctor`: is a deployed stack healthy? Checked from its outputs, with your AWS credentials.

Five checks (`casewatch_dev.doctor_checks`): the Cases event configuration equals the settings', the
routing rules are enabled and target their functions, the dead-letter queues are empty, the alarm
topic has a confirmed subscription, no function failed recently. Exit 0 when healthy (warnings
allowed), 1 with one line per problem (`casewatch doctor: <check>: <problem>`), 2 on usage errors
(no such stack or outputs file, an output missing, invalid settings). The README (Deploy: Check the
deployment) says what each check means and what to do.

The stack's resources come from its outputs (CloudFormation, or `--outputs cdk.out/outputs.json`); the
settings from `--config` (cdk.json), with the stack's `DomainId` output as the domain, so a deploy with
`DOMAIN_ID=...` is checked against the domain it was deployed for.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, TextIO

from casewatch.errors import SettingsError
from casewatch.settings import Settings, load_cdk_context
from casewatch.topology import EVENT_ROUTED, FUNCTIONS
from casewatch_dev.capture import parse_since
from casewatch_dev.doctor_checks import (
    DEAD_LETTER_QUEUES,
    CheckResult,
    Deployment,
    aws_error,
    check_alarm_topic,
    check_event_configuration,
    check_queues,
    check_recent_errors,
    check_rules,
)
from casewatch_dev.event_files import UsageError
from casewatch_dev.stack_outputs import DEFAULT_STACK, required, stack_outputs

DOMAIN_OUTPUT = "DomainId"
ALARM_TOPIC_OUTPUT = "AlarmTopicArn"
NO_CREDENTIALS = "no AWS credentials: configure them for the stack's account (aws configure, AWS_PROFILE)"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check a deployed stack: event configuration, rules, queues, alarm topic, recent errors",
        description="Check a deployed casewatch stack from its outputs: the Cases event configuration "
        "equals the settings, the rules are enabled and target the functions, the dead-letter queues "
        "are empty, the alarm topic has a confirmed subscription, no function failed recently. Exit 0 "
        "when healthy, 1 with one line per problem, 2 on usage errors.",
    )
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"the stack (default {DEFAULT_STACK})")
    parser.add_argument(
        "--outputs",
        help="read the stack's outputs from this file (make deploy writes cdk.out/outputs.json) "
        "instead of CloudFormation",
    )
    parser.add_argument(
        "--config",
        default="cdk.json",
        help="cdk.json with the `casewatch` settings the stack was deployed with",
    )
    parser.add_argument(
        "--since",
        default="24h",
        help="how far back to look for errors: 24h (default), 90m, 7d or an ISO time",
    )
    parser.add_argument("--region", help="the stack's AWS Region (default: the Region of its outputs' ARNs)")
    parser.add_argument(
        "--json", action="store_true", help="print JSON: {healthy, checks: {name: {ok, ...}}}"
    )
    parser.set_defaults(run=run)


def required_outputs() -> set[str]:
    """The outputs doctor cannot check without (`DomainId` is optional: older stacks lack it)."""
    return {
        ALARM_TOPIC_OUTPUT,
        *(f"{queue}Url" for queue in DEAD_LETTER_QUEUES),
        *(f"{spec.construct_id}RuleArn" for spec in EVENT_ROUTED),
        *(f"{spec.construct_id}FunctionName" for spec in FUNCTIONS),
    }


def deployed_settings(config: str, outputs: dict[str, str]) -> Settings:
    """The settings of `config`, for the domain the stack was deployed for (its `DomainId` output)."""
    domain_id = outputs.get(DOMAIN_OUTPUT, "").strip()
    try:
        return load_cdk_context(config, overrides={"domain_id": domain_id} if domain_id else None)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def deployment(stack: str, outputs: dict[str, str], settings: Settings) -> Deployment:
    """The stack's resources from its outputs (a usage error names the first one missing)."""
    for key in sorted(required_outputs()):
        required(outputs, key, stack)
    return Deployment(
        stack=stack,
        settings=settings,
        rules=tuple((spec, outputs[f"{spec.construct_id}RuleArn"].strip()) for spec in EVENT_ROUTED),
        functions=tuple((spec, outputs[f"{spec.construct_id}FunctionName"].strip()) for spec in FUNCTIONS),
        queues=tuple((queue, outputs[f"{queue}Url"].strip()) for queue in DEAD_LETTER_QUEUES),
        alarm_topic_arn=outputs[ALARM_TOPIC_OUTPUT].strip(),
    )


@dataclass(frozen=True)
class DoctorClients:
    cases: Any
    events: Any
    sqs: Any
    sns: Any
    cloudwatch: Any

    @classmethod
    def create(cls, region: str | None) -> DoctorClients:
        """The product's clients (`CASEWATCH_CASES_ENDPOINT` points Cases at the emulator) and CloudWatch."""
        from casewatch.adapters import clients

        return cls(
            cases=clients.cases_client(),
            events=clients.events_client(),
            sqs=clients.sqs_client(),
            sns=clients.sns_client(),
            cloudwatch=cloudwatch_client(region),
        )


@cache
def cloudwatch_client(region: str | None) -> Any:
    """CloudWatch with the product's client settings (timeouts, standard retries), one per Region."""
    import boto3

    from casewatch.adapters.clients import client_config

    return boto3.session.Session().client("cloudwatch", region_name=region, config=client_config())


def run_checks(
    stack: Deployment, aws: DoctorClients, *, start: datetime, end: datetime, window: str
) -> dict[str, CheckResult]:
    """Every check, in order; an AWS error fails its own check only."""
    checks: dict[str, Callable[[], CheckResult]] = {
        "event-config": lambda: check_event_configuration(aws.cases, stack.settings),
        "rules": lambda: check_rules(aws.events, stack),
        "queues": lambda: check_queues(aws.sqs, stack),
        "alarm-topic": lambda: check_alarm_topic(aws.sns, stack),
        "errors": lambda: check_recent_errors(aws.cloudwatch, stack, start=start, end=end, window=window),
    }
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    results: dict[str, CheckResult] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except NoCredentialsError:
            raise UsageError(NO_CREDENTIALS) from None
        except (ClientError, BotoCoreError) as exc:
            results[name] = CheckResult([f"cannot check ({aws_error(exc)})"])
    return results


def render(stack: str, results: dict[str, CheckResult]) -> str:
    """One line per problem and warning; when healthy, a short summary of each check."""
    lines = [f"casewatch doctor: {name}: {problem}" for name, r in results.items() for problem in r.problems]
    lines += [f"casewatch doctor: {name}: warning: {w}" for name, r in results.items() for w in r.warnings]
    if all(r.ok for r in results.values()):
        width = max(len(name) for name in results)
        lines.append(f"casewatch doctor: stack {stack} is healthy")
        lines += [f"  {name:<{width}}  {r.summary}" for name, r in results.items()]
    return "\n".join(lines)


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def _use_region(region: str) -> None:
    """Point every client at `region` (the product's clients read the default Region)."""
    import os

    import boto3

    from casewatch.adapters import clients

    if boto3.session.Session().region_name != region:
        os.environ["AWS_DEFAULT_REGION"] = region
        clients.reset_clients()


def deployed_outputs(stack: str, outputs_file: str | None) -> dict[str, str]:
    """The stack's outputs (`stack_outputs`), missing credentials or Region as usage errors."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError

    try:
        return stack_outputs(stack, outputs_file=outputs_file)
    except NoCredentialsError:
        raise UsageError(NO_CREDENTIALS) from None
    except NoRegionError:
        raise UsageError("no AWS Region: pass --region (or set AWS_DEFAULT_REGION)") from None
    except BotoCoreError as exc:
        raise UsageError(f"stack {stack!r}: {exc}") from None


def run(args: argparse.Namespace, out: TextIO) -> int:
    end = datetime.now(UTC)
    start = parse_since(args.since, end)
    if start >= end:
        raise UsageError(f"--since {args.since}: must be in the past")
    relative = re.fullmatch(r"\d+[smhd]", args.since.strip())
    window = f"in the last {args.since.strip()}" if relative else f"since {start:%Y-%m-%dT%H:%M:%SZ}"
    if args.region:
        _use_region(args.region)
    outputs = deployed_outputs(args.stack, args.outputs)
    stack = deployment(args.stack, outputs, deployed_settings(args.config, outputs))
    region = args.region or _region_of(stack.alarm_topic_arn)
    if region:
        _use_region(region)
    results = run_checks(stack, DoctorClients.create(region), start=start, end=end, window=window)
    healthy = all(r.ok for r in results.values())
    if args.json:
        document = {
            "healthy": healthy,
            "stack": args.stack,
            "since": start.isoformat(),
            "checks": {name: r.as_dict() for name, r in results.items()},
        }
        print(json.dumps(document, indent=2), file=out)
    else:
        print(render(args.stack, results), file=out)
    return 0 if healthy else 1


__all__ = [
    "DoctorClients",
    "deployed_outputs",
    "deployed_settings",
    "deployment",
    "register",
    "render",
    "required_outputs",
    "run",
]
