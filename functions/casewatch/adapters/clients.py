"""boto3 clients: created once per container, lazily, with timeouts and botocore retries.

Every AWS call in casewatch goes through a client from here, so retries and timeouts are uniform:
`standard` retries for AWS services, `adaptive` (client-side rate limiting) with a bounded budget for
Cases, whose GetCase quota (4 req/s per account) is the scarcest resource in the system.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from casewatch.constants import ENV_CASES_ENDPOINT

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5


def client_config(*, max_attempts: int = 3, mode: str = "standard") -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        # `total_max_attempts` counts the first request too (botocore's `max_attempts` counts retries only).
        retries={"mode": mode, "total_max_attempts": max_attempts},  # type: ignore[typeddict-item,arg-type]
        tcp_keepalive=True,
    )


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def cases_client(max_attempts: int = 4) -> ConnectCasesClient:
    """Cases, adaptive retries. `CASEWATCH_CASES_ENDPOINT` points it at the local emulator."""
    client: ConnectCasesClient = _session().client(
        "connectcases",
        endpoint_url=os.environ.get(ENV_CASES_ENDPOINT) or None,
        config=client_config(max_attempts=max_attempts, mode="adaptive"),
    )
    return client


@cache
def dynamodb_client() -> DynamoDBClient:
    client: DynamoDBClient = _session().client("dynamodb", config=client_config())
    return client


@cache
def sns_client() -> SNSClient:
    client: SNSClient = _session().client("sns", config=client_config())
    return client


@cache
def events_client() -> EventBridgeClient:
    client: EventBridgeClient = _session().client("events", config=client_config())
    return client


@cache
def scheduler_client() -> EventBridgeSchedulerClient:
    client: EventBridgeSchedulerClient = _session().client("scheduler", config=client_config())
    return client


@cache
def sqs_client() -> SQSClient:
    client: SQSClient = _session().client("sqs", config=client_config())
    return client


@cache
def logs_client() -> CloudWatchLogsClient:
    client: CloudWatchLogsClient = _session().client("logs", config=client_config())
    return client


def reset_clients() -> None:
    """Forget every cached client (tests and the local pipeline switch endpoints/mocks)."""
    for factory in (
        _session,
        cases_client,
        dynamodb_client,
        sns_client,
        events_client,
        scheduler_client,
        sqs_client,
        logs_client,
    ):
        factory.cache_clear()
