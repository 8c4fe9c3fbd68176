"""The runtime settings travel in a file of a small layer, the environment holds resource names only,
and both are measured against Lambda's limits with the lengths AWS allows (issue 12, item 2).

Before: the settings were JSON in `CASEWATCH_CONFIG` and the 4 KB guard measured CDK tokens (~18
characters for a table name of up to 255), so synth passed and the deployment failed from about 30
custom fields; the README's "event_fields up to 400" was unreachable.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from infra.constructs.function import CasewatchFunction
from infra.constructs.lambda_limits import (
    ENVIRONMENT_LIMIT_BYTES,
    QUEUE_URL_MAX,
    LambdaLimitError,
    check_environment_size,
    max_resolved_length,
)
from infra.constructs.settings_layer import SETTINGS_FILE, SETTINGS_FILE_LIMIT_BYTES, SettingsLayer

from casewatch.constants import ENV_CONFIG, ENV_CONFIG_FILE
from casewatch.errors import SettingsError
from casewatch.settings import Settings
from casewatch.topology import CASE_CHANGED, FUNCTIONS, FunctionSpec
from tests.infra.synth import Synthesized


def bare_stack() -> Stack:
    return Stack(App(), "Bare")


def table(stack: Stack, construct_id: str) -> dynamodb.Table:
    return dynamodb.Table(
        stack, construct_id, partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    )


def settings_file(synth: Synthesized) -> dict[str, object]:
    _, layer = synth.by_path("Functions/Settings/Layer/Resource")
    path = synth.outdir / layer["Metadata"]["aws:asset:path"] / SETTINGS_FILE.relative_to("/opt")
    data: dict[str, object] = json.loads(path.read_text())
    return data


# -- measuring what AWS will hold --------------------------------------------------------------------
def test_references_are_measured_at_their_deployed_length_not_their_token_length() -> None:
    stack = bare_stack()
    name = table(stack, "Table").table_name
    assert len(name) < 30  # the token CDK holds at synth
    assert max_resolved_length(stack, name) == 255  # a DynamoDB table name CloudFormation may generate
    url = sqs.Queue(stack, "Queue").queue_url
    assert max_resolved_length(stack, url) == QUEUE_URL_MAX
    assert max_resolved_length(stack, f"prefix-{name}") == len("prefix-") + 255


def test_an_environment_that_may_exceed_4_kb_once_deployed_fails_with_a_clear_error() -> None:
    stack = bare_stack()
    variables = {f"TABLE_{i}": table(stack, f"Table{i}").table_name for i in range(16)}
    assert sum(len(k) + len(v) for k, v in variables.items()) < ENVIRONMENT_LIMIT_BYTES  # tokens fit ...
    with pytest.raises(LambdaLimitError, match=r"may reach \d+ bytes once deployed.*over Lambda's 4096"):
        check_environment_size(stack, variables)  # ... the deployed names do not


def test_a_function_whose_environment_may_exceed_4_kb_fails_the_synth() -> None:
    stack = bare_stack()
    tables = {f"CASEWATCH_TABLE_{i}": table(stack, f"Table{i}").table_name for i in range(16)}
    with pytest.raises(LambdaLimitError, match="environment of the case-changed function may reach"):
        CasewatchFunction(
            stack,
            CASE_CHANGED,
            code=lambda_.Code.from_inline("handler = None"),
            layers=[],
            settings=Settings(domain_id="d"),
            failure_queue=sqs.Queue(stack, "Failures"),
            environment=tables,
        )


def test_a_value_that_cannot_be_bounded_fails_rather_than_guessed() -> None:
    stack = bare_stack()
    with pytest.raises(LambdaLimitError, match="cannot bound"):
        check_environment_size(stack, {"X": stack.stack_id})  # AWS::StackId: not in the table


# -- the settings file ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_functions_read_the_settings_from_the_layer_file_named_by_the_environment(
    synth: Synthesized, spec: FunctionSpec
) -> None:
    _, fn = synth.by_path(f"Functions/{spec.construct_id}/Resource")
    env = fn["Properties"]["Environment"]["Variables"]
    assert env[ENV_CONFIG_FILE] == str(SETTINGS_FILE) == "/opt/casewatch/settings.json"
    assert ENV_CONFIG not in env
    settings_layer_id, _ = synth.by_path("Functions/Settings/Layer/Resource")
    assert {"Ref": settings_layer_id} in fn["Properties"]["Layers"]


def test_the_settings_layer_holds_the_runtime_settings(synth: Synthesized) -> None:
    runtime = Settings.from_mapping(settings_file(synth))
    deploy_only = set(synth.settings.DEPLOY_ONLY)
    assert runtime.model_dump(exclude=deploy_only) == synth.settings.model_dump(exclude=deploy_only)
    _, layer = synth.by_path("Functions/Settings/Layer/Resource")
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]


def test_400_event_fields_synthesize_and_every_environment_stays_under_4_kb(variant: Synthesized) -> None:
    assert variant.error is None, variant.error
    assert len(variant.settings.event_fields) == 400
    assert len(variant.settings.runtime_json()) > 5 * ENVIRONMENT_LIMIT_BYTES  # would never fit an env
    assert len(settings_file(variant)["event_fields"]) == 400  # type: ignore[arg-type]
    for fn in variant.stack.functions.all:
        assert fn.environment_bound <= ENVIRONMENT_LIMIT_BYTES, fn.node.path


def test_settings_too_large_for_their_layer_fail_with_a_clear_error() -> None:
    names = {
        f"a-rather-long-field-name-{i:06d}": f"{i:08x}-1b2c-4d3e-8f4a-5b6c7d8e9f0a" for i in range(20_000)
    }
    settings = Settings(domain_id="d", field_names=names)
    assert len(settings.runtime_json()) > SETTINGS_FILE_LIMIT_BYTES
    with pytest.raises(SettingsError, match=r"runtime settings are \d+ bytes, over the \d+ .*field_names"):
        SettingsLayer(bare_stack(), "Settings", settings=settings)
