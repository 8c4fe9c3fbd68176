"""boto3 clients: created once per container, lazily, with timeouts and botocore retries.

Every AWS call in casewatch goes through a client from here, so retries and timeouts are uniform:
`standard` retries for AWS services, `adaptive` (client-side rate limiting) with a bounded budget for
Cases, whose GetCase quota (4 req/s per account) is the scarcest resource in the system.

Clients come from one boto3 session, the container's (its credentials are the function's role). Code
that acts under another identity in the same process builds its clients inside `session_scope(session)`:
each session gets its own clients, cached like the container's. (Lambda never needs it; the local
pipeline runs the four functions in one process, each under its own role.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


_SCOPED_SESSION: ContextVar[Any] = ContextVar("casewatch_boto3_session", default=None)


@cache
def _container_session() -> Any:
    import boto3

    return boto3.session.Session()


def _session() -> Any:
    scoped = _SCOPED_SESSION.get()
    return scoped if scoped is not None else _container_session()


@contextmanager
def session_scope(session: Any) -> Iterator[None]:
    """Clients asked for inside come from `session` (a `boto3.session.Session`), one per session and kind,
    cached; outside, and after, from the container's session again."""
    token = _SCOPED_SESSION.set(session)
    try:
        yield
    finally:
        _SCOPED_SESSION.reset(token)


def cases_client(max_attempts: int = 4) -> ConnectCasesClient:
    """Cases, adaptive retries. `CASEWATCH_CASES_ENDPOINT` points it at the local emulator."""
    return _cases_client(_session(), max_attempts)


@cache
def _cases_client(session: Any, max_attempts: int) -> ConnectCasesClient:
    client: ConnectCasesClient = session.client(
        "connectcases",
        endpoint_url=os.environ.get(ENV_CASES_ENDPOINT) or None,
        config=client_config(max_attempts=max_attempts, mode="adaptive"),
    )
    return client


def dynamodb_client() -> DynamoDBClient:
    return _dynamodb_client(_session())


@cache
def _dynamodb_client(session: Any) -> DynamoDBClient:
    client: DynamoDBClient = session.client("dynamodb", config=client_config())
    return client


def sns_client() -> SNSClient:
    return _sns_client(_session())


@cache
def _sns_client(session: Any) -> SNSClient:
    client: SNSClient = session.client("sns", config=client_config())
    return client


def events_client() -> EventBridgeClient:
    return _events_client(_session())


@cache
def _events_client(session: Any) -> EventBridgeClient:
    client: EventBridgeClient = session.client("events", config=client_config())
    return client


def scheduler_client() -> EventBridgeSchedulerClient:
    return _scheduler_client(_session())


@cache
def _scheduler_client(session: Any) -> EventBridgeSchedulerClient:
    client: EventBridgeSchedulerClient = session.client("scheduler", config=client_config())
    return client


def sqs_client() -> SQSClient:
    return _sqs_client(_session())


@cache
def _sqs_client(session: Any) -> SQSClient:
    client: SQSClient = session.client("sqs", config=client_config())
    return client


def logs_client() -> CloudWatchLogsClient:
    return _logs_client(_session())


@cache
def _logs_client(session: Any) -> CloudWatchLogsClient:
    client: CloudWatchLogsClient = session.client("logs", config=client_config())
    return client


def reset_clients() -> None:
    """Forget every cached client (tests and the local pipeline switch endpoints/mocks)."""
    for factory in (
        _container_session,
        _cases_client,
        _dynamodb_client,
        _sns_client,
        _events_client,
        _scheduler_client,
        _sqs_client,
        _logs_client,
    ):
        factory.cache_clear()
