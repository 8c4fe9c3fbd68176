"""The test harness: suite markers, and one fixture per set-up.

Suites are directories, each test marked by its directory (`pytest -m unit`, `-m integration`, ...):
- unit: no network (sockets off, `tests/unit/conftest.py`), fakes of the ports (`casewatch_dev.fakes`);
- integration: moto (`mock_aws`), tables built from `casewatch.tables`, the Cases emulator on 127.0.0.1;
- infra: the synthesized CDK stack (`aws_cdk.assertions`), cdk-nag, cfn-lint, the SAM template;
- e2e: events through the whole local pipeline and the `casewatch` CLI;
- reliability: fault-injected generated days (sized by `CASEWATCH_RELIABILITY_EVENTS`).

Fixtures: `aws_env` (dummy credentials and a region), `moto` (AWS mocked, cached boto3 clients reset on
both sides), `state_table` (the state table on moto), `lambda_context`; the settings cache
and the composition root's cached apps are reset around every test. Builders of inputs are in
`tests/builders.py`, the use cases composed over fakes in `tests/apps.py`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lambda_context import REGION, LambdaContext

TESTS = Path(__file__).resolve().parent
SUITES = ("unit", "integration", "infra", "e2e", "reliability")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(TESTS).parts
        suite = parts[0] if len(parts) > 1 else ""
        if suite not in SUITES:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in one of tests/{{{','.join(SUITES)}}}")
        item.add_marker(getattr(pytest.mark, suite))


# --- settings ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read once per container and apps built once: every test starts a new container."""
    from casewatch.bootstrap import forget_apps
    from casewatch.settings import get_settings

    get_settings.cache_clear()
    forget_apps()
    yield
    get_settings.cache_clear()
    forget_apps()


# --- AWS ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _service_models_loaded_once() -> Iterator[None]:
    """botocore parses its JSON service models once per process, not once per boto3 session: every
    test that resets the product's clients starts a new session (about 60 ms saved per client)."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))
        yield


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and the sample region: nothing can reach a real account."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    """AWS mocked by moto; casewatch's cached boto3 clients are dropped on the way in and out."""
    from moto import mock_aws

    from casewatch.adapters.clients import reset_clients

    with mock_aws():
        reset_clients()
        yield
    reset_clients()


STATE_TABLE_NAME = "casewatch-state"


@pytest.fixture
def state_table(moto: None) -> str:
    """The state table on moto, created from the definition the CDK stack uses; its name."""
    from casewatch.adapters.clients import dynamodb_client
    from casewatch.tables import STATE_TABLE

    dynamodb_client().create_table(**STATE_TABLE.create_table_args(STATE_TABLE_NAME))
    return STATE_TABLE_NAME


# --- Lambda ------------------------------------------------------------------------------------------


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context with 30 s left (`tests.lambda_context.LambdaContext(name, remaining_ms)`)."""
    return LambdaContext()
