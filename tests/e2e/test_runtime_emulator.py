"""`casewatch invoke --runtime-emulator`: the four functions in the real Lambda runtime, without Docker.

Each function runs from the synthesized asset and layer in the Lambda Runtime Interface Emulator (from
the SAM tool environment, `make tools`), with awslambdaric as the runtime client and the template's
handler, memory, timeout and environment, against moto's server and the Cases emulator over HTTP. One
session (one moto server, one emulator per function) serves the parametrized test.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casewatch.settings import load_cdk_context
from casewatch.topology import function_named
from casewatch_dev.cli import main
from casewatch_dev.lambda_runtime import RuntimeSession
from casewatch_dev.lambda_runtime.toolchain import layer_requirements
from tests.builders import EVENTS, ROOT

CASES_STATE = json.loads((EVENTS / "state" / "cases.json").read_text())
# In this order: related-item-created runs before case-changed has stored a snapshot of the case, so it
# must call GetCase.
SAMPLES = {
    "related-item-created": EVENTS / "related-item-comment.json",
    "case-changed": EVENTS / "case-created.json",
    "sla-timer": EVENTS / "scheduler" / "sla-timer-breach.json",
    "reconcile": EVENTS / "scheduler" / "reconcile.json",
}
# What reaching AWS and Cases from inside the runtime shows, per function (beyond `handled`).
EXPECTED: dict[str, dict[str, Any]] = {
    "case-changed": {
        "notification": "high-priority-created",
        "bus_event": "Case Enriched",
        "getcase_calls": 0,
    },
    # Its event carries no case fields: GetCase reaches the Cases emulator (not moto, which
    # AWS_ENDPOINT_URL points every other service at).
    "related-item-created": {
        "notification": "comment-added",
        "bus_event": "Related Item Enriched",
        "getcase_calls": 1,
    },
    "sla-timer": {},
    "reconcile": {},
}
REPORT_KEYS = {
    "duration_ms",
    "billed_duration_ms",
    "memory_size_mb",
    "max_memory_used_mb",
    "init_duration_ms",
}


@pytest.fixture(scope="module")
def session() -> Iterator[RuntimeSession]:
    config = ROOT / "cdk.json"
    with RuntimeSession(load_cdk_context(str(config)), config, cases_state=CASES_STATE) as running:
        yield running


@pytest.mark.parametrize("function", list(SAMPLES))
def test_each_function_runs_in_the_lambda_runtime(session: RuntimeSession, function: str) -> None:
    spec = function_named(function)
    result = session.invoke(function, json.loads(SAMPLES[function].read_text()))

    assert (result["function"], result["outcome"]) == (function, "handled"), result["reason"]
    assert result["dead_letters"] == []
    want = EXPECTED[function]
    if "notification" in want:
        assert want["notification"] in [n["rule"] for n in result["notifications"]]
    if "bus_event" in want:
        assert want["bus_event"] in [b["detail-type"] for b in result["bus_events"]]
    if "getcase_calls" in want:
        assert result["getcase_calls"] == want["getcase_calls"]

    definition, _ = session.function(spec)
    runtime = result["runtime"]
    assert set(runtime) >= REPORT_KEYS  # a cold start: the first invocation of this function
    assert runtime["handler"] == definition.handler == spec.handler
    assert runtime["memory_size_mb"] == definition.memory_mb
    assert runtime["timeout_s"] == definition.timeout_s
    assert 0 < runtime["duration_ms"] < definition.timeout_s * 1000
    assert runtime["billed_duration_ms"] >= runtime["duration_ms"]
    assert 0 < runtime["max_memory_used_mb"] < definition.memory_mb
    assert runtime["report"].startswith("REPORT RequestId: ")
    assert runtime["awslambdaric"] and runtime["boto3"]


def test_the_function_runs_from_the_synthesized_asset_and_layer(session: RuntimeSession) -> None:
    definition, running = session.function(function_named("case-changed"))
    assert definition.code_dir.parent == session.assembly  # cdk.out-style asset.<hash>/
    assert (definition.code_dir / "casewatch" / "handlers" / "case_changed.py").is_file()
    assert not (definition.code_dir / "casewatch_dev").exists()
    environment = running.process_environment()
    assert environment["LAMBDA_TASK_ROOT"] == str(definition.code_dir)
    assert environment["PYTHONPATH"].split(":")[0] == str(definition.code_dir)
    # The dependencies layer here holds the same distributions as the synthesized one (built for this
    # machine); the settings layer is used as it is, and the settings file's path points into it.
    dependencies = [i for i, layer in enumerate(definition.layer_dirs) if (layer / "python").is_dir()]
    assert len(dependencies) == 1
    assert [layer_requirements(running.layer_dirs[i]) for i in dependencies] == [
        layer_requirements(definition.layer_dirs[i]) for i in dependencies
    ]
    settings_file = Path(environment["CASEWATCH_CONFIG_FILE"])
    assert settings_file.is_file() and settings_file.parent.parent in running.layer_dirs
    if session.runtime.expected:  # the Python AWS runs (the template's Runtime) was found here
        assert definition.runtime == "python" + ".".join(session.runtime.version.split(".")[:2])
    # The runtime client is the runtime's, never in the asset or the layer.
    assert not list(definition.code_dir.glob("awslambdaric*"))
    assert all(not list((layer / "python").glob("awslambdaric*")) for layer in running.layer_dirs)
    # References resolved to the local pipeline's resources (the queue's URL is moto's).
    assert definition.environment["CASEWATCH_SLA_TABLE"] == session.resources.state_table
    assert definition.environment["CASEWATCH_TOPIC_ARN"] == session.resources.topic_arn
    assert definition.environment["CASEWATCH_DEAD_LETTER_QUEUE_URL"].startswith(session.aws_url)
    assert definition.environment["CASEWATCH_SLA_TIMER_ARN"].startswith("arn:aws:lambda:us-east-1:")


def test_the_cli_prints_handled_and_the_report() -> None:
    out = io.StringIO()
    code = main(
        ["invoke", "case-changed", "-e", str(EVENTS / "case-created.json"), "--runtime-emulator", "--json"],
        out=out,
    )
    result = json.loads(out.getvalue())
    assert code == 0
    assert result["outcome"] == "handled"
    assert set(result["runtime"]) >= REPORT_KEYS


def test_prime_is_delivered_through_the_runtime_first(session: RuntimeSession) -> None:
    session.prime(json.loads((EVENTS / "case-updated.json").read_text()))
    result = session.invoke("sla-timer", json.loads(SAMPLES["sla-timer"].read_text()))
    assert result["outcome"] == "handled"
    assert "init_duration_ms" not in result["runtime"]  # warm: the emulator of sla-timer is reused
    assert Path(result["runtime"]["report"].split()[0]) == Path("REPORT")
