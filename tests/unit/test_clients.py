"""`casewatch.adapters.clients`: one client per kind from the container's session, and `session_scope`
for code that acts under another identity in the same process (the local pipeline's functions)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from casewatch.adapters import clients


@pytest.fixture
def fresh_clients(aws_env: None) -> Iterator[None]:
    clients.reset_clients()
    yield
    clients.reset_clients()


def _session(key: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        aws_session_token="token",
        region_name="us-east-1",
    )


def _key(client: object) -> str:
    return str(client._request_signer._credentials.access_key)  # type: ignore[attr-defined]


def test_clients_are_made_once_from_the_containers_credentials(fresh_clients: None) -> None:
    first = clients.dynamodb_client()
    assert clients.dynamodb_client() is first
    assert _key(first) == "testing"  # the environment's (aws_env)
    assert clients.cases_client(4) is clients.cases_client(4)
    assert clients.cases_client(2) is not clients.cases_client(4)  # one per retry budget


def test_a_session_scope_gives_that_sessions_clients_cached_per_session(fresh_clients: None) -> None:
    container = clients.sqs_client()
    one, two = _session("ASIAONE"), _session("ASIATWO")
    with clients.session_scope(one):
        in_one = clients.sqs_client()
        assert _key(in_one) == "ASIAONE"
        assert clients.sqs_client() is in_one
        with clients.session_scope(two):
            assert _key(clients.sqs_client()) == "ASIATWO"
            assert _key(clients.cases_client()) == "ASIATWO"
        assert clients.sqs_client() is in_one  # the inner scope ended
    assert clients.sqs_client() is container
    with clients.session_scope(one):
        assert clients.sqs_client() is in_one  # the same session: the same client again


def test_reset_forgets_every_sessions_clients(fresh_clients: None) -> None:
    session = _session("ASIAONE")
    with clients.session_scope(session):
        before = clients.sns_client()
    clients.reset_clients()
    with clients.session_scope(session):
        assert clients.sns_client() is not before
