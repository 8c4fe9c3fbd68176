"""`casewatch migrate-state --from-table OLD_TABLE`: the command line of the migration.

The new table is `--to-table`, else the stack's `StateTableName` output (CloudFormation, or `--outputs
cdk.out/outputs.json`); the settings (the SLA policies, the domain, the breach grace) come from `--config`,
with the stack's `DomainId` output as the domain when the stack is read. Both tables are looked at first:
the new one must be this version's (its `due` index projects only the domain), the old one another table.
Exit 0 when every case was migrated or skipped, 1 when some failed (or AWS failed the run), 2 on usage
errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from casewatch.errors import CasewatchError, SettingsError
from casewatch.settings import Settings, load_cdk_context
from casewatch.tables import STATE_TABLE
from casewatch_dev.doctor import NO_CREDENTIALS, deployed_outputs, deployed_settings
from casewatch_dev.event_files import UsageError
from casewatch_dev.migrate_state.report import MigrationReport
from casewatch_dev.stack_outputs import DEFAULT_OUTPUTS_FILE, DEFAULT_STACK, required

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE_OUTPUT: Final = "StateTableName"
MAX_ATTEMPTS: Final = 10  # a long Scan and many writes: ride out throttling (adaptive: slow down too)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate-state",
        help="copy an earlier casewatch's SLA state (its StateTable) into this version's table",
        description="Copy the state of an earlier casewatch (the retained StateTable: case views, SLA "
        "logs, status order) into this version's table, one record per case, after deploying this "
        "version. Cases already in the new table are skipped, so it can run again. Idempotency records "
        "are not copied. Exit 0 when no case failed, 1 when some did, 2 on usage errors.",
    )
    parser.add_argument(
        "--from-table", required=True, metavar="OLD_TABLE", help="the old state table (logical id StateTable)"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--to-table", metavar="NEW_TABLE", help=f"the new table (default: the stack's {TABLE_OUTPUT} output)"
    )
    target.add_argument(
        "--outputs",
        metavar="FILE",
        help=f"read the stack's outputs from this file ({DEFAULT_OUTPUTS_FILE}, written by make deploy) "
        "instead of CloudFormation",
    )
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"the stack (default {DEFAULT_STACK})")
    parser.add_argument(
        "--config", default="cdk.json", help="cdk.json with the settings deployed (the SLA policies)"
    )
    parser.add_argument("--region", help="the tables' AWS Region (default: your AWS configuration)")
    parser.add_argument("--dry-run", action="store_true", help="read and plan every case, write nothing")
    parser.add_argument("--report", choices=("text", "json"), default="text")
    parser.set_defaults(run=run)


def target_and_settings(args: argparse.Namespace) -> tuple[str, Settings]:
    """The new table and the settings it was deployed with."""
    if args.to_table:
        try:
            return args.to_table, load_cdk_context(args.config)
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
    outputs = deployed_outputs(args.stack, args.outputs)
    return required(outputs, TABLE_OUTPUT, args.stack), deployed_settings(args.config, outputs)


def dynamodb_client() -> DynamoDBClient:
    """DynamoDB with the product's client settings, adaptive retries and a larger budget."""
    import boto3

    from casewatch.adapters.clients import client_config

    client: DynamoDBClient = boto3.session.Session().client(
        "dynamodb", config=client_config(max_attempts=MAX_ATTEMPTS, mode="adaptive")
    )
    return client


def check_tables(client: DynamoDBClient, source: str, target: str) -> None:
    """Usage errors for tables that are missing, the same, or not what they should be."""
    if source == target:
        raise UsageError(
            f"--from-table and the new table are both {source}: deploy this version of casewatch first"
        )
    old, new = _describe(client, source), _describe(client, target)
    if _key_names(old) != ("pk", "sk") or _is_current(old):
        raise UsageError(f"{source} is not an earlier casewatch's state table (logical id StateTable)")
    if _key_names(new) != ("pk", "sk") or not _is_current(new):
        raise UsageError(
            f"{target} is not this version's state table (logical id {STATE_TABLE.construct_id}): "
            "deploy this version of casewatch first"
        )


def _is_current(description: dict[str, Any]) -> bool:
    """Whether a table is this version's: its `due` index projects only what the due sweep reads (the
    old table's projected every attribute)."""
    due = STATE_TABLE.indexes[0].name
    indexes = description.get("GlobalSecondaryIndexes", [])
    index = next((i for i in indexes if i.get("IndexName") == due), None)
    return index is not None and index.get("Projection", {}).get("ProjectionType") != "ALL"


def _describe(client: DynamoDBClient, table: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    try:
        description: dict[str, Any] = dict(client.describe_table(TableName=table)["Table"])
    except NoCredentialsError:
        raise UsageError(NO_CREDENTIALS) from None
    except NoRegionError:
        raise UsageError("no AWS Region: pass --region (or set AWS_DEFAULT_REGION)") from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UsageError(f"table {table} not found (in this account and Region)") from None
        raise CasewatchError(f"cannot describe table {table}: {exc}") from None
    return description


def _key_names(description: dict[str, Any]) -> tuple[str, ...]:
    keys = sorted(description.get("KeySchema", []), key=lambda k: k.get("KeyType") != "HASH")
    return tuple(str(k.get("AttributeName")) for k in keys)


def _progress(report: MigrationReport) -> None:
    print(
        f"casewatch migrate-state: {report.cases_read} cases read, {report.migrated} migrated, "
        f"{report.skipped_present} present, {len(report.failed)} failed",
        file=sys.stderr,
    )


def _print(report: MigrationReport, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        print(json.dumps(report.as_dict(), indent=2), file=out)
    else:
        print(report.render(), file=out)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from casewatch.adapters import clients
    from casewatch.bootstrap import policies
    from casewatch_dev.migrate_state.migration import StateMigration

    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
        clients.reset_clients()
    target, settings = target_and_settings(args)
    client = dynamodb_client()
    check_tables(client, args.from_table, target)
    migration = StateMigration(
        client=client,
        source_table=args.from_table,
        target_table=target,
        settings=settings,
        policies=policies(settings),
        dry_run=args.dry_run,
        progress=_progress,
    )
    report = migration.new_report()
    try:
        migration.run(report)
    except (ClientError, BotoCoreError) as exc:
        _print(report, args.report, out)
        raise CasewatchError(
            f"the migration stopped after {report.cases_read} cases ({exc}): run it again, "
            "the cases migrated are skipped"
        ) from None
    _print(report, args.report, out)
    return 0 if report.ok else 1


__all__ = ["check_tables", "dynamodb_client", "register", "run", "target_and_settings"]
